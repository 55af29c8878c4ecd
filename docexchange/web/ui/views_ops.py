"""Vận hành (operations): queue depths per state and destination, dead letters (resend, purge), the health of
this node and its neighbours (circuit breakers, a live probe), and the expiry dates of the certificates the node
and its agencies depend on."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from aiohttp import web

from docexchange.errors import DocExchangeError
from docexchange.exchange.model import DeliveryState
from docexchange.exchange.store import QueueQuery
from docexchange.web.keys import DISPATCHER, SERVICE, STORE, TRANSPORT
from docexchange.web.ui.core import PREFIX, UiContext, ctx_of, flash, read_form, redirect, render, require
from docexchange.web.users import UserRole

__all__ = ["certificate_rows", "setup_ops_routes"]

EXPIRY_WARNING = timedelta(days=30)
STATE_ORDER = [DeliveryState.QUEUED, DeliveryState.IN_FLIGHT, DeliveryState.RETRY_WAIT, DeliveryState.DEAD,
               DeliveryState.FORWARDED, DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED, DeliveryState.RECALLED]


def certificate_rows(ctx: UiContext) -> list[dict[str, Any]]:
    """Certificates that matter at this node: CAs, trust services, this node's TLS certificate and its neighbours'
    pinned ones, the seals and officials of the agencies served here — with their expiry dates."""
    from docexchange.pki.devpki import CertKind, DevPki
    from docexchange.pki.keystore import load_cert

    try:
        pki = DevPki.open(ctx.settings)
        issued = pki.issued()
    except DocExchangeError:
        return []
    local = {a.code for a in ctx.directory.agencies_of(ctx.node_id)}
    officials = {o.id for a in ctx.directory.agencies_of(ctx.node_id) for o in a.officials}
    neighbours = {n.id for n in ctx.directory.nodes if n.parent == ctx.node_id}
    parent = ctx.directory.node(ctx.node_id).parent
    if parent:
        neighbours.add(parent)
    now = ctx.clock.now()
    rows = []
    for serial, c in issued.items():
        keep = (
            c.kind in (CertKind.ROOT, CertKind.CA, CertKind.TSA, CertKind.OCSP)
            or (c.kind == CertKind.TLS and (c.subject_id == ctx.node_id or c.subject_id in neighbours))
            or (c.kind == CertKind.SEAL and c.subject_id in local)
            or (c.kind == CertKind.PERSON and c.subject_id in officials)
        )
        if not keep:
            continue
        try:
            cert = load_cert(pki.keys_dir / c.cert_file)
        except (DocExchangeError, OSError):
            continue
        if cert.serial_number != serial:
            continue  # superseded by a newer certificate for the same subject
        until = cert.not_valid_after_utc
        rows.append({
            "kind": c.kind.value, "subject_id": c.subject_id, "subject": cert.subject.rfc4514_string(),
            "serial": format(serial, "x"), "not_before": cert.not_valid_before_utc, "not_after": until,
            "expired": until <= now, "expiring": now < until <= now + EXPIRY_WARNING,
            "days_left": (until - now).days,
        })
    order = {"tls": 0, "seal": 1, "person": 2, "tsa": 3, "ocsp": 4, "ca": 5, "root": 6}
    return sorted(rows, key=lambda r: (not r["expired"], not r["expiring"], order.get(r["kind"], 9), r["subject_id"]))


async def _probe(request: web.Request, peers: list[str]) -> dict[str, dict[str, Any]]:
    transport = request.config_dict.get(TRANSPORT)
    out: dict[str, dict[str, Any]] = {}
    if transport is None:
        return out

    async def one(peer: str) -> None:
        start = time.monotonic()
        try:
            await asyncio.wait_for(transport.ping(peer), 5.0)
        except (TimeoutError, DocExchangeError) as exc:
            if isinstance(exc, DocExchangeError):
                out[peer] = {"ok": False, "error_vi": exc.message_vi, "error_en": exc.message_en}
            else:
                out[peer] = {"ok": False, "error_vi": "quá thời gian chờ", "error_en": "timed out"}
        else:
            out[peer] = {"ok": True, "ms": round((time.monotonic() - start) * 1000)}

    await asyncio.gather(*(one(p) for p in peers))
    return out


async def ops_page(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.OPERATOR)
    ctx = ctx_of(request)
    service = request.config_dict[SERVICE]
    per_destination = await service.counts(user.principal())  # {destination: {state: n}}
    counts: dict[str, dict[str, int]] = {}
    for dest, per in per_destination.items():
        for state, n in per.items():
            counts.setdefault(state, {})[dest] = n
    destinations = sorted(per_destination, key=lambda d: (d != "local", d))
    states = [s for s in STATE_ORDER if s.value in counts]
    dead = await service.queue(user.principal(), QueueQuery(states=(DeliveryState.DEAD,), limit=100))
    waiting = await service.queue(user.principal(), QueueQuery(states=(DeliveryState.RETRY_WAIT,), limit=20))
    dispatcher = request.config_dict.get(DISPATCHER)
    peers: list[dict[str, Any]] = []
    if dispatcher is not None:
        probes = await _probe(request, list(dispatcher.peers)) if request.query.get("probe") == "1" else {}
        for peer in dispatcher.peers:
            b = dispatcher.breakers[peer]
            st = dispatcher.stats[peer]
            try:
                node = ctx.directory.node(peer)
                name, url = node.name, node.url
            except DocExchangeError:
                name, url = peer, ""
            peers.append({"id": peer, "name": name, "url": url, "breaker": b.status.value,
                          "open_until": b.open_until, "last_error": b.last_error, "batches": st.batches,
                          "forwarded": st.delivered, "retried": st.retried, "dead": st.dead,
                          "probe": probes.get(peer)})
    store = request.config_dict.get(STORE)
    schema = await store.schema_version() if store is not None else None
    certs = await asyncio.to_thread(certificate_rows, ctx)
    return render(request, "ops.html", active="ops", counts=counts, destinations=destinations, states=states,
                  dead=list(dead.items), waiting=list(waiting.items), peers=peers, certs=certs, schema=schema,
                  probed=request.query.get("probe") == "1", now=ctx.clock.now())


async def resend(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.OPERATOR)
    await read_form(request)
    service = request.config_dict[SERVICE]
    d = await service.resend(user.principal(), request.match_info["did"])
    flash(request, "ok", f"Đã đưa lại vào hàng đợi: {d.delivery_id}", f"back in the queue: {d.delivery_id}")
    raise redirect(f"{PREFIX}/ops#thu-chet")


async def purge(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.OPERATOR)
    form = await read_form(request)
    if form.get("confirm") != "1":
        flash(request, "error", "Đánh dấu ô xác nhận trước khi xóa", "tick the confirmation box before purging")
        raise redirect(f"{PREFIX}/ops#thu-chet")
    service = request.config_dict[SERVICE]
    did = request.match_info["did"]
    await service.purge(user.principal(), did)
    flash(request, "ok", f"Đã xóa thư chết {did}", f"dead letter {did} purged")
    raise redirect(f"{PREFIX}/ops#thu-chet")


def setup_ops_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/ops", ops_page)
    r.add_post("/ops/dead/{did}/resend", resend)
    r.add_post("/ops/dead/{did}/purge", purge)

