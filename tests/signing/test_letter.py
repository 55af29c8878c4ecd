"""The sample letter: NĐ 30 layout elements, the empty signature field, sizes."""

from __future__ import annotations

import io
import subprocess
from datetime import date
from pathlib import Path

import pytest
from conftest import CHAIRMAN, VICE
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields

from docexchange.directory import Directory
from docexchange.errors import ConfigError
from docexchange.signing import LetterSpec, make_letter
from docexchange.signing.letter import PERSON_FIELD, parse_size


def _text(pdf: bytes, tmp: Path) -> str:
    src = tmp / "letter.pdf"
    src.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(src), "-"], capture_output=True, text=True, check=True).stdout


def test_default_letter_has_every_nd30_element(letter: bytes, tmp_path: Path) -> None:
    text = _text(letter, tmp_path)
    for expected in [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "ỦY BAN NHÂN DÂN",
        "THÀNH PHỐ HẠ LONG",
        "Số: 05/QĐ-UBND",
        "Hạ Long, ngày 05 tháng 01 năm 2025",
        "QUYẾT ĐỊNH",
        "Nơi nhận:",
        "TM. ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
        "Trần Quang Hưng",
    ]:
        assert expected in text, expected
    assert PdfFileReader(io.BytesIO(letter)).root["/Pages"]["/Count"] == 1


def test_letter_has_an_empty_person_field_between_position_and_name(letter: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(letter))
    fields = list(enumerate_sig_fields(reader))
    assert [(name, value) for name, value, _ref in fields] == [(PERSON_FIELD, None)]
    rect = [float(v) for v in fields[0][2].get_object()["/Rect"]]
    x1, y1, x2, y2 = rect
    assert 60 * 72 / 25.4 == pytest.approx(x2 - x1, abs=6) and y2 - y1 > 60  # about 62 × 27 mm
    assert x1 > 595.28 / 2  # the signature block sits on the right


def test_fonts_are_embedded_subsets(letter: bytes, tmp_path: Path) -> None:
    src = tmp_path / "l.pdf"
    src.write_bytes(letter)
    fonts = subprocess.run(["pdffonts", str(src)], capture_output=True, text=True, check=True).stdout
    rows = [r for r in fonts.splitlines()[2:] if r.strip()]
    assert rows and all(" yes yes yes " in r for r in rows), fonts


def test_letter_for_another_official(directory: Directory, tmp_path: Path) -> None:
    spec = LetterSpec.for_official(directory, VICE, number="12", issued=date(2025, 7, 1), doc_type="CÔNG VĂN",
                                   subject="Về việc triển khai gửi, nhận văn bản điện tử")
    text = _text(make_letter(spec), tmp_path)
    assert "Số: 12/" in text and "ngày 01 tháng 07 năm 2025" in text
    assert "KT. CHỦ TỊCH" in text and "PHÓ CHỦ TỊCH" in text and "Lê Thị Ánh Tuyết" in text
    assert LetterSpec.for_official(directory, CHAIRMAN).signer_name == "Trần Quang Hưng"


@pytest.mark.parametrize("target", [1024 * 1024, 3 * 1024 * 1024])
def test_padding_reaches_the_requested_size(target: int) -> None:
    pdf = make_letter(LetterSpec(target_bytes=target))
    assert abs(len(pdf) - target) < target * 0.02
    assert PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Count"] >= 2


def test_parse_size() -> None:
    assert parse_size("50KB") == 50 * 1024
    assert parse_size("1MB") == 1024 * 1024
    assert parse_size("1.5 mb") == int(1.5 * 1024 * 1024)
    assert parse_size("4096") == 4096
    for bad in ("", "abc", "0", "-1MB", "900GB"):
        with pytest.raises(ConfigError):
            parse_size(bad)


def test_cong_van_layout_and_notations(directory: Directory, tmp_path: Path) -> None:
    from docexchange.signing.letter import default_notation, organ_abbreviation

    spec = LetterSpec.for_official(directory, "h57-phuvang-pho-chu-tich", doc_type="CÔNG VĂN", number="128",
                                   subject="Về việc triển khai gửi, nhận văn bản điện tử")
    assert spec.reference == "128/UBND-VP"
    text = _text(make_letter(spec), tmp_path)
    assert "V/v triển khai gửi" in text and "về việc" not in text.lower().split("v/v")[1][:20]
    assert "Kính gửi:" in text and "Trân trọng./." in text and "Như trên;" in text
    assert "UBND TP Huế (b/c)" in text
    assert "QUYẾT ĐỊNH" not in text
    assert organ_abbreviation("Sở Nội vụ tỉnh Quảng Ninh") == "SNV"
    assert organ_abbreviation("Văn phòng Chính phủ", "VPCP") == "VPCP"
    assert default_notation("THÔNG BÁO", "UBND") == "TB-UBND"
    assert LetterSpec().reference == "05/QĐ-UBND"
