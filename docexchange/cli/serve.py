"""``docexchange serve``: run this host's trust services and axis nodes until interrupted.

Each node listens on its own port (``[[nodes]] host/port`` in the directory) with HTTPS: agencies call its JSON
API with signed requests, neighbouring nodes its peer API with their pinned client certificates. Several nodes
can run in one process (the demo, a test bed); in production each node usually runs alone (``--node``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
from aiohttp import web

from docexchange.cli.runtime import CliContext, pass_ctx
from docexchange.config import Settings
from docexchange.errors import ConfigError

__all__ = ["NodeSet", "run_forever", "serve", "start_site", "start_trust_services"]

log = logging.getLogger(__name__)


async def start_site(app: web.Application, host: str, port: int, **kwargs: object) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, **kwargs)  # type: ignore[arg-type]
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"Không mở được cổng {host}:{port} ({exc.strerror}): cổng đang bận?",
            f"cannot listen on {host}:{port} ({exc.strerror}): port in use?",
        ) from exc
    return runner


async def start_trust_services(settings: Settings, *, quiet: bool = False) -> web.AppRunner:
    from docexchange.pki.devpki import DevPki
    from docexchange.pki.services import create_trust_app

    pki = DevPki.open(settings)
    app = create_trust_app(pki)
    runner = await start_site(app, settings.pki.host, settings.pki.port)
    if not quiet:
        click.echo(f"Dịch vụ tin cậy (TSA/OCSP/CRL): {settings.pki.base_url}")
    return runner


@dataclass
class NodeSet:
    """Axis nodes running in this process, sharing one verification pool."""

    settings: Settings
    runners: dict[str, web.AppRunner] = field(default_factory=dict)
    apps: dict[str, web.Application] = field(default_factory=dict)
    _pool: Any = None
    _verifier: Any = None
    _parse_pool: Any = None
    reuse_port: bool = False
    """Listen with SO_REUSEPORT (one of several worker processes of ``serve --workers N``)."""

    async def start(self, node_ids: Sequence[str], *, verify_on_arrival: bool | None = None,
                    quiet: bool = False) -> None:
        from docexchange.directory import load_directory
        from docexchange.exchange.verification import PacketVerifier, make_pool
        from docexchange.pki.devpki import DevPki
        from docexchange.web.app import NodeOptions, create_app
        from docexchange.web.keys import TLS

        directory = load_directory(self.settings.directory_file)
        for n in node_ids:
            directory.node(n)
        if self.settings.serve.workers > 1 and not self.settings.store.url.startswith(("postgres", "postgresql")):
            raise ConfigError(
                "Nhiều tiến trình cho một trục chỉ dùng được với kho PostgreSQL",
                "several worker processes per node need the PostgreSQL store",
            )
        pki = DevPki.open(self.settings)
        verify = self.settings.verification.nd30_on_arrival if verify_on_arrival is None else verify_on_arrival
        if verify and self._pool is None:
            self._pool = make_pool(max(1, self.settings.exchange.verify_workers))
            self._verifier = PacketVerifier(self.settings, directory)
        if self._parse_pool is None and self.settings.exchange.parse_workers > 0:
            from docexchange.exchange.parsing import make_parse_pool

            self._parse_pool = make_parse_pool(self.settings.directory_file, self.settings.exchange.parse_workers)
        options = NodeOptions(verify_on_arrival=verify, verify_executor=self._pool, verify_fn=self._verifier,
                              parse_pool=self._parse_pool)
        for node_id in node_ids:
            node = directory.node(node_id)
            app = create_app(self.settings, directory, node_id, pki=pki, options=options)
            self.runners[node_id] = await start_site(app, node.host, node.port,
                                                     ssl_context=app[TLS].server_context(),
                                                     reuse_port=self.reuse_port or None)
            self.apps[node_id] = app
            if not quiet:
                click.echo(f"{node.name} [{node_id}]: {node.url}")

    async def stop(self, node_id: str | None = None) -> None:
        for nid in [node_id] if node_id else list(reversed(self.runners)):
            runner = self.runners.pop(nid, None)
            self.apps.pop(nid, None)
            if runner is not None:
                await runner.cleanup()
        if not self.runners:
            if self._verifier is not None:
                await asyncio.to_thread(self._verifier.close)
                self._verifier = None
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            if self._parse_pool is not None:
                self._parse_pool.shutdown(wait=False, cancel_futures=True)
                self._parse_pool = None


async def run_forever(
    settings: Settings,
    nodes: Sequence[str],
    trust_services: bool,
    *,
    after_start: Callable[[NodeSet], Awaitable[None]] | None = None,
    verify_on_arrival: bool | None = None,
) -> None:
    """Run the trust services (if asked) and ``nodes`` (none when empty) until SIGINT/SIGTERM."""
    runners: list[web.AppRunner] = []
    nodeset = NodeSet(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _profiling(loop)
    try:
        if trust_services:
            runners.append(await start_trust_services(settings))
        if nodes:
            await nodeset.start(nodes, verify_on_arrival=verify_on_arrival)
        if after_start is not None:
            await after_start(nodeset)
        click.echo("Nhấn Ctrl+C để dừng (press Ctrl+C to stop).")
        await stop.wait()
    finally:
        await nodeset.stop()
        for runner in reversed(runners):
            await runner.cleanup()


def _profiling(loop: asyncio.AbstractEventLoop) -> None:
    """With ``$DOCEXCHANGE_PROFILE=<path>``: SIGUSR1 starts cProfile in this process, SIGUSR2 stops it and writes
    ``<path>.<pid>.prof`` (to look at a running node in its steady state, without start-up)."""
    import os

    target = os.environ.get("DOCEXCHANGE_PROFILE")
    if not target:
        return
    import cProfile

    prof = cProfile.Profile()

    def start() -> None:
        prof.enable()

    def dump() -> None:
        prof.disable()
        prof.dump_stats(f"{target}.{os.getpid()}.prof")

    loop.add_signal_handler(signal.SIGUSR1, start)
    loop.add_signal_handler(signal.SIGUSR2, dump)


@click.command()
@click.option("--node", "nodes", multiple=True, help="Chỉ chạy trục này (run only this node); lặp lại được.")
@click.option("--no-trust-services", is_flag=True, help="Không chạy TSA/OCSP/CRL.")
@click.option("--no-verify", is_flag=True, help="Không kiểm tra chữ ký văn bản đến (routing only).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Số tiến trình cho mỗi trục, cần PostgreSQL (worker processes per node; default [serve] workers).")
@pass_ctx
def serve(ctx: CliContext, nodes: tuple[str, ...], no_trust_services: bool, no_verify: bool,
          workers: int | None) -> None:
    """Chạy các trục liên thông và dịch vụ tin cậy — run this host's axis nodes and trust services.

    Không chỉ định --node: chạy các trục trong [serve] nodes, hoặc mọi trục của danh bạ (every node of the
    directory when [serve] nodes is empty).
    """
    settings = ctx.settings
    chosen = nodes or settings.serve.nodes or tuple(n.id for n in ctx.directory().nodes)
    if (workers or settings.serve.workers) > 1:
        from docexchange.exchange.workers import WorkerPlan, run_workers

        sys.exit(run_workers(settings, WorkerPlan(
            tuple(chosen), workers or settings.serve.workers, ctx.config_path,
            verify_on_arrival=False if no_verify else None,
            trust_services=settings.serve.trust_services and not no_trust_services,
        )))
    asyncio.run(run_forever(
        settings, chosen, trust_services=settings.serve.trust_services and not no_trust_services,
        verify_on_arrival=False if no_verify else None,
    ))
