"""RFC 3161 time stamps that are checked before they go into a signature.

pyHanko's HTTP client accepts whatever token the server returns (it checks the status and the nonce). Before a
token is embedded we also check that it covers the digest we sent, that its signature verifies, and that it is
signed by the TSA certificate the signing service validated (its path and revocation status).
"""

from __future__ import annotations

import hashlib

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pyhanko.sign.general import get_pyca_cryptography_hash
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.validation.generic_cms import validate_sig_integrity

from docexchange.errors import TimestampUnavailable

__all__ = ["CheckedTimeStamper", "TsaCertificateChanged"]


class TsaCertificateChanged(TimestampUnavailable):
    """The TSA signed with a certificate other than the one validated (a key rollover): check it again."""

    code = "tsa_certificate_changed"


def _signer_cert(signed_data: cms.SignedData) -> tuple[asn1_x509.Certificate, list[asn1_x509.Certificate]]:
    infos = signed_data["signer_infos"]
    if len(infos) != 1:
        raise TimestampUnavailable("Dấu thời gian có nhiều chữ ký", "the time stamp token has several signers")
    sid = infos[0]["sid"].chosen
    certs = [c.chosen for c in signed_data["certificates"] if isinstance(c.chosen, asn1_x509.Certificate)]
    for cert in certs:
        if isinstance(sid, cms.IssuerAndSerialNumber):
            if cert.issuer == sid["issuer"] and cert.serial_number == sid["serial_number"].native:
                return cert, [c for c in certs if c is not cert]
        elif cert.key_identifier == sid.native:
            return cert, [c for c in certs if c is not cert]
    raise TimestampUnavailable(
        "Dấu thời gian không kèm chứng thư của đơn vị cấp", "the time stamp token does not carry the TSA certificate"
    )


class CheckedTimeStamper(HTTPTimeStamper):
    """An HTTP RFC 3161 client that verifies every token it returns."""

    def __init__(self, url: str, *, session: object = None, timeout: int = 10) -> None:
        super().__init__(url, timeout=timeout, session=session)  # type: ignore[arg-type]
        self._expected: set[bytes] = set()

    def expect_signer(self, cert: x509.Certificate) -> None:
        """Only accept tokens signed with ``cert`` (the TSA certificate that passed the service's check)."""
        self._expected = {cert.fingerprint(hashes.SHA256())}

    @staticmethod
    def tsa_certificates(token: cms.ContentInfo) -> tuple[x509.Certificate, list[x509.Certificate]]:
        cert, others = _signer_cert(token["content"])
        return (x509.load_der_x509_certificate(cert.dump()),
                [x509.load_der_x509_certificate(c.dump()) for c in others])

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        token = await super().async_timestamp(message_digest, md_algorithm)
        self._check(token, message_digest, md_algorithm)
        return token

    def _check(self, token: cms.ContentInfo, message_digest: bytes, md_algorithm: str) -> None:
        signed_data = token["content"]
        encap = signed_data["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise TimestampUnavailable("Phản hồi TSA không phải dấu thời gian", "the TSA reply is not a time stamp")
        tst_info = encap["content"].parsed
        imprint = tst_info["message_imprint"]
        if (imprint["hash_algorithm"]["algorithm"].native != md_algorithm
                or imprint["hashed_message"].native != message_digest):
            raise TimestampUnavailable(
                "Dấu thời gian không khớp với dữ liệu đã gửi", "the time stamp does not cover the digest we sent"
            )
        cert, _others = _signer_cert(signed_data)
        if self._expected and hashlib.sha256(cert.dump()).digest() not in self._expected:
            raise TsaCertificateChanged(
                "Đơn vị cấp dấu thời gian đã đổi chứng thư: cần kiểm tra lại",
                "the TSA now signs with another certificate: it must be checked again",
            )
        signer_info = signed_data["signer_infos"][0]
        h = hashes.Hash(get_pyca_cryptography_hash(signer_info["digest_algorithm"]["algorithm"].native))
        h.update(encap["content"].contents)
        intact, valid = validate_sig_integrity(signer_info, cert, "tst_info", h.finalize())
        if not (intact and valid):
            raise TimestampUnavailable("Chữ ký trên dấu thời gian không hợp lệ", "the time stamp signature is invalid")
