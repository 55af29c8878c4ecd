"""The generated dev PKI: chains validate with pyHanko's certificate validator; re-runs are safe."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from PIL import Image
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.errors import KeystoreError, PKIError, WrongPassphrase
from docexchange.pki.devpki import DevPki
from docexchange.pki.keystore import load_pkcs12
from helpers import make_settings


def asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def validate(dev_pki: DevPki, cert: x509.Certificate, key_usage: set[str]) -> None:
    ctx = ValidationContext(
        trust_roots=[asn1(dev_pki.root_cert)],
        other_certs=[asn1(c) for c in dev_pki.intermediates()],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    validator = CertificateValidator(asn1(cert), validation_context=ctx)
    path = asyncio.run(validator.async_validate_usage(key_usage))
    assert path.first.subject == asn1(dev_pki.root_cert).subject


def test_every_agency_and_official_has_a_chain_that_validates(dev_pki: DevPki, directory: Directory) -> None:
    for agency in directory:
        seal = dev_pki.seal(agency.code)
        validate(dev_pki, seal.cert, {"digital_signature", "non_repudiation"})
        assert seal.chain[-1] == dev_pki.root_cert
        names = {a.oid: a.value for a in seal.cert.subject}
        assert names[NameOID.ORGANIZATION_NAME] == agency.name
        assert str(names[NameOID.USER_ID]).startswith("MNS:")
        for official in agency.officials:
            person = dev_pki.person(official.id)
            validate(dev_pki, person.cert, {"digital_signature", "non_repudiation"})
            pn = {a.oid: a.value for a in person.cert.subject}
            assert pn[NameOID.COMMON_NAME] == official.full_name
            assert pn[NameOID.USER_ID] == f"CCCD:{official.citizen_id}"


def test_service_and_node_certificates(dev_pki: DevPki, directory: Directory) -> None:
    tsa = dev_pki.tsa().cert
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and x509.oid.ExtendedKeyUsageOID.TIME_STAMPING in eku.value
    validate(dev_pki, tsa, {"digital_signature"})
    for node in directory.nodes:
        cert = dev_pki.node_cert(node.id)
        validate(dev_pki, cert, {"digital_signature"})
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "localhost" in san.get_values_for_type(x509.DNSName)


def test_certificates_point_at_the_configured_trust_services(dev_pki: DevPki, pki_settings: Settings) -> None:
    cert = dev_pki.person("h49-chu-tich").cert
    base = pki_settings.pki.base_url
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_location.value for d in aia}
    assert f"{base}/ocsp/person" in urls and f"{base}/certs/person.crt" in urls
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == f"{base}/crl/person.crl"


def test_images_are_transparent_and_coloured(dev_pki: DevPki) -> None:
    sig = Image.open(dev_pki.signature_image("h49-chu-tich")).convert("RGBA")
    seal = Image.open(dev_pki.seal_image("000.00.00.H49")).convert("RGBA")
    for img, channel in ((sig, 2), (seal, 0)):
        pixels = list(img.get_flattened_data())
        assert pixels[0][3] == 0  # transparent corner
        opaque = [p for p in pixels if p[3] == 255]
        assert len(opaque) > 1000
        # the ink is clearly blue (signature) or red (seal): its channel dominates the other two
        dominant = [p for p in opaque if all(p[channel] > p[c] + 80 for c in range(3) if c != channel)]
        assert len(dominant) / len(opaque) > 0.9
    # real size: 40 mm at 300 dpi
    assert abs(seal.width - 472) <= 1


@pytest.fixture()
def small_pki(tmp_path: Path, directory: Directory) -> tuple[Settings, DevPki]:
    settings = make_settings(tmp_path)
    pki = DevPki.from_settings(settings)
    pki.init(directory)
    return settings, pki


def test_rerun_is_safe_and_force_keeps_a_backup(small_pki: tuple[Settings, DevPki], directory: Directory) -> None:
    settings, pki = small_pki
    root_before = (pki.keys_dir / "ca" / "root.crt").read_bytes()
    seal_before = (pki.keys_dir / "agencies" / "000.00.00.G22" / "seal.p12").read_bytes()
    report = DevPki.from_settings(settings).init(directory)
    assert report.created == []
    assert (pki.keys_dir / "ca" / "root.crt").read_bytes() == root_before
    assert (pki.keys_dir / "agencies" / "000.00.00.G22" / "seal.p12").read_bytes() == seal_before
    # a missing seal is topped up, nothing else touched
    shutil.rmtree(pki.keys_dir / "agencies" / "000.00.00.G09")
    report = DevPki.from_settings(settings).init(directory)
    assert report.created == ["agencies/000.00.00.G09/seal"]
    assert (pki.keys_dir / "ca" / "root.crt").read_bytes() == root_before
    # --force rebuilds but moves the old tree aside
    report = DevPki.from_settings(settings).init(directory, force=True)
    assert report.backup is not None
    assert (report.backup / "ca" / "root.crt").read_bytes() == root_before
    assert (pki.keys_dir / "ca" / "root.crt").read_bytes() != root_before


def test_wrong_passphrase_is_refused_and_nothing_destroyed(
    small_pki: tuple[Settings, DevPki], directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, pki = small_pki
    before = {p: p.read_bytes() for p in pki.keys_dir.rglob("*") if p.is_file()}
    monkeypatch.setenv(settings.pki.passphrase_env, "not-the-passphrase")
    with pytest.raises(WrongPassphrase) as info:
        DevPki.from_settings(settings).init(directory)
    assert "root.p12" in str(info.value)
    with pytest.raises(WrongPassphrase):
        load_pkcs12(pki.keys_dir / "persons" / "h49-chu-tich" / "key.p12", "nope")
    after = {p: p.read_bytes() for p in pki.keys_dir.rglob("*") if p.is_file()}
    assert after == before


def test_missing_root_key_is_named(small_pki: tuple[Settings, DevPki], directory: Directory) -> None:
    settings, pki = small_pki
    (pki.keys_dir / "ca" / "root.p12").unlink()
    with pytest.raises(KeystoreError) as info:
        DevPki.from_settings(settings).init(directory)
    assert "root.p12" in str(info.value)
    assert (pki.keys_dir / "ca" / "org.p12").exists()


def test_damaged_key_file_and_unopened_pki(small_pki: tuple[Settings, DevPki], tmp_path: Path) -> None:
    _settings, pki = small_pki
    bad = pki.keys_dir / "persons" / "h49-chu-tich" / "key.p12"
    bad.write_bytes(b"not a pkcs12 file")
    with pytest.raises(KeystoreError) as info:
        load_pkcs12(bad, "docexchange-dev")
    assert "key.p12" in str(info.value)
    empty = make_settings(tmp_path / "empty")
    with pytest.raises(KeystoreError) as info2:
        DevPki.open(empty)
    assert "pki init" in str(info2.value)


def test_base_url_change_requires_force(small_pki: tuple[Settings, DevPki], directory: Directory) -> None:
    from dataclasses import replace

    settings, _pki = small_pki
    moved = replace(settings, pki=replace(settings.pki, port=settings.pki.port + 1))
    with pytest.raises(PKIError) as info:
        DevPki.from_settings(moved).init(directory)
    assert "--force" in str(info.value)


def test_revoke_rejects_unknown_serial_and_reason(dev_pki: DevPki) -> None:
    with pytest.raises(PKIError):
        dev_pki.revoke(12345, "key_compromise")
    serial = dev_pki.find_serial("h57-chu-tich")
    with pytest.raises(PKIError):
        dev_pki.revoke(serial, "because")
    assert serial not in dev_pki.revocations()
