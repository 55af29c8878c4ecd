"""Fixtures for the verifier tests: verifiers on the session PKI and on the corpus anchors, signed letters made
by our own signing module (person + seal, B-B … B-LTA), and a plain-pyHanko signer for certificates our
signing module rightly refuses to use (expired, revoked, untrusted)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from helpers import SHARED, ServerThread
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata
from pyhanko_certvalidator.registry import SimpleCertificateStore

from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.pki.keystore import KeyMaterial
from docexchange.signing import LetterSpec, SigningService, make_letter
from docexchange.verify import Verifier

CORPUS = SHARED / "corpus" / "pdf"
HALONG = "000.00.11.H49"
CHAIRMAN = "h49-halong-chu-tich"
G22 = "000.00.00.G22"


@pytest.fixture(scope="session")
def verifier(pki_settings: Settings, directory: Directory) -> Iterator[Verifier]:
    """The production set-up: a sandboxed worker process, the session PKI's root as anchor."""
    with Verifier.from_settings(pki_settings, directory) as v:
        yield v


@pytest.fixture(scope="session")
def corpus_settings(pki_settings: Settings) -> Settings:
    anchors = tuple(str(p) for p in sorted((CORPUS / "trust").glob("*.der")))
    return replace(pki_settings, verification=replace(pki_settings.verification, anchors=anchors))


@pytest.fixture(scope="session")
def corpus_verifier(corpus_settings: Settings, directory: Directory) -> Iterator[Verifier]:
    """Trusts the corpus' anchors (trust/*.der) besides the dev root; never goes online."""
    settings = replace(corpus_settings, verification=replace(corpus_settings.verification, allow_online=False))
    with Verifier.from_settings(settings, directory) as v:
        yield v


@pytest.fixture(scope="session")
def service(pki_settings: Settings, trust_services: ServerThread) -> Iterator[SigningService]:
    svc = SigningService(pki_settings)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def letter(directory: Directory) -> bytes:
    return make_letter(LetterSpec.for_official(directory, CHAIRMAN))


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


@pytest.fixture(scope="session")
def signed(service: SigningService, letter: bytes, directory: Directory) -> Signed:
    from docexchange.signing import AppendixMark

    person = service.person(CHAIRMAN)
    seal = service.seal(HALONG)
    person_lt = service.sign(letter, person, level="B-LT")
    person_bb = service.sign(letter, person, level="B-B")
    person_bt = service.sign(letter, person, level="B-T")
    appendix_src = make_letter(replace(LetterSpec.for_official(directory, CHAIRMAN), subject="Phụ lục kèm theo"))
    return Signed(
        person_lt=person_lt,
        lt=service.sign(person_lt, seal, level="B-LT"),
        lta=service.sign(person_lt, seal, level="B-LTA"),
        bb=service.sign(person_bb, seal, level="B-B"),
        bt=service.sign(person_bt, seal, level="B-T"),
        appendix=service.sign(appendix_src, seal, level="B-LT", appendix=AppendixMark("05/QĐ-UBND")),
        person_only=person_lt,
        foreign_seal=service.sign(person_lt, service.seal(G22), level="B-LT"),
    )


# -- plain pyHanko, for what our signing module refuses to do --------------------------------------------------
def asn1_cert(cert: object) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))  # type: ignore[attr-defined]


def raw_sign(data: bytes, material: KeyMaterial, *, field: str = "Signature", tsa_url: str | None = None,
             md: str = "sha256") -> bytes:
    """Sign with stock pyHanko (B-B, or B-T with ``tsa_url``); no certificate checks at all."""
    key = asn1_keys.PrivateKeyInfo.load(material.key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signer = signers.SimpleSigner(
        signing_cert=asn1_cert(material.cert), signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert(c) for c in material.chain]),
    )
    meta = PdfSignatureMetadata(field_name=field, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm=md)
    stamper = timestamps.HTTPTimeStamper(tsa_url) if tsa_url else None
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    out = signers.PdfSigner(meta, signer=signer, timestamper=stamper).sign_pdf(w)
    return bytes(out.getvalue())


def read_corpus(rel: str) -> bytes:
    return (CORPUS / rel).read_bytes()


def path_of(name: str) -> Path:
    return CORPUS / name
