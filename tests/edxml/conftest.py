"""Fixtures for the edXML tests: generated seal keys and certificates, sample packets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from edxml_samples import make_cert, sample_document, sample_status

from docexchange.edxml.model import DocumentPacket, StatusPacket
from docexchange.edxml.signature import PacketSigner


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def rsa_signer(rsa_key: rsa.RSAPrivateKey) -> PacketSigner:
    return PacketSigner(rsa_key, make_cert(rsa_key))


@pytest.fixture(scope="session")
def signers(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> dict[str, PacketSigner]:
    rsa_cert = make_cert(rsa_key)
    return {
        "rsa-pkcs1v15": PacketSigner(rsa_key, rsa_cert),
        "rsa-pss": PacketSigner(rsa_key, rsa_cert, pss=True),
        "rsa-sha512": PacketSigner(rsa_key, rsa_cert, digest="sha512"),
        "ecdsa-p256": PacketSigner(ec_key, make_cert(ec_key)),
    }


@pytest.fixture
def document() -> DocumentPacket:
    return sample_document()


@pytest.fixture
def status() -> StatusPacket:
    return sample_status()


@pytest.fixture
def build() -> Callable[..., DocumentPacket]:
    return sample_document
