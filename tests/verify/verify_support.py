"""Helpers shared by the verifier tests (importable under a name no other test folder uses)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata
from pyhanko_certvalidator.registry import SimpleCertificateStore

from docexchange.pki.keystore import KeyMaterial
from helpers import SHARED

CORPUS = SHARED / "corpus" / "pdf"
HALONG = "000.00.11.H49"
CHAIRMAN = "h49-halong-chu-tich"
G22 = "000.00.00.G22"


@dataclass(frozen=True)
class Signed:
    """Letters signed by our signing module, as an exchange would receive them."""

    person_lt: bytes
    lt: bytes
    """Person then seal, B-LT (the default profile)."""
    lta: bytes
    bb: bytes
    """Person then seal, B-B: no revocation data, no time-stamp."""
    bt: bytes
    appendix: bytes
    """An appendix signed by the organisation only (B-LT)."""
    person_only: bytes
    foreign_seal: bytes
    """Person of Hạ Long, then the seal of the Government Office."""
    seal_first: bytes
    """The seal first, then the person (wrong order)."""


# -- plain pyHanko, for what our signing module refuses to do --------------------------------------------------
def asn1_cert(cert: object) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))  # type: ignore[attr-defined]


def raw_sign(data: bytes, material: KeyMaterial, *, field: str = "Signature", tsa_url: str | None = None,
             md: str = "sha256", lt_roots: list[object] | None = None) -> bytes:
    """Sign with stock pyHanko (B-B; B-T with ``tsa_url``; B-LT with ``lt_roots`` too, fetching OCSP/CRL from
    the live services); no certificate checks at all."""
    key = asn1_keys.PrivateKeyInfo.load(material.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signer = signers.SimpleSigner(
        signing_cert=asn1_cert(material.cert), signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert(c) for c in material.chain]),
    )
    vc = None
    if lt_roots is not None:
        from pyhanko_certvalidator import ValidationContext

        vc = ValidationContext(trust_roots=[asn1_cert(c) for c in lt_roots], allow_fetching=True)
    meta = PdfSignatureMetadata(field_name=field, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm=md,
                                embed_validation_info=vc is not None, validation_context=vc)
    stamper = timestamps.HTTPTimeStamper(tsa_url) if tsa_url else None
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    out = signers.PdfSigner(meta, signer=signer, timestamper=stamper).sign_pdf(w)
    return bytes(out.getvalue())


def read_corpus(rel: str) -> bytes:
    return (CORPUS / rel).read_bytes()


def path_of(name: str) -> Path:
    return CORPUS / name


def self_signed_material(cn: str = "Tự xưng CA", leaf_cn: str = "Người ký giả", ca_name: object = None
                         ) -> KeyMaterial:
    """A signer under a root nobody configured (an "untrusted root"); ``ca_name`` (an x509.Name) lets the
    root impersonate a real CA's name."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = ca_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, leaf_cn),
                                     x509.NameAttribute(NameOID.USER_ID, "CCCD:000000000000")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return KeyMaterial(key, leaf, (ca,))
