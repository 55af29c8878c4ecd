"""What only the PostgreSQL store has: several workers on one schema, liveness of lease owners, connection loss
retried with backoff, constraints enforced by the database itself, concurrent migrations, URL parsing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from store_kit import NODE, PEER, T0, MovableClock, drop_schema, ingest

from docexchange.errors import ConfigError, StoreError
from docexchange.exchange.migrations import SchemaTooNew
from docexchange.exchange.model import DeliveryState
from docexchange.exchange.pg_migrations import POSTGRES
from docexchange.exchange.postgres_store import PostgresStore, SchemaMissing, parse_url, schema_name
from docexchange.exchange.store import Forwarded

LEASE = timedelta(seconds=60)


@pytest.fixture
async def schema(pg_url: str) -> AsyncIterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    try:
        yield name
    finally:
        await drop_schema(pg_url, name)


@pytest.fixture
async def workers(pg_url: str, schema: str, node_key) -> AsyncIterator[Callable[..., Awaitable[PostgresStore]]]:  # type: ignore[no-untyped-def]
    """Open any number of stores ("worker processes") on the same schema; all closed afterwards."""
    opened: list[PostgresStore] = []
    clock = MovableClock()

    async def make(**kw: Any) -> PostgresStore:
        kw.setdefault("pool_min", 1)
        kw.setdefault("pool_max", 3)
        s = PostgresStore(pg_url, NODE, signer=node_key.signer.sign_group, clock=clock, schema=schema, **kw)
        await s.open()
        opened.append(s)
        return s

    try:
        yield make
    finally:
        for s in opened:
            await s.close()


@pytest.fixture
async def two(workers) -> tuple[PostgresStore, PostgresStore]:  # type: ignore[no-untyped-def]
    return await workers(), await workers()


async def sql(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def terminate(url: str, store: PostgresStore) -> int:
    rows = await sql(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                     store.application)
    return len(rows)


# ---------------------------------------------------------------------------------------------- URL


def test_url_selects_schema_and_passes_the_rest_to_asyncpg() -> None:
    t = parse_url("postgresql://dx:secret@db.example:6432/axis?sslmode=require", "lgsp-h49")
    assert t.schema == "dx_lgsp_h49" and t.reconnect_seconds == 30.0
    assert t.dsn == "postgresql://dx:secret@db.example:6432/axis?sslmode=require"
    assert "secret" not in t.display and "dx_lgsp_h49" in t.display
    t2 = parse_url("postgresql://h/db_{node}?schema=axis_{node}&reconnect_seconds=5", "vdxp")
    assert t2.dsn == "postgresql://h/db_vdxp" and t2.schema == "axis_vdxp" and t2.reconnect_seconds == 5
    assert parse_url("postgres://h/db", "x", schema="Mine").schema == "mine"
    with pytest.raises(ConfigError):
        parse_url("mysql://h/db", "x")
    with pytest.raises(ConfigError):
        schema_name('bad"; DROP TABLE x; --')
    with pytest.raises(ConfigError):
        parse_url("postgresql://h/db?reconnect_seconds=soon", "x")


# ---------------------------------------------------------------------------------------------- migrations


async def test_workers_starting_together_migrate_once(pg_url: str, schema: str, node_key) -> None:  # type: ignore[no-untyped-def]
    stores = [PostgresStore(pg_url, NODE, signer=node_key.signer.sign_group, schema=schema, pool_min=1, pool_max=2)
              for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        versions = {await s.schema_version() for s in stores}
        assert versions == {POSTGRES[-1].version}
        rows = await sql(pg_url, f'SELECT version FROM "{schema}".schema_migrations')
        assert [r["version"] for r in rows] == [m.version for m in POSTGRES]
    finally:
        for s in stores:
            await s.close()


async def test_without_automatic_migration_a_missing_schema_is_refused(pg_url: str, schema: str) -> None:
    s = PostgresStore(pg_url, NODE, schema=schema, migrate=False)
    with pytest.raises(SchemaMissing) as info:
        await s.open()
    assert "docexchange db migrate" in info.value.message_vi
    await s.close()


async def test_a_newer_schema_is_refused_even_without_migrating(pg_url: str, schema: str, workers) -> None:  # type: ignore[no-untyped-def]
    s = await workers()
    await s.close()
    await sql(pg_url, f'INSERT INTO "{schema}".schema_migrations (version, description) VALUES (999, $1)', "future")
    for migrate in (True, False):
        with pytest.raises(SchemaTooNew):
            await PostgresStore(pg_url, NODE, schema=schema, migrate=migrate).open()


async def test_an_unreachable_server_fails_after_the_reconnect_window() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    s = PostgresStore(f"postgresql://postgres@127.0.0.1:{port}/test", NODE, reconnect_seconds=0.5)
    t = time.monotonic()
    with pytest.raises(StoreError) as info:
        await s.open()
    assert 0.3 < time.monotonic() - t < 10
    assert "PostgreSQL" in info.value.message_vi and "retry later" in info.value.message_en
    await s.close()


# ---------------------------------------------------------------------------------------------- constraints


async def test_the_database_itself_enforces_dedup_receipts_leases_and_final_states(pg_url: str, schema: str,
                                                                                   workers) -> None:  # type: ignore[no-untyped-def]
    s = await workers()
    [out] = await s.ingest([ingest("c1", recipients=("000.00.31.H57",), next_hop=None)], T0)
    did = out.deliveries[0].delivery_id
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        with pytest.raises(asyncpg.UniqueViolationError):  # one delivery per (message, recipient)
            await conn.execute(
                """INSERT INTO deliveries (delivery_id, message_id, recipient, kind, sender, document_id, priority,
                   rank, state, created_at, updated_at)
                   SELECT delivery_id, message_id, recipient, kind, sender, document_id, priority, rank, state,
                   created_at, updated_at FROM deliveries WHERE delivery_id = $1""", did)
        with pytest.raises(asyncpg.UniqueViolationError):  # one stored receipt per delivery and node
            await conn.execute(
                "INSERT INTO trail (delivery_id, node, event, at) VALUES ($1, $2, 'stored', now())", did, NODE)
        with pytest.raises(asyncpg.CheckViolationError):  # in_flight needs a lease
            await conn.execute("UPDATE deliveries SET state = 'in_flight' WHERE delivery_id = $1", did)
        with pytest.raises(asyncpg.CheckViolationError):  # unknown state
            await conn.execute("UPDATE deliveries SET state = 'lost' WHERE delivery_id = $1", did)
        await conn.execute("UPDATE deliveries SET state = 'acknowledged' WHERE delivery_id = $1", did)
        with pytest.raises(asyncpg.CheckViolationError, match="final state stays final"):
            await conn.execute("UPDATE deliveries SET state = 'queued' WHERE delivery_id = $1", did)
        with pytest.raises(asyncpg.ForeignKeyViolationError):  # a message always has its packet
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO messages (message_id, kind, sender, document_id, priority, digest,
                       received_digest, size, origin_node, received_from, meta, created_at)
                       VALUES ('m-x', 'document', 's', 'd', 0, $1, $1, 0, 'n', 'r', '{}', now())""", "0" * 64)
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------- workers


