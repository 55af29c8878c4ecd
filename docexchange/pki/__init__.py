"""The dev PKI, key stores and trust services (TSA, OCSP, CRL)."""

from docexchange.pki.devpki import CertKind, DevPki
from docexchange.pki.keystore import KeyMaterial, load_cert, load_pkcs12

__all__ = ["CertKind", "DevPki", "KeyMaterial", "load_cert", "load_pkcs12"]
