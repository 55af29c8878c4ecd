"""The NĐ 30/2020 profile: who must have signed an official e-document, and in which order.

* ``nd30`` — a main document: the competent **person** signs first, then the **organisation** (the clerk applies
  the agency's seal signature last); the organisation's certificate is the one pinned for the sending agency.
* ``nd30-appendix`` — an appendix, attachment or electronic copy: signed by the **organisation** (no person
  signature required); the organisation's certificate is the sending agency's.

Each rule has a stable id and a Vietnamese-first message; a failed rule is named in the report. The profile
only adds constraints: it never turns a signature that failed PAdES validation into a valid one. A document
that is cryptographically valid but fails a rule is ``INDETERMINATE / SIG_CONSTRAINTS_FAILURE`` (ETSI: the
validation constraints of the policy are not met), shown "chưa xác định" with the failed rules as reasons.

**Pins.** The organisation certificate expected for an agency is looked up in one place,
:func:`pinned_seal_fingerprints`: the agency's ``keys/agencies/<code>/seal.crt`` (the dev PKI's, or the real
certificate the operator installs there) and, when the directory entry carries one, its ``seal_cert_sha256``
(one fingerprint or a list). Aliases (old codes of merged agencies) resolve to the surviving agency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.errors import UnknownAgency
from docexchange.verify.report import (
    HolderKind,
    Indication,
    Message,
    Outcome,
    PolicyResult,
    PolicyRule,
    SignatureReport,
    SubIndication,
    VerificationReport,
)

__all__ = ["POLICIES", "SealPins", "apply_policy", "evaluate", "pinned_seal_fingerprints"]

POLICIES = ("nd30", "nd30-appendix")


def _fingerprint_file(path: Any) -> str | None:
    from cryptography import x509

    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        cert = (x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data
                else x509.load_der_x509_certificate(data))
    except ValueError:
        return None
    from cryptography.hazmat.primitives import serialization

    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _directory_pins(directory: Directory | None, code: str) -> set[str]:
    if directory is None:
        return set()
    try:
        agency = directory.agency(code)
    except UnknownAgency:
        return set()
    raw = getattr(agency, "seal_cert_sha256", None)
    if not raw:
        return set()
    values = [raw] if isinstance(raw, str) else list(raw)
    return {v.strip().lower().replace(":", "") for v in values if v}


def pinned_seal_fingerprints(code: str, settings: Settings, directory: Directory | None = None) -> frozenset[str]:
    """SHA-256 fingerprints (lower-case hex) of the organisation certificates pinned for agency ``code``.

    The one lookup the verifier and the exchange share: ``keys/agencies/<code>/seal.crt`` and the directory's
    optional ``seal_cert_sha256``. ``code`` may be an alias; an unknown code has no pins.
    """
    canonical = code.strip()
    if directory is not None:
        try:
            canonical = directory.resolve(canonical)
        except UnknownAgency:
            return frozenset()
    pins = _directory_pins(directory, canonical)
    fp = _fingerprint_file(settings.keys_dir / "agencies" / canonical / "seal.crt")
    if fp is not None:
        pins.add(fp)
    return frozenset(pins)


@dataclass(frozen=True)
class SealPins:
    """Pinned organisation certificates of every agency in the directory, read once."""

    by_agency: Mapping[str, frozenset[str]] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> SealPins:
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings, directory: Directory | None) -> SealPins:
        if directory is None:
            return cls()
        by_agency = {}
        names = {}
        aliases = {}
        for agency in directory:
            by_agency[agency.code] = pinned_seal_fingerprints(agency.code, settings, directory)
            names[agency.code] = agency.name
            for alias in agency.aliases:
                aliases[alias] = agency.code
        return cls(by_agency, names, aliases)

    @classmethod
    def from_mapping(cls, pins: Mapping[str, Iterable[str]], names: Mapping[str, str] | None = None) -> SealPins:
        return cls({k: frozenset(x.lower() for x in v) for k, v in pins.items()}, dict(names or {}))

    def canonical(self, code: str) -> str:
        return self.aliases.get(code.strip(), code.strip())

    def for_agency(self, code: str) -> frozenset[str]:
        return self.by_agency.get(self.canonical(code), frozenset())

    def agency_of(self, fingerprint: str) -> str | None:
        for code, fps in self.by_agency.items():
            if fingerprint in fps:
                return code
        return None

    def name(self, code: str) -> str:
        return self.names.get(self.canonical(code), code)


def _rule(rule_id: str, passed: bool, vi: str, en: str) -> PolicyRule:
    return PolicyRule(rule_id, passed, vi, en)


def evaluate(report: VerificationReport, policy: str, *, sender: str | None, pins: SealPins,
             directory: Directory | None = None) -> PolicyResult:
    """The rules of ``policy`` applied to ``report``."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    sigs: list[SignatureReport] = [s for s in report.signatures if s.kind == "signature"]
    rules: list[PolicyRule] = []
    sender_code = pins.canonical(sender) if sender else ""
    if sender and directory is not None:
        try:
            sender_code = directory.resolve(sender)
        except UnknownAgency:
            rules.append(_rule("nd30.sender_known", False, f"cơ quan gửi {sender} không có trong danh bạ",
                               f"the sending agency {sender} is not in the directory"))
    all_valid = bool(sigs) and all(s.indication == Indication.TOTAL_PASSED for s in report.signatures)
    rules.append(_rule(
        "nd30.signatures_valid", all_valid,
        "tất cả chữ ký số trong văn bản hợp lệ" if all_valid else "có chữ ký số không hợp lệ hoặc chưa xác định",
        "every signature in the document is valid" if all_valid else "some signature is not valid or indeterminate",
    ))

    def is_org(s: SignatureReport) -> bool:
        if s.signer is None:
            return False
        return s.signer.holder_kind == HolderKind.ORGANIZATION or pins.agency_of(s.signer.sha256) is not None

    def is_person(s: SignatureReport) -> bool:
        return s.signer is not None and s.signer.holder_kind == HolderKind.PERSON and not is_org(s)

    org = sigs[-1] if sigs and is_org(sigs[-1]) else None
    seal_agency = ""
    if policy == "nd30":
        persons = [s for s in sigs if is_person(s)]
        rules.append(_rule(
            "nd30.person_signature", bool(persons),
            f"có chữ ký số của người có thẩm quyền ({persons[0].signer_name})" if persons
            else "thiếu chữ ký số của người có thẩm quyền (chứng thư cá nhân)",
            f"signed by the competent person ({persons[0].signer_name})" if persons
            else "no signature of the competent person (personal certificate)",
        ))
    rules.append(_rule(
        "nd30.organisation_signature", org is not None,
        f"chữ ký số của cơ quan, tổ chức được ký sau cùng ({org.signer_name})" if org is not None
        else "chữ ký số cuối cùng không phải của cơ quan, tổ chức (thiếu chữ ký số của văn thư cơ quan)",
        f"the organisation's signature comes last ({org.signer_name})" if org is not None
        else "the last signature is not the organisation's (the agency's seal signature is missing)",
    ))
    if policy == "nd30":
        persons = [s for s in sigs if is_person(s)]
        ordered = org is not None and bool(persons) and persons[0].revision < org.revision
        rules.append(_rule(
            "nd30.order", ordered,
            "người có thẩm quyền ký trước, cơ quan ký sau" if ordered
            else "thứ tự ký không đúng: người có thẩm quyền phải ký trước chữ ký số của cơ quan",
            "the person signed first, the organisation after" if ordered
            else "wrong order: the competent person must sign before the organisation",
        ))
    if org is not None and org.signer is not None:
        fp = org.signer.sha256
        owner = pins.agency_of(fp) or ""
        seal_agency = owner
        if sender_code:
            ok = fp in pins.for_agency(sender_code)
            owner_text = f"{pins.name(owner)} ({owner})" if owner else "không thuộc cơ quan nào trong danh bạ"
            owner_text_en = f"{pins.name(owner)} ({owner})" if owner else "not pinned for any agency in the directory"
            rules.append(_rule(
                "nd30.seal_of_sender", ok,
                f"chữ ký số của cơ quan là của cơ quan gửi {pins.name(sender_code)} ({sender_code})" if ok
                else f"chữ ký số của cơ quan không phải của cơ quan gửi {pins.name(sender_code)} ({sender_code}): "
                     f"chứng thư {owner_text}",
                f"the organisation signature belongs to the sender {pins.name(sender_code)} ({sender_code})" if ok
                else f"the organisation signature is not the sender's {pins.name(sender_code)} ({sender_code}): "
                     f"the certificate is {owner_text_en}",
            ))
        else:
            rules.append(_rule(
                "nd30.seal_pinned", bool(owner),
                f"chứng thư của cơ quan đã đăng ký cho {pins.name(owner)} ({owner})" if owner
                else "chứng thư của cơ quan không được đăng ký cho cơ quan nào trong danh bạ",
                f"the organisation certificate is pinned for {pins.name(owner)} ({owner})" if owner
                else "the organisation certificate is not pinned for any agency in the directory",
            ))
    elif sender_code:
        rules.append(_rule(
            "nd30.seal_of_sender", False,
            f"không có chữ ký số của cơ quan gửi {pins.name(sender_code)} ({sender_code})",
            f"no signature of the sending agency {pins.name(sender_code)} ({sender_code})",
        ))
    passed = all(r.passed for r in rules)
    return PolicyResult(policy, passed, tuple(rules), sender=sender_code, seal_agency=seal_agency)


def apply_policy(report: VerificationReport, policy: str, *, sender: str | None, pins: SealPins,
                 directory: Directory | None = None) -> VerificationReport:
    """``report`` with the policy's result attached; a valid document failing a rule becomes
    ``INDETERMINATE / SIG_CONSTRAINTS_FAILURE`` with the failed rules as reasons."""
    result = evaluate(report, policy, sender=sender, pins=pins, directory=directory)
    if result.passed:
        return replace(report, policy=result)
    failed = [r for r in result.rules if not r.passed and r.id != "nd30.signatures_valid"]
    extra = tuple(Message(r.id, f"Không đạt quy định NĐ 30: {r.vi}", f"NĐ 30 rule not met: {r.en}") for r in failed)
    if report.outcome == Outcome.VALID:
        return replace(report, policy=result, outcome=Outcome.INDETERMINATE, indication=Indication.INDETERMINATE,
                       sub_indication=SubIndication.SIG_CONSTRAINTS_FAILURE, reasons=report.reasons + extra)
    return replace(report, policy=result, reasons=report.reasons + extra)
