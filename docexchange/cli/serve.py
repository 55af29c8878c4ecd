"""``docexchange serve``: run this host's trust services and axis nodes until interrupted."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import click
from aiohttp import web

from docexchange.cli.runtime import CliContext, pass_ctx
from docexchange.config import Settings
from docexchange.errors import ConfigError


async def start_site(app: web.Application, host: str, port: int, **kwargs: object) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
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


async def start_trust_services(settings: Settings) -> web.AppRunner:
    from docexchange.pki.devpki import DevPki
    from docexchange.pki.services import create_trust_app

    pki = DevPki.open(settings)
    app = create_trust_app(pki)
    runner = await start_site(app, settings.pki.host, settings.pki.port)
    click.echo(f"Dịch vụ tin cậy (TSA/OCSP/CRL): {settings.pki.base_url}")
    return runner


async def run_forever(settings: Settings, nodes: Sequence[str], trust_services: bool) -> None:
    runners: list[web.AppRunner] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if trust_services:
            runners.append(await start_trust_services(settings))
        click.echo("Nhấn Ctrl+C để dừng (press Ctrl+C to stop).")
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@click.command()
@click.option("--node", "nodes", multiple=True, help="Chỉ chạy trục này (run only this node); lặp lại được.")
@click.option("--no-trust-services", is_flag=True, help="Không chạy TSA/OCSP/CRL.")
@pass_ctx
def serve(ctx: CliContext, nodes: tuple[str, ...], no_trust_services: bool) -> None:
    """Chạy các trục liên thông và dịch vụ tin cậy — run this host's axis nodes and trust services."""
    settings = ctx.settings
    chosen = nodes or settings.serve.nodes
    asyncio.run(run_forever(settings, chosen, trust_services=settings.serve.trust_services and not no_trust_services))
