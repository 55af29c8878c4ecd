"""Fixtures for the verifier tests: verifiers on the session PKI and on the corpus anchors, signed letters made
by our own signing module (person + seal, B-B … B-LTA), and a plain-pyHanko signer for certificates our
signing module rightly refuses to use (expired, revoked, untrusted)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from verify_support import CHAIRMAN, CORPUS, G22, HALONG, Signed, raw_sign

from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.pki.devpki import DevPki
from docexchange.signing import LetterSpec, SigningService, make_letter
from docexchange.verify import Verifier
from helpers import ServerThread


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


@pytest.fixture(scope="session")
def signed(service: SigningService, letter: bytes, directory: Directory, dev_pki: DevPki,
           trust_services: ServerThread) -> Signed:
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
        # our signing module refuses to seal first (rightly): the clerk's mistake is made with stock pyHanko
        seal_first=service.sign(
            raw_sign(letter, dev_pki.seal(HALONG), field="Seal", tsa_url=f"{trust_services.url}/tsa",
                     lt_roots=[dev_pki.root_cert]),
            person, level="B-LT"),
    )


