"""The error tree of docexchange.

Every error carries a stable ``code`` (used by the CLI, the web API and logs) and a message meant for a
person: Vietnamese first, then English. Third-party exceptions are wrapped at the boundary of the adapter
that called the library (``raise SomethingError(...) from exc``) and never escape it.
"""

from __future__ import annotations

__all__ = [
    "AttachmentError",
    "AuthError",
    "CertificateNotUsable",
    "ConfigError",
    "DeliveryError",
    "DirectoryError",
    "DocExchangeError",
    "DocumentLocked",
    "EdxmlError",
    "InvalidAgencyCode",
    "InvalidPacket",
    "InvalidPdf",
    "KeystoreError",
    "MalformedXml",
    "PKIError",
    "PacketTooLarge",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "SignaturePlacementError",
    "SigningError",
    "StoreError",
    "TimestampUnavailable",
    "TrustServiceError",
    "UnknownAgency",
    "UnsafeXml",
    "VerificationError",
    "WrongPassphrase",
]


class DocExchangeError(Exception):
    """Root of every error docexchange raises on purpose.

    ``message_vi`` is what a clerk reads; ``message_en`` is the English gloss. ``str(err)`` gives both.
    """

    code: str = "error"
    exit_code: int = 1
    http_status: int = 400

    def __init__(self, message_vi: str, message_en: str | None = None) -> None:
        self.message_vi = message_vi
        self.message_en = message_en or message_vi
        super().__init__(self.message_vi if message_en is None else f"{message_vi} — {message_en}")

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message_vi": self.message_vi, "message_en": self.message_en}


class ConfigError(DocExchangeError, ValueError):
    code = "config"
    exit_code = 78  # EX_CONFIG


class InvalidAgencyCode(DocExchangeError, ValueError):
    code = "invalid_agency_code"


class DirectoryError(DocExchangeError, ValueError):
    code = "directory"
    exit_code = 78


class UnknownAgency(DocExchangeError, LookupError):
    code = "unknown_agency"
    http_status = 404


class PKIError(DocExchangeError):
    code = "pki"


class KeystoreError(PKIError):
    code = "keystore"


class WrongPassphrase(KeystoreError, PermissionError):
    code = "wrong_passphrase"
    http_status = 403


class TrustServiceError(PKIError):
    code = "trust_service"
    http_status = 503


class TimestampUnavailable(TrustServiceError):
    code = "timestamp_unavailable"


class SigningError(DocExchangeError):
    code = "signing"


class CertificateNotUsable(SigningError):
    """The signer's certificate is expired, not yet valid, revoked, untrusted or lacks the key usage."""

    code = "certificate_not_usable"


class SignaturePlacementError(SigningError, ValueError):
    """No place to put the signature: unknown or already signed field, box off the page, nothing to seal over."""

    code = "signature_placement"


class DocumentLocked(SigningError):
    """The PDF forbids further signatures (certified with no changes allowed, or its fields are locked)."""

    code = "document_locked"


class InvalidPdf(DocExchangeError, ValueError):
    code = "invalid_pdf"


class VerificationError(DocExchangeError):
    """Verification could not run at all (never raised for a bad document: that is a report)."""

    code = "verification"
    exit_code = 2


class EdxmlError(DocExchangeError, ValueError):
    code = "edxml"


class MalformedXml(EdxmlError):
    code = "malformed_xml"


class UnsafeXml(EdxmlError):
    code = "unsafe_xml"


class PacketTooLarge(EdxmlError):
    code = "packet_too_large"
    http_status = 413


class InvalidPacket(EdxmlError):
    """Well-formed XML that is not a usable edXML packet, or a model the writer refuses (field lengths, codes)."""

    code = "invalid_packet"


class AttachmentError(EdxmlError):
    """An attachment that cannot be taken safely: bad base64, zip bomb, unsafe file name."""

    code = "attachment"


class StoreError(DocExchangeError):
    code = "store"
    http_status = 503


class DeliveryError(DocExchangeError):
    code = "delivery"


class RetryableDeliveryError(DeliveryError):
    """Connection refused, timeout, 5xx: try again later."""

    code = "delivery_retryable"
    http_status = 503


class PermanentDeliveryError(DeliveryError):
    """4xx, bad signature, unknown recipient: retrying will not help."""

    code = "delivery_permanent"


class AuthError(DocExchangeError, PermissionError):
    code = "auth"
    http_status = 401


class ReplayedRequest(AuthError):
    """A signed request seen before (same system id and nonce): refused."""

    code = "replayed_request"


class RequestExpired(AuthError):
    """A signed request whose timestamp is outside the accepted window."""

    code = "request_expired"


class Forbidden(AuthError):
    """Authenticated, but not allowed to do this (another agency's mail, an operator action, …)."""

    code = "forbidden"
    http_status = 403


class PeerRefused(Forbidden):
    """A node-to-node call from a peer whose certificate is not the one pinned for it, or not a neighbour."""

    code = "peer_refused"


class NotFound(DocExchangeError, LookupError):
    code = "not_found"
    http_status = 404


class Conflict(DocExchangeError):
    """The request is valid but contradicts what is stored (e.g. acting on a withdrawn document)."""

    code = "conflict"
    http_status = 409
