"""``docexchange verify``: formats, languages, folders in batch, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from verify_support import CORPUS, HALONG, Signed

from docexchange.cli.main import cli
from docexchange.cli.verify import parse_at
from docexchange.clock import VN_TZ
from docexchange.config import Settings


def _config(settings: Settings) -> str:
    return str(Path(settings.base_dir) / "config" / "docexchange.toml")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, signed: Signed) -> Path:
    folder = tmp_path_factory.mktemp("cli-docs")
    (folder / "hợp-lệ.pdf").write_bytes(signed.lt)
    (folder / "b-b.pdf").write_bytes(signed.bb)
    shutil.copy(CORPUS / "tampered/dss__pdf-signed-added-page.pdf", folder / "them-trang.pdf")
    (folder / "sub").mkdir()
    shutil.copy(CORPUS / "malformed/dss__malformed-pades.pdf", folder / "sub" / "hong.PDF")
    (folder / "notes.txt").write_text("không phải PDF")
    return folder


def run(settings: Settings, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", _config(settings), "verify", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_valid_file_text_vi(pki_settings: Settings, files: Path) -> None:
    code, out, _ = run(pki_settings, str(files / "hợp-lệ.pdf"), "--offline", "--sender", HALONG)
    assert code == 0, out
    assert "Kết luận: HỢP LỆ" in out and "Quy định NĐ 30/2020: ĐẠT" in out
    assert "Người ký" in out and "CA cấp chứng thư" in out


def test_english_json(pki_settings: Settings, files: Path) -> None:
    code, out, _ = run(pki_settings, str(files / "hợp-lệ.pdf"), "--offline", "--format", "json", "--lang", "en")
    assert code == 0
    data = json.loads(out)
    assert data["outcome"] == "valid" and data["label"]["vi"] == "hợp lệ"
    assert data["offline"] is True


def test_not_valid_is_exit_1_and_unreadable_exit_2(pki_settings: Settings, files: Path) -> None:
    assert run(pki_settings, str(files / "them-trang.pdf"), "--offline")[0] == 1
    assert run(pki_settings, str(files / "b-b.pdf"), "--offline")[0] == 1
    code, out, _ = run(pki_settings, str(files / "sub" / "hong.PDF"), "--offline")
    assert code == 2 and "Không kiểm tra được" in out


def test_folder_in_batch(pki_settings: Settings, files: Path) -> None:
    code, out, _err = run(pki_settings, str(files), "--offline")
    assert code == 2, "one file could not be evaluated"
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["Tệp", "Kết"]
    assert sum(1 for line in lines if ".pdf" in line.lower()) == 4, "the .txt is not a PDF; sub/ is walked"
    assert "Tổng 4" in out and "hợp lệ: 1" in out
    assert "notes.txt" not in out


def test_batch_json_and_html(pki_settings: Settings, files: Path, tmp_path: Path) -> None:
    code, out, _ = run(pki_settings, str(files / "hợp-lệ.pdf"), str(files / "them-trang.pdf"), "--offline",
                       "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert [r["outcome"] for r in data["reports"]] == ["valid", "invalid"]
    html_dir = tmp_path / "html"
    code, out, _ = run(pki_settings, str(files), "--offline", "--format", "html", "-o", str(html_dir))
    assert code == 2
    written = sorted(p.name for p in html_dir.glob("*.html"))
    assert written == ["b-b.html", "hong.html", "hợp-lệ.html", "them-trang.html"]
    assert "chưa xác định" in (html_dir / "b-b.html").read_text(encoding="utf-8")


def test_single_html_to_file(pki_settings: Settings, files: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, _out, _ = run(pki_settings, str(files / "hợp-lệ.pdf"), "--offline", "--format", "html", "--lang", "en",
                        "-o", str(target))
    assert code == 0
    html = target.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'lang="en"' in html


def test_at_and_extra_anchor(pki_settings: Settings) -> None:
    doc = CORPUS / "valid/dss__doc-firmado-LT.pdf"
    anchor = CORPUS / "trust/costa-rica-ca-raiz-nacional-v2.der"
    code, out, _ = run(pki_settings, str(doc), "--offline", "--anchor", str(anchor), "--at", "2020-06-01")
    assert code == 0, out
    code, _out, _ = run(pki_settings, str(doc), "--offline", "--at", "2020-06-01")
    assert code == 1, "without its anchor the same file is not trusted"


def test_parse_at() -> None:
    assert parse_at("2020-11-01") == datetime(2020, 11, 1, tzinfo=VN_TZ)
    assert parse_at("2020-11-01T08:30:00Z") == datetime(2020, 11, 1, 8, 30, tzinfo=UTC)
    with pytest.raises(Exception, match="ISO 8601"):
        parse_at("hôm qua")


def test_usage_errors(pki_settings: Settings, files: Path) -> None:
    assert run(pki_settings, str(files / "nope.pdf"))[0] == 2
    assert run(pki_settings, str(files), "--format", "html")[0] == 2
    code, _out, _ = run(pki_settings, str(files / "hợp-lệ.pdf"), "--policy", "nd31")
    assert code == 2


def test_real_process_exit_code(pki_settings: Settings, files: Path) -> None:
    """Through the installed entry point (run_cli maps the exit codes)."""
    proc = subprocess.run(
        [sys.executable, "-m", "docexchange", "--config", _config(pki_settings), "verify", "--offline",
         str(files / "them-trang.pdf")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "KHÔNG HỢP LỆ" in proc.stdout
