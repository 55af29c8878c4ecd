"""``docexchange edxml build | inspect | validate | extract`` end to end (the CLI over a real dev PKI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from edxml_samples import CORPUS, PDF, sample_document

from docexchange.cli.main import cli
from docexchange.config import Settings
from docexchange.edxml import SignatureStatus, read_packet, validate, verify_packet, write_document
from docexchange.edxml.model import DocumentPacket, Priority
from docexchange.errors import AttachmentError, ConfigError
from docexchange.pki.devpki import DevPki


@pytest.fixture
def config(pki_settings: Settings) -> Path:
    return Path(pki_settings.base_dir) / "config" / "docexchange.toml"


@pytest.fixture
def pdfs(tmp_path: Path) -> tuple[Path, Path]:
    main = tmp_path / "05-UBND-VX.pdf"
    main.write_bytes(PDF)
    appendix = tmp_path / "Phụ lục I.pdf"
    appendix.write_bytes(PDF.replace(b"filler", b"phuluc"))
    return main, appendix


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "edxml", *args], catch_exceptions=True)


BUILD = [
    "--from", "000.00.00.H49", "--to", "000.00.00.G22", "--to", "000.00.00.H57",
    "--number", "05", "--notation", "UBND-VX", "--date", "2025-01-05", "--place", "Hạ Long",
    "--subject", "V/v kết nối liên thông", "--priority", "hoa-toc", "--signer-name", "Nguyễn Văn An",
    "--signer-position", "PHÓ CHỦ TỊCH", "--competence", "KT. CHỦ TỊCH",
]  # fmt: skip


def test_build_from_flags(config: Path, pdfs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "p.edxml"
    result = run(config, "build", str(pdfs[0]), str(pdfs[1]), *BUILD, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "Đã tạo gói tin" in result.output
    packet = read_packet(out.read_bytes())
    assert isinstance(packet, DocumentPacket)
    assert packet.sender.organ_id == "000.00.00.H49" and packet.sender.organ_name  # filled from the directory
    assert [o.organ_id for o in packet.to] == ["000.00.00.G22", "000.00.00.H57"]
    assert packet.document_id == "000.00.00.H49,2025/01/05,05/UBND-VX"
    assert packet.priority is Priority.FLASH
    assert [a.name for a in packet.attachments] == ["05-UBND-VX.pdf", "Phụ lục I.pdf"]
    assert packet.attachments[0].content == PDF and packet.attachments[0].source.zip_wrapped
    assert [t.organ_id for t in packet.trace.headers] == ["000.00.00.H49"]
    assert validate(out.read_bytes()).valid
    assert verify_packet(out.read_bytes()).status is SignatureStatus.ABSENT


def test_build_raw_from_a_metadata_file(config: Path, pdfs: tuple[Path, Path], tmp_path: Path) -> None:
    meta = tmp_path / "cv.toml"
    meta.write_text(
        'from = "000.00.00.H49"\nto = ["000.00.00.G22"]\nnumber = "12"\nnotation = "UBND-TH"\n'
        'date = "05/01/2025"\nsubject = "Báo cáo tổng hợp"\ntype_name = "Báo cáo"\n'
        f'attachments = ["{pdfs[0].name}"]\nto_places = ["Như trên", "Lưu: VT"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "p.edxml"
    result = run(config, "build", "-m", str(meta), "--subject", "Báo cáo (sửa)", "--raw", "-o", str(out))
    assert result.exit_code == 0, result.output
    packet = read_packet(out.read_bytes())
    assert packet.subject == "Báo cáo (sửa)"  # the flag wins over the file
    assert packet.document_type.type_name == "Báo cáo" and packet.to_places == ("Như trên", "Lưu: VT")
    assert str(packet.code) == "12/UBND-TH" and packet.promulgation.date.isoformat() == "2025-01-05"
    assert not packet.attachments[0].source.zip_wrapped


def test_metadata_file_with_unknown_keys_is_refused(config: Path, tmp_path: Path) -> None:
    meta = tmp_path / "cv.json"
    meta.write_text(json.dumps({"from": "000.00.00.H49", "sbject": "typo"}), encoding="utf-8")
    result = run(config, "build", "-m", str(meta))
    assert isinstance(result.exception, ConfigError) and "sbject" in str(result.exception)


def test_build_sign_uses_the_seal_of_the_sender(config: Path, pdfs: tuple[Path, Path], tmp_path: Path,
                                                 pki_settings: Settings) -> None:
    out = tmp_path / "signed.edxml"
    result = run(config, "build", str(pdfs[0]), *BUILD, "--sign", "-o", str(out))
    assert result.exit_code == 0, result.output
    check = verify_packet(out.read_bytes())
    assert check.status is SignatureStatus.VALID
    seal = DevPki.open(pki_settings).seal("000.00.00.H49")
    assert check.signer == seal.cert and check.chain[1:] == seal.chain


def test_inspect_in_vietnamese_and_json(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.edxml"
    path.write_bytes(write_document(sample_document()))
    result = run(config, "inspect", str(path))
    assert result.exit_code == 0, result.output
    for expected in ("GÓI TIN VĂN BẢN", "Số, ký hiệu:     05/UBND-VX", "Hạ Long, ngày 05 tháng 01 năm 2025",
                     "Độ khẩn:         Khẩn", "05-UBND-VX.pdf (application/pdf", "08:30:00 ngày 05/01/2025 (UTC+07:00)",
                     "không có chữ ký gói tin"):  # fmt: skip
        assert expected in result.output
    result = run(config, "inspect", "--json", str(path))
    data = json.loads(result.output)
    assert data["document_id"] == "000.00.00.H49,2025/01/05,05/UBND-VX"
    assert data["attachments"][0]["source"]["zip_wrapped"] is True
    assert data["signature"]["status"] == "absent"


def test_inspect_reports_quirks_of_real_packets(config: Path) -> None:
    result = run(config, "inspect", str(CORPUS / "pvn_edoc_new_junk1212.edxml"))
    assert result.exit_code == 0, result.output
    assert "Điểm bất thường" in result.output and "byte lạ" in result.output
    assert "Chữ ký gói tin:  không hợp lệ" in result.output


def test_validate_exit_codes(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.edxml"
    path.write_bytes(write_document(sample_document()))
    ok = run(config, "validate", str(path))
    assert ok.exit_code == 0 and "đúng lược đồ" in ok.output
    bad = run(config, "validate", str(CORPUS / "vxp_status_01_inbox.edxml"))
    assert bad.exit_code == 1


def test_extract_writes_real_names_and_refuses_to_overwrite(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.edxml"
    path.write_bytes(write_document(sample_document()))
    folder = tmp_path / "ra"
    result = run(config, "extract", str(path), str(folder))
    assert result.exit_code == 0, result.output
    assert (folder / "05-UBND-VX.pdf").read_bytes() == PDF
    again = run(config, "extract", str(path), str(folder))
    assert isinstance(again.exception, AttachmentError)
    assert run(config, "extract", "--overwrite", str(path), str(folder)).exit_code == 0


def test_extract_of_a_traversal_packet_writes_nothing(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "evil.edxml"
    path.write_bytes(write_document(sample_document()).replace(b"05-UBND-VX.pdf", b"../../x.pdf"))
    folder = tmp_path / "a" / "b"
    result = run(config, "extract", str(path), str(folder))
    assert isinstance(result.exception, AttachmentError)
    assert not any(p.is_file() for p in tmp_path.rglob("*") if p != path)


def test_errors_become_a_bilingual_message_and_an_exit_code(config: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "docexchange", "--config", str(config), "edxml", "inspect",
         str(CORPUS / "truc_edoc_malformed.edxml")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Lỗi [malformed_xml]" in proc.stderr and "dòng 74, cột 29" in proc.stderr
    assert "line 74, column 29" in proc.stderr
