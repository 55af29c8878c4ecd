"""Session fixtures shared by every area: one dev PKI and its live trust services (TSA, OCSP, CRL)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docexchange.config import Settings
from docexchange.directory import Directory, load_directory
from docexchange.pki.devpki import DevPki
from helpers import ServerThread, make_settings, trust_server


@pytest.fixture(scope="session")
def pki_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a project folder holding a freshly built dev PKI (its URLs point at a free port)."""
    base = tmp_path_factory.mktemp("project")
    settings = make_settings(base)
    DevPki.from_settings(settings).init(load_directory(settings.directory_file))
    return settings


@pytest.fixture(scope="session")
def directory(pki_settings: Settings) -> Directory:
    return load_directory(pki_settings.directory_file)


@pytest.fixture(scope="session")
def dev_pki(pki_settings: Settings) -> DevPki:
    return DevPki.open(pki_settings)


@pytest.fixture(scope="session")
def trust_services(pki_settings: Settings) -> Iterator[ServerThread]:
    """The TSA, OCSP responder and CRLs of the session PKI, live on loopback."""
    with trust_server(pki_settings) as server:
        yield server
