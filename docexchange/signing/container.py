"""The PAdES CMS signature container, assembled from DER pieces built once per signer.

pyHanko builds the ``SignedData`` as an asn1crypto object tree and serialises it for every signature; with the
certificate chain inside, that costs more than the RSA operation itself (about 10 ms against 1 ms). A signer's
certificates, ``sid``, algorithm identifiers and signing-certificate-v2 attribute never change, so
:class:`CmsProfile` encodes them once; per signature only the message digest, the signature value and the
optional time stamp token are new. The output is byte-for-byte what pyHanko produces for the same inputs
(tests compare both) and the DER rules are the same (SET OF sorted by encoding).

Layout (RFC 5652, ETSI EN 319 122 baseline as used by PAdES)::

    ContentInfo ::= SEQUENCE { id-signedData, [0] EXPLICIT SignedData }
    SignedData  ::= SEQUENCE { version 1, SET { digestAlgorithm }, SEQUENCE { id-data },
                               [0] IMPLICIT certificates, SET { SignerInfo } }
    SignerInfo  ::= SEQUENCE { version 1, IssuerAndSerialNumber, digestAlgorithm,
                               [0] IMPLICIT { content-type, message-digest, signing-certificate-v2 },
                               signatureAlgorithm, OCTET STRING signature,
                               [1] IMPLICIT { signature-time-stamp-token }  -- B-T and above }
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.general import as_signing_certificate_v2, simple_cms_attribute

__all__ = ["CmsProfile", "der_tlv"]


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_tlv(tag: int, content: bytes) -> bytes:
    """One DER element: a single-byte tag, the definite length and the content."""
    return bytes([tag]) + _der_length(len(content)) + content


_SEQUENCE, _SET, _OCTET_STRING, _INTEGER = 0x30, 0x31, 0x04, 0x02
_CTX0_CONS, _CTX1_CONS = 0xA0, 0xA1
_VERSION_1 = der_tlv(_INTEGER, b"\x01")
_OID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
_ENCAP_DATA = der_tlv(_SEQUENCE, core.ObjectIdentifier("1.2.840.113549.1.7.1").dump())
_OID_MESSAGE_DIGEST = cms.CMSAttributeType("message_digest").dump()
_OID_TST = cms.CMSAttributeType("signature_time_stamp_token").dump()


def _attribute(oid_der: bytes, value_der: bytes) -> bytes:
    return der_tlv(_SEQUENCE, oid_der + der_tlv(_SET, value_der))


@dataclass(frozen=True)
class CmsProfile:
    """The constant parts of one signer's CMS containers, for one digest algorithm."""

    digest_algorithm: str
    digest_alg: bytes
    signature_alg: bytes
    sid: bytes
    certificates: bytes
    """Content of ``[0] IMPLICIT CertificateSet``: the certificate encodings, sorted."""
    content_type_attr: bytes
    signing_cert_attr: bytes

    @classmethod
    def build(cls, signing_cert: asn1_x509.Certificate, certs: Iterable[asn1_x509.Certificate],
              digest_algorithm: str, signature_mechanism: algos.SignedDigestAlgorithm) -> CmsProfile:
        """``certs``: every certificate to embed (the signer's is added if missing)."""
        encodings = {c.dump() for c in certs}
        encodings.add(signing_cert.dump())
        sid = cms.IssuerAndSerialNumber({"issuer": signing_cert.issuer, "serial_number": signing_cert.serial_number})
        return cls(
            digest_algorithm=digest_algorithm,
            digest_alg=algos.DigestAlgorithm({"algorithm": digest_algorithm}).dump(),
            signature_alg=signature_mechanism.dump(),
            sid=sid.dump(),
            certificates=b"".join(sorted(encodings)),
            content_type_attr=simple_cms_attribute("content_type", "data").dump(),
            signing_cert_attr=simple_cms_attribute(
                "signing_certificate_v2", as_signing_certificate_v2(signing_cert)
            ).dump(),
        )

    def signed_attributes(self, message_digest: bytes) -> bytes:
        """DER of the signed attributes as signed (``SET OF Attribute``, universal SET tag)."""
        digest_attr = _attribute(_OID_MESSAGE_DIGEST, der_tlv(_OCTET_STRING, message_digest))
        return der_tlv(_SET, b"".join(sorted((self.content_type_attr, digest_attr, self.signing_cert_attr))))

    def assemble(self, signed_attributes: bytes, signature: bytes, timestamp_token: bytes | None = None) -> bytes:
        """DER of the ``ContentInfo`` holding the ``SignedData``."""
        # the signed attributes travel as [0] IMPLICIT: same content, context tag instead of SET
        signed_implicit = bytes([_CTX0_CONS]) + signed_attributes[1:]
        signer_info = _VERSION_1 + self.sid + self.digest_alg + signed_implicit + self.signature_alg
        signer_info += der_tlv(_OCTET_STRING, signature)
        if timestamp_token is not None:
            signer_info += der_tlv(_CTX1_CONS, _attribute(_OID_TST, timestamp_token))
        signed_data = der_tlv(
            _SEQUENCE,
            _VERSION_1
            + der_tlv(_SET, self.digest_alg)
            + _ENCAP_DATA
            + der_tlv(_CTX0_CONS, self.certificates)
            + der_tlv(_SET, der_tlv(_SEQUENCE, signer_info)),
        )
        return der_tlv(_SEQUENCE, _OID_SIGNED_DATA + der_tlv(_CTX0_CONS, signed_data))
