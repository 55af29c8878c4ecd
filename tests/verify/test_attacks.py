"""Our own generated attacks, table-driven like the corpus: each built from our sample letter — signed by our own
signing module (person + seal, B-LT) and then attacked, or signed with certificates no honest signer would use —
none may come out valid, each for the right reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import attacks
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from verify_support import CHAIRMAN, HALONG, Signed, raw_sign, self_signed_material

from docexchange.pki.devpki import CertKind, DevPki
from docexchange.pki.keystore import KeyMaterial
from docexchange.signing import SigningService
from docexchange.verify import Verifier
from docexchange.verify.report import Outcome, SubIndication, VerificationReport
from helpers import ServerThread


@dataclass(frozen=True)
class Ctx:
    signed: Signed
    letter: bytes
    service: SigningService
    pki: DevPki
    tsa_url: str


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[Ctx], bytes]
    outcome: Outcome
    sub: SubIndication
    reason_code: str
    """Code of a reason the report must give."""
    online: bool = False
    """Verify with online revocation look-ups (the live OCSP responder knows about the revocation)."""


def _sign_both(service: SigningService, doc: bytes) -> bytes:
    one = service.sign(doc, service.person(CHAIRMAN), level="B-LT")
    return service.sign(one, service.seal(HALONG), level="B-LT")


def _shadow(prepare: Callable[[bytes], bytes], trigger: Callable[[bytes], bytes]) -> Callable[[Ctx], bytes]:
    def build(ctx: Ctx) -> bytes:
        return trigger(_sign_both(ctx.service, prepare(ctx.letter)))

    return build


def _person(pki: DevPki, name: str, **kw: object) -> KeyMaterial:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ủy ban nhân dân thành phố Hạ Long"),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
        x509.NameAttribute(NameOID.USER_ID, "CCCD:022099000042"),
    ])
    return pki.issue(CertKind.PERSON, subject, f"attack-{name}", ca_id="person", **kw)  # type: ignore[arg-type]


def revoked_signer(ctx: Ctx) -> bytes:
    """A signer whose certificate was revoked an hour ago signs now, with a time-stamp proving when."""
    material = _person(ctx.pki, "Chứng thư đã thu hồi")
    ctx.pki.revoke(material.cert.serial_number, "key_compromise", datetime.now(UTC) - timedelta(hours=1))
    return raw_sign(ctx.letter, material, tsa_url=ctx.tsa_url)


def expired_signer(ctx: Ctx) -> bytes:
    """A signer whose certificate expired yesterday signs, without a time-stamp."""
    now = datetime.now(UTC)
    material = _person(ctx.pki, "Chứng thư hết hạn", not_before=now - timedelta(days=400),
                       not_after=now - timedelta(days=1))
    return raw_sign(ctx.letter, material)


def untrusted_root(ctx: Ctx) -> bytes:
    return raw_sign(ctx.letter, self_signed_material())


F = Outcome.INVALID
FORMAT = SubIndication.FORMAT_FAILURE

ATTACKS = [
    Attack("content added after signing", lambda c: attacks.add_content(c.signed.lt), F, FORMAT, "modified"),
    Attack("page added after signing", lambda c: attacks.add_page(c.signed.lt), F, FORMAT, "modified"),
    Attack("annotation added after signing", lambda c: attacks.add_annotation(c.signed.lt), F, FORMAT, "modified"),
    Attack("form field added after signing", lambda c: attacks.add_form_field(c.signed.lt), F, FORMAT,
           "modified"),
    Attack("shadow: hide", _shadow(attacks.shadow_prepare_hide, attacks.shadow_hide), F, FORMAT, "modified"),
    Attack("shadow: replace", _shadow(attacks.shadow_prepare_replace, attacks.shadow_replace), F, FORMAT,
           "modified"),
    Attack("shadow: hide and replace",
           _shadow(attacks.shadow_prepare_hide_and_replace, attacks.shadow_hide_and_replace), F, FORMAT, "modified"),
    Attack("shadow: object defined after signing",
           _shadow(attacks.shadow_prepare_dangling, attacks.shadow_dangling), F, FORMAT, "modified"),
    Attack("byte range skipping content", lambda c: attacks.skip_bytes_in_range(c.signed.lt), F, FORMAT,
           "byte_range_gap"),
    Attack("emptied /Contents", lambda c: attacks.empty_contents(c.signed.lt), F, FORMAT, "cms"),
    Attack("signature over a different revision", lambda c: attacks.resign_other_revision(c.signed.lt), F, FORMAT,
           "coverage_revision"),
    Attack("revoked signer, signed after revocation", revoked_signer, F, SubIndication.REVOKED, "revoked",
           online=True),
    Attack("expired signer without time-stamp", expired_signer, Outcome.INDETERMINATE,
           SubIndication.OUT_OF_BOUNDS_NO_POE, "out_of_bounds"),
    Attack("untrusted root", untrusted_root, Outcome.INDETERMINATE, SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
           "chain"),
    Attack("seal of another agency", lambda c: c.signed.foreign_seal, Outcome.INDETERMINATE,
           SubIndication.SIG_CONSTRAINTS_FAILURE, "nd30.seal_of_sender"),
]


def _codes(report: VerificationReport) -> set[str]:
    return {m.code for s in report.signatures for m in s.reasons} | {m.code for m in report.reasons}


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack: Attack, verifier: Verifier, signed: Signed, letter: bytes, service: SigningService,
                dev_pki: DevPki, trust_services: ServerThread) -> None:
    data = attack.build(Ctx(signed, letter, service, dev_pki, f"{trust_services.url}/tsa"))
    report = verifier.verify_pdf(data, offline=not attack.online, sender=HALONG, policy="nd30")
    assert report.outcome == attack.outcome, report.render_text("en")
    assert report.sub_indication == attack.sub
    assert attack.reason_code in _codes(report), _codes(report)
    assert report.label_vi == ("không hợp lệ" if attack.outcome == Outcome.INVALID else "chưa xác định")
    assert report.reasons_vi and all(r for r in report.reasons_vi)


@pytest.mark.parametrize("prepare", [attacks.shadow_prepare_hide, attacks.shadow_prepare_replace,
                                     attacks.shadow_prepare_hide_and_replace, attacks.shadow_prepare_dangling],
                         ids=["hide", "replace", "hide-and-replace", "dangling"])
def test_shadow_document_is_valid_until_triggered(prepare: Callable[[bytes], bytes], verifier: Verifier,
                                                  letter: bytes, service: SigningService) -> None:
    """The shadow document itself, signed and untouched, is a valid letter: only the trigger is caught."""
    report = verifier.verify_pdf(_sign_both(service, prepare(letter)), offline=True, sender=HALONG, policy="nd30")
    assert report.outcome == Outcome.VALID, report.render_text("en")


def test_modified_letter_says_what_changed(verifier: Verifier, signed: Signed) -> None:
    report = verifier.verify_pdf(attacks.add_page(signed.lt), offline=True)
    person = report.signatures[0]
    assert person.modifications is not None and not person.modifications.permitted
    assert person.modifications.level.value == "other"
    assert "sửa đổi sau khi ký" in person.modifications.detail_vi
    assert person.checks.integrity.passed, "the signed bytes themselves are intact: the change is an addition"
