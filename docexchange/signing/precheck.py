"""Checking a signer's certificate before signing (TT 15/2025: signing software checks the certificate first).

A certificate is usable when, at the moment of signing, it is within its validity period, its key usage allows
signing documents, it chains cryptographically to a configured trust anchor, and neither it nor any CA on its
path is revoked — checked online (OCSP, CRL) in hard-fail mode. The revocation answers gathered here are the
ones embedded in the document's DSS for PAdES B-LT, so each signature costs one status check, not two.

A long-lived :class:`CertificateChecker` reuses a successful check for ``precheck_cache_seconds`` (bounded by the
``nextUpdate`` of the OCSP/CRL answers it relied on); failures are never cached.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientRevinfoError,
    NotYetValidError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.fetchers.api import FetcherBackend
from pyhanko_certvalidator.path import ValidationPath

from docexchange.clock import vn_datetime
from docexchange.config import Settings
from docexchange.errors import CertificateNotUsable, ConfigError, TrustServiceError
from docexchange.pki.keystore import load_cert
from docexchange.signing.keys import asn1_cert

__all__ = [
    "CertificateChecker",
    "CertificateStatus",
    "TrustConfig",
    "check_certificate",
    "check_signing_key_usage",
]

log = logging.getLogger(__name__)

# EKUs that make a certificate fit for signing documents (when an EKU extension is present at all).
_DOCUMENT_EKUS = {
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
    x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
    x509.ObjectIdentifier("1.2.840.113583.1.1.5"),  # Adobe authentic documents trust
}


@dataclass(frozen=True)
class TrustConfig:
    """Trust anchors (roots) and known intermediate CA certificates."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustConfig:
        """The root in ``keys/ca/root.crt`` (when present) plus ``[verification] anchors``; every other CA
        certificate in ``keys/ca/`` is a known intermediate."""
        anchors: list[x509.Certificate] = []
        intermediates: list[x509.Certificate] = []
        ca_dir = settings.keys_dir / "ca"
        if ca_dir.is_dir():
            for path in sorted(ca_dir.glob("*.crt")):
                cert = load_cert(path)
                (anchors if cert.issuer == cert.subject else intermediates).append(cert)
        for name in settings.verification.anchors:
            anchors.append(load_cert(settings.path(name)))
        if not anchors:
            raise ConfigError(
                f"Chưa cấu hình chứng thư gốc tin cậy (không có {ca_dir}/root.crt và [verification] anchors trống)",
                f"no trust anchor configured ({ca_dir}/root.crt missing and [verification] anchors empty)",
            )
        return cls(tuple(anchors), tuple(intermediates))

    @classmethod
    def from_files(cls, anchors: Iterable[Path], intermediates: Iterable[Path] = ()) -> TrustConfig:
        return cls(tuple(load_cert(p) for p in anchors), tuple(load_cert(p) for p in intermediates))


@dataclass(frozen=True)
class CertificateStatus:
    """A certificate found usable at ``checked_at``, with the evidence (path and revocation answers)."""

    cert: x509.Certificate
    path: ValidationPath
    ocsps: tuple[asn1_ocsp.OCSPResponse, ...]
    crls: tuple[asn1_crl.CertificateList, ...]
    checked_at: datetime
    reusable_until: datetime
    """End of the period in which this result may be reused (cache TTL and the answers' nextUpdate)."""


def _who(cert: x509.Certificate) -> str:
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cn[0].value) if cn else cert.subject.rfc4514_string()


def _refuse(cert: x509.Certificate, vi: str, en: str) -> CertificateNotUsable:
    who = _who(cert)
    return CertificateNotUsable(
        f"Không thể ký: chứng thư số của {who} (số hiệu {cert.serial_number:x}) {vi}",
        f"cannot sign: the certificate of {who} (serial {cert.serial_number:x}) {en}",
    )


def check_validity_period(cert: x509.Certificate, moment: datetime) -> None:
    if moment < cert.not_valid_before_utc:
        raise _refuse(
            cert,
            f"chưa có hiệu lực (hiệu lực từ {vn_datetime(cert.not_valid_before_utc)})",
            f"is not valid yet (valid from {cert.not_valid_before_utc.isoformat()})",
        )
    if moment > cert.not_valid_after_utc:
        raise _refuse(
            cert,
            f"đã hết hạn (hết hiệu lực lúc {vn_datetime(cert.not_valid_after_utc)})",
            f"has expired (valid until {cert.not_valid_after_utc.isoformat()})",
        )


def check_signing_key_usage(cert: x509.Certificate) -> None:
    """Key usage must allow signing (digitalSignature or nonRepudiation/contentCommitment); an extended key
    usage, when present, must allow document signing (not only TLS, OCSP or time stamping)."""
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        raise _refuse(
            cert,
            "không có mục đích sử dụng khóa cho phép ký (digitalSignature/nonRepudiation)",
            "has no key usage allowing signatures (digitalSignature/nonRepudiation)",
        )
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not set(eku) & _DOCUMENT_EKUS:
        names = ", ".join(getattr(o, "_name", o.dotted_string) for o in eku)
        raise _refuse(
            cert,
            f"chỉ dành cho mục đích khác ({names}), không dùng để ký văn bản",
            f"is restricted to other purposes ({names}), not document signing",
        )


