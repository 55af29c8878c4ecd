"""Fixtures of the exchange tests: a dev PKI for a four-level federation of axis nodes, its trust services,
per-test project folders (free ports, own data) and federations running in the test's event loop."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exchange_harness import DONG_XA, HONG_GAI, THUAN_HOA, Federation, write_project

from docexchange.config import Settings
from docexchange.directory import load_directory
from docexchange.pki.devpki import DevPki
from helpers import ServerThread, free_port, trust_server


@pytest.fixture(scope="session")
def fed_keys(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A dev PKI (CAs, seals, officials, node TLS) for the four-level node tree."""
    base = tmp_path_factory.mktemp("fedpki")
    settings = write_project(base, base / "keys", free_port())
    DevPki.from_settings(settings).init(load_directory(settings.directory_file))
    return settings


@pytest.fixture(scope="session")
def fed_trust(fed_keys: Settings) -> Iterator[ServerThread]:
    with trust_server(fed_keys) as server:
        yield server


@pytest.fixture
def fed_settings(tmp_path: Path, fed_keys: Settings) -> Settings:
    return write_project(tmp_path / "project", fed_keys.keys_dir, fed_keys.pki.port)


@pytest.fixture
async def federation(fed_settings: Settings) -> AsyncIterator[Federation]:
    fed = Federation(fed_settings)
    await fed.start()
    try:
        yield fed
    finally:
        await fed.close()



@pytest.fixture(scope="session")
def letters(fed_keys: Settings, fed_trust: ServerThread) -> dict[str, bytes]:
    """Real signed letters (person, then seal, PAdES B-LT against the live TSA/OCSP), keyed by what they are:
    the sealing agency's code, or ``wrong-seal`` for Hồng Gai's official with Đông Xá's seal."""
    from docexchange.signing import LetterSpec, SigningService, make_letter

    directory = load_directory(fed_keys.directory_file)
    plan = {
        HONG_GAI: ("h49-honggai-chu-tich", HONG_GAI),
        "000.00.00.H49": ("h49-chu-tich", "000.00.00.H49"),
        THUAN_HOA: ("h57-thuanhoa-chu-tich", THUAN_HOA),
        "wrong-seal": ("h49-honggai-chu-tich", DONG_XA),
    }
    out = {}
    with SigningService(fed_keys) as service:
        for name, (official, seal) in plan.items():
            pdf = make_letter(LetterSpec.for_official(directory, official))
            pdf = service.sign(pdf, service.person(official))
            out[name] = service.sign(pdf, service.seal(seal))
    return out
