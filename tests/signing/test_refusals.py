"""Bad input is refused with a clear, bilingual error; nothing is returned half-signed."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import CHAIRMAN, HALONG, with_signing
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer

from docexchange.config import Settings
from docexchange.errors import (
    DocExchangeError,
    DocumentLocked,
    InvalidPdf,
    SignaturePlacementError,
    SigningError,
    WrongPassphrase,
)
from docexchange.signing import (
    AppendixMark,
    CopyKind,
    CopyMark,
    LetterSpec,
    PersonSigner,
    Placement,
    SealSigner,
    SigningService,
    make_letter,
)
from helpers import SHARED

CORPUS = SHARED / "corpus" / "pdf"


def _encrypted(letter: bytes) -> bytes:
    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(letter)))
    writer.encrypt("owner-secret", "user-secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("make", "error", "vi"),
    [
        (lambda letter: b"hello, not a pdf", InvalidPdf, "không phải PDF"),
        (lambda letter: letter[: len(letter) // 2], InvalidPdf, "PDF"),
        (lambda letter: b"%PDF-1.7\n" + b"\x00" * 2000, InvalidPdf, "PDF"),
        (_encrypted, InvalidPdf, "mã hóa"),
        (lambda letter: (CORPUS / "malformed" / "pyhanko__circular-page-tree.pdf").read_bytes(), InvalidPdf,
         "vòng lặp"),
        (lambda letter: (CORPUS / "malformed" / "rubnds-pdf101__A4-pages-tree-loop-complex.pdf").read_bytes(),
         InvalidPdf, "vòng lặp"),
        (lambda letter: (CORPUS / "malformed" / "dss__malformed-pades.pdf").read_bytes(), InvalidPdf, "PDF"),
        (lambda letter: (CORPUS / "valid" / "dss__certified-no-change-permitted.pdf").read_bytes(), DocumentLocked,
         "không cho phép thay đổi"),
    ],
    ids=["garbage", "truncated", "no-xref", "encrypted", "page-tree-cycle", "page-tree-loop", "malformed-pades",
         "certified-no-changes"],
)
def test_bad_pdfs(service: SigningService, letter: bytes, make: object, error: type[DocExchangeError],
                  vi: str) -> None:
    data = make(letter)  # type: ignore[operator]
    with pytest.raises(error) as err:
        service.sign(data, service.person(CHAIRMAN), level="B-B", placement=Placement(page=1, box=(10, 10, 90, 40)))
    assert vi in err.value.message_vi
    assert err.value.message_en and err.value.message_en != err.value.message_vi


def test_too_large(pki_settings: Settings, trust_services: object) -> None:
    big = make_letter(LetterSpec(target_bytes=1_200_000))
    with SigningService(with_signing(pki_settings, max_pdf_mb=1)) as svc, pytest.raises(InvalidPdf) as err:
        svc.sign(big, svc.person(CHAIRMAN), level="B-B")
    assert "quá lớn" in err.value.message_vi


@pytest.mark.parametrize(
    ("placement", "vi"),
    [
        (Placement(field="khong_co"), "không có trong văn bản"),
        (Placement(page=1, box=(500, 100, 700, 200)), "nằm ngoài trang 1"),
        (Placement(page=1, box=(-20, 100, 100, 200)), "nằm ngoài trang 1"),
        (Placement(page=3, box=(100, 100, 200, 200)), "Trang 3 không tồn tại"),
        (Placement(page=1, box=(200, 100, 100, 200)), "x1 < x2"),
    ],
    ids=["missing-field", "off-right", "off-left", "no-such-page", "inverted"],
)
def test_bad_placements(service: SigningService, letter: bytes, placement: Placement, vi: str) -> None:
    with pytest.raises(SignaturePlacementError) as err:
        service.sign(letter, service.person(CHAIRMAN), level="B-B", placement=placement)
    assert vi in err.value.message_vi


def test_already_signed_field(service: SigningService, letter: bytes) -> None:
    signed = service.sign(letter, service.person(CHAIRMAN), level="B-B")
    with pytest.raises(SignaturePlacementError) as err:
        service.sign(signed, service.person(CHAIRMAN), level="B-B", placement=Placement(field="nd30_person"))
    assert "đã được ký" in err.value.message_vi


def test_no_template_field_and_no_position(service: SigningService) -> None:
    bare = (CORPUS / "valid" / "dss__pdf-signed-original.pdf").read_bytes()
    with pytest.raises(SignaturePlacementError) as err:
        service.sign(bare, service.person(CHAIRMAN), level="B-B")
    assert "--field" in err.value.message_vi


def test_seal_needs_a_person_signature_first(service: SigningService, letter: bytes) -> None:
    with pytest.raises(SignaturePlacementError) as err:
        service.sign(letter, service.seal(HALONG), level="B-B")
    assert "người có thẩm quyền" in err.value.message_vi


def test_jobs_that_make_no_sense(service: SigningService, letter: bytes) -> None:
    with pytest.raises(SigningError):
        service.sign(letter, service.person(CHAIRMAN), appendix=AppendixMark("05/QĐ-UBND"))
    with pytest.raises(SigningError):
        service.sign(letter, service.seal(HALONG), appendix=AppendixMark("1"), copy=CopyMark(CopyKind.SAO_Y))
    with pytest.raises(SigningError):
        service.sign(letter, service.seal(HALONG), placement=Placement(page=1, box=(1, 1, 2, 2)))
    with pytest.raises(SigningError):
        service.sign(letter, service.seal(HALONG), appendix=AppendixMark("  "))


def test_wrong_passphrase(pki_settings: Settings) -> None:
    with pytest.raises(WrongPassphrase) as err:
        PersonSigner.for_official(pki_settings, CHAIRMAN, passphrase="not-the-passphrase")
    assert "Sai mật khẩu" in err.value.message_vi
    with pytest.raises(WrongPassphrase):
        SealSigner.for_agency(pki_settings, HALONG, passphrase="")


def test_failures_leave_the_input_alone(service: SigningService, letter: bytes, tmp_path: Path) -> None:
    before = bytes(letter)
    with pytest.raises(SignaturePlacementError):
        service.sign(letter, service.person(CHAIRMAN), placement=Placement(field="khong_co"))
    assert letter == before
