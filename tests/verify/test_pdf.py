"""The verifier on our own signed letters, on revocation in all its states, and on hostile input."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verify_support import CHAIRMAN, HALONG, Signed, raw_sign, self_signed_material

from docexchange.config import Settings
from docexchange.directory import Directory, load_directory
from docexchange.pki.devpki import CertKind, DevPki
from docexchange.signing import LetterSpec, SigningService, make_letter
from docexchange.verify import Verifier
from docexchange.verify._core import CoreConfig
from docexchange.verify.pdf import VerifierLimits, load_anchors
from docexchange.verify.report import (
    CheckStatus,
    Indication,
    ModificationLevel,
    Outcome,
    RevocationState,
    SubIndication,
)
from helpers import ServerThread, make_settings, trust_server


# -- our own outputs --------------------------------------------------------------------------------------------
def test_person_and_seal_b_lt_is_valid_offline(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.lt, name="letter.pdf", offline=True, sender=HALONG, policy="nd30")
    assert report.outcome == Outcome.VALID, report.render_text("en")
    assert report.indication == Indication.TOTAL_PASSED and report.sub_indication is None
    assert report.label_vi == "hợp lệ" and report.exit_code == 0
    assert report.online_lookups == 0 and report.offline
    assert [s.kind for s in report.signatures] == ["signature", "signature"]
    person, seal = report.signatures
    assert person.signer is not None and person.signer.holder_kind.value == "person"
    assert seal.signer is not None and seal.signer.holder_kind.value == "organization"
    assert person.modifications is not None and person.modifications.level == ModificationLevel.SIGNING
    for sig in report.signatures:
        assert all(c.status == CheckStatus.PASSED for name, c in sig.checks.items()), sig.checks
        assert sig.long_term is not None and sig.long_term.level == "B-LT" and sig.long_term.self_contained
        assert sig.timestamp_time is not None and sig.best_signature_time == sig.timestamp_time
        assert {r.state for r in sig.revocation} <= {RevocationState.GOOD, RevocationState.NOT_REQUIRED}
        assert all(r.source.startswith("embedded") for r in sig.revocation if r.state == RevocationState.GOOD)
    assert report.policy is not None and report.policy.passed and report.policy.seal_agency == HALONG
    assert not report.warnings


def test_b_lta_is_valid_and_long_term(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.lta, offline=True, sender=HALONG, policy="nd30")
    assert report.outcome == Outcome.VALID, report.render_text("en")
    assert [s.kind for s in report.signatures] == ["signature", "signature", "document_timestamp"]
    assert report.signatures[1].long_term is not None and report.signatures[1].long_term.level == "B-LTA"
    assert report.last_signature_covers_file in (True, False)


def test_tt15_fields_are_filled(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.lt, offline=True)
    person = report.signatures[0]
    assert person.issuing_ca == "docexchange Dev CA Cá nhân"
    assert person.signer is not None and person.signer.common_name and person.signer.organization
    assert person.signing_time == person.timestamp_time
    assert person.signer.valid_from < person.signing_time < person.signer.valid_until
    assert person.checks.integrity.passed and person.checks.validity_at_signing.passed
    text = report.render_text("vi")
    for label in ("CA cấp chứng thư", "Người ký", "Tổ chức quản lý chứng thư", "Thời gian ký", "Tính toàn vẹn",
                  "Hiệu lực tại thời điểm ký", "Thời hạn hiệu lực chứng thư"):
        assert label in text


# -- revocation ---------------------------------------------------------------------------------------------------
def test_revocation_unchecked_offline_is_indeterminate_with_the_warning(verifier: Verifier, signed: Signed) -> None:
    """B-B carries no revocation data: offline, the status cannot be checked (TT 15/2025: warn)."""
    report = verifier.verify_pdf(signed.bb, offline=True)
    assert report.outcome == Outcome.INDETERMINATE
    assert report.sub_indication == SubIndication.TRY_LATER
    assert report.label_vi == "chưa xác định" and report.exit_code == 1
    assert report.revocation_unchecked
    assert any(w.startswith("Chữ ký 1") and "CẢNH BÁO" in w for w in report.warnings_vi)
    assert all(s.checks.revocation.status == CheckStatus.WARNING for s in report.signatures)
    assert "CẢNH BÁO" in report.render_text("vi") and "WARNING" in report.render_text("en")


def test_b_t_without_revocation_data_is_indeterminate_offline(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.bt, offline=True)
    assert report.sub_indication == SubIndication.TRY_LATER
    for sig in report.signatures:
        (ts,) = sig.timestamps
        assert ts.time is not None and ts.sub_indication == SubIndication.TRY_LATER  # its TSA's status too
        assert sig.timestamp_time is None, "an unconfirmed time-stamp proves nothing"
        assert any(w.code == "timestamp_not_usable" for w in sig.warnings)


def test_revocation_checked_online_and_the_answer_reused(verifier: Verifier, signed: Signed,
                                                         trust_services: ServerThread) -> None:
    first = verifier.verify_pdf(signed.bb)
    assert first.outcome == Outcome.VALID, first.render_text("en")
    assert first.online_lookups > 0
    assert {r.source for s in first.signatures for r in s.revocation if r.state == RevocationState.GOOD} >= {
        "online_ocsp"}
    before = verifier.cache_stats()["online_ocsp"]
    second = verifier.verify_pdf(signed.bb)
    assert second.outcome == Outcome.VALID
    assert second.online_lookups == 0, "fresh answers are reused within the freshness policy"
    assert verifier.cache_stats()["online_ocsp"][1] > before[1]


@pytest.fixture(scope="module")
def own_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Directory, ServerThread]]:
    """A PKI of our own whose services we can stop."""
    settings = make_settings(tmp_path_factory.mktemp("own-pki"))
    directory = load_directory(settings.directory_file)
    DevPki.from_settings(settings).init(directory)
    server = trust_server(settings)
    server.start()
    try:
        yield settings, directory, server
    finally:
        server.stop()


def test_revocation_unreachable_online_is_indeterminate_with_the_warning(
        own_pki: tuple[Settings, Directory, ServerThread]) -> None:
    settings, directory, server = own_pki
    with SigningService(settings) as svc:
        doc = svc.sign(make_letter(LetterSpec.for_official(directory, CHAIRMAN)), svc.person(CHAIRMAN), level="B-B")
    server.stop()
    try:
        with Verifier.from_settings(settings, directory) as v:
            report = v.verify_pdf(doc)
    finally:
        server.start()
    assert report.outcome == Outcome.INDETERMINATE and report.sub_indication == SubIndication.TRY_LATER
    assert report.revocation_unchecked
    sig = report.signatures[0]
    assert sig.revocation[0].state == RevocationState.UNKNOWN
    assert "OCSP/CRL" in sig.revocation[0].detail_vi


def _issue_person(dev_pki: DevPki, name: str, **kw: object) -> object:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ủy ban nhân dân thành phố Hạ Long"),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
        x509.NameAttribute(NameOID.USER_ID, "CCCD:022099000099"),
    ])
    return dev_pki.issue(CertKind.PERSON, subject, f"test-{name}", ca_id="person", **kw)  # type: ignore[arg-type]


def test_signed_after_revocation_with_a_time_stamp_is_revoked(verifier: Verifier, dev_pki: DevPki, letter: bytes,
                                                              trust_services: ServerThread) -> None:
    material = _issue_person(dev_pki, "Người bị thu hồi")
    dev_pki.revoke(material.cert.serial_number, "key_compromise",  # type: ignore[attr-defined]
                   datetime.now(UTC) - timedelta(hours=1))
    doc = raw_sign(letter, material, tsa_url=f"{trust_services.url}/tsa")  # type: ignore[arg-type]
    report = verifier.verify_pdf(doc)
    assert report.outcome == Outcome.INVALID, report.render_text("en")
    assert report.sub_indication == SubIndication.REVOKED
    sig = report.signatures[0]
    assert sig.revocation[0].state == RevocationState.REVOKED and sig.revocation[0].reason == "key_compromise"
    bb = raw_sign(letter, material)  # type: ignore[arg-type]
    no_poe = verifier.verify_pdf(bb)
    assert no_poe.outcome == Outcome.INDETERMINATE and no_poe.sub_indication == SubIndication.REVOKED_NO_POE


def test_revoked_after_signing_stays_valid_on_embedded_evidence(verifier: Verifier, dev_pki: DevPki,
                                                                 letter: bytes, trust_services: ServerThread) -> None:
    material = _issue_person(dev_pki, "Người thu hồi sau")
    doc = raw_sign(letter, material, tsa_url=f"{trust_services.url}/tsa",  # type: ignore[arg-type]
                   lt_roots=[dev_pki.root_cert])
    dev_pki.revoke(material.cert.serial_number, "affiliation_changed")  # type: ignore[attr-defined]
    report = verifier.verify_pdf(doc, offline=True)
    assert report.outcome == Outcome.VALID, report.render_text("en")


def test_expired_signer_without_time_stamp(verifier: Verifier, dev_pki: DevPki, letter: bytes) -> None:
    now = datetime.now(UTC)
    material = _issue_person(dev_pki, "Người hết hạn", not_before=now - timedelta(days=800),
                             not_after=now - timedelta(days=1))
    report = verifier.verify_pdf(raw_sign(letter, material), offline=True)  # type: ignore[arg-type]
    assert report.outcome == Outcome.INDETERMINATE
    assert report.sub_indication == SubIndication.OUT_OF_BOUNDS_NO_POE
    assert report.signatures[0].checks.validity_at_signing.status == CheckStatus.FAILED
    assert any(w.code == "claimed_outside_validity" for w in report.signatures[0].warnings)


def test_untrusted_root(verifier: Verifier, letter: bytes) -> None:
    report = verifier.verify_pdf(raw_sign(letter, self_signed_material()), offline=True)
    assert report.outcome == Outcome.INDETERMINATE
    assert report.sub_indication == SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    assert report.signatures[0].checks.integrity.passed


def test_sha1_is_rejected(verifier: Verifier, letter: bytes, dev_pki: DevPki) -> None:
    report = verifier.verify_pdf(raw_sign(letter, dev_pki.person(CHAIRMAN), md="sha1"), offline=True)
    assert report.outcome != Outcome.VALID
    assert report.signatures[0].checks.algorithms.status == CheckStatus.FAILED
    assert any(r.code == "algorithm" for r in report.signatures[0].reasons)


# -- never a verdict reused across different bytes --------------------------------------------------------------
def test_caches_never_reuse_a_verdict(verifier: Verifier, signed: Signed) -> None:
    ok = verifier.verify_pdf(signed.lt, offline=True)
    tampered = bytearray(signed.lt)
    i = signed.lt.index(b"/Type /Page")  # inside the first revision, covered by both signatures
    tampered[i + 7] = ord("X")
    bad = verifier.verify_pdf(bytes(tampered), offline=True)
    again = verifier.verify_pdf(signed.lt, offline=True)
    assert ok.outcome == again.outcome == Outcome.VALID
    assert bad.outcome == Outcome.INVALID
    assert bad.signatures[0].sub_indication == SubIndication.HASH_FAILURE
    assert verifier.cache_stats()["paths"][1] > 0, "the chain itself was reused"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_change_to_signed_bytes_is_never_valid(verifier: Verifier, signed: Signed, data: st.DataObject) -> None:
    doc = signed.lt
    import re

    last = list(re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", doc))[-1]
    _a, b, c, d = (int(x) for x in last.groups())
    offset = data.draw(st.one_of(st.integers(0, b - 1), st.integers(c, c + d - 1)))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(doc)
    flipped[offset] ^= 1 << bit
    report = verifier.verify_pdf(bytes(flipped), offline=True)
    assert report.outcome != Outcome.VALID


# -- hostile input ----------------------------------------------------------------------------------------------
def _bomb_pdf(decompressed_mb: int) -> bytes:
    """A PDF whose cross-reference stream inflates to ``decompressed_mb`` MB."""
    comp = zlib.compressobj(1)
    chunk = b"\0" * (1 << 20)
    body = b"".join(comp.compress(chunk) for _ in range(decompressed_mb)) + comp.flush()
    head = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    head += b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    offset = len(head)
    xref = (b"3 0 obj\n<< /Type /XRef /Size 4 /W [1 4 2] /Root 1 0 R /Filter /FlateDecode /Length %d >>\nstream\n"
            % len(body)) + body + b"\nendstream\nendobj\n"
    return head + xref + b"startxref\n%d\n%%%%EOF\n" % offset


def _deep_pdf(depth: int = 200_000) -> bytes:
    nested = b"[" * depth + b"]" * depth
    return (b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Deep " + nested + b" >>\nendobj\n"
            b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R /Size 3 >>\n%%EOF\n")


def test_decompression_bomb_is_refused(verifier: Verifier) -> None:
    report = verifier.verify_pdf(_bomb_pdf(300), offline=True)
    assert report.outcome == Outcome.CANNOT_VALIDATE
    assert report.error is not None and report.error.code == "pdf_unreadable"


def test_memory_limit_stops_the_worker_and_it_comes_back(pki_settings: Settings, directory: Directory,
                                                         signed: Signed) -> None:
    """A worker that runs out of memory ends the request as "cannot validate" and is replaced. The limit here is
    below what the worker already maps, so any new large allocation (this 24 MB document) fails."""
    v = Verifier(CoreConfig(anchors=load_anchors(pki_settings)), directory=directory,
                 limits=VerifierLimits(memory_limit_mb=1))
    try:
        report = v.verify_pdf(b"%PDF-1.7\n" + os.urandom(24 << 20), offline=True)
        assert report.outcome == Outcome.CANNOT_VALIDATE
        assert report.error is not None and report.error.code == "resource_limit"
        v.limits = VerifierLimits(memory_limit_mb=2048)
        assert v.verify_pdf(signed.lt, offline=True).outcome == Outcome.VALID
    finally:
        v.close()


def test_deep_nesting_is_refused(verifier: Verifier) -> None:
    report = verifier.verify_pdf(_deep_pdf(), offline=True)
    assert report.outcome == Outcome.CANNOT_VALIDATE


@pytest.mark.parametrize("data", [b"", b"%PDF-", os.urandom(4096), b"%PDF-1.7\n" + os.urandom(4096)],
                         ids=["empty", "header-only", "random", "header-then-random"])
def test_garbage_is_not_verifiable(verifier: Verifier, data: bytes) -> None:
    report = verifier.verify_pdf(data, offline=True)
    assert report.outcome == Outcome.CANNOT_VALIDATE and report.exit_code == 2
    assert report.error is not None and report.reasons


def test_truncated_signed_file(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.lt[: len(signed.lt) * 2 // 3], offline=True)
    assert report.outcome in (Outcome.CANNOT_VALIDATE, Outcome.INVALID)


def test_random_cms_is_a_format_failure(verifier: Verifier, signed: Signed) -> None:
    import re

    first = next(re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", signed.lt))
    _a, b, c, _d = (int(x) for x in first.groups())
    junk = os.urandom((c - b - 2) // 2).hex().encode()
    doc = signed.lt[: b + 1] + junk + signed.lt[c - 1:]
    report = verifier.verify_pdf(doc, offline=True)
    assert report.outcome == Outcome.INVALID
    assert report.signatures[0].sub_indication == SubIndication.FORMAT_FAILURE


def test_time_limit_stops_the_worker_and_it_comes_back(pki_settings: Settings, directory: Directory,
                                                       signed: Signed) -> None:
    v = Verifier(CoreConfig(anchors=load_anchors(pki_settings)), directory=directory,
                 limits=VerifierLimits(timeout_seconds=0.001))
    try:
        report = v.verify_pdf(signed.lt, offline=True)
        assert report.outcome == Outcome.CANNOT_VALIDATE
        assert report.error is not None and report.error.code == "timeout"
        v.limits = VerifierLimits(timeout_seconds=60)
        assert v.verify_pdf(signed.lt, offline=True).outcome == Outcome.VALID
    finally:
        v.close()


def test_size_limit(pki_settings: Settings) -> None:
    v = Verifier(CoreConfig(anchors=load_anchors(pki_settings)), limits=VerifierLimits(max_document_mb=1))
    try:
        report = v.verify_pdf(b"%PDF-1.7\n" + b"0" * (2 << 20))
        assert report.outcome == Outcome.CANNOT_VALIDATE and report.error is not None
        assert report.error.code == "too_large"
    finally:
        v.close()


def test_inline_and_isolated_agree(pki_settings: Settings, directory: Directory, signed: Signed,
                                   verifier: Verifier) -> None:
    at = datetime.now(UTC)
    with Verifier.from_settings(pki_settings, directory, isolation="inline") as inline:
        for doc in (signed.lt, signed.bb, signed.foreign_seal):
            a = inline.verify_pdf(doc, offline=True, at=at, sender=HALONG, policy="nd30").to_dict()
            b = verifier.verify_pdf(doc, offline=True, at=at, sender=HALONG, policy="nd30").to_dict()
            a.pop("generated_at")
            b.pop("generated_at")
            assert a == b


def test_verify_file_reads_and_names(verifier: Verifier, signed: Signed, tmp_path: Path) -> None:
    path = tmp_path / "công-văn.pdf"
    path.write_bytes(signed.lt)
    report = verifier.verify_file(path, offline=True)
    assert report.document.name == "công-văn.pdf" and report.document.size == len(signed.lt)
