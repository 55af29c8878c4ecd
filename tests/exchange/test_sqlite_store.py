"""The SQLite store on its own: group commits share one receipt signature and a duplicate in the same group gets
the original's receipt; leases expire back to the queue; claims go by priority; a full database fails the group
without committing anything; housekeeping removes only unreferenced payloads."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from docexchange.errors import StoreError
from docexchange.exchange.model import DeliveryState, MessageKind, delivery_id_for
from docexchange.exchange.receipts import ReceiptSigner
from docexchange.exchange.sqlite_store import SqliteStore
from docexchange.exchange.store import Forwarded, Ingest, NewDelivery, NewMessage, RetryLater

T0 = datetime(2025, 1, 5, 1, 0, tzinfo=UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def message(n: int, priority: int = 0, size: int = 2000) -> NewMessage:
    payload = f"<edXML>{n}</edXML>".encode() + bytes(size)
    digest = hashlib.sha256(payload).hexdigest()
    return NewMessage(message_id=f"m{n:031x}", kind=MessageKind.DOCUMENT, sender="000.01.11.H49",
                      document_id=f"000.01.11.H49,2025/01/05,{n}/UBND", priority=priority, payload=payload,
                      digest=digest, received_digest=digest, origin_node="lgsp-h49", received_from="api:x")


def ingest(n: int, priority: int = 0, size: int = 2000) -> Ingest:
    return Ingest(message(n, priority, size), (NewDelivery("000.00.31.H57", "vdxp"),))


@pytest.fixture
async def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "lgsp-h49.sqlite", "lgsp-h49",
                    signer=ReceiptSigner("lgsp-h49", KEY).sign_group, clock=lambda: T0, busy_ms=200)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_group_commit_one_signature_and_duplicates_share_it(store: SqliteStore) -> None:
    results = await asyncio.gather(*(store.ingest([ingest(i % 5)], T0) for i in range(20)))
    receipts = [r[0].deliveries[0].receipt for r in results]
    assert all(receipts)
    by_delivery: dict[str, set[str]] = {}
    for r in results:
        d = r[0].deliveries[0]
        by_delivery.setdefault(d.delivery_id, set()).add(d.receipt["root"] + d.receipt["sig"])
    assert len(by_delivery) == 5 and all(len(v) == 1 for v in by_delivery.values())
    assert sum(not r[0].duplicate for r in results) == 5
    assert store.stats["groups"] < 20  # concurrent writers were grouped


async def test_priority_claims_and_lease_expiry(store: SqliteStore) -> None:
    for n, prio in enumerate([0, 1, 3, 2, 0, 3]):
        await store.ingest([ingest(100 + n, prio)], T0)
    claimed = await store.claim("vdxp", 3, 1 << 30, "w1", T0, T0 + timedelta(seconds=30))
    assert [c.message.priority for c in claimed] == [3, 3, 2]
    assert all(c.delivery.state == DeliveryState.IN_FLIGHT and c.delivery.attempts == 1 for c in claimed)
    # Nobody else can claim them while leased.
    rest = await store.claim("vdxp", 10, 1 << 30, "w2", T0, T0 + timedelta(seconds=30))
    assert [c.message.priority for c in rest] == [1, 0, 0]
    # w1 dies: after the lease, its deliveries come back; a late settle by w1 no longer applies, a receipt does.
    assert await store.recover_leases(T0 + timedelta(seconds=31)) == 6
    await store.settle([RetryLater(claimed[0].delivery.delivery_id, T0, "late")], "w1", T0)
    assert (await store.delivery(claimed[0].delivery.delivery_id)).state == DeliveryState.QUEUED
    await store.settle([Forwarded(claimed[1].delivery.delivery_id, {"node": "vdxp", "digest": "x"}, T0)], "w1", T0)
    assert (await store.delivery(claimed[1].delivery.delivery_id)).state == DeliveryState.FORWARDED


async def test_a_full_database_commits_nothing(store: SqliteStore, tmp_path: Path) -> None:
    await store.ingest([ingest(1)], T0)
    pages = store._writer.payload_conn.execute("PRAGMA page_count").fetchone()[0]  # type: ignore[union-attr]
    store._writer.payload_conn.execute(f"PRAGMA max_page_count = {pages}")  # type: ignore[union-attr]
    with pytest.raises(StoreError) as exc:
        await store.ingest([ingest(2, size=300_000)], T0)
    assert "đầy" in exc.value.message_vi and exc.value.http_status == 503
    assert await store.delivery(delivery_id_for(message(2).message_id, "000.00.31.H57")) is None
    store._writer.payload_conn.execute("PRAGMA max_page_count = 1073741823")  # type: ignore[union-attr]
    (out,) = await store.ingest([ingest(2, size=300_000)], T0)
    assert not out.duplicate


async def test_a_locked_database_fails_fast_and_recovers(store: SqliteStore, tmp_path: Path) -> None:
    lock = sqlite3.connect(str(tmp_path / "lgsp-h49.sqlite"), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError):
            await store.ingest([ingest(7)], T0)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    (out,) = await store.ingest([ingest(7)], T0)
    assert not out.duplicate and out.deliveries[0].receipt


async def test_housekeeping_removes_only_unreferenced_payloads(store: SqliteStore, tmp_path: Path) -> None:
    await store.ingest([ingest(1)], T0)
    orphan = b"left by a crash between the two commits"
    conn = sqlite3.connect(str(store.payload_path), isolation_level=None)
    conn.execute("INSERT INTO payloads (digest, data, created_at) VALUES (?, ?, ?)",
                 (hashlib.sha256(orphan).hexdigest(), orphan, T0.timestamp()))
    conn.close()
    assert (await store.housekeeping(T0 + timedelta(minutes=5)))["payloads"] == 0  # too young
    removed = await store.housekeeping(T0 + timedelta(hours=2))
    assert removed["payloads"] == 1
    kept = await store.payloads([message(1).digest, hashlib.sha256(orphan).hexdigest()])
    assert list(kept) == [message(1).digest]


async def test_nonces_survive_a_restart(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "n.sqlite", "n", clock=lambda: T0)
    await s.open()
    assert await s.remember_nonce("sys", "abc", T0 + timedelta(minutes=10))
    assert not await s.remember_nonce("sys", "abc", T0 + timedelta(minutes=10))
    await asyncio.sleep(0.2)
    await s.close()
    s2 = SqliteStore(tmp_path / "n.sqlite", "n", clock=lambda: T0)
    await s2.open()
    try:
        assert not await s2.remember_nonce("sys", "abc", T0 + timedelta(minutes=10))
    finally:
        await s2.close()


async def test_a_report_overtaking_a_lost_receipt_wins(store: SqliteStore) -> None:
    """The next node stored the packet but its answer was lost (it crashed before replying): the delivery waits
    to be retried when the delivery report comes back through other connections. The report moves it to
    ``delivered`` and the retry does not happen; a late receipt changes nothing."""
    from docexchange.exchange.model import DeliveryEvent
    from docexchange.exchange.store import ReportEffect

    await store.ingest([ingest(42)], T0)
    (c,) = await store.claim("vdxp", 1, 1 << 30, "w1", T0, T0 + timedelta(seconds=30))
    await store.settle([RetryLater(c.delivery.delivery_id, T0 + timedelta(seconds=5), "connection reset")], "w1", T0)
    assert (await store.delivery(c.delivery.delivery_id)).state == DeliveryState.RETRY_WAIT
    await store.apply([ReportEffect(DeliveryEvent(c.delivery.delivery_id, DeliveryState.DELIVERED))], [], T0)
    assert (await store.delivery(c.delivery.delivery_id)).state == DeliveryState.DELIVERED
    assert await store.claim("vdxp", 10, 1 << 30, "w1", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)) == []
    await store.settle([Forwarded(c.delivery.delivery_id, {"node": "vdxp", "digest": "x"}, T0)], "w1", T0)
    assert (await store.delivery(c.delivery.delivery_id)).state == DeliveryState.DELIVERED
