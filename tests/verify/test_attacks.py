"""Our own generated attacks, table-driven like the corpus: each built from our sample letter signed by our own
signing module (person + seal, B-LT), then attacked; none may come out valid, each for the right reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import attacks
import pytest
from verify_support import CHAIRMAN, HALONG, Signed

from docexchange.signing import SigningService
from docexchange.verify import Verifier
from docexchange.verify.report import Outcome, SubIndication, VerificationReport


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[Signed, bytes, SigningService], bytes]
    outcome: Outcome
    sub: SubIndication
    reason_code: str
    """Code of a reason the report must give."""


def _sign_both(service: SigningService, doc: bytes) -> bytes:
    one = service.sign(doc, service.person(CHAIRMAN), level="B-LT")
    return service.sign(one, service.seal(HALONG), level="B-LT")


def _shadow(prepare: Callable[[bytes], bytes], trigger: Callable[[bytes], bytes]
            ) -> Callable[[Signed, bytes, SigningService], bytes]:
    def build(_signed: Signed, letter: bytes, service: SigningService) -> bytes:
        return trigger(_sign_both(service, prepare(letter)))

    return build


F = Outcome.INVALID
FORMAT = SubIndication.FORMAT_FAILURE

ATTACKS = [
    Attack("content added after signing", lambda s, _l, _v: attacks.add_content(s.lt), F, FORMAT, "modified"),
    Attack("page added after signing", lambda s, _l, _v: attacks.add_page(s.lt), F, FORMAT, "modified"),
    Attack("annotation added after signing", lambda s, _l, _v: attacks.add_annotation(s.lt), F, FORMAT, "modified"),
    Attack("form field added after signing", lambda s, _l, _v: attacks.add_form_field(s.lt), F, FORMAT,
           "modified"),
    Attack("shadow: hide", _shadow(attacks.shadow_prepare_hide, attacks.shadow_hide), F, FORMAT, "modified"),
    Attack("shadow: replace", _shadow(attacks.shadow_prepare_replace, attacks.shadow_replace), F, FORMAT,
           "modified"),
    Attack("shadow: hide and replace",
           _shadow(attacks.shadow_prepare_hide_and_replace, attacks.shadow_hide_and_replace), F, FORMAT, "modified"),
    Attack("shadow: object defined after signing",
           _shadow(attacks.shadow_prepare_dangling, attacks.shadow_dangling), F, FORMAT, "modified"),
    Attack("byte range skipping content", lambda s, _l, _v: attacks.skip_bytes_in_range(s.lt), F, FORMAT,
           "byte_range_gap"),
    Attack("emptied /Contents", lambda s, _l, _v: attacks.empty_contents(s.lt), F, FORMAT, "cms"),
    Attack("signature over a different revision", lambda s, _l, _v: attacks.resign_other_revision(s.lt), F, FORMAT,
           "coverage_revision"),
]


def _codes(report: VerificationReport) -> set[str]:
    return {m.code for s in report.signatures for m in s.reasons}


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(attack: Attack, verifier: Verifier, signed: Signed, letter: bytes, service: SigningService) -> None:
    data = attack.build(signed, letter, service)
    report = verifier.verify_pdf(data, offline=True, sender=HALONG, policy="nd30")
    assert report.outcome == attack.outcome, report.render_text("en")
    assert report.sub_indication == attack.sub
    assert attack.reason_code in _codes(report), _codes(report)
    assert report.label_vi == "không hợp lệ"
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
