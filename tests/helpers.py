"""Shared test helpers: a dev PKI built in a temporary folder and its trust services on a free loopback port."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from docexchange.config import PkiSettings, Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_settings(base: Path, pki_port: int | None = None) -> Settings:
    """Settings for a project folder at ``base`` with the repo's config copied in."""
    (base / "config").mkdir(parents=True, exist_ok=True)
    for name in ("docexchange.toml", "agencies.toml"):
        shutil.copy(REPO / "config" / name, base / "config" / name)
    settings = load_settings(base / "config" / "docexchange.toml")
    return replace(settings, pki=replace(settings.pki, port=pki_port or free_port()))


class ServerThread:
    """Runs an aiohttp application on its own event loop in a background thread (start/stop at will)."""

    def __init__(self, app_factory: Callable[[], web.Application], host: str, port: int) -> None:
        self.app_factory = app_factory
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        ready: Future[None] = Future()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            self._runner = web.AppRunner(self.app_factory(), access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(boot())
            except BaseException as exc:
                ready.set_exception(exc)
                return
            ready.set_result(None)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.result(timeout=30)
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)
        loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def trust_server(settings: Settings) -> ServerThread:
    from docexchange.pki.devpki import DevPki
    from docexchange.pki.services import create_trust_app

    pki = DevPki.open(settings)
    return ServerThread(lambda: create_trust_app(pki), settings.pki.host, settings.pki.port)


__all__ = ["REPO", "SHARED", "PkiSettings", "ServerThread", "free_port", "make_settings", "trust_server"]
