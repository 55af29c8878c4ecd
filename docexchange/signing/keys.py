"""Signing keys as pyHanko signers: PKCS#12 files (the key is loaded once and kept) and PKCS#11 tokens.

Stock pyHanko's ``SimpleSigner`` re-parses its private key for every raw signature (an RSA key load with
OpenSSL 3's consistency checks costs tens of milliseconds) and rebuilds the signing-certificate attribute each
time. :class:`KeptKeySigner` keeps the parsed key object and builds the constant parts once; a
:class:`SigningKey` bundles a signer with its certificate chain so it can be kept for the life of a process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from pyhanko.sign import attributes
from pyhanko.sign.general import as_signing_certificate_v2, get_pyca_cryptography_hash, simple_cms_attribute
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import process_pss_params

from docexchange.errors import KeystoreError, SigningError, WrongPassphrase
from docexchange.pki.keystore import KeyMaterial, load_pkcs12
from docexchange.signing.container import CmsProfile

__all__ = [
    "ALLOWED_DIGESTS",
    "FastCmsMixin",
    "KeptKeySigner",
    "SigningKey",
    "asn1_cert",
    "chain_for",
    "check_digest",
    "wrap_pkcs11_sign_error",
]

ALLOWED_DIGESTS = ("sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512")
"""Digests we sign with (TT 15/2025: SHA-2 or SHA-3; never SHA-1 or MD5)."""


def check_digest(name: str) -> str:
    digest = name.lower().replace("-", "")
    digest = {"sha3256": "sha3_256", "sha3384": "sha3_384", "sha3512": "sha3_512"}.get(digest, digest)
    if digest not in ALLOWED_DIGESTS:
        raise SigningError(
            f"Thuật toán băm '{name}' không được phép (chỉ SHA-2/SHA-3: {', '.join(ALLOWED_DIGESTS)})",
            f"digest '{name}' is not allowed (SHA-2/SHA-3 only: {', '.join(ALLOWED_DIGESTS)})",
        )
    return digest


def chain_for(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """The issuers of ``cert`` found in ``pool``, nearest first, each verified to have signed the previous one
    (certificates from the pool that are not on the path are left out)."""
    chain: list[x509.Certificate] = []
    current = cert
    for _ in range(8):
        if current.issuer == current.subject:
            break
        for candidate in pool:
            if candidate.subject != current.issuer or candidate in chain:
                continue
            try:
                current.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            chain.append(candidate)
            current = candidate
            break
        else:
            break
    return tuple(chain)


def asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class _ConstantAttribute(attributes.CMSAttributeProvider):
    """A signed attribute whose value never changes for a signer (built once, reused)."""

    def __init__(self, attribute: cms.CMSAttribute) -> None:
        self.attribute_type = attribute["type"].native
        self._attribute = attribute

    async def get_attribute(self, dry_run: bool = False) -> cms.CMSAttribute:
        return self._attribute

    async def build_attr_value(self, dry_run: bool = False) -> Any:  # pragma: no cover - not used
        return self._attribute["values"][0]


class _PadesSignedAttributes(attributes.SignedAttributeProviderSpec):
    """PAdES baseline signed attributes: content-type and message-digest (added by pyHanko) plus
    signing-certificate-v2, built once per signer. PAdES forbids the CMS signing-time attribute (the time is
    in the signature dictionary's /M)."""

    def __init__(self, cert: asn1_x509.Certificate) -> None:
        self._signing_cert = _ConstantAttribute(
            simple_cms_attribute("signing_certificate_v2", as_signing_certificate_v2(cert))
        )

    def signed_attr_providers(self, data_digest: bytes, digest_algorithm: str) -> Iterator[
        attributes.CMSAttributeProvider
    ]:
        yield self._signing_cert


class FastCmsMixin:
    """Builds PAdES containers from a per-signer :class:`CmsProfile` instead of pyHanko's object tree.

    Only the plain PAdES case takes the fast path (no dry run, no CAdES extras, no attribute certificates); the
    rest falls back to pyHanko. Mixed into pyHanko ``Signer`` subclasses (in-memory keys and PKCS#11 tokens).
    """

    _cms_profiles: dict[str, CmsProfile]

    def _cms_profile(self, digest_algorithm: str) -> CmsProfile:
        signer = cast(Signer, self)
        profiles = self.__dict__.setdefault("_cms_profiles", {})
        if digest_algorithm not in profiles:
            cert = signer.signing_cert
            assert cert is not None
            mechanism = signer.get_signature_mechanism_for_digest(digest_algorithm)
            profiles[digest_algorithm] = CmsProfile.build(cert, signer.cert_registry, digest_algorithm, mechanism)
        return cast(CmsProfile, profiles[digest_algorithm])

    async def async_sign(  # type: ignore[no-untyped-def]
        self, data_digest: bytes, digest_algorithm: str, dry_run: bool = False, use_pades: bool = False,
        timestamper=None, signed_attr_settings=None, is_pdf_sig: bool = True, encap_content_info=None,
    ) -> cms.ContentInfo:
        signer = cast(Signer, self)
        plain = (
            not dry_run and use_pades and is_pdf_sig and encap_content_info is None
            and not list(signer.attribute_certs)
            and (signed_attr_settings is None or (
                signed_attr_settings.cades_signed_attrs is None
                and getattr(signed_attr_settings, "adobe_revinfo_attr", None) is None))
        )
        if not plain:
            return await super().async_sign(  # type: ignore[misc]
                data_digest, digest_algorithm, dry_run=dry_run, use_pades=use_pades, timestamper=timestamper,
                signed_attr_settings=signed_attr_settings, is_pdf_sig=is_pdf_sig,
                encap_content_info=encap_content_info,
            )
        digest_algorithm = digest_algorithm.lower()
        profile = self._cms_profile(digest_algorithm)
        signed_attrs = profile.signed_attributes(data_digest)
        signature = await signer.async_sign_raw(signed_attrs, digest_algorithm)
        token = None
        if timestamper is not None:
            h = hashes.Hash(get_pyca_cryptography_hash(digest_algorithm))
            h.update(signature)
            token = (await timestamper.async_timestamp(h.finalize(), digest_algorithm)).dump()
        return cms.ContentInfo.load(profile.assemble(signed_attrs, signature, token))


class KeptKeySigner(FastCmsMixin, Signer):
    """A pyHanko signer holding an already parsed private key (RSA PKCS#1 v1.5, RSASSA-PSS or ECDSA)."""

    def __init__(
        self,
        key: PrivateKeyTypes,
        cert: asn1_x509.Certificate,
        chain: Iterable[asn1_x509.Certificate] = (),
        *,
        prefer_pss: bool = False,
    ) -> None:
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeystoreError(
                f"Loại khóa {type(key).__name__} không được hỗ trợ (chỉ RSA hoặc ECDSA)",
                f"unsupported key type {type(key).__name__} (RSA or ECDSA only)",
            )
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
            raise KeystoreError(
                f"Khóa RSA {key.key_size} bit quá ngắn (tối thiểu 2048)",
                f"RSA key of {key.key_size} bits is too short (2048 minimum)",
            )
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size < 256:
            raise KeystoreError(
                f"Khóa ECDSA {key.curve.key_size} bit quá ngắn (tối thiểu 256)",
                f"ECDSA key of {key.curve.key_size} bits is too short (256 minimum)",
            )
        registry = SimpleCertificateStore.from_certs([cert, *chain])
        super().__init__(prefer_pss=prefer_pss, signing_cert=cert, cert_registry=registry)
        self._key = key
        self._mechanisms: dict[str | None, algos.SignedDigestAlgorithm] = {}
        self.signed_attr_prov_spec = _PadesSignedAttributes(cert)

    def get_signature_mechanism_for_digest(self, digest_algorithm: str | None) -> algos.SignedDigestAlgorithm:
        try:
            return self._mechanisms[digest_algorithm]
        except KeyError:
            mech = super().get_signature_mechanism_for_digest(digest_algorithm)
            self._mechanisms[digest_algorithm] = mech
            return mech

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mech = self.get_signature_mechanism_for_digest(digest_algorithm)
        name = mech["algorithm"].native
        key = self._key
        if isinstance(key, rsa.RSAPrivateKey):
            if name == "rsassa_pss":
                pss, hash_algo = process_pss_params(mech["parameters"])
                return key.sign(data, pss, hash_algo)
            return key.sign(data, padding.PKCS1v15(), get_pyca_cryptography_hash(digest_algorithm))
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key.sign(data, ec.ECDSA(get_pyca_cryptography_hash(digest_algorithm)))

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        return self.sign_raw(data, digest_algorithm)


@dataclass
class SigningKey:
    """A private key that can sign (in memory or on a token), its certificate and the issuer chain.

    Build it once and keep it: the key stays loaded (or the token session open) until :meth:`close`.
    """

    signer: Signer
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    source: str
    """Where the key lives, for messages (a file path or ``pkcs11:token/label``)."""
    _closers: list[Any] = field(default_factory=list, repr=False)

    @property
    def subject_name(self) -> str:
        attrs = self.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else self.cert.subject.rfc4514_string()

    @property
    def on_token(self) -> bool:
        return self.source.startswith("pkcs11:")

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_material(cls, material: KeyMaterial, *, rsa_pss: bool = False, source: str = "memory") -> SigningKey:
        cert = asn1_cert(material.cert)
        chain = [asn1_cert(c) for c in material.chain]
        return cls(KeptKeySigner(material.key, cert, chain, prefer_pss=rsa_pss), material.cert,
                   tuple(material.chain), source)

    @classmethod
    def from_pkcs12(cls, path: Path, passphrase: str | None, *, rsa_pss: bool = False,
                    extra_chain: Sequence[x509.Certificate] = ()) -> SigningKey:
        """Load a PKCS#12 file (wrong passphrase: :class:`WrongPassphrase`)."""
        material = load_pkcs12(path, passphrase)
        if extra_chain:
            path_certs = chain_for(material.cert, [*material.chain, *extra_chain])
            material = KeyMaterial(material.key, material.cert, path_certs or material.chain)
        return cls.from_material(material, rsa_pss=rsa_pss, source=str(path))

    @classmethod
    def from_pkcs11(
        cls,
        lib: str,
        *,
        token_label: str,
        key_label: str,
        pin: str | None,
        cert_label: str | None = None,
        chain: Sequence[x509.Certificate] = (),
        rsa_pss: bool = False,
    ) -> SigningKey:
        """Open a session on a PKCS#11 token (USB token, HSM, SoftHSM) and find the key and its certificate.

        ``chain``: CA certificates to embed — only those on the signer's path are used. The session stays open
        (logged in) until :meth:`close`; the PIN is not kept.
        """
        import pkcs11
        from pkcs11 import exceptions as p11e
        from pyhanko.config.errors import ConfigurationError
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import PKCS11Error, PKCS11Signer, open_pkcs11_session

        where = f"pkcs11:{token_label}/{key_label}"
        if not Path(lib).is_file():
            raise KeystoreError(
                f"Không tìm thấy thư viện PKCS#11 {lib}", f"PKCS#11 library {lib} not found"
            )
        try:
            session = open_pkcs11_session(lib, token_criteria=TokenCriteria(label=token_label), user_pin=pin)
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as exc:
            raise WrongPassphrase(
                f"Sai mã PIN của token '{token_label}'", f"wrong PIN for token '{token_label}'"
            ) from exc
        except p11e.PinLocked as exc:
            raise WrongPassphrase(
                f"Token '{token_label}' đã bị khóa PIN", f"the PIN of token '{token_label}' is locked"
            ) from exc
        except (PKCS11Error, ConfigurationError, pkcs11.PKCS11Error, OSError, RuntimeError) as exc:
            raise KeystoreError(
                f"Không mở được token '{token_label}' qua {lib}: {exc}",
                f"cannot open token '{token_label}' through {lib}: {exc}",
            ) from exc
        class TokenSigner(FastCmsMixin, PKCS11Signer):
            """pyHanko's PKCS#11 signer with the fast container assembly."""

        try:
            signer = TokenSigner(
                session,
                cert_label=cert_label or key_label,
                key_label=key_label,
                prefer_pss=rsa_pss,
            )
            signing_cert = signer.signing_cert  # loads the certificate and the key handle now
        except (PKCS11Error, pkcs11.PKCS11Error) as exc:
            with contextlib.suppress(Exception):
                session.close()
            raise KeystoreError(
                f"Không tìm thấy khóa/chứng thư '{key_label}' trên token '{token_label}': {exc}",
                f"key or certificate '{key_label}' not found on token '{token_label}': {exc}",
            ) from exc
        cert = x509.load_der_x509_certificate(signing_cert.dump())
        path_certs = chain_for(cert, chain)
        signer.cert_registry.register_multiple([asn1_cert(c) for c in path_certs])
        signer.signed_attr_prov_spec = _PadesSignedAttributes(signing_cert)
        key = cls(signer, cert, path_certs, where)
        key._closers.append(session.close)
        return key

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                closer()

    def __enter__(self) -> SigningKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wrap_pkcs11_sign_error(exc: BaseException, source: str) -> SigningError:
    """A token failing at signing time (removed, session closed, mechanism refused) → SigningError."""
    return SigningError(
        f"Token {source} không ký được: {exc}", f"the token {source} failed to sign: {exc}"
    )

