"""Fixtures of the scale-out tests: a dev PKI for three nodes (lgsp-h49 → vdxp → lgsp-h57), projects whose
stores live in the machine's PostgreSQL (one schema per node, prefixed per test and dropped afterwards), and
nodes as real processes — ``docexchange serve --node X`` or ``docexchange serve --workers N``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaleout_kit import PG_URL, Cluster, drop_schemas, pg_problem, write_project

from docexchange.config import Settings


@pytest.fixture(scope="session")
def pg_url() -> str:
    problem = pg_problem(PG_URL)
    if problem is not None:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({problem}); run .ci/install", pytrace=False)
    return PG_URL


@pytest.fixture(scope="session")
def sx_keys(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A dev PKI (CAs, seals, officials, node TLS) for the three-node tree of config/agencies.toml."""
    from docexchange.directory import load_directory
    from docexchange.pki.devpki import DevPki
    from helpers import free_port

    base = tmp_path_factory.mktemp("sxpki")
    settings = write_project(base, base / "keys", free_port())
    DevPki.from_settings(settings).init(load_directory(settings.directory_file))
    return settings


@pytest.fixture
def cluster(tmp_path: Path, sx_keys: Settings, pg_url: str) -> Iterator[Cluster]:
    c = Cluster.create(tmp_path, sx_keys, pg_url)
    try:
        yield c
    finally:
        c.stop_all()
        drop_schemas(pg_url, c.prefix)