async def test_two_workers_storing_the_same_packets_store_each_once(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    items = [ingest(f"w{i}", recipients=("000.00.31.H57", "000.01.31.H57")) for i in range(20)]
    outs = await asyncio.gather(*(s.ingest([it], T0) for it in items for s in (a, b, a, b)))
    new = [d for [o] in outs for d in o.deliveries if not d.duplicate]
    assert len(new) == 40
    sigs: dict[str, set[str]] = {}
    for [o] in outs:
        for d in o.deliveries:
            sigs.setdefault(d.delivery_id, set()).add(d.receipt["sig"])  # type: ignore[index]
    assert len(sigs) == 40 and all(len(v) == 1 for v in sigs.values())
    assert (await a.counts()) == {PEER: {"queued": 40}}


async def test_claims_of_two_workers_are_disjoint(two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    for i in range(40):
        await a.ingest([ingest(f"d{i}")], T0)
    got = await asyncio.gather(*(s.claim(PEER, 3, 1 << 30, f"{name}{k}", T0, T0 + LEASE)
                                 for k in range(10) for s, name in ((a, "a"), (b, "b"))))
    ids = [c.delivery.delivery_id for batch in got for c in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_a_dead_workers_leases_return_at_once_a_live_workers_never(workers, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    a, b = await workers(), await workers()
    for i in range(6):
        await a.ingest([ingest(f"l{i}")], T0)
    mine = await a.claim(PEER, 3, 1 << 30, "a-dispatcher", T0, T0 + LEASE)
    theirs = await b.claim(PEER, 3, 1 << 30, "b-dispatcher", T0, T0 + LEASE)
    assert len(mine) == len(theirs) == 3
    # A worker starting up (all_owners_except) takes back nothing from a live worker before expiry.
    assert await b.recover_leases(T0 + timedelta(seconds=1), all_owners_except="b-dispatcher") == 0
    assert await a.recover_leases(T0 + timedelta(seconds=1)) == 0
    # Worker a dies (its connections vanish as with kill -9): b recovers a's leases long before they expire.
    a._live_task.cancel()  # type: ignore[union-attr]
    a._live_conn.terminate()  # type: ignore[union-attr]
    a._pool.terminate()  # type: ignore[union-attr]
    a._pool = None
    deadline = time.monotonic() + 10
    recovered = 0
    while recovered < 3 and time.monotonic() < deadline:
        recovered += await b.recover_leases(T0 + timedelta(seconds=2))
        await asyncio.sleep(0.05)
    assert recovered == 3
    states = {(await b.delivery(c.delivery.delivery_id)).state for c in mine}  # type: ignore[union-attr]
    assert states == {DeliveryState.QUEUED}
    assert {(await b.delivery(c.delivery.delivery_id)).state for c in theirs} == {  # type: ignore[union-attr]
        DeliveryState.IN_FLIGHT}
    again = await b.claim(PEER, 10, 1 << 30, "b-dispatcher", T0, T0 + LEASE)
    assert sorted(c.delivery.delivery_id for c in again) == sorted(c.delivery.delivery_id for c in mine)
    assert all(c.delivery.attempts == 2 for c in again)
    removed = await b.housekeeping(T0)
    assert removed["owners"] == 1  # a's registration, holding no lease any more


async def test_cut_connections_are_retried_and_the_worker_recovers(workers, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    s = await workers(pool_min=2, pool_max=3)
    await s.ingest([ingest("before")], T0)
    before = {r["pid"] for r in await sql(pg_url, "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                                             s.application)}
    assert await terminate(pg_url, s) >= 3  # the pool's connections and the liveness connection
    [out] = await s.ingest([ingest("after")], T0)  # on a fresh connection (retried if the pool had not noticed)
    assert not out.duplicate and out.deliveries[0].receipt is not None
    after = {r["pid"] for r in await sql(pg_url, "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                                         s.application)}
    assert after and not after & before
    claimed = await s.claim(PEER, 10, 1 << 30, "w", T0, T0 + LEASE)
    assert len(claimed) == 2
    # The liveness lock comes back: the worker's leases are not taken over once it is connected again.
    deadline = time.monotonic() + 10
    while not s._live.is_set() or s._live_conn is None or s._live_conn.is_closed():
        assert time.monotonic() < deadline, "liveness lock not re-taken"
        await asyncio.sleep(0.1)
    other = await workers()
    assert await other.recover_leases(T0 + timedelta(seconds=1)) == 0
    await s.settle([Forwarded(c.delivery.delivery_id, {"node": PEER, "digest": "x", "stored_at": T0.isoformat()},
                              T0) for c in claimed], "w", T0)
    assert (await s.counts()) == {PEER: {"forwarded": 2}}


async def test_an_operation_racing_a_cut_commits_once(workers, pg_url: str) -> None:  # type: ignore[no-untyped-def]
    s = await workers(pool_min=3, pool_max=3)
    items = [ingest(f"cut{i}") for i in range(60)]

    async def cutter() -> int:
        cut = 0
        for _ in range(5):
            await asyncio.sleep(0.02)
            cut += await terminate(pg_url, s)
        return cut

    results, cut = await asyncio.gather(asyncio.gather(*(s.ingest([it], T0) for it in items)), cutter())
    assert len(results) == 60 and cut >= 5
    assert (await s.counts()) == {PEER: {"queued": 60}}
    for [o] in results:
        assert o.deliveries[0].receipt is not None  # a commit that was lost in flight is found as a duplicate


# ---------------------------------------------------------------------------------------------- group commit


async def test_group_commit_batches_writes_and_isolates_a_failing_one(workers) -> None:  # type: ignore[no-untyped-def]
    from docexchange.exchange.model import IllegalTransition

    s = await workers(pool_max=4)
    items = [ingest(f"g{i}") for i in range(40)]
    results = await asyncio.gather(*(s.ingest([it], T0) for it in items))
    assert all(not r[0].duplicate for r in results)
    assert s.grouped_ops == 40 and s.groups < 40  # writes waiting together were committed together
    roots = {r[0].deliveries[0].receipt["root"] for r in results}  # type: ignore[index]
    assert len(roots) == s.groups  # one receipt signature per group (a Merkle root over its deliveries)
    # A write refused on its own terms inside a group: only that one fails.
    queued = results[0][0].deliveries[0].delivery_id
    more = [ingest(f"h{i}") for i in range(10)]
    mixed = await asyncio.gather(*(s.ingest([it], T0) for it in more), s.resend(queued, T0),
                                 return_exceptions=True)
    assert isinstance(mixed[-1], IllegalTransition)
    assert all(not isinstance(r, BaseException) and not r[0].duplicate for r in mixed[:-1])
    assert (await s.counts()) == {PEER: {"queued": 50}}


async def test_without_group_commit_every_write_is_its_own_transaction(workers) -> None:  # type: ignore[no-untyped-def]
    s = await workers(group_commit=False)
    outs = await asyncio.gather(*(s.ingest([ingest(f"n{i}")], T0) for i in range(10)))
    assert len({o[0].deliveries[0].receipt["sig"] for o in outs}) == 10  # type: ignore[index]
    assert s.groups == 0
