"""Every file of the real-world corpus (../shared/corpus/pdf) gets its expected verdict: a table over
expected.csv, refined per file from notes.md (which anchor and which validation time apply)."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from verify_support import CORPUS

from docexchange.verify import Verifier
from docexchange.verify.report import CheckStatus, Indication, Outcome, SubIndication, VerificationReport

ROWS = list(csv.DictReader((CORPUS / "expected.csv").open(encoding="utf-8")))
PYHANKO_TIME = datetime(2020, 11, 1, tzinfo=UTC)
"""notes.md: the pyHanko test PKI (root B) is to be validated at 2020-11-01."""
COSTA_RICA_TIME = datetime(2020, 6, 1, tzinfo=UTC)
"""notes.md: doc-firmado is signed 2018-09-15, its certificate valid until 2021-02-16."""

CATEGORIES = {"valid", "modified after signing", "invalid signature", "not trusted", "malformed"}


@dataclass(frozen=True)
class Expect:
    outcome: Outcome
    sub: SubIndication | None = None
    error: str = ""
    at: datetime | None = None
    kinds: tuple[str, ...] = ()
    per_signature: dict[int, tuple[Indication, SubIndication | None]] = field(default_factory=dict)
    chain_trusted: bool = False
    revocation_warning: bool = False
    long_term: str = ""


U = Outcome.INDETERMINATE
F = Outcome.INVALID
NOCHAIN = SubIndication.NO_CERTIFICATE_CHAIN_FOUND
TF = Indication.TOTAL_FAILED
IND = Indication.INDETERMINATE

EXPECTED: dict[str, Expect] = {
    # valid: intact and unmodified; trusted where the notes give an anchor (and a time)
    "valid/dss__pdf-signed-original.pdf": Expect(U, NOCHAIN, kinds=("signature",)),
    "valid/dss__pades-ltv.pdf": Expect(U, NOCHAIN, kinds=("signature", "document_timestamp", "document_timestamp")),
    "valid/pyhanko__form-update-override-appearance-stream.pdf": Expect(
        U, SubIndication.TRY_LATER, at=PYHANKO_TIME, kinds=("signature", "signature"), chain_trusted=True,
        revocation_warning=True),
    "valid/dss__timestamped_and_signed.pdf": Expect(U, NOCHAIN, kinds=("document_timestamp", "signature")),
    "valid/dss__doc-firmado-LT.pdf": Expect(Outcome.VALID, at=COSTA_RICA_TIME, kinds=("signature",),
                                            chain_trusted=True, long_term="B-LT"),
    "valid/dss__pkcs7.pdf": Expect(U, NOCHAIN, kinds=("signature",)),
    "valid/dss__certified-no-change-permitted.pdf": Expect(U, kinds=("signature",)),
    "valid/dss__Test.signed_Certipost-2048-SHA512.extended-LTA.pdf": Expect(
        U, kinds=("signature", "document_timestamp", "document_timestamp"),
        per_signature={1: (IND, SubIndication.CRYPTO_CONSTRAINTS_FAILURE)}),
    "valid/rubnds-pdftester__minimal_cert.pdf": Expect(U, NOCHAIN, kinds=("signature",)),
    "valid/pyhanko__sig-no-signed-attrs.pdf": Expect(U, SubIndication.TRY_LATER, at=PYHANKO_TIME,
                                                     kinds=("signature",), chain_trusted=True, revocation_warning=True),
    # modified after signing
    "tampered/rubnds-shadow__hide-v2-text-via-form__4_manipulated.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "tampered/dss__dss-2236-hide.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "tampered/rubnds-shadow__replace-v2-overwrite__4_manipulated.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "tampered/dss__pdf-signed-added-page.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "tampered/rubnds-shadow__replace-v1-overlay__4_manipulated.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "tampered/dss__pades-signed-annot-added.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "tampered/dss__dss-2236-annotation-and-visible-change.pdf": Expect(
        F, SubIndication.FORMAT_FAILURE,
        per_signature={1: (TF, SubIndication.FORMAT_FAILURE), 2: (TF, SubIndication.FORMAT_FAILURE),
                       3: (IND, NOCHAIN)}),
    # invalid signature
    "tampered/dss__pades-unsupported-signature-algorithm.pdf": Expect(F, SubIndication.SIG_CRYPTO_FAILURE),
    "tampered/pyhanko__coverage-weird-byterange.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "tampered/dss__pdf-byterange-overlap.pdf": Expect(
        F, SubIndication.FORMAT_FAILURE, per_signature={1: (IND, NOCHAIN), 2: (TF, SubIndication.FORMAT_FAILURE)}),
    "tampered/dss__hello_signed_INCSAVE_signed_EDITED.pdf": Expect(
        F, SubIndication.FORMAT_FAILURE, per_signature={2: (TF, SubIndication.FORMAT_FAILURE)}),
    "tampered/rubnds-pdftester__minimal_cert_invalid.pdf": Expect(F, SubIndication.HASH_FAILURE),
    # not trusted (the LuxTrust anchor is configured: the bogus chain is found and rejected)
    "tampered/dss__self-issued-qesig.pdf": Expect(U, SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE),
    # malformed: a clear "cannot validate", or a format failure of the signature
    "malformed/pyhanko__pdf-sig-with-econtent.pdf": Expect(F, SubIndication.FORMAT_FAILURE),
    "malformed/pyhanko__circular-page-tree.pdf": Expect(Outcome.CANNOT_VALIDATE, error="pdf_malformed"),
    "malformed/rubnds-pdf101__F1-objstm-extends.pdf": Expect(Outcome.CANNOT_VALIDATE, error="no_signature"),
    "malformed/rubnds-pdf101__A4-pages-tree-loop-complex.pdf": Expect(Outcome.CANNOT_VALIDATE, error="pdf_malformed"),
    "malformed/dss__malformed-pades.pdf": Expect(Outcome.CANNOT_VALIDATE, error="not_pdf"),
}


def test_every_corpus_file_has_an_expectation() -> None:
    assert {r["file"] for r in ROWS} == set(EXPECTED)
    assert {r["expected_verdict"] for r in ROWS} <= CATEGORIES


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_corpus_file(row: dict[str, str], corpus_verifier: Verifier) -> None:
    name = row["file"]
    data = (CORPUS / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == row["sha256"], "the corpus file changed"
    exp = EXPECTED[name]
    report = corpus_verifier.verify_pdf(data, name=name, at=exp.at, offline=True)
    _check_category(row["expected_verdict"], report)
    assert report.outcome == exp.outcome, report.render_text("en")
    if exp.sub is not None:
        assert report.sub_indication == exp.sub, report.render_text("en")
    if exp.error:
        assert report.error is not None and report.error.code == exp.error
    if exp.kinds:
        assert tuple(s.kind for s in report.signatures) == exp.kinds
    for index, (ind, sub) in exp.per_signature.items():
        sig = report.signatures[index - 1]
        assert (sig.indication, sig.sub_indication) == (ind, sub), report.render_text("en")
    if exp.chain_trusted:
        assert all(s.checks.certificate_chain.status == CheckStatus.PASSED
                   for s in report.signatures if s.kind == "signature")
    if exp.revocation_warning:
        assert report.revocation_unchecked
        assert any("thu hồi" in w for w in report.warnings_vi)
    if exp.long_term:
        assert {s.long_term.level for s in report.signatures if s.long_term} == {exp.long_term}


def _check_category(category: str, report: VerificationReport) -> None:
    """What expected.csv's column means, whatever the exact sub-indication."""
    assert report.outcome != Outcome.VALID or category == "valid", "never valid unless the corpus says so"
    if category == "valid":
        assert report.outcome in (Outcome.VALID, Outcome.INDETERMINATE)
        for sig in report.signatures:
            assert sig.checks.integrity.status == CheckStatus.PASSED, sig.title("en")
            assert sig.modifications is not None and sig.modifications.permitted, sig.title("en")
    elif category == "modified after signing":
        assert report.outcome == Outcome.INVALID
        assert any(s.modifications is not None and s.modifications.permitted is False for s in report.signatures)
    elif category == "invalid signature":
        assert report.outcome == Outcome.INVALID
        assert any(s.sub_indication in (SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE,
                                        SubIndication.FORMAT_FAILURE) for s in report.signatures)
    elif category == "not trusted":
        assert report.outcome == Outcome.INDETERMINATE
        assert all(s.checks.integrity.status == CheckStatus.PASSED for s in report.signatures)
        assert all(s.checks.certificate_chain.status == CheckStatus.FAILED for s in report.signatures)
    elif category == "malformed":
        assert report.outcome == Outcome.CANNOT_VALIDATE or report.sub_indication == SubIndication.FORMAT_FAILURE
        assert report.reasons


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_nothing_in_the_corpus_is_valid_without_its_anchor(row: dict[str, str], verifier: Verifier) -> None:
    """With only the dev root trusted, no corpus file can be valid, whatever the time."""
    report = verifier.verify_pdf((CORPUS / row["file"]).read_bytes(), offline=True)
    assert report.outcome != Outcome.VALID
    assert report.label_vi in ("không hợp lệ", "chưa xác định")


