"""The agency API over real HTTPS: the authorization matrix (agency × endpoint), unauthenticated and foreign
calls, problem+json answers, paging and long-polling, and the OpenAPI 3.1 description of every route."""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from exchange_harness import Federation, eventually

from docexchange.errors import DocExchangeError
from docexchange.web.auth import Role
from docexchange.web.client import AgencyClient

HG = "000.01.11.H49"
TH = "000.00.31.H57"
PV = "000.00.32.H57"
PDF = b"%PDF-1.7\n% api test\n" + b"x" * 2000


def meta(to: list[str], n: str) -> dict[str, Any]:
    return {"to": to, "subject": f"Thử quyền truy cập {n}", "code_number": n, "code_notation": "UBND"}


async def status_of(call: Awaitable[Any]) -> int:
    try:
        await call
    except DocExchangeError as exc:
        return int(exc.http_status)
    return 200


Call = Callable[[AgencyClient, dict[str, str]], Awaitable[Any]]

ENDPOINTS: dict[str, Call] = {
    "submit": lambda c, ids: c.submit_document(TH, meta([HG], "9" + ids["n"]), PDF),
    "inbox": lambda c, ids: c.inbox(TH),
    "item": lambda c, ids: c.item(TH, ids["in"]),
    "packet": lambda c, ids: c.packet(TH, ids["in"]),
    "attachments": lambda c, ids: c.attachments(TH, ids["in"]),
    "ack": lambda c, ids: c.ack(TH, ids["in"]),
    "status": lambda c, ids: c.status(TH, ids["in"], "05", "Đang xử lý"),
    "recall-response": lambda c, ids: c.recall_response(TH, ids["in"], True),
    "sent": lambda c, ids: c.sent(TH),
    "sent-item": lambda c, ids: c.sent_item(TH, ids["sent"]),
    "recall": lambda c, ids: c.recall(TH, ids["sent"]),
    "trail-own": lambda c, ids: c.trail(ids["in"]),
    "admin-queue": lambda c, ids: c.queue(),
    "admin-status": lambda c, ids: c.node_status(),
    "admin-resend": lambda c, ids: c.resend(ids["in"]),
    "directory": lambda c, ids: c.directory(),
}

# Who may do what at the Huế node: Thuận Hóa's own software, a vendor serving Thuận Hóa and Phú Vang,
# Phú Vang's software (same node, another agency), an auditor and an operator.
ALLOW: dict[str, set[str]] = {
    "thuanhoa": {"submit", "inbox", "item", "packet", "attachments", "ack", "status", "recall-response", "sent",
                 "sent-item", "recall", "trail-own", "directory"},
    "vendor": {"submit", "inbox", "item", "packet", "attachments", "ack", "status", "recall-response", "sent",
               "sent-item", "recall", "trail-own", "directory"},
    "phuvang": {"directory"},
    "auditor": {"trail-own", "admin-status", "directory"},
    "operator": {"admin-queue", "admin-status", "admin-resend", "directory"},
}


async def _setup(fed3: Federation) -> tuple[dict[str, AgencyClient], dict[str, str]]:
    hg = await fed3.client(HG)
    th = await fed3.client(TH)
    clients = {
        "thuanhoa": th,
        "vendor": await fed3.client(node_id="lgsp-h57", system_id="vendor-hue", agencies=[TH, PV]),
        "phuvang": await fed3.client(PV),
        "auditor": await fed3.client(node_id="lgsp-h57", system_id="auditor-hue", role=Role.AUDITOR, agencies=[]),
        "operator": await fed3.client(node_id="lgsp-h57", system_id="ops-hue", role=Role.OPERATOR, agencies=[]),
    }
    r = await hg.submit_document(HG, meta([TH], "1"), PDF)
    in_id = r["deliveries"][0]["delivery_id"]
    await eventually(lambda: _has(th, in_id), what="arrival")
    sent = await th.submit_document(TH, meta([HG], "2"), PDF)
    return clients, {"in": in_id, "sent": sent["message_id"]}


async def _has(c: AgencyClient, did: str) -> bool:
    return any(i["delivery_id"] == did for i in (await c.inbox(TH))["items"])