def _next_updates(ocsps: Iterable[asn1_ocsp.OCSPResponse], crls: Iterable[asn1_crl.CertificateList]) -> list[datetime]:
    out: list[datetime] = []
    for resp in ocsps:
        try:
            for single in resp["response_bytes"]["response"].parsed["tbs_response_data"]["responses"]:
                nu = single["next_update"].native
                if nu is not None:
                    out.append(nu)
        except (KeyError, ValueError, TypeError):
            continue
    for c in crls:
        nu = c["tbs_cert_list"]["next_update"].native
        if nu is not None:
            out.append(nu)
    return out


async def check_certificate(
    cert: x509.Certificate,
    chain: Iterable[x509.Certificate],
    trust: TrustConfig,
    *,
    moment: datetime,
    fetcher_backend: FetcherBackend | None = None,
    cache_seconds: int = 0,
    purpose: str = "document",
) -> CertificateStatus:
    """Check ``cert`` for ``purpose`` (``document`` signing or ``time_stamping``) at ``moment``, online.

    Raises :class:`CertificateNotUsable` (expired, not yet valid, revoked, untrusted, wrong key usage) or
    :class:`TrustServiceError` (the revocation status could not be obtained).
    """
    check_validity_period(cert, moment)
    if purpose == "document":
        check_signing_key_usage(cert)
    if cert.issuer == cert.subject and cert not in trust.anchors:
        raise _refuse(cert, "là chứng thư tự ký, không dẫn tới chứng thư gốc tin cậy nào đã cấu hình",
                      "is self-signed and does not chain to any configured trust anchor")
    certs = [asn1_cert(c) for c in (*chain, *trust.intermediates)]
    vc = ValidationContext(
        trust_roots=[asn1_cert(a) for a in trust.anchors],
        other_certs=certs,
        allow_fetching=True,
        revocation_mode="hard-fail",
        fetcher_backend=fetcher_backend,
        weak_hash_algos={"md2", "md5", "sha1"},
    )
    validator = CertificateValidator(asn1_cert(cert), intermediate_certs=certs, validation_context=vc)
    try:
        if purpose == "time_stamping":
            path = await validator.async_validate_usage(set(), extended_key_usage={"time_stamping"})
        else:
            path = await validator.async_validate_path()
    except RevokedError as exc:
        raise _refuse(cert, f"hoặc một CA trên đường dẫn đã bị thu hồi ({exc})",
                      f"or a CA on its path has been revoked ({exc})") from exc
    except InsufficientRevinfoError as exc:
        raise TrustServiceError(
            f"Không kiểm tra được tình trạng thu hồi chứng thư của {_who(cert)} (OCSP/CRL không trả lời): {exc}",
            f"the revocation status of {_who(cert)}'s certificate could not be checked "
            f"(OCSP/CRL unavailable): {exc}",
        ) from exc
    except (ExpiredError, NotYetValidError) as exc:
        raise _refuse(cert, f"có CA trên đường dẫn không còn hiệu lực ({exc})",
                      f"has a CA on its path outside its validity period ({exc})") from exc
    except DisallowedAlgorithmError as exc:
        raise _refuse(cert, f"dùng thuật toán yếu không được phép ({exc})",
                      f"uses a disallowed weak algorithm ({exc})") from exc
    except PathBuildingError as exc:
        raise _refuse(cert, "không dẫn tới chứng thư gốc tin cậy nào đã cấu hình",
                      f"does not chain to any configured trust anchor ({exc})") from exc
    except (PathValidationError, ValidationError) as exc:
        raise _refuse(cert, f"không hợp lệ ({exc})", f"is not valid ({exc})") from exc
    ocsps = tuple(vc.ocsps)
    crls = tuple(vc.crls)
    horizon = [moment + timedelta(seconds=max(0, cache_seconds)), *_next_updates(ocsps, crls)]
    return CertificateStatus(cert, path, ocsps, crls, moment, min(horizon))


@functools.lru_cache(maxsize=512)
def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


class CertificateChecker:
    """Checks certificates and remembers successful checks for a while (per certificate fingerprint)."""

    def __init__(self, trust: TrustConfig, *, cache_seconds: int) -> None:
        self.trust = trust
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[bytes, str], CertificateStatus] = {}

    def forget(self, cert: x509.Certificate | None = None) -> None:
        if cert is None:
            self._cache.clear()
        else:
            fp = _fingerprint(cert)
            for key in [k for k in self._cache if k[0] == fp]:
                del self._cache[key]

    async def check(
        self,
        cert: x509.Certificate,
        chain: Iterable[x509.Certificate],
        *,
        moment: datetime,
        fetcher_backend: FetcherBackend | None,
        purpose: str = "document",
    ) -> CertificateStatus:
        key = (_fingerprint(cert), purpose)
        cached = self._cache.get(key)
        if (
            cached is not None
            and self.cache_seconds > 0
            and cached.checked_at <= moment <= cached.reusable_until
        ):
            return cached
        self._cache.pop(key, None)
        status = await check_certificate(
            cert, chain, self.trust, moment=moment, fetcher_backend=fetcher_backend,
            cache_seconds=self.cache_seconds, purpose=purpose,
        )
        if self.cache_seconds > 0:
            self._cache[key] = status
        return status

