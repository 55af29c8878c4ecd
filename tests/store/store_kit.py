"""Values the store contract suite builds packets from (importable by the tests of this folder)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from docexchange.exchange.model import DeliveryEvent, MessageKind, TrailEntry, message_id_for
from docexchange.exchange.store import Effect, Ingest, NewDelivery, NewMessage

PG_URL = os.environ.get("DOCEXCHANGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
NODE = "lgsp-h49"
PEER = "vdxp"
CHILD = "lgsp-h49-hl"
T0 = datetime(2025, 1, 5, 1, 0, tzinfo=UTC)


async def drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@dataclass
class MovableClock:
    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at = self.at + timedelta(seconds=seconds)
        return self.at



def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def message(
    key: str,
    *,
    sender: str = "000.01.11.H49",
    kind: MessageKind = MessageKind.DOCUMENT,
    priority: int = 0,
    payload: bytes | None = None,
    document_id: str | None = None,
    origin: str = NODE,
    meta: dict[str, Any] | None = None,
    status_code: str = "",
) -> NewMessage:
    body = payload if payload is not None else f"<edXML>{key}</edXML>".encode() * 4
    mid = message_id_for("test", key)
    return NewMessage(
        message_id=mid, kind=kind, sender=sender, document_id=document_id or f"{sender},2025/01/05,{key}",
        priority=priority, payload=body, digest=sha(body), received_digest=sha(b"in:" + body), origin_node=origin,
        received_from="api:test", status_code=status_code, meta=meta or {"subject": f"Công văn {key}"},
    )


def ingest(
    key: str,
    recipients: Sequence[str] = ("000.00.31.H57",),
    *,
    next_hop: str | None = PEER,
    verify: bool = False,
    idem: bool = False,
    followups: Sequence[Ingest] = (),
    effects: Sequence[Effect] = (),
    trail: dict[str, list[TrailEntry]] | None = None,
    receipt: bool = True,
    **kw: Any,
) -> Ingest:
    m = message(key, **kw)
    return Ingest(
        message=m,
        deliveries=tuple(
            NewDelivery(r, next_hop, verify=verify, followups=tuple(followups) if i == 0 else (),
                        idem_key=f"{m.sender}|{m.document_id}|{r}" if idem else None)
            for i, r in enumerate(recipients)
        ),
        effects=tuple(effects),
        trail=trail or {},
        receipt=receipt,
    )


def report(delivery_id: str, state: Any, node: str = PEER, at: datetime = T0, reason: str = "") -> DeliveryEvent:
    return DeliveryEvent(delivery_id, state, (TrailEntry(node, state.value, at, "ab" * 32),), reason)

