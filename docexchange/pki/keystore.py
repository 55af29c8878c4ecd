"""Private keys and their certificates: PKCS#12 files (PKCS#11 tokens live in signing/ via pyHanko)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from docexchange.errors import KeystoreError, WrongPassphrase

__all__ = ["KeyMaterial", "fingerprint", "load_cert", "load_pkcs12", "write_atomic", "write_pkcs12"]


@dataclass(frozen=True)
class KeyMaterial:
    """A private key, its certificate and the issuer chain (nearest issuer first, root last)."""

    key: PrivateKeyTypes
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint of a certificate, lower-case hex (the form pins use)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_pkcs12(path: Path, material: KeyMaterial, passphrase: str, friendly_name: str) -> None:
    data = pkcs12.serialize_key_and_certificates(
        friendly_name.encode(),
        material.key,  # type: ignore[arg-type]
        material.cert,
        list(material.chain) or None,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    write_atomic(path, data, mode=0o600)


def load_pkcs12(path: Path, passphrase: str | None) -> KeyMaterial:
    """Load a PKCS#12 file; a wrong passphrase or a damaged file gives a clear error."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"Không tìm thấy tệp khóa {path}", f"key file {path} not found") from None
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase.encode() if passphrase else None)
    except ValueError as exc:
        text = str(exc).lower()
        if "password" in text or "mac" in text or "decrypt" in text:
            raise WrongPassphrase(
                f"Sai mật khẩu cho tệp khóa {path}", f"wrong passphrase for key file {path}"
            ) from None
        raise KeystoreError(
            f"Tệp khóa {path} bị hỏng hoặc không phải PKCS#12 ({exc})",
            f"key file {path} is damaged or not PKCS#12 ({exc})",
        ) from exc
    if key is None or cert is None:
        raise KeystoreError(
            f"Tệp {path} không chứa khóa bí mật và chứng thư", f"{path} holds no private key and certificate"
        )
    return KeyMaterial(key=key, cert=cert, chain=tuple(extra or ()))


def load_cert(path: Path) -> x509.Certificate:
    """Load a certificate in PEM or DER."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeystoreError(f"Không tìm thấy chứng thư {path}", f"certificate {path} not found") from None
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise KeystoreError(
            f"Tệp {path} không phải chứng thư số hợp lệ", f"{path} is not a valid certificate ({exc})"
        ) from exc
