"""Fixtures of the web-page tests: the project of :mod:`ui_harness`, its dev PKI and trust services, the dev
user accounts, the two nodes as separate ``docexchange serve`` processes (the exchange harness's
:class:`NodeProcess`: real HTTPS, mutual TLS between the nodes, arrival verification on), and Debian's Chromium
driven by Playwright (never a downloaded browser).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_harness import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    COMMUNE_NODE,
    PROVINCE_NODE,
    NodeProcess,
    UiBed,
    write_ui_project,
)

from docexchange.config import Settings
from docexchange.directory import load_directory
from docexchange.pki.devpki import DevPki
from helpers import ServerThread, free_port, trust_server


@pytest.fixture(scope="session")
def ui_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    base = tmp_path_factory.mktemp("uiproject")
    settings = write_ui_project(base, base / "keys", free_port())
    DevPki.from_settings(settings).init(load_directory(settings.directory_file))
    return settings


@pytest.fixture(scope="session")
def ui_trust(ui_settings: Settings) -> Iterator[ServerThread]:
    with trust_server(ui_settings) as server:
        yield server


@pytest.fixture(scope="session")
def ui_users(ui_settings: Settings) -> Path:
    """The dev accounts (``docexchange users init``): every official, a clerk per agency, auditor, operator."""
    from docexchange.clock import SystemClock
    from docexchange.web.users import DEV_PASSWORD, UserFile, dev_accounts

    uf = UserFile.for_settings(ui_settings)
    accounts = dev_accounts(load_directory(ui_settings.directory_file), lambda _u: (DEV_PASSWORD, True),
                            SystemClock().now())
    uf.add_many(a for a, _ in accounts)
    return uf.path


@pytest.fixture(scope="session")
def ui_bed(ui_settings: Settings, ui_trust: ServerThread, ui_users: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiBed]:
    logs = tmp_path_factory.mktemp("uilogs")
    procs = {n: NodeProcess(ui_settings, n, logs) for n in (PROVINCE_NODE, COMMUNE_NODE)}
    try:
        for p in procs.values():
            p.start()
        for p in procs.values():
            p.wait_ready(timeout=120)
        yield UiBed(ui_settings, procs)
    finally:
        for p in procs.values():
            p.stop()
        for p in procs.values():
            text = p.log_path.read_text(errors="replace") if p.log_path.exists() else ""
            if "Traceback" in text:
                sys.stderr.write(f"\n--- {p.node_id} log ---\n{text[-6000:]}\n")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API marks an event loop as running in the main thread for as
    # long as it is open, which would break every later test that runs its own loop.
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
