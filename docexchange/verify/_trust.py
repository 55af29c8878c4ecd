"""Certificates, paths to the trust anchors, revocation (OCSP/CRL), and the algorithm policy of TT 15/2025.

Everything here is a pure function of immutable inputs (certificate, OCSP and CRL bytes, the anchors), so the
results are cached by content hash in a long-lived :class:`TrustEngine`: in a government PKI the same few CA
chains and revocation answers recur in every document, and re-deriving them is most of the cost of validation.
What is cached is never a verdict on a document: signatures, digests, times and freshness are judged afresh
for every document; only "this certificate's signature was made by that key", "this path satisfies RFC 5280
apart from time and revocation", "this OCSP response is signed by a responder authorised by that CA" and
"this CRL is signed by that CA and lists these serials" are remembered.

Paths are built cryptographically (candidate issuers by normalised name, confirmed by verifying the
certificate's signature with the issuer's key), then checked structurally by pyhanko-certvalidator (RFC 5280
path validation with validity periods and revocation handled here, against the document's own times).
Revocation follows TT 15/2025 §5: embedded data first (DSS, CMS revocation attributes), then online OCSP and
CRL where allowed, with a freshness policy; when neither answers the report carries a warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from asn1crypto import algos as asn1_algos
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator import errors as cv_errors
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import NO_REVOCATION, CertRevTrustPolicy, DisallowWeakAlgorithmsPolicy
from pyhanko_certvalidator.sig_validate import DefaultSignatureValidator
from pyhanko_certvalidator.validate import async_validate_path

from docexchange.verify.report import CertificateInfo, HolderKind, RevocationState, RevocationStatus, SubIndication

__all__ = [
    "LRU",
    "AlgorithmVerdict",
    "Answer",
    "CertRecord",
    "OnlineError",
    "PathResult",
    "RevocationResult",
    "TrustEngine",
    "TrustParams",
    "digest_allowed",
    "http_fetch",
    "name_key",
    "name_text",
    "parse_cert",
    "public_key_allowed",
    "signature_mechanism_allowed",
    "verify_raw",
]

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small bounded mapping; least recently used entries go first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        try:
            value = self._data[key]
        except KeyError:
            self.misses += 1
            return None
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> V:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


# --------------------------------------------------------------------------------------------- algorithms
ALLOWED_DIGESTS = frozenset({"sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512"})
ALLOWED_CURVES = frozenset(
    {"secp256r1", "secp384r1", "secp521r1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"}
)
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class AlgorithmVerdict:
    ok: bool
    vi: str = ""
    en: str = ""


def digest_allowed(name: str) -> AlgorithmVerdict:
    n = name.lower().replace("-", "")
    if n in ALLOWED_DIGESTS:
        return AlgorithmVerdict(True)
    shown = name.upper()
    return AlgorithmVerdict(
        False,
        f"hàm băm {shown} không được chấp nhận (TT 15/2025 chỉ cho phép SHA-2, SHA-3)",
        f"digest {shown} not accepted (TT 15/2025 allows SHA-2 and SHA-3 only)",
    )


def public_key_allowed(info: asn1_keys.PublicKeyInfo) -> AlgorithmVerdict:
    algo = info.algorithm
    if algo in ("rsa", "rsassa_pss"):
        bits = info.bit_size
        if bits >= MIN_RSA_BITS:
            return AlgorithmVerdict(True)
        return AlgorithmVerdict(
            False,
            f"khóa RSA {bits} bit quá ngắn (TT 15/2025 yêu cầu tối thiểu {MIN_RSA_BITS} bit)",
            f"RSA key of {bits} bits is too short (TT 15/2025 requires at least {MIN_RSA_BITS})",
        )
    if algo == "ec":
        try:
            curve = info.curve[1]
        except (ValueError, TypeError):
            curve = "?"
        if curve in ALLOWED_CURVES:
            return AlgorithmVerdict(True)
        return AlgorithmVerdict(
            False,
            f"đường cong ECDSA {curve} không được chấp nhận (tối thiểu 256 bit)",
            f"ECDSA curve {curve} not accepted (at least 256 bits)",
        )
    return AlgorithmVerdict(
        False,
        f"thuật toán khóa {algo} không thuộc danh mục TT 15/2025 (RSA, ECDSA)",
        f"key algorithm {algo} is not one TT 15/2025 allows (RSA, ECDSA)",
    )


def signature_mechanism_allowed(sig_algo: asn1_algos.SignedDigestAlgorithm) -> AlgorithmVerdict:
    try:
        mech = sig_algo.signature_algo
    except ValueError:
        mech = str(sig_algo["algorithm"].native)
    if mech not in ("rsassa_pkcs1v15", "rsassa_pss", "ecdsa"):
        return AlgorithmVerdict(
            False,
            f"thuật toán chữ ký {mech} không thuộc danh mục TT 15/2025",
            f"signature algorithm {mech} is not one TT 15/2025 allows",
        )
    try:
        hash_algo = sig_algo.hash_algo
    except ValueError:
        return AlgorithmVerdict(True)  # hash given separately (CMS digest algorithm); checked there
    return digest_allowed(hash_algo)


_SIG_VALIDATOR = DefaultSignatureValidator()


def verify_raw(
    signature: bytes, signed_data: bytes, key: asn1_keys.PublicKeyInfo, algo: asn1_algos.SignedDigestAlgorithm
) -> bool:
    """Verify a signature; any failure (bad signature, unsupported or malformed algorithm) is False."""
    try:
        _SIG_VALIDATOR.validate_signature(signature, signed_data, key, algo)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, KeyError, AssertionError) as exc:
        log.debug("signature does not verify: %s", exc)
        return False
    except Exception as exc:
        log.debug("signature verification error: %r", exc)
        return False
    return True


# --------------------------------------------------------------------------------------------- certificates
def _utc(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = []
    for a in name.get_attributes_for_oid(oid):
        v = a.value
        values.append(v if isinstance(v, str) else v.decode("utf-8", "replace"))
    return ", ".join(values)


def _attrs(name: x509.Name, oid: x509.ObjectIdentifier) -> tuple[str, ...]:
    out = []
    for a in name.get_attributes_for_oid(oid):
        v = a.value
        out.append(v if isinstance(v, str) else v.decode("utf-8", "replace"))
    return tuple(out)


_RDN_LABELS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.TITLE: "T",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.COUNTRY_NAME: "C",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "E",
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.GIVEN_NAME: "G",
    NameOID.SURNAME: "SN",
}


def name_text(name: x509.Name) -> str:
    """``CN=…, O=…, C=VN`` with Unicode kept as is (readable for people, unlike RFC 4514 escaping)."""
    parts = []
    for rdn in reversed(list(name.rdns)):
        for a in rdn:
            key = _RDN_LABELS.get(a.oid, a.oid.dotted_string)
            v = a.value if isinstance(a.value, str) else a.value.hex()
            parts.append(f"{key}={v}")
    return ", ".join(parts)


_PERSON_PREFIXES = ("CCCD:", "CMND:", "HC:", "CMTND:", "CMT:", "PASSPORT:", "DDCN:")
_ORG_PREFIXES = ("MST:", "MNS:", "MDV:", "MQHNS:", "MSDN:", "MCQ:")


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> Any:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None


@dataclass
class CertRecord:
    """A certificate parsed once, with what path building and reports need."""

    der: bytes
    fp: str
    x: x509.Certificate
    asn1: asn1_x509.Certificate
    subject_key: str
    issuer_key: str
    ski: bytes | None
    aki: bytes | None
    is_ca: bool
    not_before: datetime
    not_after: datetime
    self_issued: bool
    ocsp_nocheck: bool
    ocsp_urls: tuple[str, ...]
    crl_urls: tuple[str, ...]
    eku: tuple[str, ...]
    key_usage: tuple[str, ...]
    _info: CertificateInfo | None = field(default=None, repr=False)

    @property
    def serial(self) -> int:
        return self.x.serial_number

    @property
    def common_name(self) -> str:
        return _attr(self.x.subject, NameOID.COMMON_NAME) or name_text(self.x.subject)

    def valid_at(self, moment: datetime) -> bool:
        return self.not_before <= moment <= self.not_after

    @property
    def info(self) -> CertificateInfo:
        if self._info is None:
            self._info = _make_info(self)
        return self._info


def _key_usage(cert: x509.Certificate) -> tuple[str, ...]:
    ku = _ext(cert, ExtensionOID.KEY_USAGE)
    if ku is None:
        return ()
    names = []
    for attr in ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign"):
        if getattr(ku, attr):
            names.append("non_repudiation" if attr == "content_commitment" else attr)
    if ku.key_agreement:
        if ku.encipher_only:
            names.append("encipher_only")
        if ku.decipher_only:
            names.append("decipher_only")
    return tuple(names)


_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "server_auth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "client_auth",
    ExtendedKeyUsageOID.CODE_SIGNING: "code_signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "email_protection",
    ExtendedKeyUsageOID.TIME_STAMPING: "time_stamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "ocsp_signing",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "any",
}


def name_key(name: asn1_x509.Name) -> str:
    """RFC 5280 §7.1 comparison key of a distinguished name (raw DER for names that defeat stringprep)."""
    try:
        return str(name.hashable)
    except (ValueError, TypeError, KeyError):
        return "der:" + name.dump().hex()


def parse_cert(der: bytes) -> CertRecord:
    """Parse a DER certificate (raises ValueError on garbage)."""
    xc = x509.load_der_x509_certificate(der)
    ac = asn1_x509.Certificate.load(der)
    fp = hashlib.sha256(der).hexdigest()
    ski_ext = _ext(xc, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    aki_ext = _ext(xc, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    bc = _ext(xc, ExtensionOID.BASIC_CONSTRAINTS)
    eku_ext = _ext(xc, ExtensionOID.EXTENDED_KEY_USAGE)
    aia = _ext(xc, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    cdp = _ext(xc, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    ocsp_urls: list[str] = []
    if aia is not None:
        for desc in aia:
            if desc.access_method == x509.AuthorityInformationAccessOID.OCSP and isinstance(
                desc.access_location, x509.UniformResourceIdentifier
            ):
                ocsp_urls.append(desc.access_location.value)
    crl_urls: list[str] = []
    if cdp is not None:
        for dp in cdp:
            for gn in dp.full_name or ():
                if isinstance(gn, x509.UniformResourceIdentifier):
                    crl_urls.append(gn.value)
    subject_key = name_key(ac.subject)
    issuer_key = name_key(ac.issuer)
    return CertRecord(
        der=der,
        fp=fp,
        x=xc,
        asn1=ac,
        subject_key=subject_key,
        issuer_key=issuer_key,
        ski=ski_ext.digest if ski_ext is not None else None,
        aki=aki_ext.key_identifier if aki_ext is not None else None,
        is_ca=bool(bc.ca) if bc is not None else False,
        not_before=_utc(xc.not_valid_before_utc),
        not_after=_utc(xc.not_valid_after_utc),
        self_issued=subject_key == issuer_key,
        ocsp_nocheck=_ext(xc, ExtensionOID.OCSP_NO_CHECK) is not None,
        ocsp_urls=tuple(ocsp_urls),
        crl_urls=tuple(crl_urls),
        eku=tuple(_EKU_NAMES.get(o, o.dotted_string) for o in eku_ext) if eku_ext is not None else (),
        key_usage=_key_usage(xc),
    )


def _key_text(ac: asn1_x509.Certificate) -> str:
    info = ac.public_key
    try:
        if info.algorithm in ("rsa", "rsassa_pss"):
            return f"RSA {info.bit_size}"
        if info.algorithm == "ec":
            return f"ECDSA {info.curve[1]}"
        return info.algorithm.upper()
    except (ValueError, TypeError, KeyError):
        return "?"


def _make_info(rec: CertRecord) -> CertificateInfo:
    x = rec.x
    uids = _attrs(x.subject, NameOID.USER_ID)
    cn = _attr(x.subject, NameOID.COMMON_NAME)
    org = _attr(x.subject, NameOID.ORGANIZATION_NAME)
    if rec.is_ca:
        kind = HolderKind.CA
    elif "time_stamping" in rec.eku:
        kind = HolderKind.TSA
    elif "ocsp_signing" in rec.eku:
        kind = HolderKind.OCSP
    elif any(u.upper().startswith(_PERSON_PREFIXES) for u in uids) or _attrs(x.subject, NameOID.GIVEN_NAME):
        kind = HolderKind.PERSON
    elif any(u.upper().startswith(_ORG_PREFIXES) for u in uids) or (cn and cn == org):
        kind = HolderKind.ORGANIZATION
    elif _attrs(x.subject, NameOID.TITLE):
        kind = HolderKind.PERSON
    else:
        kind = HolderKind.UNKNOWN
    email = _attr(x.subject, NameOID.EMAIL_ADDRESS)
    return CertificateInfo(
        subject=name_text(x.subject),
        common_name=cn,
        organization=org,
        issuer=name_text(x.issuer),
        issuer_common_name=_attr(x.issuer, NameOID.COMMON_NAME),
        issuer_organization=_attr(x.issuer, NameOID.ORGANIZATION_NAME),
        serial=f"{x.serial_number:x}",
        sha256=rec.fp,
        valid_from=rec.not_before,
        valid_until=rec.not_after,
        holder_kind=kind,
        organizational_unit=_attr(x.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
        title=_attr(x.subject, NameOID.TITLE),
        locality=_attr(x.subject, NameOID.LOCALITY_NAME),
        country=_attr(x.subject, NameOID.COUNTRY_NAME),
        email=email,
        identifiers=uids,
        key=_key_text(rec.asn1),
        key_usage=rec.key_usage,
        extended_key_usage=rec.eku,
    )


# --------------------------------------------------------------------------------------------- paths
@dataclass(frozen=True)
class PathResult:
    """A path from a certificate to an anchor, or why there is none. Time and revocation are not judged here."""

    certs: tuple[CertRecord, ...]
    """The certificate first, then its issuers; the anchor last when ``trusted``."""
    trusted: bool
    sub_indication: SubIndication | None = None
    vi: str = ""
    en: str = ""

    @property
    def anchor(self) -> CertRecord | None:
        return self.certs[-1] if self.trusted else None


@dataclass(frozen=True)
class TrustParams:
    anchors: tuple[bytes, ...]
    """DER trust anchors."""
    known_certs: tuple[bytes, ...] = ()
    """DER certificates that may help build paths (issuing CAs); never trusted by themselves."""
    freshness: timedelta = timedelta(hours=24)
    allow_online: bool = True
    online_timeout: float = 5.0
    max_online_bytes: int = 20 * 1024 * 1024


class _Pool:
    """Candidate issuers for one document: anchors, configured CAs, and the certificates the document carries."""

    def __init__(self, records: Iterable[CertRecord]) -> None:
        self.by_subject: dict[str, list[CertRecord]] = {}
        self.by_fp: dict[str, CertRecord] = {}
        for r in records:
            self.add(r)

    def add(self, r: CertRecord) -> None:
        if r.fp in self.by_fp:
            return
        self.by_fp[r.fp] = r
        self.by_subject.setdefault(r.subject_key, []).append(r)

    def issuers_of(self, cert: CertRecord) -> list[CertRecord]:
        out = [c for c in self.by_subject.get(cert.issuer_key, ()) if c.fp != cert.fp]
        if cert.aki is not None:
            out.sort(key=lambda c: 0 if c.ski == cert.aki else 1)
        return out


MAX_PATH = 10
DOWN_FOR = timedelta(seconds=60)
"""How long a host that failed to answer is not asked again."""
_HUGE = timedelta(days=365 * 200)
_STRUCT_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------------------- revocation
@dataclass(frozen=True)
class Answer:
    """One usable revocation answer about one certificate."""

    source: str
    """``embedded_ocsp``, ``embedded_crl``, ``online_ocsp``, ``online_crl``."""
    status: str
    """``good``, ``revoked`` or ``unknown`` (the responder does not know the certificate)."""
    this_update: datetime
    next_update: datetime | None
    revoked_at: datetime | None = None
    reason: str = ""

    @property
    def hold(self) -> bool:
        return self.reason == "certificate_hold"


@dataclass(frozen=True)
class _OcspParsed:
    ok: bool
    problem: str
    produced_at: datetime | None
    singles: tuple[tuple[str, bytes, bytes, int, str, datetime, datetime | None, datetime | None, str], ...]
    """(hash algorithm, issuer name hash, issuer key hash, serial, status, this, next, revoked_at, reason)."""


@dataclass(frozen=True)
class _CrlParsed:
    ok: bool
    problem: str
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked: dict[int, tuple[datetime, str]] = field(default_factory=dict)
    only_user: bool = False
    only_ca: bool = False
    partial: bool = False
    dp_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class RevocationResult:
    status: RevocationStatus
    answer: Answer | None
    online: bool = False


_REASONS = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "key_compromise",
    x509.ReasonFlags.ca_compromise: "ca_compromise",
    x509.ReasonFlags.affiliation_changed: "affiliation_changed",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessation_of_operation",
    x509.ReasonFlags.certificate_hold: "certificate_hold",
    x509.ReasonFlags.privilege_withdrawn: "privilege_withdrawn",
    x509.ReasonFlags.aa_compromise: "aa_compromise",
    x509.ReasonFlags.remove_from_crl: "remove_from_crl",
}


def _hash_for(name: str) -> hashes.HashAlgorithm | None:
    return {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(),  # noqa: S303
            "sha512": hashes.SHA512(), "sha224": hashes.SHA224()}.get(name)


def _issuer_key_bits(issuer: CertRecord) -> bytes:
    return bytes(issuer.asn1["tbs_certificate"]["subject_public_key_info"]["public_key"].contents[1:])


def _issuer_name_der(issuer: CertRecord) -> bytes:
    return issuer.x.subject.public_bytes()


class OnlineError(Exception):
    pass


def http_fetch(url: str, body: bytes | None, content_type: str, timeout: float, limit: int) -> bytes:
    """GET or POST over http(s) with a timeout and a size limit (no other schemes, no redirects to them)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise OnlineError(f"unsupported URL scheme in {url!r}")
    headers = {"User-Agent": "docexchange-verifier"}
    if body is not None:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            data: bytes = resp.read(limit + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OnlineError(f"{url}: {exc}") from exc
    if len(data) > limit:
        raise OnlineError(f"{url}: answer larger than {limit} bytes")
    return data


Fetch = Callable[[str, bytes | None, str, float, int], bytes]


class TrustEngine:
    """Long-lived: anchors, caches and the online fetcher. Not thread-safe (one per worker)."""

    def __init__(self, params: TrustParams, fetch: Fetch | None = None, cache_size: int = 4096) -> None:
        self.params = params
        self.fetch: Fetch = fetch or http_fetch
        self._certs: LRU[str, CertRecord] = LRU(cache_size * 4)
        self._edges: LRU[tuple[str, str], bool] = LRU(cache_size * 4)
        self._paths: LRU[tuple[str, ...], tuple[SubIndication | None, str, str]] = LRU(cache_size)
        self._ocsp: LRU[tuple[str, str], _OcspParsed] = LRU(cache_size)
        self._ocsp_raw: LRU[str, tuple[tuple[Any, ...], ...]] = LRU(cache_size)
        self._crl: LRU[tuple[str, str], _CrlParsed] = LRU(256)
        self._crl_issuer: LRU[str, str] = LRU(256)
        self._names: LRU[bytes, str] = LRU(cache_size * 4)
        self._online_ocsp: LRU[tuple[str, int], tuple[bytes, datetime]] = LRU(cache_size)
        self._online_crl: LRU[str, tuple[bytes, datetime]] = LRU(256)
        self._down: dict[str, datetime] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.anchors: dict[str, CertRecord] = {}
        for der in params.anchors:
            rec = self.cert(der)
            self.anchors[rec.fp] = rec
        self.known: list[CertRecord] = []
        for der in params.known_certs:
            try:
                self.known.append(self.cert(der))
            except ValueError:
                log.warning("ignoring unreadable configured certificate")

    # -- caches ------------------------------------------------------------------------------------
    def cache_stats(self) -> dict[str, tuple[int, int, int]]:
        out = {}
        for name in ("_certs", "_edges", "_paths", "_ocsp", "_crl", "_online_ocsp", "_online_crl"):
            c: LRU[Any, Any] = getattr(self, name)
            out[name.strip("_")] = (len(c), c.hits, c.misses)
        return out

    def clear_caches(self) -> None:
        for name in ("_certs", "_edges", "_paths", "_ocsp", "_ocsp_raw", "_crl", "_crl_issuer", "_names",
                     "_online_ocsp", "_online_crl", "_down"):
            getattr(self, name).clear()

    def name_key(self, name: asn1_x509.Name) -> str:
        der = name.dump()
        key = self._names.get(der)
        if key is None:
            key = self._names.put(der, name_key(name))
        return key

    def cert(self, der: bytes) -> CertRecord:
        key = hashlib.sha256(der).hexdigest()
        rec = self._certs.get(key)
        if rec is None:
            rec = self._certs.put(key, parse_cert(bytes(der)))
        return rec

    def try_cert(self, der: bytes) -> CertRecord | None:
        try:
            return self.cert(der)
        except Exception:
            return None

    def pool(self, extra: Iterable[CertRecord]) -> _Pool:
        return _Pool([*self.anchors.values(), *self.known, *extra])

    # -- edges and paths ---------------------------------------------------------------------------
    def issued_by(self, child: CertRecord, parent: CertRecord) -> bool:
        key = (child.fp, parent.fp)
        cached = self._edges.get(key)
        if cached is not None:
            return cached
        ok = child.issuer_key == parent.subject_key and verify_raw(
            child.asn1["signature_value"].native,
            child.asn1["tbs_certificate"].dump(),
            parent.asn1.public_key,
            child.asn1["signature_algorithm"],
        )
        self._edges.put(key, ok)
        return ok

    def build_path(self, leaf: CertRecord, pool: _Pool) -> PathResult:
        """Find a path from ``leaf`` to an anchor (depth-first, issuers confirmed by signature)."""
        if leaf.fp in self.anchors:
            return PathResult((leaf,), True)
        best: list[CertRecord] = [leaf]

        def dfs(chain: list[CertRecord]) -> list[CertRecord] | None:
            nonlocal best
            if len(chain) > len(best):
                best = list(chain)
            if len(chain) > MAX_PATH:
                return None
            cur = chain[-1]
            for cand in pool.issuers_of(cur):
                if any(c.fp == cand.fp for c in chain) or not self.issued_by(cur, cand):
                    continue
                if cand.fp in self.anchors:
                    return [*chain, cand]
                found = dfs([*chain, cand])
                if found:
                    return found
            return None

        found = dfs([leaf])
        if found is None:
            return PathResult(
                tuple(best),
                False,
                SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
                "không xây dựng được chuỗi chứng thư tới một chứng thư gốc tin cậy đã cấu hình",
                "no certificate chain to a configured trust anchor",
            )
        structural = self._structural(tuple(found))
        if structural[0] is not None:
            return PathResult(tuple(found), False, structural[0], structural[1], structural[2])
        for c in found[:-1]:
            verdict = public_key_allowed(c.asn1.public_key)
            if not verdict.ok:
                return PathResult(
                    tuple(found), False, SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
                    f"{c.common_name}: {verdict.vi}", f"{c.common_name}: {verdict.en}",
                )
        return PathResult(tuple(found), True)

    def _run(self, coro: Any) -> Any:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def _structural(self, path: tuple[CertRecord, ...]) -> tuple[SubIndication | None, str, str]:
        key = tuple(c.fp for c in path)
        cached = self._paths.get(key)
        if cached is not None:
            return cached
        anchor = path[-1]
        leaf = path[0]
        interm = [c.asn1 for c in reversed(path[1:-1])]
        vc = ValidationContext(
            trust_roots=[anchor.asn1],
            moment=_STRUCT_MOMENT,
            time_tolerance=_HUGE,
            revinfo_policy=CertRevTrustPolicy(NO_REVOCATION),
            algorithm_usage_policy=DisallowWeakAlgorithmsPolicy(rsa_key_size_threshold=MIN_RSA_BITS),
        )
        vpath = ValidationPath(CertTrustAnchor(anchor.asn1), interm, leaf.asn1)
        result: tuple[SubIndication | None, str, str]
        try:
            self._run(async_validate_path(vc, vpath))
            result = (None, "", "")
        except cv_errors.DisallowedAlgorithmError as exc:
            result = (
                SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
                f"chuỗi chứng thư dùng thuật toán không được chấp nhận ({exc})",
                f"the certificate chain uses a disallowed algorithm ({exc})",
            )
        except cv_errors.PathValidationError as exc:
            result = (
                SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE,
                f"chuỗi chứng thư không hợp lệ: {exc}",
                f"the certificate chain is not valid: {exc}",
            )
        except cv_errors.ValidationError as exc:
            result = (
                SubIndication.CHAIN_CONSTRAINTS_FAILURE,
                f"chuỗi chứng thư không đạt ràng buộc: {exc}",
                f"the certificate chain does not meet constraints: {exc}",
            )
        except Exception as exc:
            result = (
                SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE,
                f"không kiểm tra được chuỗi chứng thư ({type(exc).__name__})",
                f"the certificate chain could not be checked ({type(exc).__name__}: {exc})",
            )
        self._paths.put(key, result)
        return result

    # -- OCSP --------------------------------------------------------------------------------------
    def _ocsp_parsed(self, der: bytes, issuer: CertRecord, pool: _Pool) -> _OcspParsed:
        key = (hashlib.sha256(der).hexdigest(), issuer.fp)
        cached = self._ocsp.get(key)
        if cached is None:
            cached = self._ocsp.put(key, self._parse_ocsp(der, issuer, pool))
        return cached

    def _parse_ocsp(self, der: bytes, issuer: CertRecord, pool: _Pool) -> _OcspParsed:
        def bad(problem: str) -> _OcspParsed:
            return _OcspParsed(False, problem, None, ())

        try:
            resp = ocsp.load_der_ocsp_response(der)
            if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                return bad(f"OCSP status {resp.response_status.name}")
            a_resp = asn1_ocsp.OCSPResponse.load(der)
            basic = a_resp["response_bytes"]["response"].parsed
            sig_algo = basic["signature_algorithm"]
            signature = basic["signature"].native
            tbs = basic["tbs_response_data"].dump()
            produced_at = _utc(resp.produced_at_utc)
            embedded = []
            for c in resp.certificates:
                rec = self.try_cert(c.public_bytes(serialization.Encoding.DER))
                if rec is not None:
                    embedded.append(rec)
        except Exception as exc:
            return bad(f"unreadable OCSP response ({type(exc).__name__})")
        mech = signature_mechanism_allowed(sig_algo)
        if not mech.ok:
            return bad(mech.en)
        # who signed it: the CA itself, or a responder the CA delegated (id-kp-OCSPSigning)
        responder: CertRecord | None = None
        if resp.responder_key_hash is not None:
            if resp.responder_key_hash == hashlib.sha1(_issuer_key_bits(issuer)).digest():  # noqa: S324 - RFC 6960 KeyHash
                responder = issuer
            else:
                for cand in [*embedded, *pool.by_fp.values()]:
                    if cand.ski == resp.responder_key_hash or (
                        hashlib.sha1(_issuer_key_bits(cand)).digest() == resp.responder_key_hash  # noqa: S324
                    ):
                        responder = cand
                        break
        elif resp.responder_name is not None:
            rname = self.name_key(asn1_x509.Name.load(resp.responder_name.public_bytes()))
            if rname == issuer.subject_key:
                responder = issuer
            else:
                for cand in [*embedded, *pool.by_fp.values()]:
                    if cand.subject_key == rname:
                        responder = cand
                        break
        if responder is None:
            return bad("OCSP responder certificate not found")
        if responder.fp != issuer.fp:
            if not self.issued_by(responder, issuer):
                return bad("OCSP responder not issued by the certificate's CA")
            if "ocsp_signing" not in responder.eku:
                return bad("OCSP responder lacks id-kp-OCSPSigning")
            if not responder.valid_at(produced_at):
                return bad("OCSP responder certificate not valid when the response was produced")
        key_ok = public_key_allowed(responder.asn1.public_key)
        if not key_ok.ok:
            return bad(key_ok.en)
        if not verify_raw(signature, tbs, responder.asn1.public_key, sig_algo):
            return bad("OCSP response signature does not verify")
        singles = []
        for single in resp.responses:
            status = {
                ocsp.OCSPCertStatus.GOOD: "good",
                ocsp.OCSPCertStatus.REVOKED: "revoked",
                ocsp.OCSPCertStatus.UNKNOWN: "unknown",
            }[single.certificate_status]
            rev_time = _utc(single.revocation_time_utc) if single.revocation_time_utc else None
            reason = _REASONS.get(single.revocation_reason, "") if single.revocation_reason else ""
            if status == "revoked" and not reason:
                reason = "unspecified"
            singles.append((
                single.hash_algorithm.name,
                single.issuer_name_hash,
                single.issuer_key_hash,
                single.serial_number,
                status,
                _utc(single.this_update_utc),
                _utc(single.next_update_utc) if single.next_update_utc else None,
                rev_time,
                reason,
            ))
        return _OcspParsed(True, "", produced_at, tuple(singles))

    def _ocsp_singles(self, der: bytes) -> tuple[tuple[Any, ...], ...] | None:
        """The single responses of an OCSP response (unverified), cached; None when unreadable."""
        key = hashlib.sha256(der).hexdigest()
        cached = self._ocsp_raw.get(key)
        if cached is None:
            try:
                resp = ocsp.load_der_ocsp_response(der)
                if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                    singles: tuple[tuple[Any, ...], ...] = ()
                else:
                    singles = tuple(
                        (s.hash_algorithm.name, s.issuer_name_hash, s.issuer_key_hash, s.serial_number)
                        for s in resp.responses
                    )
            except Exception:
                singles = ()
            cached = self._ocsp_raw.put(key, singles)
        return cached

    def ocsp_answer(self, der: bytes, cert: CertRecord, issuer: CertRecord, pool: _Pool, source: str
                    ) -> Answer | str | None:
        """The answer about ``cert`` in this OCSP response; None when the response is about other certificates."""
        name_der = _issuer_name_der(issuer)
        key_bits = _issuer_key_bits(issuer)

        def covers(algo: str, name_hash: bytes, key_hash: bytes, serial: int) -> bool:
            if serial != cert.serial:
                return False
            h = _hash_for(algo)
            if h is None:
                return False
            hn = hashes.Hash(h)
            hn.update(name_der)
            hk = hashes.Hash(h)
            hk.update(key_bits)
            return hn.finalize() == name_hash and hk.finalize() == key_hash

        if not any(covers(*single) for single in self._ocsp_singles(der) or ()):
            return None
        parsed = self._ocsp_parsed(der, issuer, pool)
        if not parsed.ok:
            return parsed.problem
        for algo, name_hash, key_hash, serial, status, this, nxt, rev, reason in parsed.singles:
            if covers(algo, name_hash, key_hash, serial):
                return Answer(source, status, this, nxt, rev, reason)
        return None

    # -- CRL ---------------------------------------------------------------------------------------
    def _crl_issuer_key(self, der: bytes, digest: str) -> str:
        cached = self._crl_issuer.get(digest)
        if cached is None:
            try:
                cached = self.name_key(asn1_crl.CertificateList.load(der)["tbs_cert_list"]["issuer"])
            except Exception:
                cached = "unreadable"
            self._crl_issuer.put(digest, cached)
        return cached

    def _crl_parsed(self, der: bytes, digest: str, issuer: CertRecord) -> _CrlParsed:
        key = (digest, issuer.fp)
        cached = self._crl.get(key)
        if cached is None:
            cached = self._crl.put(key, self._parse_crl(der, issuer))
        return cached

    def _parse_crl(self, der: bytes, issuer: CertRecord) -> _CrlParsed:
        try:
            crl = x509.load_der_x509_crl(der)
            a_crl = asn1_crl.CertificateList.load(der)
            sig_algo = a_crl["signature_algorithm"]
            signature = a_crl["signature"].native
            tbs = a_crl["tbs_cert_list"].dump()
        except Exception as exc:
            return _CrlParsed(False, f"unreadable CRL ({type(exc).__name__})")
        mech = signature_mechanism_allowed(sig_algo)
        if not mech.ok:
            return _CrlParsed(False, mech.en)
        if issuer.key_usage and "crl_sign" not in issuer.key_usage:
            return _CrlParsed(False, "CRL issuer lacks the cRLSign key usage")
        if not verify_raw(signature, tbs, issuer.asn1.public_key, sig_algo):
            return _CrlParsed(False, "CRL signature does not verify")
        try:
            if _has_ext(crl, ExtensionOID.DELTA_CRL_INDICATOR):
                return _CrlParsed(False, "delta CRLs are not used")
            idp: Any = None
            try:
                idp = crl.extensions.get_extension_for_oid(ExtensionOID.ISSUING_DISTRIBUTION_POINT).value
            except x509.ExtensionNotFound:
                pass
            only_user = bool(idp and idp.only_contains_user_certs)
            only_ca = bool(idp and idp.only_contains_ca_certs)
            partial = bool(idp and (idp.only_some_reasons or idp.indirect_crl or idp.only_contains_attribute_certs))
            dp_urls = tuple(
                gn.value for gn in (idp.full_name or ()) if isinstance(gn, x509.UniformResourceIdentifier)
            ) if idp else ()
            revoked: dict[int, tuple[datetime, str]] = {}
            for entry in crl:
                reason = ""
                try:
                    reason = _REASONS.get(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason, "")
                except x509.ExtensionNotFound:
                    reason = "unspecified"
                if reason == "remove_from_crl":
                    continue
                revoked[entry.serial_number] = (_utc(entry.revocation_date_utc), reason or "unspecified")
            this_update = _utc(crl.last_update_utc)
            next_update = _utc(crl.next_update_utc) if crl.next_update_utc else None
        except Exception as exc:
            return _CrlParsed(False, f"unreadable CRL ({type(exc).__name__})")
        return _CrlParsed(True, "", this_update, next_update, revoked, only_user, only_ca, partial, dp_urls)

    def crl_answer(self, der: bytes, cert: CertRecord, issuer: CertRecord, source: str) -> Answer | str | None:
        """None when the CRL is not about this certificate's issuer at all."""
        digest = hashlib.sha256(der).hexdigest()
        if self._crl_issuer_key(der, digest) != issuer.subject_key:
            return None
        parsed = self._crl_parsed(der, digest, issuer)
        if not parsed.ok:
            return parsed.problem
        if parsed.partial:
            return "partial CRL (reasons or indirect)"
        if parsed.only_user and cert.is_ca:
            return None
        if parsed.only_ca and not cert.is_ca:
            return None
        if parsed.dp_urls and cert.crl_urls and not set(parsed.dp_urls) & set(cert.crl_urls):
            return None
        assert parsed.this_update is not None
        entry = parsed.revoked.get(cert.serial)
        if entry is not None:
            return Answer(source, "revoked", parsed.this_update, parsed.next_update, entry[0], entry[1])
        return Answer(source, "good", parsed.this_update, parsed.next_update)

    # -- revocation decision -----------------------------------------------------------------------
    def revocation(
        self,
        cert: CertRecord,
        issuer: CertRecord | None,
        at: datetime,
        *,
        ocsps: Sequence[bytes],
        crls: Sequence[bytes],
        pool: _Pool,
        now: datetime,
        online: bool,
    ) -> RevocationResult:
        """Status of ``cert`` at ``at`` (the time it was used), embedded data first, then online."""
        name = cert.common_name
        if cert.fp in self.anchors:
            return RevocationResult(RevocationStatus(name, cert.fp, RevocationState.NOT_REQUIRED,
                                                     detail_vi="chứng thư gốc tin cậy",
                                                     detail_en="trust anchor"), None)
        if cert.ocsp_nocheck and "ocsp_signing" in cert.eku:
            return RevocationResult(RevocationStatus(name, cert.fp, RevocationState.NOT_REQUIRED,
                                                     detail_vi="máy chủ OCSP (id-pkix-ocsp-nocheck)",
                                                     detail_en="OCSP responder (id-pkix-ocsp-nocheck)"), None)
        if issuer is None:
            return RevocationResult(self._unknown(cert, "không có CA cấp", "issuer unknown"), None)
        answers: list[Answer] = []
        problems: list[str] = []
        for der in ocsps:
            a = self.ocsp_answer(der, cert, issuer, pool, "embedded_ocsp")
            if isinstance(a, Answer):
                answers.append(a)
            elif a is not None:
                problems.append(a)
        for der in crls:
            c = self.crl_answer(der, cert, issuer, "embedded_crl")
            if isinstance(c, Answer):
                answers.append(c)
            elif isinstance(c, str):
                problems.append(c)
        decided = self._decide(cert, at, answers)
        if decided is not None:
            return RevocationResult(decided[0], decided[1])
        fetched = 0
        if online and self.params.allow_online:
            online_answers, online_problems, fetched = self._online(cert, issuer, pool, now)
            answers.extend(online_answers)
            problems.extend(online_problems)
            decided = self._decide(cert, at, online_answers)
            if decided is not None:
                return RevocationResult(decided[0], decided[1], online=fetched > 0)
        stale = [a for a in answers if a.status == "good"]
        if stale:
            newest = max(a.this_update for a in stale)
            vi = (f"dữ liệu thu hồi quá cũ so với thời điểm sử dụng (mới nhất: {newest:%d/%m/%Y %H:%M} UTC)")
            en = f"revocation data too old for the time of use (newest: {newest:%Y-%m-%d %H:%M} UTC)"
        elif not online or not self.params.allow_online:
            vi = "tài liệu không kèm dữ liệu thu hồi và không được phép tra cứu trực tuyến"
            en = "no revocation data in the document and online look-up not allowed"
        else:
            vi = "không lấy được OCSP/CRL"
            en = "no OCSP/CRL answer could be obtained"
        if problems:
            en += " (" + "; ".join(sorted(set(problems))[:3]) + ")"
        return RevocationResult(self._unknown(cert, vi, en), None, online=fetched > 0)

    @staticmethod
    def _unknown(cert: CertRecord, vi: str, en: str) -> RevocationStatus:
        return RevocationStatus(cert.common_name, cert.fp, RevocationState.UNKNOWN, detail_vi=vi, detail_en=en)

    def _decide(self, cert: CertRecord, at: datetime, answers: list[Answer]
                ) -> tuple[RevocationStatus, Answer] | None:
        fresh_from = at - self.params.freshness
        name = cert.common_name

        def acceptable(a: Answer) -> bool:
            # issued at or after the time of use: proves the status then
            if a.this_update >= at:
                return True
            # the answer in force at the time of use ("the latest CRL at signing time", TT 15/2025)
            if a.next_update is not None:
                return a.this_update <= at <= a.next_update
            # no nextUpdate (common with OCSP): the freshness limit decides
            return a.this_update >= fresh_from

        for a in answers:
            if a.status == "revoked" and a.revoked_at is not None and a.revoked_at <= at:
                if a.hold and not acceptable(a):
                    continue
                return RevocationStatus(
                    name, cert.fp, RevocationState.REVOKED, a.source, a.this_update, a.revoked_at, a.reason,
                    detail_vi="chứng thư đã bị thu hồi" + (" (tạm dừng)" if a.hold else ""),
                    detail_en="certificate revoked" + (" (on hold)" if a.hold else ""),
                ), a
        for a in answers:
            if a.status == "revoked" and a.revoked_at is not None and a.revoked_at > at and not a.hold:
                return RevocationStatus(
                    name, cert.fp, RevocationState.REVOKED_LATER, a.source, a.this_update, a.revoked_at, a.reason,
                    detail_vi="chứng thư bị thu hồi sau thời điểm sử dụng",
                    detail_en="certificate revoked only after the time of use",
                ), a
        good = sorted((a for a in answers if a.status == "good" and acceptable(a)), key=lambda a: a.this_update)
        if good:
            a = good[0]
            return RevocationStatus(
                name, cert.fp, RevocationState.GOOD, a.source, a.this_update,
                detail_vi="không bị thu hồi", detail_en="not revoked",
            ), a
        return None

    def _fetch(self, url: str, body: bytes | None, content_type: str, limit: int, now: datetime) -> bytes:
        """One online request; a host that just failed is not asked again for a while (a responder that is down
        must not cost every certificate of every document a full timeout)."""
        host = urllib.parse.urlsplit(url).netloc
        failed_at = self._down.get(host)
        if failed_at is not None and timedelta(0) <= now - failed_at < DOWN_FOR:
            ago = int((now - failed_at).total_seconds())
            raise OnlineError(f"{url}: not asked (the host did not answer {ago} s ago)")
        try:
            return self.fetch(url, body, content_type, self.params.online_timeout, limit)
        except OnlineError:
            self._down[host] = now
            raise

    def _online(self, cert: CertRecord, issuer: CertRecord, pool: _Pool, now: datetime
                ) -> tuple[list[Answer], list[str], int]:
        answers: list[Answer] = []
        problems: list[str] = []
        fetched = 0
        fresh = self.params.freshness
        # OCSP first (cached per certificate while fresh)
        key = (issuer.fp, cert.serial)
        cached = self._online_ocsp.get(key)
        ders: list[bytes] = []
        if cached is not None and now - cached[1] <= fresh:
            ders.append(cached[0])
        elif cert.ocsp_urls:
            for url in cert.ocsp_urls[:2]:
                for algo in (hashes.SHA256(), hashes.SHA1()):  # noqa: S303 - CertID hash (RFC 5019 responders)
                    try:
                        req = ocsp.OCSPRequestBuilder().add_certificate(cert.x, issuer.x, algo).build()
                        body = req.public_bytes(serialization.Encoding.DER)
                        der = self._fetch(url, body, "application/ocsp-request", 1 << 20, now)
                        fetched += 1
                    except (OnlineError, ValueError) as exc:
                        problems.append(str(exc))
                        break
                    a = self.ocsp_answer(der, cert, issuer, pool, "online_ocsp")
                    if isinstance(a, Answer) and a.status != "unknown":
                        self._online_ocsp.put(key, (der, now))
                        ders.append(der)
                        break
                    problems.append(a if isinstance(a, str) else "OCSP: the responder does not know the certificate")
                if ders:
                    break
        for der in ders:
            a = self.ocsp_answer(der, cert, issuer, pool, "online_ocsp")
            if isinstance(a, Answer) and a.status != "unknown":
                if a.next_update is not None and a.next_update < now:
                    self._online_ocsp.put(key, (der, now - fresh - timedelta(seconds=1)))  # expire it
                answers.append(a)
        if answers:
            return answers, problems, fetched
        # then the CRL (cached per URL until its nextUpdate)
        for url in cert.crl_urls[:2]:
            hit = self._online_crl.get(url)
            der_crl: bytes | None = None
            if hit is not None and now - hit[1] <= fresh:
                der_crl = hit[0]
            else:
                try:
                    der_crl = self._fetch(url, None, "", self.params.max_online_bytes, now)
                    fetched += 1
                except OnlineError as exc:
                    problems.append(str(exc))
                    continue
            c = self.crl_answer(der_crl, cert, issuer, "online_crl")
            if isinstance(c, Answer):
                if c.next_update is None or c.next_update >= now:
                    self._online_crl.put(url, (der_crl, now))
                answers.append(c)
                break
            problems.append(c or "CRL from another issuer")
        return answers, problems, fetched


def _has_ext(obj: Any, oid: x509.ObjectIdentifier) -> bool:
    try:
        obj.extensions.get_extension_for_oid(oid)
        return True
    except x509.ExtensionNotFound:
        return False