def test_pades_ltv_is_handled_where_stock_pyhanko_crashes(corpus_verifier: Verifier) -> None:
    """notes.md: stock pyHanko 0.38 raises KeyError: Reference(60,0) on this file's difference analysis."""
    report = corpus_verifier.verify_pdf((CORPUS / "valid/dss__pades-ltv.pdf").read_bytes(), offline=True)
    sig = report.signatures[0]
    assert sig.checks.integrity.passed
    assert sig.modifications is not None and sig.modifications.permitted
    assert sig.modifications.revisions_after == 3


def test_costa_rica_signature_needs_proof_once_the_tsa_certificate_expired(corpus_verifier: Verifier) -> None:
    """Validated today, the B-LT file's time-stamp certificate has expired and nothing newer covers it."""
    report = corpus_verifier.verify_pdf((CORPUS / "valid/dss__doc-firmado-LT.pdf").read_bytes(), offline=True,
                                        at=datetime(2026, 1, 1, tzinfo=UTC))
    assert report.outcome == Outcome.INDETERMINATE
    assert report.sub_indication == SubIndication.OUT_OF_BOUNDS_NO_POE
    assert any(w.code == "timestamp_not_usable" for w in report.signatures[0].warnings)


def test_certification_signature_is_recognised(corpus_verifier: Verifier) -> None:
    report = corpus_verifier.verify_pdf((CORPUS / "valid/dss__certified-no-change-permitted.pdf").read_bytes(),
                                        offline=True)
    sig = report.signatures[0]
    assert sig.certification
    assert sig.modifications is not None and sig.modifications.docmdp == 1
