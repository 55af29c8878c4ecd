"""The CLI, run as a real process: one command per job, exit codes, atomic output, the input never touched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CHAIRMAN, HALONG, PIN, Token, pyhanko_report

from docexchange.config import Settings
from helpers import free_port

Run = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.slow  # real processes


def _config(tmp: Path, settings: Settings, **signing: str) -> Path:
    cfg = tmp / "project" / "config" / "docexchange.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "[paths]",
        f'keys_dir = "{settings.keys_dir}"',
        f'directory = "{settings.directory_file}"',
        f'data_dir = "{tmp / "data"}"',
        "[pki]",
        f"port = {settings.pki.port}",
        "[signing]",
        *(f'{k} = "{v}"' for k, v in signing.items()),
    ]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


@pytest.fixture
def letter_file(tmp_path: Path, letter: bytes) -> Path:
    path = tmp_path / "letter.pdf"
    path.write_bytes(letter)
    return path


@pytest.fixture
def run(tmp_path: Path, pki_settings: Settings, trust_services: object) -> Run:
    cfg = _config(tmp_path, pki_settings)

    def _run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None,
             config: Path | None = None) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if k != "DOCEXCHANGE_KEY_PASSPHRASE"}
        base.update({"DOCEXCHANGE_CONFIG": str(config or cfg), "DOCEXCHANGE_KEY_PASSPHRASE": "docexchange-dev"})
        base.update(env or {})
        return subprocess.run([sys.executable, "-m", "docexchange", *args], capture_output=True, text=True,
                              input=stdin, env=base, cwd=tmp_path, timeout=300)

    return _run


def test_letter_person_seal_appendix_copy(run: Run, tmp_path: Path, root_pem: Path) -> None:
    letter, person, sealed = tmp_path / "letter.pdf", tmp_path / "person.pdf", tmp_path / "sealed.pdf"
    r = run("sample-letter", str(letter))
    assert r.returncode == 0, r.stderr
    original = letter.read_bytes()
    r = run("sign", str(letter), str(person), "--person", CHAIRMAN)
    assert r.returncode == 0, r.stderr
    assert "Đã ký" in r.stdout
    r = run("sign", str(person), str(sealed), "--seal", HALONG, "--level", "B-LTA")
    assert r.returncode == 0, r.stderr
    assert letter.read_bytes() == original
    reports = pyhanko_report(sealed.read_bytes(), root_pem)
    assert [r.field for r in reports if r.kind == "signature"] == ["nd30_person", "nd30_seal"]
    assert all(r.valid and r.trusted for r in reports)

    annex, copy = tmp_path / "annex.pdf", tmp_path / "copy.pdf"
    r = run("sign", str(letter), str(annex), "--seal", HALONG, "--appendix", "05/QĐ-UBND", "--level", "B-T")
    assert r.returncode == 0, r.stderr
    r = run("sign", str(sealed), str(copy), "--seal", HALONG, "--copy", "SAO Y", "--copy-number", "12/SY-UBND")
    assert r.returncode == 0, r.stderr
    assert pyhanko_report(annex.read_bytes(), root_pem)[0].field == "nd30_appendix"
    assert pyhanko_report(copy.read_bytes(), root_pem)[-1].field == "nd30_copy"


def test_p12_file_with_box_and_prompted_passphrase(run: Run, tmp_path: Path, pki_settings: Settings,
                                                   root_pem: Path) -> None:
    letter, out = tmp_path / "letter.pdf", tmp_path / "out.pdf"
    assert run("sample-letter", str(letter), "--official", "h49-halong-pho-chu-tich").returncode == 0
    p12 = pki_settings.keys_dir / "persons" / CHAIRMAN / "key.p12"
    image = pki_settings.keys_dir / "persons" / CHAIRMAN / "signature.png"
    env = {k: v for k, v in os.environ.items() if k != "DOCEXCHANGE_KEY_PASSPHRASE"}
    r = subprocess.run(
        [sys.executable, "-m", "docexchange", "sign", str(letter), str(out), "--person", str(p12), "--image",
         str(image), "--page", "1", "--box", "340,80,540,160", "--level", "B-B"],
        capture_output=True, text=True, input="docexchange-dev\n", timeout=300, cwd=tmp_path,
        env={**env, "DOCEXCHANGE_CONFIG": str(_config(tmp_path, pki_settings))},
    )
    assert r.returncode == 0, r.stderr
    (report,) = pyhanko_report(out.read_bytes(), root_pem)
    assert report.field == "nd30_person_2" and report.valid and report.trusted


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--person", CHAIRMAN, "--field", "khong_co"], 1, "không có trong văn bản"),
        (["--person", CHAIRMAN, "--page", "1", "--box", "500,100,700,200"], 1, "nằm ngoài trang"),
        (["--person", CHAIRMAN, "--box", "1,2,3"], 2, "x1,y1,x2,y2"),
        (["--seal", HALONG], 1, "người có thẩm quyền"),
        (["--seal", HALONG, "--field", "x"], 2, "NĐ 30"),
        (["--person", CHAIRMAN, "--appendix", "05/QĐ-UBND"], 2, "--seal"),
        (["--person", CHAIRMAN, "--seal", HALONG], 2, "đúng một"),
        (["--person", "khong-co-can-bo"], 1, "khong-co-can-bo"),
        (["--seal", HALONG, "--copy", "BẢN CHỤP"], 1, "SAO Y"),
        (["--person", CHAIRMAN, "--pkcs11-lib", "/nope.so"], 2, "--token-label"),
    ],
    ids=["missing-field", "box-off-page", "bad-box", "seal-first", "seal-field", "person-appendix", "both",
         "unknown-official", "bad-copy-form", "incomplete-token"],
)
def test_refusals_write_nothing(run: Run, tmp_path: Path, letter_file: Path, args: list[str], code: int,
                                message: str) -> None:
    letter, out = letter_file, tmp_path / "out" / "x.pdf"
    out.parent.mkdir()
    original = letter.read_bytes()
    r = run("sign", str(letter), str(out), *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert message in r.stderr
    assert not out.exists() and list(out.parent.iterdir()) == []  # no partial or temporary file left
    assert letter.read_bytes() == original


def test_wrong_passphrase_and_same_output(run: Run, tmp_path: Path, letter_file: Path) -> None:
    letter = letter_file
    r = run("sign", str(letter), str(tmp_path / "o.pdf"), "--person", CHAIRMAN,
            env={"DOCEXCHANGE_KEY_PASSPHRASE": "sai"})
    assert r.returncode == 1 and "Sai mật khẩu" in r.stderr and "wrong passphrase" in r.stderr
    original = letter.read_bytes()
    r = run("sign", str(letter), str(letter), "--person", CHAIRMAN)
    assert r.returncode == 2 and "khác tệp đầu vào" in r.stderr
    assert letter.read_bytes() == original


def test_tsa_down_writes_nothing(run: Run, tmp_path: Path, pki_settings: Settings, letter_file: Path) -> None:
    letter, out = letter_file, tmp_path / "out.pdf"
    dead = _config(tmp_path / "dead", pki_settings, tsa_url=f"http://127.0.0.1:{free_port()}/tsa")
    r = run("sign", str(letter), str(out), "--person", CHAIRMAN, "--level", "B-T", config=dead)
    assert r.returncode == 1 and "timestamp_unavailable" in r.stderr
    assert not out.exists()


def test_token_via_cli(run: Run, tmp_path: Path, softhsm_token: Token, root_pem: Path, letter_file: Path) -> None:
    letter, out = letter_file, tmp_path / "out.pdf"
    args = ["sign", str(letter), str(out), "--person", CHAIRMAN, "--pkcs11-lib", str(softhsm_token.lib),
            "--token-label", softhsm_token.label, "--key-label", softhsm_token.key_label]
    env = {"SOFTHSM2_CONF": str(softhsm_token.conf), "DOCEXCHANGE_TOKEN_PIN": PIN}
    r = run(*args, env=env)
    assert r.returncode == 0, r.stderr
    (report,) = pyhanko_report(out.read_bytes(), root_pem)
    assert report.valid and report.trusted
    r = run(*args, env={**env, "DOCEXCHANGE_TOKEN_PIN": "000000"})
    assert r.returncode == 1 and "Sai mã PIN" in r.stderr


def test_sample_letter_sizes(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "big.pdf"
    r = run("sample-letter", str(out), "--size", "1MB", "--number", "17", "--date", "2025-03-09")
    assert r.returncode == 0, r.stderr
    assert abs(out.stat().st_size - 1024 * 1024) < 1024 * 1024 * 0.02
    assert run("sample-letter", str(out), "--date", "09/03/2025").returncode == 2
