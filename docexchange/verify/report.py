"""The verification report: verdicts (ETSI EN 319 102-1 style), the TT 15/2025 fields, and its renderings.

A :class:`VerificationReport` is a frozen value built by the verifier (``docexchange.verify.pdf``) and never
changed afterwards. It renders as JSON (a stable schema, :data:`SCHEMA_VERSION`, documented in
``docs/verification.md`` and shipped as ``report.schema.json``), as text for terminals and as a standalone
printable HTML page; Vietnamese by default, English on request. Every time is shown in Vietnam time.

Indications follow ETSI EN 319 102-1: ``TOTAL-PASSED`` / ``INDETERMINATE`` / ``TOTAL-FAILED`` with a
sub-indication; people read them as **"hợp lệ"** / **"chưa xác định"** / **"không hợp lệ"**. A document the
verifier could not evaluate at all (not a PDF, no signature, a hostile file that hit a resource limit) has the
outcome ``cannot_validate``: indication ``INDETERMINATE``, label "chưa xác định", and an ``error`` naming why.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from dataclasses import field as dc_field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from docexchange.clock import to_vn, vn_datetime

__all__ = [
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "CertificateInfo",
    "Check",
    "CheckStatus",
    "DocumentInfo",
    "HolderKind",
    "Indication",
    "LongTermStatus",
    "Message",
    "ModificationLevel",
    "Modifications",
    "Outcome",
    "PolicyResult",
    "PolicyRule",
    "RevocationState",
    "RevocationStatus",
    "SignatureChecks",
    "SignatureReport",
    "SubIndication",
    "TimestampReport",
    "VerificationReport",
    "json_schema",
    "label",
]

SCHEMA_ID = "docexchange/verification-report"
SCHEMA_VERSION = "1.0"
"""Bumped in the minor part for additive changes, in the major part when a field changes meaning or goes."""


# --------------------------------------------------------------------------------------------- enums
class Indication(str, enum.Enum):
    """ETSI EN 319 102-1 main status indication."""

    TOTAL_PASSED = "TOTAL-PASSED"
    INDETERMINATE = "INDETERMINATE"
    TOTAL_FAILED = "TOTAL-FAILED"

    @property
    def severity(self) -> int:
        return {"TOTAL-PASSED": 0, "INDETERMINATE": 1, "TOTAL-FAILED": 2}[self.value]


class SubIndication(str, enum.Enum):
    """ETSI EN 319 102-1 sub-indications (the ones this verifier produces)."""

    # with TOTAL-FAILED
    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    # with INDETERMINATE
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE_NO_POE = "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    OUT_OF_BOUNDS_NOT_REVOKED = "OUT_OF_BOUNDS_NOT_REVOKED"
    NO_POE = "NO_POE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
    GENERIC = "GENERIC"

    @property
    def indication(self) -> Indication:
        """The main indication this sub-indication belongs to in ETSI EN 319 102-1."""
        return Indication.TOTAL_FAILED if self.name in _FAILED_SUBS else Indication.INDETERMINATE

    @property
    def vi(self) -> str:
        return _SUB_TEXT[self][0]

    @property
    def en(self) -> str:
        return _SUB_TEXT[self][1]


_FAILED_SUBS = {"FORMAT_FAILURE", "HASH_FAILURE", "SIG_CRYPTO_FAILURE", "REVOKED", "EXPIRED", "NOT_YET_VALID"}

_SUB_TEXT: dict[SubIndication, tuple[str, str]] = {
    SubIndication.FORMAT_FAILURE: (
        "sai định dạng hoặc tài liệu bị thay đổi sau khi ký",
        "format failure or document modified after signing",
    ),
    SubIndication.HASH_FAILURE: ("nội dung đã bị thay đổi (sai giá trị băm)", "content changed (hash mismatch)"),
    SubIndication.SIG_CRYPTO_FAILURE: ("giá trị chữ ký không đúng", "signature value does not verify"),
    SubIndication.REVOKED: ("chứng thư số đã bị thu hồi trước khi ký", "certificate revoked before signing"),
    SubIndication.EXPIRED: ("chứng thư số đã hết hạn khi ký", "certificate expired when the document was signed"),
    SubIndication.NOT_YET_VALID: ("chứng thư số chưa có hiệu lực khi ký", "certificate not yet valid at signing"),
    SubIndication.SIG_CONSTRAINTS_FAILURE: (
        "không đạt ràng buộc của chính sách kiểm tra",
        "signature does not meet the validation policy's constraints",
    ),
    SubIndication.CHAIN_CONSTRAINTS_FAILURE: (
        "chuỗi chứng thư không đạt ràng buộc",
        "certificate chain does not meet constraints",
    ),
    SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE: (
        "chuỗi chứng thư không hợp lệ",
        "certificate chain is not valid",
    ),
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE: (
        "thuật toán không được chấp nhận (TT 15/2025)",
        "algorithm not accepted (TT 15/2025)",
    ),
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE: (
        "thuật toán không còn an toàn và không có bằng chứng thời gian",
        "algorithm no longer secure and no proof of existence",
    ),
    SubIndication.TIMESTAMP_ORDER_FAILURE: ("thứ tự dấu thời gian không hợp lý", "timestamps out of order"),
    SubIndication.NO_SIGNING_CERTIFICATE_FOUND: (
        "không tìm thấy chứng thư số của người ký",
        "signer's certificate not found",
    ),
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND: (
        "không xây dựng được chuỗi tới chứng thư gốc tin cậy",
        "no chain to a trusted root",
    ),
    SubIndication.REVOKED_NO_POE: (
        "chứng thư đã bị thu hồi, không chứng minh được đã ký trước đó",
        "certificate revoked and no proof the signature existed before",
    ),
    SubIndication.REVOKED_CA_NO_POE: (
        "chứng thư của CA đã bị thu hồi, không chứng minh được đã ký trước đó",
        "a CA certificate was revoked and no proof the signature existed before",
    ),
    SubIndication.OUT_OF_BOUNDS_NO_POE: (
        "ngoài thời hạn hiệu lực của chứng thư, không có dấu thời gian chứng minh",
        "outside the certificate's validity period, no timestamp proving otherwise",
    ),
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED: (
        "chứng thư đã hết hạn (không bị thu hồi), không có dấu thời gian chứng minh",
        "certificate expired (not revoked), no timestamp proving otherwise",
    ),
    SubIndication.NO_POE: ("không có bằng chứng thời gian", "no proof of existence"),
    SubIndication.TRY_LATER: (
        "chưa kiểm tra được tình trạng thu hồi chứng thư, cần kiểm tra lại sau",
        "revocation status could not be checked; try later",
    ),
    SubIndication.SIGNED_DATA_NOT_FOUND: ("không tìm thấy dữ liệu được ký", "signed data not found"),
    SubIndication.GENERIC: ("lỗi khác", "other failure"),
}


class Outcome(str, enum.Enum):
    """What a document (or signature) comes to, for people and exit codes."""

    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"
    CANNOT_VALIDATE = "cannot_validate"

    @property
    def exit_code(self) -> int:
        return {"valid": 0, "invalid": 1, "indeterminate": 1, "cannot_validate": 2}[self.value]


class CheckStatus(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    WARNING = "warning"
    NOT_CHECKED = "not_checked"
    NOT_APPLICABLE = "not_applicable"


class HolderKind(str, enum.Enum):
    """Whom a certificate was issued to (from its subject: CCCD/CMND → person, MST/MNS → organisation)."""

    PERSON = "person"
    ORGANIZATION = "organization"
    CA = "ca"
    TSA = "tsa"
    OCSP = "ocsp"
    UNKNOWN = "unknown"


class RevocationState(str, enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    REVOKED_LATER = "revoked_later"
    """Revoked, but only after the time that matters (the signature was made before): still acceptable."""
    UNKNOWN = "unknown"
    """No usable answer (offline, stale data, responder unreachable)."""
    NOT_REQUIRED = "not_required"
    """Trust anchors and OCSP responders with id-pkix-ocsp-nocheck."""


class ModificationLevel(str, enum.Enum):
    """What changed after a signature (from pyHanko's difference analysis, refined)."""

    NONE = "none"
    SIGNATURE_MAINTENANCE = "signature_maintenance"
    """Only validation data (DSS) and document timestamps were added."""
    SIGNING = "signing"
    """Further signatures were added (signature fields filled)."""
    FORM_FILLING = "form_filling"
    """Non-signature form fields were filled."""
    ANNOTATIONS = "annotations"
    OTHER = "other"
    """Anything else: content, pages, objects, unreadable updates."""
    UNKNOWN = "unknown"


# --------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Message:
    """A reason or a warning, in Vietnamese and English, with a stable machine code."""

    code: str
    vi: str
    en: str

    def text(self, lang: str = "vi") -> str:
        return self.en if lang == "en" else self.vi


@dataclass(frozen=True)
class Check:
    """The result of one named check, with a short explanation."""

    status: CheckStatus
    vi: str = ""
    en: str = ""

    def text(self, lang: str = "vi") -> str:
        return self.en if lang == "en" else self.vi

    @property
    def passed(self) -> bool:
        return self.status == CheckStatus.PASSED


NOT_CHECKED = Check(CheckStatus.NOT_CHECKED, "chưa kiểm tra", "not checked")


@dataclass(frozen=True)
class CertificateInfo:
    """What a person needs to know about a certificate (TT 15/2025: signer, issuing CA, managing organisation,
    validity period)."""

    subject: str
    common_name: str
    organization: str
    issuer: str
    issuer_common_name: str
    issuer_organization: str
    serial: str
    """Serial number, hex."""
    sha256: str
    """SHA-256 fingerprint of the DER certificate, lower-case hex."""
    valid_from: datetime
    valid_until: datetime
    holder_kind: HolderKind = HolderKind.UNKNOWN
    organizational_unit: str = ""
    title: str = ""
    locality: str = ""
    country: str = ""
    email: str = ""
    identifiers: tuple[str, ...] = ()
    """UID values such as ``MST:0100109106``, ``CCCD:001075000001``, ``MNS:1234567``."""
    key: str = ""
    """``RSA 2048``, ``ECDSA P-256`` …"""
    key_usage: tuple[str, ...] = ()
    extended_key_usage: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.common_name or self.organization or self.subject


@dataclass(frozen=True)
class RevocationStatus:
    """Revocation status of one certificate of a chain at the time that matters."""

    certificate: str
    """Common name (or subject) of the certificate."""
    sha256: str
    state: RevocationState
    source: str = ""
    """``embedded_ocsp``, ``embedded_crl``, ``online_ocsp``, ``online_crl`` or empty."""
    produced_at: datetime | None = None
    """thisUpdate of the answer used."""
    revoked_at: datetime | None = None
    reason: str = ""
    detail_vi: str = ""
    detail_en: str = ""


@dataclass(frozen=True)
class TimestampReport:
    """An RFC 3161 time-stamp: a signature time-stamp (in the CMS) or a document time-stamp (its own field)."""

    kind: str
    """``signature_timestamp`` or ``document_timestamp``."""
    indication: Indication
    sub_indication: SubIndication | None
    time: datetime | None
    tsa: CertificateInfo | None = None
    chain: tuple[CertificateInfo, ...] = ()
    trust_anchor: str = ""
    revocation: tuple[RevocationStatus, ...] = ()
    reasons: tuple[Message, ...] = ()
    warnings: tuple[Message, ...] = ()

    @property
    def passed(self) -> bool:
        return self.indication == Indication.TOTAL_PASSED


@dataclass(frozen=True)
class Modifications:
    """What happened to the file after this signature."""

    coverage: str
    """``entire_file`` (nothing after), ``entire_revision`` (later updates, analysed), ``partial`` (the byte
    range does not cover its revision: failure) or ``unknown``."""
    level: ModificationLevel
    permitted: bool | None
    changed_fields: tuple[str, ...] = ()
    docmdp: int | None = None
    """DocMDP permission of the certification signature in force (1 no changes, 2 form filling, 3 annotations)."""
    revisions_after: int = 0
    detail_vi: str = ""
    detail_en: str = ""


@dataclass(frozen=True)
class LongTermStatus:
    """Long-term validation: can the signature still be validated once its certificates have expired?"""

    level: str
    """PAdES baseline level reached: ``B-B``, ``B-T``, ``B-LT``, ``B-LTA`` (empty when not even B-B)."""
    self_contained: bool
    """All validation data needed came from the document itself (no online look-up)."""
    validatable_until: datetime | None
    """After this instant the signature can no longer be validated without new evidence (a new document
    time-stamp): the expiry of the certificate that bounds the proof chain."""


@dataclass(frozen=True)
class SignatureChecks:
    """The checks TT 15/2025 requires, each with its result."""

    integrity: Check = NOT_CHECKED
    signature_value: Check = NOT_CHECKED
    certificate_chain: Check = NOT_CHECKED
    validity_at_signing: Check = NOT_CHECKED
    revocation: Check = NOT_CHECKED
    key_usage: Check = NOT_CHECKED
    algorithms: Check = NOT_CHECKED
    timestamp: Check = NOT_CHECKED
    modifications: Check = NOT_CHECKED

    def items(self) -> list[tuple[str, Check]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


@dataclass(frozen=True)
class SignatureReport:
    index: int
    """1-based, in signing order."""
    field: str
    kind: str
    """``signature`` or ``document_timestamp``."""
    indication: Indication
    sub_indication: SubIndication | None
    subfilter: str = ""
    certification: bool = False
    revision: int = 0
    byte_range: tuple[int, ...] = ()
    signer: CertificateInfo | None = None
    chain: tuple[CertificateInfo, ...] = ()
    """Issuers of the signer's certificate, nearest first, ending with the trust anchor when one was found."""
    trust_anchor: str = ""
    claimed_signing_time: datetime | None = None
    timestamp_time: datetime | None = None
    best_signature_time: datetime | None = None
    """Earliest time the signature is proven to have existed (a valid time-stamp), else the validation time."""
    digest_algorithm: str = ""
    signature_algorithm: str = ""
    checks: SignatureChecks = dc_field(default_factory=SignatureChecks)
    revocation: tuple[RevocationStatus, ...] = ()
    timestamps: tuple[TimestampReport, ...] = ()
    modifications: Modifications | None = None
    long_term: LongTermStatus | None = None
    reasons: tuple[Message, ...] = ()
    warnings: tuple[Message, ...] = ()

    @property
    def outcome(self) -> Outcome:
        return {
            Indication.TOTAL_PASSED: Outcome.VALID,
            Indication.TOTAL_FAILED: Outcome.INVALID,
            Indication.INDETERMINATE: Outcome.INDETERMINATE,
        }[self.indication]

    @property
    def label_vi(self) -> str:
        return label(self.outcome, "vi")

    @property
    def label_en(self) -> str:
        return label(self.outcome, "en")

    @property
    def issuing_ca(self) -> str:
        """TT 15/2025: the CA that issued the signer's certificate."""
        if self.chain:
            return self.chain[0].display_name
        return self.signer.issuer_common_name or self.signer.issuer if self.signer else ""

    @property
    def signing_time(self) -> datetime | None:
        """TT 15/2025: the time-stamp time when there is one, else the time the signer claims."""
        return self.timestamp_time or self.claimed_signing_time

    @property
    def signer_name(self) -> str:
        if self.signer is not None:
            return self.signer.display_name
        if self.kind == "document_timestamp" and self.timestamps and self.timestamps[0].tsa:
            return self.timestamps[0].tsa.display_name
        return ""

    def title(self, lang: str = "vi") -> str:
        what = {
            ("signature", "vi"): "Chữ ký",
            ("signature", "en"): "Signature",
            ("document_timestamp", "vi"): "Dấu thời gian tài liệu",
            ("document_timestamp", "en"): "Document time-stamp",
        }[(self.kind, "en" if lang == "en" else "vi")]
        who = self.signer_name
        return f"{what} {self.index} ({self.field}{' — ' + who if who else ''})"


@dataclass(frozen=True)
class PolicyRule:
    id: str
    passed: bool
    vi: str
    en: str

    def text(self, lang: str = "vi") -> str:
        return self.en if lang == "en" else self.vi


@dataclass(frozen=True)
class PolicyResult:
    """Result of a signing profile (``nd30`` main document, ``nd30-appendix``), each rule named."""

    name: str
    passed: bool
    rules: tuple[PolicyRule, ...]
    sender: str = ""
    """Agency code the document is expected to come from (``--sender``)."""
    seal_agency: str = ""
    """Agency code the organisation signature's certificate is pinned to, when found."""

    @property
    def failed_rules(self) -> tuple[PolicyRule, ...]:
        return tuple(r for r in self.rules if not r.passed)


@dataclass(frozen=True)
class DocumentInfo:
    name: str
    size: int
    sha256: str
    revisions: int = 0
    pages: int = 0


@dataclass(frozen=True)
class VerificationReport:
    """The verdict on one document: per signature and for the document as a whole."""

    document: DocumentInfo
    validation_time: datetime
    """The time the document was judged at (now, or ``--at``)."""
    generated_at: datetime
    outcome: Outcome
    indication: Indication
    sub_indication: SubIndication | None
    signatures: tuple[SignatureReport, ...] = ()
    last_signature_covers_file: bool | None = None
    reasons: tuple[Message, ...] = ()
    warnings: tuple[Message, ...] = ()
    policy: PolicyResult | None = None
    error: Message | None = None
    """Why the document could not be evaluated (outcome ``cannot_validate``)."""
    offline: bool = False
    online_lookups: int = 0
    """How many OCSP/CRL answers were fetched from the network for this document."""
    schema_version: str = SCHEMA_VERSION

    # -- for callers ---------------------------------------------------------------------------
    @property
    def valid(self) -> bool:
        return self.outcome == Outcome.VALID

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code

    @property
    def label_vi(self) -> str:
        return label(self.outcome, "vi")

    @property
    def label_en(self) -> str:
        return label(self.outcome, "en")

    def label(self, lang: str = "vi") -> str:
        return label(self.outcome, lang)

    @property
    def reasons_vi(self) -> list[str]:
        return [m.vi for m in self.reasons]

    @property
    def reasons_en(self) -> list[str]:
        return [m.en for m in self.reasons]

    @property
    def warnings_vi(self) -> list[str]:
        return [m.vi for m in self.warnings]

    @property
    def revocation_unchecked(self) -> bool:
        """True when the revocation status of some certificate could not be checked (TT 15/2025 warning)."""
        return any(m.code == "revocation_unchecked" for m in self.warnings)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = _to_json_value(self)
        assert isinstance(out, dict)
        body: dict[str, Any] = {"schema": SCHEMA_ID, "schema_version": self.schema_version}
        out.pop("schema_version", None)
        body.update(out)
        body["label"] = {"vi": self.label_vi, "en": self.label_en}
        for sig, raw in zip(self.signatures, body["signatures"], strict=True):
            raw["label"] = {"vi": sig.label_vi, "en": sig.label_en}
            raw["issuing_ca"] = sig.issuing_ca
            raw["signing_time"] = to_vn(sig.signing_time).isoformat() if sig.signing_time else None
        return body

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerificationReport:
        """Rebuild a report from :meth:`to_dict` output (e.g. one stored by the exchange)."""
        if data.get("schema") != SCHEMA_ID:
            raise ValueError(f"not a {SCHEMA_ID} document")
        major = str(data.get("schema_version", "")).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"unsupported schema version {data.get('schema_version')!r}")
        payload = {k: v for k, v in data.items() if k not in ("schema", "label")}
        return typing.cast(VerificationReport, _from_json_value(VerificationReport, payload))

    @classmethod
    def from_json(cls, text: str) -> VerificationReport:
        return cls.from_dict(json.loads(text))

    def render_text(self, lang: str = "vi", *, color: bool = False) -> str:
        return render_text(self, lang, color=color)

    def render_html(self, lang: str = "vi") -> str:
        return render_html(self, lang)


# --------------------------------------------------------------------------------------------- labels
_LABELS = {
    Outcome.VALID: ("hợp lệ", "valid"),
    Outcome.INVALID: ("không hợp lệ", "not valid"),
    Outcome.INDETERMINATE: ("chưa xác định", "indeterminate"),
    Outcome.CANNOT_VALIDATE: ("chưa xác định", "indeterminate"),
}


def label(outcome: Outcome, lang: str = "vi") -> str:
    """The word people read: ``hợp lệ`` / ``không hợp lệ`` / ``chưa xác định``."""
    vi, en = _LABELS[outcome]
    return en if lang == "en" else vi


def fmt_time(moment: datetime | None, lang: str = "vi") -> str:
    if moment is None:
        return "—"
    if lang == "en":
        return to_vn(moment).strftime("%Y-%m-%d %H:%M:%S (UTC+07:00)")
    return vn_datetime(moment)


# --------------------------------------------------------------------------------------------- JSON
def _to_json_value(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json_value(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return to_vn(value).isoformat()
    if isinstance(value, (tuple, list)):
        return [_to_json_value(v) for v in value]
    return value


T = TypeVar("T")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _from_json_value(tp: Any, value: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        args = [a for a in get_args(tp) if a is not type(None)]
        return _from_json_value(args[0], value)
    if origin is tuple:
        inner = get_args(tp)[0]
        return tuple(_from_json_value(inner, v) for v in value)
    if isinstance(tp, type) and is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ValueError(f"{tp.__name__}: expected an object")
        hints = _hints(tp)
        known = {f.name for f in fields(tp)}
        kwargs = {k: _from_json_value(hints[k], v) for k, v in value.items() if k in known}
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    return value


# --------------------------------------------------------------------------------------------- schema
@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :meth:`VerificationReport.to_dict`, shipped as package data."""
    text = resources.files("docexchange.verify").joinpath("report.schema.json").read_text("utf-8")
    return typing.cast(dict[str, Any], json.loads(text))


# --------------------------------------------------------------------------------------------- rendering
_FIELDS: dict[str, tuple[str, str]] = {
    "signer": ("Người ký", "Signer"),
    "organization": ("Tổ chức quản lý chứng thư", "Organisation managing the certificate"),
    "issuing_ca": ("CA cấp chứng thư", "Issuing CA"),
    "signing_time": ("Thời gian ký", "Signing time"),
    "validity_period": ("Thời hạn hiệu lực chứng thư", "Certificate validity period"),
    "integrity": ("Tính toàn vẹn", "Integrity"),
    "signature_value": ("Giá trị chữ ký", "Signature value"),
    "certificate_chain": ("Chuỗi chứng thư", "Certificate chain"),
    "validity_at_signing": ("Hiệu lực tại thời điểm ký", "Validity at signing time"),
    "revocation": ("Tình trạng thu hồi", "Revocation status"),
    "key_usage": ("Mục đích sử dụng khóa", "Key usage"),
    "algorithms": ("Thuật toán", "Algorithms"),
    "timestamp": ("Dấu thời gian", "Time-stamp"),
    "modifications": ("Thay đổi sau khi ký", "Changes after signing"),
    "long_term": ("Kiểm tra dài hạn", "Long-term validation"),
    "serial": ("Số hiệu chứng thư", "Certificate serial"),
    "identifiers": ("Định danh", "Identifiers"),
}

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("KẾT QUẢ KIỂM TRA CHỮ KÝ SỐ", "DIGITAL SIGNATURE VERIFICATION REPORT"),
    "subtitle": ("theo Thông tư 15/2025/TT-BKHCN và Nghị định 30/2020/NĐ-CP",
                 "per Circular 15/2025/TT-BKHCN and Decree 30/2020/ND-CP"),
    "file": ("Tệp", "File"),
    "size": ("Kích thước", "Size"),
    "pages": ("Số trang", "Pages"),
    "revisions": ("Số phiên bản", "Revisions"),
    "conclusion": ("Kết luận", "Conclusion"),
    "validation_time": ("Thời điểm kiểm tra", "Validation time"),
    "generated_at": ("Báo cáo lập lúc", "Report generated"),
    "reasons": ("Lý do", "Reasons"),
    "warnings": ("Cảnh báo", "Warnings"),
    "signatures": ("Các chữ ký trong tài liệu", "Signatures in the document"),
    "checks": ("Các nội dung kiểm tra", "Checks"),
    "policy": ("Quy định NĐ 30/2020", "Decree 30/2020 rules"),
    "policy_appendix": ("Quy định NĐ 30/2020 (phụ lục, bản sao)", "Decree 30/2020 rules (appendix, copy)"),
    "passed": ("ĐẠT", "MET"),
    "failed": ("KHÔNG ĐẠT", "NOT MET"),
    "last_covers": ("Chữ ký cuối cùng bao trùm toàn bộ tệp", "The last signature covers the whole file"),
    "yes": ("có", "yes"),
    "no": ("không", "no"),
    "claimed": ("do người ký khai báo", "claimed by the signer"),
    "from_ts": ("theo dấu thời gian", "from the time-stamp"),
    "offline": ("chỉ dùng dữ liệu kèm tài liệu (ngoại tuyến)", "embedded data only (offline)"),
    "mode": ("Chế độ", "Mode"),
    "online": ("có tra cứu trực tuyến", "online look-ups allowed"),
    "error": ("Không kiểm tra được", "Could not validate"),
    "no_signature": ("Không có chữ ký nào được kiểm tra.", "No signature was checked."),
    "footer": ("Báo cáo do docexchange tạo; mã băm SHA-256 xác định đúng tệp đã kiểm tra.",
               "Report produced by docexchange; the SHA-256 identifies the exact file checked."),
    "sender": ("Cơ quan gửi", "Sending agency"),
    "self_contained": ("dữ liệu kiểm tra kèm trong tài liệu", "validation data embedded in the document"),
    "needs_online": ("cần tra cứu trực tuyến", "needs online look-ups"),
    "until": ("kiểm tra được đến", "verifiable until"),
    "doc_ts": ("Dấu thời gian tài liệu", "Document time-stamp"),
    "all_valid": ("Tất cả {n} chữ ký hợp lệ.", "All {n} signatures are valid."),
}

_STATUS_MARK = {
    CheckStatus.PASSED: "✔",
    CheckStatus.FAILED: "✘",
    CheckStatus.WARNING: "⚠",
    CheckStatus.NOT_CHECKED: "–",
    CheckStatus.NOT_APPLICABLE: "·",
}


def _w(key: str, lang: str) -> str:
    vi, en = _WORDS[key]
    return en if lang == "en" else vi


def _f(key: str, lang: str) -> str:
    vi, en = _FIELDS[key]
    return en if lang == "en" else vi


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} B"


def _sig_rows(sig: SignatureReport, lang: str) -> list[tuple[str, str]]:
    """The TT 15/2025 fields of one signature, as (label, value)."""
    rows: list[tuple[str, str]] = []
    signer = sig.signer
    if signer is not None:
        who = signer.display_name + (f" — {signer.title}" if signer.title else "")
        rows.append((_f("signer", lang), who))
        rows.append((_f("organization", lang), signer.organization or "—"))
        if signer.identifiers:
            rows.append((_f("identifiers", lang), ", ".join(signer.identifiers)))
    rows.append((_f("issuing_ca", lang), sig.issuing_ca or "—"))
    if sig.timestamp_time is not None:
        when = f"{fmt_time(sig.timestamp_time, lang)} ({_w('from_ts', lang)})"
    elif sig.claimed_signing_time is not None:
        when = f"{fmt_time(sig.claimed_signing_time, lang)} ({_w('claimed', lang)})"
    else:
        when = "—"
    rows.append((_f("signing_time", lang), when))
    if signer is not None:
        rows.append((_f("validity_period", lang),
                     f"{fmt_time(signer.valid_from, lang)} – {fmt_time(signer.valid_until, lang)}"))
        rows.append((_f("serial", lang), signer.serial))
    return rows


def _long_term_text(sig: SignatureReport, lang: str) -> str:
    lt = sig.long_term
    if lt is None or not lt.level:
        return "—"
    parts = [lt.level, _w("self_contained", lang) if lt.self_contained else _w("needs_online", lang)]
    if lt.validatable_until is not None:
        parts.append(f"{_w('until', lang)} {fmt_time(lt.validatable_until, lang)}")
    return "; ".join(parts)


_STATUS_WORDS = {
    "passed": ("Đạt", "Passed"),
    "failed": ("Không đạt", "Failed"),
    "warning": ("Cảnh báo", "Warning"),
    "not_checked": ("Chưa kiểm tra", "Not checked"),
    "not_applicable": ("Không áp dụng", "N/A"),
    "info": ("Thông tin", "Info"),
}


def _checks(sig: SignatureReport, lang: str) -> list[tuple[str, str, str, str, str]]:
    """(status, mark, status word, label, text) for each check, plus the long-term line."""
    out = []
    for name, check in sig.checks.items():
        if check.status == CheckStatus.NOT_APPLICABLE and not check.text(lang):
            continue
        word = _STATUS_WORDS[check.status.value][1 if lang == "en" else 0]
        out.append((check.status.value, _STATUS_MARK[check.status], word, _f(name, lang), check.text(lang)))
    if sig.kind == "signature":
        word = _STATUS_WORDS["info"][1 if lang == "en" else 0]
        out.append(("info", "ℹ", word, _f("long_term", lang), _long_term_text(sig, lang)))
    return out


def render_text(report: VerificationReport, lang: str = "vi", *, color: bool = False) -> str:
    """A plain-text report for terminals (``color`` adds ANSI colours to the verdicts)."""

    def paint(text: str, outcome: Outcome) -> str:
        if not color:
            return text
        code = {"valid": "32", "invalid": "31"}.get(outcome.value, "33")
        return f"\x1b[1;{code}m{text}\x1b[0m"

    lines: list[str] = []
    doc = report.document
    lines.append(f"{_w('file', lang)}: {doc.name or '—'}  ({_size(doc.size)}, SHA-256 {doc.sha256[:16]}…)")
    verdict = report.label(lang).upper()
    ind = report.indication.value + (f" / {report.sub_indication.value}" if report.sub_indication else "")
    lines.append(f"{_w('conclusion', lang)}: {paint(verdict, report.outcome)}  [{ind}]")
    lines.append(f"{_w('validation_time', lang)}: {fmt_time(report.validation_time, lang)}"
                 + (f"  ({_w('offline', lang)})" if report.offline else ""))
    if report.reasons:
        lines.append(f"{_w('reasons', lang)}:")
        lines.extend(f"  - {m.text(lang)}" for m in report.reasons)
    elif report.valid:
        lines.append("  " + _w("all_valid", lang).format(n=len(report.signatures)))
    if report.warnings:
        lines.append(f"{_w('warnings', lang)}:")
        lines.extend(f"  ! {m.text(lang)}" for m in report.warnings)
    for sig in report.signatures:
        ind = sig.indication.value + (f" / {sig.sub_indication.value}" if sig.sub_indication else "")
        lines.append("")
        word = paint(sig.label_en if lang == "en" else sig.label_vi, sig.outcome)
        lines.append(f"── {sig.title(lang)}: {word} [{ind}]")
        width = max(len(label) for label, _ in _sig_rows(sig, lang)) + 1
        for label, value in _sig_rows(sig, lang):
            lines.append(f"   {label:<{width}} {value}")
        for _status, mark, _word, label, text in _checks(sig, lang):
            lines.append(f"   {mark} {label}: {text}")
        for m in sig.reasons:
            lines.append(f"   ✘ {m.text(lang)}")
        for m in sig.warnings:
            lines.append(f"   ! {m.text(lang)}")
    if report.last_signature_covers_file is not None:
        lines.append("")
        lines.append(f"{_w('last_covers', lang)}: "
                     f"{_w('yes', lang) if report.last_signature_covers_file else _w('no', lang)}")
    if report.policy is not None:
        p = report.policy
        lines.append("")
        title = _w("policy_appendix" if p.name == "nd30-appendix" else "policy", lang)
        lines.append(f"{title}: {_w('passed', lang) if p.passed else _w('failed', lang)}"
                     + (f"  ({_w('sender', lang)}: {p.sender})" if p.sender else ""))
        for r in p.rules:
            lines.append(f"   {'✔' if r.passed else '✘'} {r.text(lang)}")
    return "\n".join(lines) + "\n"


@cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("docexchange.verify", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _view(report: VerificationReport, lang: str) -> dict[str, Any]:
    doc = report.document
    sigs = []
    for sig in report.signatures:
        sigs.append({
            "title": sig.title(lang),
            "outcome": sig.outcome.value,
            "label": sig.label_en if lang == "en" else sig.label_vi,
            "indication": sig.indication.value + (f" / {sig.sub_indication.value}" if sig.sub_indication else ""),
            "rows": _sig_rows(sig, lang),
            "checks": _checks(sig, lang),
            "reasons": [m.text(lang) for m in sig.reasons],
            "warnings": [m.text(lang) for m in sig.warnings],
            "timestamps": [
                {
                    "kind": _w("doc_ts", lang) if t.kind == "document_timestamp" else _f("timestamp", lang),
                    "time": fmt_time(t.time, lang),
                    "tsa": t.tsa.display_name if t.tsa else "—",
                    "ok": t.passed,
                }
                for t in sig.timestamps
            ],
        })
    policy = None
    if report.policy is not None:
        p = report.policy
        policy = {
            "title": _w("policy_appendix" if p.name == "nd30-appendix" else "policy", lang),
            "passed": p.passed,
            "verdict": _w("passed", lang) if p.passed else _w("failed", lang),
            "sender": p.sender,
            "rules": [(r.passed, r.text(lang)) for r in p.rules],
        }
    return {
        "lang": "en" if lang == "en" else "vi",
        "w": {k: _w(k, lang) for k in _WORDS},
        "outcome": report.outcome.value,
        "label": report.label(lang),
        "indication": report.indication.value + (f" / {report.sub_indication.value}" if report.sub_indication else ""),
        "doc": {
            "name": doc.name or "—",
            "size": _size(doc.size),
            "sha256": doc.sha256,
            "pages": doc.pages,
            "revisions": doc.revisions,
        },
        "validation_time": fmt_time(report.validation_time, lang),
        "generated_at": fmt_time(report.generated_at, lang),
        "mode": _w("offline", lang) if report.offline else _w("online", lang),
        "reasons": [m.text(lang) for m in report.reasons],
        "warnings": [m.text(lang) for m in report.warnings],
        "all_valid": _w("all_valid", lang).format(n=len(report.signatures)) if report.valid else "",
        "error": report.error.text(lang) if report.error else "",
        "signatures": sigs,
        "last_covers": (None if report.last_signature_covers_file is None else
                        (_w("yes", lang) if report.last_signature_covers_file else _w("no", lang))),
        "policy": policy,
        "schema_version": report.schema_version,
        "fonts": "",
    }


def render_html(report: VerificationReport, lang: str = "vi", *, embed_fonts: bool = True) -> str:
    """A standalone printable HTML page (A4); the fonts it needs are embedded, subset to the page's text, so
    Vietnamese renders the same on any machine."""
    template = _environment().get_template("report.html")
    view = _view(report, lang)
    html: str = template.render(**view)
    if embed_fonts:
        view["fonts"] = _font_css(frozenset(html))
        html = template.render(**view)
    return html


@cache
def _font_css(chars: frozenset[str]) -> str:
    import base64
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    from docexchange.fonts import find_font

    # CSS may change case (text-transform): include both cases of every letter on the page
    cased = set(chars) | {c.upper() for c in chars} | {c.lower() for c in chars}
    text = "".join(sorted(c for c in cased if len(c) == 1)) + "0123456789–—…"
    css = []
    for bold in (False, True):
        path = find_font("serif", bold=bold)
        font = TTFont(str(path), lazy=False)
        options = subset.Options()
        options.drop_tables += ["DSIG", "FFTM"]
        options.hinting = False
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=text)
        subsetter.subset(font)
        buf = io.BytesIO()
        font.save(buf)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        css.append(
            "@font-face{font-family:'DX Serif';font-style:normal;"
            f"font-weight:{700 if bold else 400};src:url(data:font/ttf;base64,{data}) format('truetype');}}"
        )
    return "\n".join(css)


def build_json_schema() -> dict[str, Any]:
    """Derive the JSON Schema of :meth:`VerificationReport.to_dict` from the dataclasses (the shipped
    ``report.schema.json`` is this, written out; a test keeps them equal)."""
    defs: dict[str, Any] = {}

    def type_schema(tp: Any) -> dict[str, Any]:
        origin = get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            inner = type_schema(args[0])
            return {"anyOf": [inner, {"type": "null"}]}
        if origin is tuple:
            return {"type": "array", "items": type_schema(get_args(tp)[0])}
        if isinstance(tp, type) and is_dataclass(tp):
            name = tp.__name__
            if name not in defs:
                defs[name] = {}  # placeholder against recursion
                defs[name] = object_schema(tp)
            return {"$ref": f"#/$defs/{name}"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        if tp is datetime:
            return {"type": "string", "format": "date-time"}
        if tp is bool:
            return {"type": "boolean"}
        if tp is int:
            return {"type": "integer"}
        if tp is str:
            return {"type": "string"}
        raise TypeError(f"no JSON schema for {tp!r}")

    def object_schema(cls: type) -> dict[str, Any]:
        hints = _hints(cls)
        props = {f.name: type_schema(hints[f.name]) for f in fields(cls)}
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        out: dict[str, Any] = {"type": "object", "properties": props, "required": sorted(props),
                               "additionalProperties": False}
        if doc:
            out["description"] = doc
        return out

    label_schema = {"type": "object", "properties": {"vi": {"type": "string"}, "en": {"type": "string"}},
                    "required": ["vi", "en"], "additionalProperties": False}
    root = object_schema(VerificationReport)
    root["properties"].pop("schema_version")
    root["required"].remove("schema_version")
    root["properties"]["schema"] = {"const": SCHEMA_ID}
    root["properties"]["schema_version"] = {"type": "string", "pattern": r"^1\.[0-9]+$"}
    root["properties"]["label"] = label_schema
    root["required"] = sorted([*root["required"], "schema", "schema_version", "label"])
    sig = defs["SignatureReport"]
    sig["properties"]["label"] = label_schema
    sig["properties"]["issuing_ca"] = {"type": "string"}
    sig["properties"]["signing_time"] = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
    sig["required"] = sorted([*sig["required"], "label", "issuing_ca", "signing_time"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID}/{SCHEMA_VERSION}",
        "title": "docexchange verification report",
        "description": (
            "Result of verifying a signed PDF: ETSI EN 319 102-1 indications per signature and per document, "
            "the fields TT 15/2025/TT-BKHCN requires, and the NĐ 30/2020 profile. Times are ISO 8601 in Vietnam "
            "time (+07:00)."
        ),
        **root,
        "$defs": dict(sorted(defs.items())),
    }
