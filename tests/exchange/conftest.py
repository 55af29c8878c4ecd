"""Fixtures of the exchange tests: a dev PKI for a four-level federation of axis nodes, its trust services,
per-test project folders (free ports, own data) and federations running in the test's event loop."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exchange_harness import Federation, write_project  # noqa: E402
from helpers import ServerThread, free_port, trust_server  # noqa: E402

from docexchange.config import Settings  # noqa: E402
from docexchange.directory import load_directory  # noqa: E402
from docexchange.pki.devpki import DevPki  # noqa: E402


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
