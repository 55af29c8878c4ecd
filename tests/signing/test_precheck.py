"""The signer's certificate is checked before signing: table of certificates that must be refused, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import CHAIRMAN, HALONG, OwnPki, with_signing
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from docexchange.errors import CertificateNotUsable, SigningError, TrustServiceError
from docexchange.pki.devpki import CertKind, DevPki
from docexchange.pki.keystore import KeyMaterial
from docexchange.signing import PersonSigner, SigningKey, SigningService
from docexchange.signing.precheck import CertificateChecker, TrustConfig, check_signing_key_usage


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _signer(pki: DevPki, material: KeyMaterial) -> PersonSigner:
    return PersonSigner(SigningKey.from_material(material), pki.signature_image(CHAIRMAN), full_name="Thử")


def _self_signed() -> KeyMaterial:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name("Tự ký")).issuer_name(_name("Tự ký"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return KeyMaterial(key, cert, ())


def _foreign() -> KeyMaterial:
    """A certificate from a CA nobody configured."""
    ca = _self_signed()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name("Người lạ")).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(ca.key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return KeyMaterial(key, cert, (ca.cert,))


def _case(pki: DevPki, case: str) -> KeyMaterial:
    now = datetime.now(UTC)
    if case == "expired":
        return pki.issue(CertKind.PERSON, _name("Hết hạn"), "t-expired", ca_id="person",
                         not_before=now - timedelta(days=400), not_after=now - timedelta(days=1))
    if case == "not_yet_valid":
        return pki.issue(CertKind.PERSON, _name("Chưa hiệu lực"), "t-future", ca_id="person",
                         not_before=now + timedelta(days=3), not_after=now + timedelta(days=400))
    if case == "tls":
        return pki.issue(CertKind.TLS, _name("node.example"), "t-tls", ca_id="org")
    if case == "tsa":
        return pki.tsa()
    if case == "ca":
        return pki.ca("org")
    if case == "self_signed":
        return _self_signed()
    if case == "foreign_ca":
        return _foreign()
    raise AssertionError(case)


CASES = {
    "expired": ("đã hết hạn", "has expired"),
    "not_yet_valid": ("chưa có hiệu lực", "not valid yet"),
    "tls": ("chỉ dành cho mục đích khác", "restricted to other purposes"),
    "tsa": ("chỉ dành cho mục đích khác", "restricted to other purposes"),
    "ca": ("không có mục đích sử dụng khóa cho phép ký", "no key usage allowing signatures"),
    "self_signed": ("không dẫn tới chứng thư gốc tin cậy", "does not chain to any configured trust anchor"),
    "foreign_ca": ("không dẫn tới chứng thư gốc tin cậy", "does not chain to any configured trust anchor"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unusable_certificates_are_refused(dev_pki: DevPki, service: SigningService, letter: bytes,
                                           case: str) -> None:
    signer = _signer(dev_pki, _case(dev_pki, case))
    with pytest.raises(CertificateNotUsable) as err:
        service.sign(letter, signer, level="B-B")
    vi, en = CASES[case]
    assert vi in err.value.message_vi
    assert en in err.value.message_en
    assert err.value.message_vi.startswith("Không thể ký")  # Vietnamese first, for the clerk


def test_revoked_certificate_is_refused(own_services_up: OwnPki, letter: bytes) -> None:
    own = own_services_up
    material = own.pki.issue(CertKind.PERSON, _name("Sẽ bị thu hồi"), "t-revoked", ca_id="person")
    signer = _signer(own.pki, material)
    with SigningService(with_signing(own.settings, precheck_cache_seconds=0)) as svc:
        assert svc.sign(letter, signer, level="B-B")  # fine before revocation
        own.pki.revoke(material.cert.serial_number, "key_compromise")
        with pytest.raises(CertificateNotUsable) as err:
            svc.sign(letter, signer, level="B-B")
    assert "thu hồi" in err.value.message_vi and "revoked" in err.value.message_en


def test_revocation_status_unavailable_refuses_to_sign(own_pki: OwnPki, letter: bytes) -> None:
    own_pki.server.stop()
    try:
        with SigningService(own_pki.settings) as svc, pytest.raises(TrustServiceError) as err:
            svc.sign(letter, svc.person(CHAIRMAN), level="B-B")
        assert "thu hồi" in err.value.message_vi and "could not be checked" in err.value.message_en
    finally:
        own_pki.server.start()


def test_successful_checks_are_reused_within_the_cache_period(pki_settings: object, dev_pki: DevPki,
                                                              trust_services: object, letter: bytes) -> None:
    trust = TrustConfig.from_settings(pki_settings)  # type: ignore[arg-type]
    checker = CertificateChecker(trust, cache_seconds=300)
    material = dev_pki.person(CHAIRMAN)
    import asyncio

    async def twice() -> tuple[object, object]:
        now = datetime.now(UTC)
        a = await checker.check(material.cert, material.chain, moment=now, fetcher_backend=None)
        b = await checker.check(material.cert, material.chain, moment=now + timedelta(seconds=5), fetcher_backend=None)
        return a, b

    a, b = asyncio.run(twice())
    assert a is b
    assert a.ocsps  # type: ignore[attr-defined]
    nocache = CertificateChecker(trust, cache_seconds=0)

    async def fresh() -> tuple[object, object]:
        now = datetime.now(UTC)
        return (await nocache.check(material.cert, material.chain, moment=now, fetcher_backend=None),
                await nocache.check(material.cert, material.chain, moment=now, fetcher_backend=None))

    c, d = asyncio.run(fresh())
    assert c is not d


def test_key_usage_policy_accepts_person_and_seal(dev_pki: DevPki) -> None:
    check_signing_key_usage(dev_pki.person(CHAIRMAN).cert)
    check_signing_key_usage(dev_pki.seal(HALONG).cert)
    with pytest.raises(CertificateNotUsable):
        check_signing_key_usage(dev_pki.tsa().cert)


def test_trust_config_needs_an_anchor(tmp_path: object) -> None:
    from docexchange.errors import ConfigError
    from helpers import make_settings

    settings = make_settings(tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        TrustConfig.from_settings(settings)


def test_signing_error_is_the_base(dev_pki: DevPki) -> None:
    assert issubclass(CertificateNotUsable, SigningError)