async def test_authorization_matrix(fed3: Federation) -> None:
    clients, ids = await _setup(fed3)
    failures = []
    for n, (who, client) in enumerate(clients.items()):
        for name, call in ENDPOINTS.items():
            code = await status_of(call(client, {**ids, "n": f"{n}{len(failures)}"}))
            allowed = code not in (401, 403, 404)
            if allowed != (name in ALLOW[who]):
                failures.append(f"{who} {name}: HTTP {code}")
    assert not failures, failures


async def test_unauthenticated_and_foreign_credentials(fed3: Federation) -> None:
    _clients, ids = await _setup(fed3)
    url = fed3.directory.node("lgsp-h57").url
    ctx = ssl.create_default_context(cafile=str(fed3.ca_file))
    async with aiohttp.ClientSession() as s:
        for path in (f"/api/v1/agencies/{TH}/inbox", f"/api/v1/agencies/{TH}/inbox/{ids['in']}/packet",
                     "/api/v1/admin/queue", f"/api/v1/deliveries/{ids['in']}/trail"):
            async with s.get(url + path, ssl=ctx) as resp:
                assert resp.status == 401
                assert resp.content_type == "application/problem+json"
                body = json.loads(await resp.read())
                assert body["code"] == "auth" and body["message_vi"] and body["message_en"]
        async with s.get(url + "/health", ssl=ctx) as resp:
            assert resp.status == 200
    # Credentials issued by another node mean nothing here.
    hg = await fed3.client(HG)
    foreign = AgencyClient(url, hg.system_id, hg._secret, ca_file=fed3.ca_file)
    fed3.clients.append(foreign)
    assert await status_of(foreign.inbox(TH)) == 401


async def test_paging_filters_and_long_poll(fed3: Federation) -> None:
    hg = await fed3.client(HG)
    th = await fed3.client(TH)
    import asyncio

    waiting = asyncio.create_task(th.inbox(TH, wait=20, kind="document"))
    await asyncio.sleep(0.3)
    for i in range(7):
        await hg.submit_document(HG, {**meta([TH], f"3{i}"), "priority": 3 if i == 5 else 0}, PDF)
    first = await waiting
    assert first["items"], "the long poll returns when mail arrives"
    await eventually(lambda: _count(th, 7), what="seven letters")
    page1 = await th.inbox(TH, kind="document", limit=3)
    page2 = await th.inbox(TH, kind="document", limit=3, cursor=page1["next_cursor"])
    page3 = await th.inbox(TH, kind="document", limit=3, cursor=page2["next_cursor"])
    ids = [i["delivery_id"] for p in (page1, page2, page3) for i in p["items"]]
    assert len(ids) == 7 and len(set(ids)) == 7 and page3["next_cursor"] is None
    assert page1["items"][0]["priority"] == 3, "Hỏa tốc first"
    flash = await th.inbox(TH, kind="document", priority=3)
    assert len(flash["items"]) == 1
    statuses = await th.inbox(TH, kind="status")
    assert statuses["items"] == []
    with pytest.raises(DocExchangeError) as exc:
        await th.inbox(TH, since="yesterday")
    assert exc.value.http_status == 400


async def _count(c: AgencyClient, n: int) -> bool:
    return len((await c.inbox(TH, kind="document", limit=100))["items"]) == n


async def test_openapi_describes_every_route(fed3: Federation) -> None:
    url = fed3.directory.node("lgsp-h57").url
    ctx = ssl.create_default_context(cafile=str(fed3.ca_file))
    async with aiohttp.ClientSession() as s, s.get(url + "/openapi.json", ssl=ctx) as resp:
        assert resp.status == 200
        spec = json.loads(await resp.read())
    assert spec["openapi"].startswith("3.1")
    app = fed3.app("lgsp-h57")
    routes = set()
    for r in app.router.routes():
        path = r.resource.canonical if r.resource else ""
        if (path.startswith("/api/") or path in ("/health", "/openapi.json")) and r.method != "HEAD":
            routes.add((path, r.method.lower()))
    documented = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert routes <= documented, routes - documented
    for (p, m) in documented:
        op = spec["paths"][p][m]
        assert op["summary"] and "responses" in op
        if p.startswith("/api/"):
            assert op["security"] == [{"hmac": []}]
