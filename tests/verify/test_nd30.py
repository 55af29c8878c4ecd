"""The NĐ 30/2020 profile: person then organisation, the organisation pinned for the sender, appendices signed by
the organisation; every failed rule named."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from verify_support import G22, HALONG, Signed

from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.errors import VerificationError
from docexchange.pki.devpki import DevPki
from docexchange.verify import Verifier
from docexchange.verify.nd30 import SealPins, apply_policy, evaluate, pinned_seal_fingerprints
from docexchange.verify.report import Outcome, SubIndication


def _failed(report: object) -> set[str]:
    policy = report.policy  # type: ignore[attr-defined]
    assert policy is not None
    return {r.id for r in policy.rules if not r.passed}


def test_person_then_seal_of_the_sender_passes(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.lt, offline=True, sender=HALONG, policy="nd30")
    assert report.valid and report.policy is not None and report.policy.passed
    assert {r.id for r in report.policy.rules} == {"nd30.signatures_valid", "nd30.person_signature",
                                                   "nd30.organisation_signature", "nd30.order", "nd30.seal_of_sender"}


def test_seal_of_another_agency(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.foreign_seal, offline=True, sender=HALONG, policy="nd30")
    assert report.outcome == Outcome.INDETERMINATE
    assert report.sub_indication == SubIndication.SIG_CONSTRAINTS_FAILURE
    assert _failed(report) == {"nd30.seal_of_sender"}
    assert report.policy is not None and report.policy.seal_agency == G22
    assert any("Văn phòng Chính phủ" in r and "không phải của cơ quan gửi" in r for r in report.reasons_vi)
    # the same document is fine as the Government Office's... except that its person is not from there:
    # the profile checks the seal against the sender, the person's certificate is only required to be personal
    assert verifier.verify_pdf(signed.foreign_seal, offline=True, sender=G22, policy="nd30").valid


def test_person_only(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.person_only, offline=True, sender=HALONG, policy="nd30")
    assert not report.valid
    assert {"nd30.organisation_signature", "nd30.order", "nd30.seal_of_sender"} <= _failed(report)


def test_seal_before_person(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.seal_first, offline=True, sender=HALONG, policy="nd30")
    assert not report.valid
    assert {"nd30.organisation_signature", "nd30.order"} <= _failed(report)


def test_appendix(verifier: Verifier, signed: Signed) -> None:
    ok = verifier.verify_pdf(signed.appendix, offline=True, sender=HALONG, policy="nd30-appendix")
    assert ok.valid, ok.render_text("en")
    assert ok.policy is not None and {r.id for r in ok.policy.rules} == {
        "nd30.signatures_valid", "nd30.organisation_signature", "nd30.seal_of_sender"}
    as_main = verifier.verify_pdf(signed.appendix, offline=True, sender=HALONG, policy="nd30")
    assert "nd30.person_signature" in _failed(as_main)
    wrong = verifier.verify_pdf(signed.appendix, offline=True, sender=G22, policy="nd30-appendix")
    assert _failed(wrong) == {"nd30.seal_of_sender"}


def test_no_sender_names_the_pinned_agency(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.lt, offline=True, policy="nd30")
    assert report.valid and report.policy is not None
    assert report.policy.seal_agency == HALONG
    assert any(r.id == "nd30.seal_pinned" and r.passed for r in report.policy.rules)


def test_unknown_sender_and_unknown_policy(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(signed.lt, offline=True, sender="999.99.99.H99", policy="nd30")
    assert "nd30.sender_known" in _failed(report) and not report.valid
    with pytest.raises(VerificationError):
        verifier.verify_pdf(signed.lt, policy="nd31")


def test_invalid_documents_stay_invalid_under_the_profile(verifier: Verifier, signed: Signed) -> None:
    tampered = bytearray(signed.lt)
    tampered[signed.lt.index(b"/Type /Page") + 7] = ord("X")
    report = verifier.verify_pdf(bytes(tampered), offline=True, sender=HALONG, policy="nd30")
    assert report.outcome == Outcome.INVALID and report.sub_indication == SubIndication.HASH_FAILURE
    assert "nd30.signatures_valid" in _failed(report)


def test_pin_lookup_is_the_seal_certificate(pki_settings: Settings, directory: Directory, dev_pki: DevPki) -> None:
    der = dev_pki.seal_cert(HALONG).public_bytes(serialization.Encoding.DER)
    assert pinned_seal_fingerprints(HALONG, pki_settings, directory) == frozenset({hashlib.sha256(der).hexdigest()})
    assert pinned_seal_fingerprints("999.99.99.H99", pki_settings, directory) == frozenset()
    # an alias (old code of a merged agency) resolves to the surviving agency's pins
    assert pinned_seal_fingerprints("000.00.05.H57", pki_settings, directory) == pinned_seal_fingerprints(
        "000.00.32.H57", pki_settings, directory)
    pins = SealPins.from_settings(pki_settings, directory)
    assert pins.agency_of(hashlib.sha256(der).hexdigest()) == HALONG
    assert pins.for_agency("000.00.05.H57") == pins.for_agency("000.00.32.H57")


def test_profile_is_pure_on_a_report(verifier: Verifier, signed: Signed) -> None:
    """evaluate/apply_policy take a report and pins and return values (the exchange reuses them)."""
    base = verifier.verify_pdf(signed.foreign_seal, offline=True)
    pins = SealPins.from_mapping({HALONG: {"00" * 32}}, {HALONG: "UBND thành phố Hạ Long"})
    result = evaluate(base, "nd30", sender=HALONG, pins=pins)
    assert not result.passed
    combined = apply_policy(base, "nd30", sender=HALONG, pins=pins)
    assert combined.policy == result and base.policy is None
