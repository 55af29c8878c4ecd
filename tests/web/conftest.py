"""Fixtures of the web tests: a three-node federation (national axis, Quảng Ninh, Huế) on the session's dev
PKI, in the test's event loop, with real HTTPS and mutual TLS on free loopback ports."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "exchange"))

from exchange_harness import Federation, write_project

from docexchange.config import Settings


@pytest.fixture
def web_settings(tmp_path: Path, pki_settings: Settings) -> Settings:
    return write_project(tmp_path / "project", pki_settings.keys_dir, pki_settings.pki.port, four_level=False)


@pytest.fixture
async def fed3(web_settings: Settings) -> AsyncIterator[Federation]:
    fed = Federation(web_settings)
    await fed.start()
    try:
        yield fed
    finally:
        await fed.close()
