"""The application of one axis node: factory and resource lifecycle (``cleanup_ctx``).

::

    app = create_app(settings, directory, "lgsp-h49")
    runner = web.AppRunner(app); await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=app[TLS].server_context()).start()

Resources, in the order they start (and stop in reverse): the store (with the node's receipt signer), the HTTP
client session and the peer transport, the dispatcher (one lane per neighbour), the verification workers, the
scheduler. Every node serves HTTPS on its own port: agencies call the JSON API with HMAC-signed requests,
neighbours call the peer API with their pinned client certificates.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from docexchange.clock import Clock, SystemClock
from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.edxml._xml import MiB
from docexchange.exchange.backends import open_store
from docexchange.exchange.delivery import Dispatcher
from docexchange.exchange.parsing import make_parse_pool
from docexchange.exchange.receipts import ReceiptSigner, load_tls_key
from docexchange.exchange.service import NodeService
from docexchange.exchange.transport import NodeTls, PeerTransport
from docexchange.exchange.verification import VerificationRunner, VerifyFn, make_pool
from docexchange.pki.devpki import DevPki
from docexchange.scheduler import build_scheduler
from docexchange.web.api import setup_api_routes
from docexchange.web.auth import Credentials, SecretBox
from docexchange.web.keys import (
    CLOCK,
    CREDENTIALS,
    DIRECTORY,
    DISPATCHER,
    NODE_ID,
    OPTIONS,
    SCHEDULER,
    SERVICE,
    SESSION,
    SETTINGS,
    STORE,
    TLS,
    TRANSPORT,
    VERIFICATION,
)
from docexchange.web.middlewares import error_middleware
from docexchange.web.peer import setup_peer_routes
from docexchange.web.ui import setup_ui
from docexchange.web.vxp import setup_vxp_routes

__all__ = ["NodeOptions", "create_app", "credentials_box"]


SIGNER = web.AppKey("signer", ReceiptSigner)


@dataclass(frozen=True)
class NodeOptions:
    verify_on_arrival: bool | None = None
    """Override ``[verification] nd30_on_arrival`` (e.g. a routing-only benchmark)."""
    verify_executor: Executor | None = None
    """Threads driving verification, shared by several nodes of one process; None: the node makes its own."""
    verify_fn: VerifyFn | None = None
    """A packet verifier shared by several nodes of one process; None: the node makes its own."""
    parse_pool: ProcessPoolExecutor | None = None
    """Processes checking submitted packets, shared by several nodes of one process; None: the node makes its
    own (``[exchange] parse_workers``; 0: none, in process)."""
    dispatch: bool = True
    """Run the forwarding lanes (tests may hold a node's output back)."""
    schedule: bool = True


def credentials_box(settings: Settings, node_id: str) -> SecretBox:
    return SecretBox(DevPki.passphrase_from(settings), f"docexchange-node:{node_id}")


def create_app(
    settings: Settings,
    directory: Directory,
    node_id: str,
    *,
    clock: Clock | None = None,
    options: NodeOptions | None = None,
    pki: DevPki | None = None,
) -> web.Application:
    options = options or NodeOptions()
    directory.node(node_id)  # unknown node: fail now
    pki = pki or DevPki.open(settings)
    max_body = max(settings.exchange.max_packet_mb, settings.exchange.batch_max_mb) * MiB + MiB
    app = web.Application(middlewares=[error_middleware], client_max_size=max_body)
    app[SETTINGS] = settings
    app[DIRECTORY] = directory
    app[NODE_ID] = node_id
    app[CLOCK] = clock or SystemClock()
    app[OPTIONS] = options
    app[TLS] = NodeTls.from_pki(pki, directory, node_id)
    _, key_pem = pki.node_tls(node_id)
    signer = ReceiptSigner(node_id, load_tls_key(key_pem, pki.passphrase))
    app[SIGNER] = signer
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_session_ctx)
    app.cleanup_ctx.append(_dispatcher_ctx)
    app.cleanup_ctx.append(_verification_ctx)
    app.cleanup_ctx.append(_scheduler_ctx)
    setup_peer_routes(app)
    setup_api_routes(app)
    setup_vxp_routes(app)  # national-axis-style API (docs/national-axis-api.md)
    setup_ui(app)  # the web pages under /ui/ (docexchange/web/ui, docs/web.md)
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, node_id, clock = app[SETTINGS], app[NODE_ID], app[CLOCK]
    signer = app[SIGNER]
    store = open_store(settings, node_id, signer=signer.sign_group, clock=clock.now)
    await store.open()
    app[STORE] = store
    options: NodeOptions = app[OPTIONS]  # type: ignore[assignment]
    pool = options.parse_pool
    own_pool = None
    if pool is None and settings.exchange.parse_workers > 0:
        pool = own_pool = make_parse_pool(settings.directory_file, settings.exchange.parse_workers)
    app[SERVICE] = NodeService(
        node_id=node_id, directory=app[DIRECTORY], store=store, clock=clock, settings=settings,
        verify_on_arrival=options.verify_on_arrival, parser=pool,
    )
    app[CREDENTIALS] = Credentials(store, credentials_box(settings, node_id), clock)
    try:
        yield
    finally:
        await store.close()
        if own_pool is not None:
            own_pool.shutdown(wait=False, cancel_futures=True)


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    connector = aiohttp.TCPConnector(limit=64, limit_per_host=16, keepalive_timeout=60, enable_cleanup_closed=True)
    session = aiohttp.ClientSession(connector=connector)
    app[SESSION] = session
    app[TRANSPORT] = PeerTransport(app[NODE_ID], app[DIRECTORY], app[TLS], session,
                                   timeout=settings.exchange.transfer_timeout_seconds)
    try:
        yield
    finally:
        await session.close()


async def _dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    options: NodeOptions = app[OPTIONS]  # type: ignore[assignment]
    dispatcher = Dispatcher(
        node_id=app[NODE_ID], directory=app[DIRECTORY], store=app[STORE], service=app[SERVICE],
        transport=app[TRANSPORT], clock=app[CLOCK], settings=app[SETTINGS],
    )
    app[DISPATCHER] = dispatcher
    app[SERVICE].on_queued(dispatcher.wake)
    if options.dispatch:
        await dispatcher.start()
    try:
        yield
    finally:
        await dispatcher.stop()


async def _verification_ctx(app: web.Application) -> AsyncIterator[None]:
    options: NodeOptions = app[OPTIONS]  # type: ignore[assignment]
    service = app[SERVICE]
    own_pool: Any = None
    runner = None
    if service.verify_on_arrival:
        executor = options.verify_executor
        if executor is None:
            own_pool = executor = make_pool(app[SETTINGS].exchange.verify_workers)
        runner = VerificationRunner(
            service=service, store=app[STORE], clock=app[CLOCK], settings=app[SETTINGS], executor=executor,
            verify=options.verify_fn,
        )
        app[VERIFICATION] = runner
        await runner.start()
    try:
        yield
    finally:
        if runner is not None:
            await runner.stop()
        if own_pool is not None:
            own_pool.shutdown(wait=False, cancel_futures=True)


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    options: NodeOptions = app[OPTIONS]  # type: ignore[assignment]
    scheduler = build_scheduler(
        app[SETTINGS].scheduler, store=app[STORE], clock=app[CLOCK],
        dispatcher=app[DISPATCHER] if options.dispatch else None, node_id=app[NODE_ID],
    )
    app[SCHEDULER] = scheduler
    if options.schedule:
        scheduler.start()
    try:
        yield
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
