"""Signing end to end: every level, person then seal, appendices, copies, algorithms — each output checked by two
independent verifiers (pyHanko's validator and poppler's pdfsig)."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms
from conftest import CHAIRMAN, HALONG, VICE, assert_pdfsig_valid, pyhanko_report, with_signing
from cryptography import x509
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.dss import DocumentSecurityStore

from docexchange.clock import FixedClock
from docexchange.config import PadesLevel, Settings
from docexchange.errors import SigningError
from docexchange.pki.devpki import CertKind, DevPki
from docexchange.signing import (
    AppendixMark,
    CopyKind,
    CopyMark,
    PersonSigner,
    Placement,
    SealSigner,
    SigningKey,
    SigningService,
    async_sign_pdf,
    sign_pdf,
)

LEVELS = [PadesLevel.B_B, PadesLevel.B_T, PadesLevel.B_LT, PadesLevel.B_LTA]


def _signer_infos(pdf: bytes) -> list[tuple[str, cms.SignerInfo, cms.SignedData]]:
    reader = PdfFileReader(io.BytesIO(pdf))
    return [(s.field_name, s.signer_info, s.signed_data) for s in reader.embedded_regular_signatures]


@pytest.fixture(scope="module")
def person_then_seal(service: SigningService, letter: bytes) -> dict[PadesLevel, bytes]:
    out = {}
    for level in LEVELS:
        signed = service.sign(letter, service.person(CHAIRMAN), level=level)
        out[level] = service.sign(signed, service.seal(HALONG), level=level)
    return out


@pytest.mark.parametrize("level", LEVELS, ids=lambda lv: lv.value)
def test_person_then_seal_validates_with_pyhanko(person_then_seal: dict[PadesLevel, bytes], root_pem: Path,
                                                level: PadesLevel) -> None:
    pdf = person_then_seal[level]
    reports = pyhanko_report(pdf, root_pem)
    sigs = [r for r in reports if r.kind == "signature"]
    assert [r.field for r in sigs] == ["nd30_person", "nd30_seal"]
    for r in reports:
        assert r.intact and r.valid and r.trusted, r
        assert r.docmdp_ok, r
    person, seal = sigs
    # the seal signature comes second and covers the person's signature
    assert person.signed_end < seal.signed_end
    assert person.coverage == "ENTIRE_REVISION"
    assert person.modification in ("FORM_FILLING", "LTA_UPDATES")
    # whatever comes last covers the whole file
    last = max(reports, key=lambda r: r.signed_end)
    assert last.signed_end == len(pdf)
    assert last.coverage == "ENTIRE_FILE"
    if level == PadesLevel.B_LTA:
        assert last.kind == "timestamp"
        assert [r.kind for r in reports].count("timestamp") == 2  # one per signing step
    else:
        assert last is seal and seal.modification == "NONE"
    # signature time stamps from B-T up
    assert all(r.has_timestamp == (level != PadesLevel.B_B) for r in sigs)


@pytest.mark.parametrize("level", LEVELS, ids=lambda lv: lv.value)
def test_person_then_seal_validates_with_pdfsig(person_then_seal: dict[PadesLevel, bytes], nss_db: Path,
                                               tmp_path: Path, level: PadesLevel) -> None:
    entries = assert_pdfsig_valid(person_then_seal[level], nss_db, tmp_path, expected_signatures=2)
    assert [e.field for e in entries if e.sig_type != "unknown"] == ["nd30_person", "nd30_seal"]
    assert entries[-1].total, "the last signature must cover the whole document"


def test_b_lt_embeds_validation_data_in_the_signed_revision(person_then_seal: dict[PadesLevel, bytes]) -> None:
    pdf = person_then_seal[PadesLevel.B_LT]
    reader = PdfFileReader(io.BytesIO(pdf))
    dss = DocumentSecurityStore.read_dss(reader)
    assert len(dss.ocsps) >= 2  # the person's and the seal's certificates (and the TSA's)
    assert len(dss.crls) >= 1  # the root's CRL for the issuing CAs
    assert len(list(dss.load_certs())) >= 5
    # no DSS at B-T
    assert "/DSS" not in PdfFileReader(io.BytesIO(person_then_seal[PadesLevel.B_T])).root


def test_b_b_has_no_timestamp_and_no_dss(person_then_seal: dict[PadesLevel, bytes]) -> None:
    pdf = person_then_seal[PadesLevel.B_B]
    for _name, info, _sd in _signer_infos(pdf):
        assert info["unsigned_attrs"].native is None
        attrs = {a["type"].native for a in info["signed_attrs"]}
        assert attrs == {"content_type", "message_digest", "signing_certificate_v2"}  # PAdES: no signing-time attr
    assert "/DSS" not in PdfFileReader(io.BytesIO(pdf)).root


def test_signature_dictionaries_name_signer_and_reason(person_then_seal: dict[PadesLevel, bytes]) -> None:
    reader = PdfFileReader(io.BytesIO(person_then_seal[PadesLevel.B_B]))
    person, seal = reader.embedded_regular_signatures
    assert person.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert person.sig_object["/Name"] == "Trần Quang Hưng"
    assert "người có thẩm quyền" in person.sig_object["/Reason"]
    assert seal.sig_object["/Name"] == "Ủy ban nhân dân thành phố Hạ Long"
    assert person.sig_object["/Location"] == "Hạ Long"


def test_input_is_not_modified_and_output_is_incremental(service: SigningService, letter: bytes) -> None:
    before = bytes(letter)
    out = service.sign(letter, service.person(CHAIRMAN), level="B-B")
    assert letter == before
    assert out.startswith(letter)  # an incremental update: the original bytes are untouched


@pytest.mark.parametrize("level", [PadesLevel.B_B, PadesLevel.B_LT], ids=lambda lv: lv.value)
def test_appendix_signed_by_the_organisation(service: SigningService, letter: bytes, root_pem: Path, nss_db: Path,
                                             tmp_path: Path, level: PadesLevel) -> None:
    out = service.sign(letter, service.seal(HALONG), level=level, appendix=AppendixMark("05/QĐ-UBND"))
    (report,) = pyhanko_report(out, root_pem)
    assert report.field == "nd30_appendix" and report.valid and report.trusted and report.coverage == "ENTIRE_FILE"
    assert_pdfsig_valid(out, nss_db, tmp_path, expected_signatures=1)


@pytest.mark.parametrize("kind", list(CopyKind), ids=lambda k: k.name)
def test_electronic_copies(service: SigningService, letter: bytes, root_pem: Path, kind: CopyKind) -> None:
    out = service.sign(letter, service.seal(HALONG), level="B-T", copy=CopyMark(kind, notation="12/SY-UBND"))
    (report,) = pyhanko_report(out, root_pem)
    assert report.field == "nd30_copy" and report.valid and report.trusted and report.has_timestamp


def test_second_person_then_two_seals_get_unique_fields(service: SigningService, letter: bytes,
                                                        root_pem: Path) -> None:
    once = service.sign(letter, service.person(CHAIRMAN), level="B-B")
    twice = service.sign(once, service.seal(HALONG), level="B-B")
    thrice = service.sign(twice, service.seal(HALONG), level="B-B")
    names = [r.field for r in pyhanko_report(thrice, root_pem)]
    assert names == ["nd30_person", "nd30_seal", "nd30_seal_2"]


def test_sign_pdf_and_async_sign_pdf_one_shot(pki_settings: Settings, trust_services: object, letter: bytes,
                                              root_pem: Path) -> None:
    person = PersonSigner.for_official(pki_settings, VICE)
    try:
        out = sign_pdf(letter, person, settings=pki_settings, level="B-T")
        (report,) = pyhanko_report(out, root_pem)
        assert report.valid and report.trusted and report.has_timestamp
        # the one-shot function does not close a signer it does not own
        again = sign_pdf(letter, person, settings=pki_settings, level="B-B")
        assert pyhanko_report(again, root_pem)[0].valid
    finally:
        person.close()


async def test_async_sign_pdf(pki_settings: Settings, trust_services: object, letter: bytes, root_pem: Path) -> None:
    seal = SealSigner.for_agency(pki_settings, HALONG)
    try:
        out = await async_sign_pdf(letter, seal, settings=pki_settings, level="B-LT",
                                   appendix=AppendixMark("05/QĐ-UBND"))
    finally:
        seal.close()
    (report,) = await asyncio.to_thread(pyhanko_report, out, root_pem)  # pyHanko's sync API runs its own loop
    assert report.valid and report.trusted


async def test_service_async_api_on_the_callers_loop(pki_settings: Settings, trust_services: object,
                                                     letter: bytes, root_pem: Path) -> None:
    async with SigningService(pki_settings) as svc:
        out = await svc.async_sign(letter, svc.person(CHAIRMAN), level="B-T")
        out = await svc.async_sign(out, svc.seal(HALONG), level="B-T")
    reports = await asyncio.to_thread(pyhanko_report, out, root_pem)
    assert [r.valid and r.trusted for r in reports] == [True, True]


def test_signing_time_comes_from_the_injected_clock(pki_settings: Settings, trust_services: object,
                                                    letter: bytes) -> None:
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=7)
    with SigningService(pki_settings, clock=FixedClock(moment)) as svc:
        out = svc.sign(letter, svc.seal(HALONG), level="B-B", appendix=AppendixMark("05/QĐ-UBND"))
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
    assert sig.self_reported_timestamp == moment


# -- algorithms ------------------------------------------------------------------------------------------------
def _extra_person(pki: DevPki, algorithm: str, pss: bool) -> SigningKey:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Người ký thử {algorithm}"),
    ])
    material = pki.issue(CertKind.PERSON, subject, f"test-{algorithm}", ca_id="person", key_algorithm=algorithm)
    return SigningKey.from_material(material, rsa_pss=pss, source=f"test {algorithm}")


@pytest.mark.parametrize(
    ("algorithm", "pss", "expected_mech"),
    [("rsa2048", False, "sha256_rsa"), ("rsa2048", True, "rsassa_pss"), ("ecdsa-p256", False, "sha256_ecdsa")],
    ids=["rsa-pkcs1v15", "rsa-pss", "ecdsa-p256"],
)
def test_algorithms(dev_pki: DevPki, service: SigningService, letter: bytes, root_pem: Path, nss_db: Path,
                    tmp_path: Path, algorithm: str, pss: bool, expected_mech: str) -> None:
    key = _extra_person(dev_pki, algorithm, pss)
    signer = PersonSigner(key, dev_pki.signature_image(CHAIRMAN), full_name="Người ký thử")
    out = service.sign(letter, signer, level="B-T")
    ((_name, info, signed_data),) = _signer_infos(out)
    assert info["signature_algorithm"]["algorithm"].native == expected_mech
    assert info["digest_algorithm"]["algorithm"].native == "sha256"
    assert signed_data["digest_algorithms"][0]["algorithm"].native == "sha256"
    (report,) = pyhanko_report(out, root_pem)
    assert report.intact and report.valid and report.trusted
    assert_pdfsig_valid(out, nss_db, tmp_path, expected_signatures=1)


def test_sha384_digest(pki_settings: Settings, trust_services: object, letter: bytes, root_pem: Path) -> None:
    with SigningService(with_signing(pki_settings, digest="sha384")) as svc:
        out = svc.sign(letter, svc.person(CHAIRMAN), level="B-T")
    ((_n, info, _sd),) = _signer_infos(out)
    assert info["digest_algorithm"]["algorithm"].native == "sha384"
    assert pyhanko_report(out, root_pem)[0].valid


@pytest.mark.parametrize("digest", ["sha1", "md5", "SHA-1"])
def test_weak_digests_are_refused(pki_settings: Settings, digest: str) -> None:
    with pytest.raises(SigningError) as err:
        SigningService(with_signing(pki_settings, digest=digest))
    assert "SHA-1" in err.value.message_vi or "SHA-2" in err.value.message_vi


# -- placement ---------------------------------------------------------------------------------------------------
def _widget_rect(pdf: bytes, field: str) -> tuple[float, ...]:
    reader = PdfFileReader(io.BytesIO(pdf))
    for sig in reader.embedded_signatures:
        if sig.field_name == field:
            return tuple(float(v) for v in sig.sig_field["/Rect"])
    raise AssertionError(field)


def test_box_on_a_page_fits_and_centres_the_image(service: SigningService, letter: bytes, root_pem: Path) -> None:
    box = (330.0, 100.0, 530.0, 200.0)
    out = service.sign(letter, service.person(CHAIRMAN), level="B-B", placement=Placement(page=1, box=box))
    x1, y1, x2, y2 = _widget_rect(out, "nd30_person_2")  # the template's empty field keeps its name
    aspect = service.person(CHAIRMAN).image.aspect
    assert x2 - x1 == pytest.approx((y2 - y1) * aspect, rel=1e-3)
    assert (x1 + x2) / 2 == pytest.approx(430.0) and (y1 + y2) / 2 == pytest.approx(150.0)
    assert box[0] <= x1 and x2 <= box[2] and box[1] <= y1 and y2 <= box[3]
    assert pyhanko_report(out, root_pem)[0].valid


def test_named_field_is_used_and_resized_to_the_image(service: SigningService, letter: bytes) -> None:
    out = service.sign(letter, service.person(CHAIRMAN), level="B-B", placement=Placement(field="nd30_person"))
    x1, y1, x2, y2 = _widget_rect(out, "nd30_person")
    assert x2 - x1 == pytest.approx((y2 - y1) * service.person(CHAIRMAN).image.aspect, rel=1e-3)


def test_seal_is_placed_over_the_left_third_of_the_signature(person_then_seal: dict[PadesLevel, bytes],
                                                              service: SigningService) -> None:
    pdf = person_then_seal[PadesLevel.B_B]
    px1, py1, px2, py2 = _widget_rect(pdf, "nd30_person")
    sx1, sy1, sx2, sy2 = _widget_rect(pdf, "nd30_seal")
    assert sx2 == pytest.approx(px1 + (px2 - px1) / 3, abs=0.01)
    assert (sy1 + sy2) / 2 == pytest.approx((py1 + py2) / 2, abs=0.01)
    # real size: 40 mm across
    assert sx2 - sx1 == pytest.approx(40 / 25.4 * 72, abs=0.5)
    assert sy2 - sy1 == pytest.approx(sx2 - sx1, abs=0.01)


def test_signature_block_on_a_later_page(service: SigningService, root_pem: Path) -> None:
    from docexchange.signing import LetterSpec, make_letter

    long_body = LetterSpec().paragraphs * 3
    letter = make_letter(LetterSpec(body=long_body))
    reader = PdfFileReader(io.BytesIO(letter))
    assert reader.root["/Pages"]["/Count"] >= 2
    signed = service.sign(letter, service.person(CHAIRMAN), level="B-B")
    sealed = service.sign(signed, service.seal(HALONG), level="B-B")
    reader = PdfFileReader(io.BytesIO(sealed))
    pages = [reader.root["/Pages"]["/Kids"][i] for i in range(len(reader.root["/Pages"]["/Kids"]))]
    on_page = {}
    for i, page in enumerate(pages):
        for annot in page.get("/Annots", []):
            on_page[annot.get_object().get("/T")] = i
    assert on_page["nd30_person"] == on_page["nd30_seal"] == len(pages) - 1 > 0
    assert all(r.valid and r.trusted for r in pyhanko_report(sealed, root_pem))
