"""SQLite implementation of the :class:`~docexchange.exchange.store.Store` protocol.

Two files per node: ``<node>.sqlite`` (messages, deliveries, trail, credentials; 4 KiB pages) and
``<node>.payloads.sqlite`` (the packets, content-addressed; 64 KiB pages, which halves the CPU cost of storing a
100 KB packet). Both in WAL mode with ``synchronous=FULL``: a commit is on disk when it returns.

**Group commit.** Every change goes through one writer thread. It takes all operations waiting in its queue,
writes their payloads in one transaction, then runs the operations in one metadata transaction (each in its own
savepoint, so one failing operation does not sink the others), signs the receipts of every delivery stored by
the group with a single signature, and commits. Callers are answered only after that commit. Payloads are
committed before the metadata that points to them, so a crash in between leaves at most an unreferenced
payload (removed by housekeeping), never a delivery without its packet.

Reads run on a small pool of threads, each with its own connection (WAL readers never block the writer).
A locked database (another process holding the write lock past the busy timeout), a full disk or an I/O error
fail the operations of that group with :class:`~docexchange.errors.StoreError` (HTTP 503, retryable); nothing
of the group is committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from docexchange.errors import StoreError
from docexchange.exchange.migrations import SQLITE_META, SQLITE_PAYLOADS, Migration, check_version
from docexchange.exchange.model import (
    FINAL_STATES,
    TRANSITIONS,
    Delivery,
    DeliveryState,
    MessageKind,
    RecallState,
    StoredMessage,
    TrailEntry,
    Verification,
    delivery_id_for,
    priority_rank,
)
from docexchange.exchange.store import (
    Claimed,
    CredentialRecord,
    Dead,
    DeliveryOutcome,
    Effect,
    Forwarded,
    InboxQuery,
    Ingest,
    IngestOutcome,
    Page,
    QueueQuery,
    RecallRequestEffect,
    ReceiptSigning,
    ReportEffect,
    Requeue,
    RetryLater,
    SentQuery,
    Settle,
    StatusEffect,
    VerificationJob,
    VerificationResult,
    WithdrawEffect,
)

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_GROUP = 256
PAYLOAD_GC_AGE = 3600.0


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _dt_req(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _store_error(exc: sqlite3.Error, what: str) -> StoreError:
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        vi = "cơ sở dữ liệu đang bị khóa"
    elif "full" in low:
        vi = "đĩa hoặc cơ sở dữ liệu đã đầy"
    elif "i/o" in low or "disk" in low:
        vi = "lỗi đọc/ghi đĩa"
    else:
        vi = "lỗi cơ sở dữ liệu"
    return StoreError(f"Không lưu được ({what}): {vi}; hãy thử lại sau", f"store failure ({what}): {text}; retry later")


def _connect(path: Path, page_size: int | None = None, busy_ms: int = 5000) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=busy_ms / 1000)
    conn.row_factory = sqlite3.Row
    if page_size is not None:
        conn.execute(f"PRAGMA page_size = {int(page_size)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
    return conn


def _migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...], where: str) -> None:
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    todo = check_version(found, migrations, where)
    for m in todo:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in m.statements:
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {int(m.version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("%s: schema migrated to version %d (%s)", where, m.version, m.description)


# ---------------------------------------------------------------------------------------------------- writer


@dataclass
class _Op:
    fn: Callable[[_Tx], Any]
    payloads: Sequence[tuple[str, bytes]]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    post: Callable[[Any], Any] | None = None
    leaves: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)


class _Tx:
    """What an operation sees inside a group transaction."""

    def __init__(self, conn: sqlite3.Connection, node: str) -> None:
        self.conn = conn
        self.node = node
        self.current: _Op | None = None
        self.sinks: dict[str, dict[str, Any]] = {}
        """Receipts promised earlier in this group (a duplicate in the same group shares the original's)."""

    def want_receipt(self, delivery_id: str, received: str, stored: str, sink: dict[str, Any]) -> None:
        assert self.current is not None
        self.current.leaves.append((delivery_id, received, stored, sink))
        self.sinks[delivery_id] = sink

    def forget(self, op: _Op) -> None:
        for leaf in op.leaves:
            self.sinks.pop(leaf[0], None)
        op.leaves.clear()


_STOP = object()


class _Writer(threading.Thread):
    def __init__(self, meta: sqlite3.Connection, payloads: sqlite3.Connection, node: str,
                 signer: ReceiptSigning | None, clock: Callable[[], datetime]) -> None:
        super().__init__(name=f"sqlite-writer-{node}", daemon=True)
        self.meta = meta
        self.payload_conn = payloads
        self.node = node
        self.signer = signer
        self.clock = clock
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.groups = 0
        self.ops = 0

    def submit(self, op: _Op) -> None:
        self.q.put(op)

    def stop(self) -> None:
        self.q.put(_STOP)

    def run(self) -> None:
        stopping = False
        while not stopping:
            first = self.q.get()
            if first is _STOP:
                break
            batch: list[_Op] = [first]
            while len(batch) < MAX_GROUP:
                try:
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
            try:
                self._group(batch)
            except BaseException as exc:
                log.exception("writer group failed")
                for op in batch:
                    self._resolve(op, None, exc)

    @staticmethod
    def _resolve(op: _Op, result: Any, exc: BaseException | None) -> None:
        def done() -> None:
            if op.future.done():
                return
            if exc is not None:
                op.future.set_exception(exc)
            else:
                op.future.set_result(result)

        try:
            op.loop.call_soon_threadsafe(done)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _group(self, batch: list[_Op]) -> None:
        self.groups += 1
        self.ops += len(batch)
        payloads: dict[str, bytes] = {}
        for op in batch:
            for digest, data in op.payloads:
                payloads[digest] = data
        if payloads:
            pc = self.payload_conn
            try:
                now = self.clock().timestamp()
                pc.execute("BEGIN IMMEDIATE")
                pc.executemany(
                    "INSERT OR IGNORE INTO payloads (digest, data, created_at) VALUES (?, ?, ?)",
                    [(d, sqlite3.Binary(b), now) for d, b in payloads.items()],
                )
                pc.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(pc)
                err = _store_error(exc, "gói tin")
                for op in batch:
                    self._resolve(op, None, err)
                return
        conn = self.meta
        tx = _Tx(conn, self.node)
        results: list[tuple[_Op, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                tx.current = op
                conn.execute("SAVEPOINT op")
                try:
                    res = op.fn(tx)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    tx.forget(op)
                    if isinstance(exc, sqlite3.Error) and _fatal(exc):
                        raise
                    results.append((op, None, _store_error(exc, "thao tác") if isinstance(exc, sqlite3.Error)
                                    else exc))
                else:
                    conn.execute("RELEASE op")
                    results.append((op, res, None))
            self._sign(conn, [op for op, _r, e in results if e is None])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            err = _store_error(exc, "giao dịch")
            for op in batch:
                self._resolve(op, None, err)
            return
        except BaseException:
            _rollback(conn)
            raise
        for op, res, exc2 in results:
            if exc2 is None and op.post is not None:
                try:
                    res = op.post(res)
                except Exception as exc3:
                    self._resolve(op, None, exc3)
                    continue
            self._resolve(op, res, exc2)

    def _sign(self, conn: sqlite3.Connection, ops: list[_Op]) -> None:
        leaves = [leaf for op in ops for leaf in op.leaves]
        if not leaves:
            return
        at = self.clock()
        if self.signer is None:
            receipts: list[dict[str, Any]] = [
                {"v": 0, "node": self.node, "stored_at": at.isoformat(), "delivery_id": d, "digest": s,
                 "received_digest": r, "unsigned": True}
                for d, r, s, _sink in leaves
            ]
        else:
            receipts = self.signer([(d, r, s) for d, r, s, _sink in leaves], at)
        rows = []
        for (d, _r, s, sink), receipt in zip(leaves, receipts, strict=True):
            sink.update(receipt)
            rows.append((d, self.node, "stored", at.timestamp(), s, json.dumps(receipt, separators=(",", ":"))))
        conn.executemany(
            "INSERT OR IGNORE INTO trail (delivery_id, node, event, at, digest, receipt) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


def _fatal(exc: sqlite3.Error) -> bool:
    low = str(exc).lower()
    return any(w in low for w in ("locked", "busy", "full", "i/o", "disk", "readonly", "corrupt"))


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        log.exception("rollback failed")


# ---------------------------------------------------------------------------------------------------- store


def _j(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _encode_cursor(*parts: Any) -> str:
    return ":".join(str(p) for p in parts)


def _decode_cursor(cursor: str | None, n: int) -> list[int] | None:
    if not cursor:
        return None
    try:
        values = [int(p) for p in cursor.split(":")]
    except ValueError:
        raise StoreError("Con trỏ phân trang không hợp lệ", "invalid paging cursor") from None
    if len(values) != n:
        raise StoreError("Con trỏ phân trang không hợp lệ", "invalid paging cursor")
    return values


_DELIVERY_COLS = """
    d.seq, d.delivery_id, d.message_id, d.recipient, d.kind, d.sender, d.document_id, d.priority, d.next_hop,
    d.state, d.attempts, d.first_attempt_at, d.next_attempt_at, d.lease_owner, d.lease_until, d.last_error,
    d.created_at, d.updated_at, d.delivered_at, d.acknowledged_at, d.fetched_at, d.recipient_status,
    d.recipient_status_at, d.recall, d.withdrawn, v.state AS v_state
"""
_MESSAGE_COLS = """
    m.message_id AS m_message_id, m.kind AS m_kind, m.sender AS m_sender, m.document_id AS m_document_id,
    m.priority AS m_priority, m.business_type AS m_business_type, m.status_code AS m_status_code,
    m.digest AS m_digest, m.size AS m_size, m.origin_node AS m_origin_node, m.received_from AS m_received_from,
    m.meta AS m_meta, m.created_at AS m_created_at
"""


def _message(row: sqlite3.Row, prefix: str = "m_") -> StoredMessage:
    return StoredMessage(
        message_id=row[prefix + "message_id"],
        kind=MessageKind(row[prefix + "kind"]),
        sender=row[prefix + "sender"],
        document_id=row[prefix + "document_id"],
        priority=row[prefix + "priority"],
        digest=row[prefix + "digest"],
        size=row[prefix + "size"],
        origin_node=row[prefix + "origin_node"],
        received_from=row[prefix + "received_from"],
        created_at=_dt_req(row[prefix + "created_at"]),
        business_type=row[prefix + "business_type"],
        status_code=row[prefix + "status_code"],
        meta=json.loads(row[prefix + "meta"]),
    )


def _delivery(row: sqlite3.Row, with_message: bool = False) -> Delivery:
    v = row["v_state"]
    return Delivery(
        delivery_id=row["delivery_id"],
        message_id=row["message_id"],
        recipient=row["recipient"],
        kind=MessageKind(row["kind"]),
        sender=row["sender"],
        document_id=row["document_id"],
        priority=row["priority"],
        state=DeliveryState(row["state"]),
        next_hop=row["next_hop"],
        attempts=row["attempts"],
        created_at=_dt_req(row["created_at"]),
        updated_at=_dt_req(row["updated_at"]),
        first_attempt_at=_dt(row["first_attempt_at"]),
        next_attempt_at=_dt(row["next_attempt_at"]),
        lease_owner=row["lease_owner"],
        lease_until=_dt(row["lease_until"]),
        last_error=row["last_error"],
        delivered_at=_dt(row["delivered_at"]),
        acknowledged_at=_dt(row["acknowledged_at"]),
        fetched_at=_dt(row["fetched_at"]),
        recipient_status=row["recipient_status"],
        recipient_status_at=_dt(row["recipient_status_at"]),
        recall=RecallState(row["recall"]) if row["recall"] else None,
        withdrawn=bool(row["withdrawn"]),
        verification=Verification(v) if v in Verification._value2member_map_ else (
            Verification.PENDING if v else Verification.SKIPPED),
        message=_message(row) if with_message else None,
    )


def _trail_entry(row: sqlite3.Row) -> TrailEntry:
    return TrailEntry(
        node=row["node"],
        event=row["event"],
        at=_dt_req(row["at"]),
        digest=row["digest"],
        receipt=json.loads(row["receipt"]) if row["receipt"] else None,
        detail=row["detail"],
    )


def _credential(row: sqlite3.Row) -> CredentialRecord:
    return CredentialRecord(
        system_id=row["system_id"],
        role=row["role"],
        agencies=tuple(json.loads(row["agencies"])),
        secret_box=bytes(row["secret_box"]),
        created_at=_dt_req(row["created_at"]),
        rotated_at=_dt(row["rotated_at"]),
        revoked_at=_dt(row["revoked_at"]),
        label=row["label"],
    )


class SqliteStore:
    """One node's store in two SQLite files. Create, then ``await open()``; ``await close()`` when done."""

    def __init__(
        self,
        path: Path,
        node_id: str,
        *,
        signer: ReceiptSigning | None = None,
        clock: Callable[[], datetime] | None = None,
        read_threads: int = 4,
        busy_ms: int = 5000,
    ) -> None:
        self.path = Path(path)
        self.payload_path = self.path.with_name(self.path.stem + ".payloads" + (self.path.suffix or ".sqlite"))
        self.node_id = node_id
        self.signer = signer
        self._clock = clock or (lambda: datetime.now(UTC))
        self._read_threads = read_threads
        self.busy_ms = busy_ms
        self._writer: _Writer | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._nonces: dict[tuple[str, str], float] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        await asyncio.to_thread(self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            meta = _connect(self.path, busy_ms=self.busy_ms)
            payloads = _connect(self.payload_path, page_size=65536, busy_ms=self.busy_ms)
            _migrate(meta, SQLITE_META, str(self.path))
            _migrate(payloads, SQLITE_PAYLOADS, str(self.payload_path))
            now = self._clock().timestamp()
            for row in meta.execute("SELECT system_id, nonce, expires_at FROM nonces WHERE expires_at > ?", (now,)):
                self._nonces[(row[0], row[1])] = row[2]
        except sqlite3.Error as exc:
            raise _store_error(exc, f"mở {self.path}") from exc
        self._writer = _Writer(meta, payloads, self.node_id, self.signer, self._clock)
        self._writer.start()
        self._readers = ThreadPoolExecutor(self._read_threads, thread_name_prefix=f"sqlite-read-{self.node_id}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            await asyncio.to_thread(self._writer.join, 30)
            self._writer.meta.close()
            self._writer.payload_conn.close()
            self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        with self._lock:
            for c in self._reader_conns:
                c.close()
            self._reader_conns.clear()

    async def schema_version(self) -> int:
        return int(await self._read(lambda c: c.execute("PRAGMA user_version").fetchone()[0]))

    @property
    def stats(self) -> dict[str, int]:
        w = self._writer
        return {"groups": w.groups, "ops": w.ops} if w else {}

    # -- plumbing ------------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, busy_ms=self.busy_ms)
            conn.execute(f"ATTACH DATABASE ? AS p", (str(self.payload_path),))  # noqa: F541
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StoreError("Kho dữ liệu chưa mở", "store is not open")

        def run() -> T:
            try:
                return fn(self._reader())
            except sqlite3.Error as exc:
                raise _store_error(exc, "đọc") from exc

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def _write(self, fn: Callable[[_Tx], T], payloads: Sequence[tuple[str, bytes]] = (),
                     post: Callable[[Any], Any] | None = None) -> Any:
        if self._writer is None:
            raise StoreError("Kho dữ liệu chưa mở", "store is not open")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._writer.submit(_Op(fn, payloads, fut, loop, post))
        return await fut

    # -- ingest --------------------------------------------------------------------------------
    async def ingest(self, items: Sequence[Ingest], at: datetime) -> list[IngestOutcome]:
        return await self.apply((), items, at)

    async def apply(self, effects: Sequence[Effect], ingests: Sequence[Ingest], at: datetime) -> list[IngestOutcome]:
        payloads = list(_payloads_of(ingests))
        pending: list[_PendingIngest] = []

        def fn(tx: _Tx) -> list[_PendingIngest]:
            for e in effects:
                self._effect(tx, e, at)
            for item in ingests:
                pending.append(self._ingest(tx, item, at))
            return pending

        return await self._write(fn, payloads, post=lambda p: [x.outcome() for x in p])

    def _ingest(self, tx: _Tx, item: Ingest, at: datetime) -> _PendingIngest:
        c = tx.conn
        m = item.message
        now = at.timestamp()
        c.execute(
            """INSERT OR IGNORE INTO messages (message_id, kind, sender, document_id, priority, business_type,
               status_code, digest, received_digest, size, origin_node, received_from, meta, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (m.message_id, m.kind.value, m.sender, m.document_id, m.priority, m.business_type, m.status_code,
             m.digest, m.received_digest, len(m.payload), m.origin_node, m.received_from, _j(dict(m.meta)), now),
        )
        stored_digest = c.execute("SELECT digest FROM messages WHERE message_id = ?", (m.message_id,)).fetchone()[0]
        pend = _PendingIngest(m.message_id, stored_digest)
        any_new = False
        original: str | None = None
        rank = priority_rank(m.priority)
        for d in item.deliveries:
            did = delivery_id_for(m.message_id, d.recipient)
            local = d.next_hop is None
            state = DeliveryState.DELIVERED if local else DeliveryState.QUEUED
            cur = c.execute(
                """INSERT OR IGNORE INTO deliveries (delivery_id, message_id, recipient, kind, sender, document_id,
                   priority, rank, next_hop, state, created_at, updated_at, delivered_at, idem_key)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (did, m.message_id, d.recipient, m.kind.value, m.sender, m.document_id, m.priority, rank,
                 d.next_hop, state.value, now, now, now if local else None, d.idem_key),
            )
            if cur.rowcount == 1:
                any_new = True
                sink: dict[str, Any] = {}
                for entry in item.trail.get(did, ()):
                    self._add_trail(c, did, entry)
                if item.receipt:
                    tx.want_receipt(did, m.received_digest, stored_digest, sink)
                else:
                    self._add_trail(c, did, TrailEntry(self.node_id, "stored", at, stored_digest))
                if local:
                    self._add_trail(c, did, TrailEntry(self.node_id, "delivered", at, stored_digest))
                    if d.verify:
                        c.execute(
                            """INSERT OR IGNORE INTO verifications (message_id, state, rank, created_at)
                               VALUES (?, 'pending', ?, ?)""",
                            (m.message_id, rank, now),
                        )
                pend.items.append(_PendingDelivery(did, d.recipient, False, state, sink))
                for f in d.followups:
                    pend.followups.append(self._ingest(tx, f, at))
            else:
                row = c.execute(
                    "SELECT state, delivery_id, message_id FROM deliveries WHERE delivery_id = ?", (did,)
                ).fetchone()
                if row is None and d.idem_key is not None:
                    row = c.execute(
                        "SELECT state, delivery_id, message_id FROM deliveries WHERE idem_key = ?", (d.idem_key,)
                    ).fetchone()
                did = row[1]
                original = row[2]
                rec = c.execute(
                    """SELECT receipt FROM trail WHERE delivery_id = ? AND node = ? AND event = 'stored'
                       AND receipt IS NOT NULL ORDER BY id LIMIT 1""",
                    (did, self.node_id),
                ).fetchone()
                receipt = json.loads(rec[0]) if rec else tx.sinks.get(did)
                pend.items.append(_PendingDelivery(did, d.recipient, True, DeliveryState(row[0]), receipt))
        if any_new:
            for e in item.effects:
                self._effect(tx, e, at)
        elif not c.execute("SELECT 1 FROM deliveries WHERE message_id = ? LIMIT 1", (m.message_id,)).fetchone():
            # Every delivery was a duplicate of an earlier message (same idempotency key): keep no orphan.
            c.execute("DELETE FROM messages WHERE message_id = ?", (m.message_id,))
            if original is not None:
                pend.message_id = original
                pend.digest = c.execute("SELECT digest FROM messages WHERE message_id = ?", (original,)).fetchone()[0]
        return pend

    @staticmethod
    def _add_trail(c: sqlite3.Connection, delivery_id: str, e: TrailEntry) -> None:
        c.execute(
            """INSERT OR IGNORE INTO trail (delivery_id, node, event, at, digest, receipt, detail)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (delivery_id, e.node, e.event, e.at.timestamp(), e.digest,
             _j(e.receipt) if e.receipt is not None else None, e.detail),
        )

    def _move(self, c: sqlite3.Connection, delivery_id: str, new: DeliveryState, now: float,
              extra: str = "", params: Sequence[Any] = ()) -> bool:
        row = c.execute("SELECT state FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
        if row is None:
            return False
        old = DeliveryState(row[0])
        if old == new or new not in TRANSITIONS[old]:
            return False
        c.execute(
            f"""UPDATE deliveries SET state = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL {extra}
                WHERE delivery_id = ?""",  # noqa: S608 - extra is a constant fragment from this module
            (new.value, now, *params, delivery_id),
        )
        return True

    def _effect(self, tx: _Tx, e: Effect, at: datetime) -> None:
        c = tx.conn
        now = at.timestamp()
        if isinstance(e, ReportEffect):
            ev = e.event
            for entry in ev.trail:
                self._add_trail(c, ev.delivery_id, entry)
            when = max((t.at for t in ev.trail if t.event == ev.state.value), default=at).timestamp()
            if ev.state == DeliveryState.DELIVERED:
                self._move(c, ev.delivery_id, ev.state, now, ", delivered_at = ?", (when,))
            elif ev.state == DeliveryState.ACKNOWLEDGED:
                self._move(c, ev.delivery_id, ev.state, now,
                           ", acknowledged_at = ?, delivered_at = COALESCE(delivered_at, ?)", (when, when))
            elif ev.state == DeliveryState.DEAD:
                self._move(c, ev.delivery_id, ev.state, now, ", last_error = ?", (ev.reason,))
            else:
                self._move(c, ev.delivery_id, ev.state, now)
        elif isinstance(e, StatusEffect):
            rows = c.execute(
                """SELECT delivery_id, state, recipient_status_at, recall FROM deliveries
                   WHERE document_id = ? AND sender = ? AND recipient = ? AND kind = 'document'""",
                (e.document_id, e.doc_sender, e.doc_recipient),
            ).fetchall()
            when = e.at.timestamp()
            for did, state, prev_at, recall in rows:
                self._add_trail(c, did, TrailEntry(self.node_id, f"status:{e.code}", e.at))
                if prev_at is None or when >= prev_at:
                    c.execute(
                        """UPDATE deliveries SET recipient_status = ?, recipient_status_at = ?, updated_at = ?
                           WHERE delivery_id = ?""",
                        (e.code, when, now, did),
                    )
                # 15/16 answer a pending request only: a new version with the same DocumentId is not touched.
                if e.code == "15" and recall == RecallState.REQUESTED.value:
                    self._withdraw(c, did, DeliveryState(state), now, "recall agreed (15)", at)
                elif e.code == "16" and recall == RecallState.REQUESTED.value:
                    c.execute(
                        "UPDATE deliveries SET recall = 'refused', updated_at = ? WHERE delivery_id = ?", (now, did)
                    )
        elif isinstance(e, RecallRequestEffect):
            rows = c.execute(
                """SELECT delivery_id FROM deliveries WHERE document_id = ? AND sender = ? AND recipient = ?
                   AND kind = 'document' AND withdrawn = 0 AND message_id != ?""",
                (e.document_id, e.doc_sender, e.doc_recipient, e.by_message),
            ).fetchall()
            for (did,) in rows:
                c.execute(
                    """UPDATE deliveries SET recall = 'requested', recall_request = ?, recall_by = ?, updated_at = ?
                       WHERE delivery_id = ?""",
                    (e.request, e.by_message, now, did),
                )
                self._add_trail(c, did, TrailEntry(self.node_id, "recall_requested", e.at, detail=e.request))
        elif isinstance(e, WithdrawEffect):
            for did in e.delivery_ids:
                row = c.execute("SELECT state FROM deliveries WHERE delivery_id = ?", (did,)).fetchone()
                if row is not None:
                    self._withdraw(c, did, DeliveryState(row[0]), now, e.reason, e.at)
        else:  # pragma: no cover - exhaustive
            raise TypeError(f"unknown effect {e!r}")

    def _withdraw(self, c: sqlite3.Connection, did: str, state: DeliveryState, now: float, reason: str,
                  at: datetime) -> None:
        if state in FINAL_STATES or DeliveryState.RECALLED not in TRANSITIONS[state]:
            # Already acknowledged (or recalled): the transport state stays; the mail leaves the inbox.
            c.execute(
                """UPDATE deliveries SET withdrawn = 1, recall = CASE WHEN recall IS NULL THEN NULL ELSE 'agreed' END,
                   updated_at = ? WHERE delivery_id = ?""",
                (now, did),
            )
        else:
            c.execute(
                """UPDATE deliveries SET state = 'recalled', withdrawn = 1, lease_owner = NULL, lease_until = NULL,
                   recall = CASE WHEN recall IS NULL THEN NULL ELSE 'agreed' END, updated_at = ?
                   WHERE delivery_id = ?""",
                (now, did),
            )
        self._add_trail(c, did, TrailEntry(self.node_id, "recalled", at, detail=reason))

    # -- forwarding ----------------------------------------------------------------------------
    async def claim(self, destination: str, limit: int, max_bytes: int, owner: str, now: datetime,
                    lease_until: datetime) -> list[Claimed]:
        n, until = now.timestamp(), lease_until.timestamp()

        def fn(tx: _Tx) -> list[Claimed]:
            c = tx.conn
            c.execute(
                """UPDATE deliveries SET state = 'queued', updated_at = ?
                   WHERE state = 'retry_wait' AND next_attempt_at <= ? AND next_hop = ?""",
                (n, n, destination),
            )
            rows = c.execute(
                f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS}
                    FROM deliveries d JOIN messages m ON m.message_id = d.message_id
                    LEFT JOIN verifications v ON v.message_id = d.message_id
                    WHERE d.next_hop = ? AND d.state = 'queued'
                    ORDER BY d.rank DESC, d.seq LIMIT ?""",  # noqa: S608
                (destination, limit),
            ).fetchall()
            chosen: list[sqlite3.Row] = []
            total = 0
            for r in rows:
                if chosen and total + r["m_size"] > max_bytes:
                    break
                chosen.append(r)
                total += r["m_size"]
            if not chosen:
                return []
            c.executemany(
                """UPDATE deliveries SET state = 'in_flight', lease_owner = ?, lease_until = ?,
                   attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, ?), updated_at = ?
                   WHERE seq = ?""",
                [(owner, until, n, n, r["seq"]) for r in chosen],
            )
            out = []
            for r in chosen:
                d = _delivery(r, with_message=False)
                d = Delivery(**{**d.__dict__, "state": DeliveryState.IN_FLIGHT, "attempts": d.attempts + 1,
                                "lease_owner": owner, "lease_until": lease_until,
                                "first_attempt_at": d.first_attempt_at or now})
                out.append(Claimed(d, _message(r)))
            return out

        return await self._write(fn)

    async def payloads(self, digests: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(digests))

        def fn(c: sqlite3.Connection) -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for i in range(0, len(wanted), 200):
                chunk = wanted[i : i + 200]
                marks = ",".join("?" * len(chunk))
                for row in c.execute(f"SELECT digest, data FROM p.payloads WHERE digest IN ({marks})", chunk):  # noqa: S608
                    out[row[0]] = bytes(row[1])
            return out

        return await self._read(fn)

    async def settle(self, outcomes: Sequence[Settle], owner: str, at: datetime,
                     followups: Sequence[Ingest] = ()) -> None:
        payloads = list(_payloads_of(followups))

        def fn(tx: _Tx) -> None:
            c = tx.conn
            now = at.timestamp()
            for o in outcomes:
                if isinstance(o, Forwarded):
                    c.execute(
                        """UPDATE deliveries SET state = 'forwarded', lease_owner = NULL, lease_until = NULL,
                           next_attempt_at = NULL, last_error = '', updated_at = ?
                           WHERE delivery_id = ? AND state IN ('in_flight', 'queued', 'retry_wait', 'dead')""",
                        (now, o.delivery_id),
                    )
                    r = o.receipt
                    stored_at = datetime.fromisoformat(str(r.get("stored_at"))) if r.get("stored_at") else o.at
                    self._add_trail(c, o.delivery_id, TrailEntry(
                        str(r.get("node", "")), "stored", stored_at, str(r.get("digest", "")), dict(r)))
                elif isinstance(o, RetryLater):
                    c.execute(
                        """UPDATE deliveries SET state = 'retry_wait', next_attempt_at = ?, last_error = ?,
                           lease_owner = NULL, lease_until = NULL, updated_at = ?
                           WHERE delivery_id = ? AND state = 'in_flight' AND lease_owner = ?""",
                        (o.retry_at.timestamp(), o.error[:2000], now, o.delivery_id, owner),
                    )
                elif isinstance(o, Dead):
                    cur = c.execute(
                        """UPDATE deliveries SET state = 'dead', last_error = ?, lease_owner = NULL,
                           lease_until = NULL, next_attempt_at = NULL, updated_at = ?
                           WHERE delivery_id = ? AND state = 'in_flight' AND lease_owner = ?""",
                        (o.reason[:2000], now, o.delivery_id, owner),
                    )
                    if cur.rowcount:
                        self._add_trail(c, o.delivery_id, TrailEntry(self.node_id, "dead", o.at, detail=o.reason))
                elif isinstance(o, Requeue):
                    c.execute(
                        """UPDATE deliveries SET state = 'queued', attempts = MAX(attempts - 1, 0),
                           lease_owner = NULL, lease_until = NULL, updated_at = ?
                           WHERE delivery_id = ? AND state = 'in_flight' AND lease_owner = ?""",
                        (now, o.delivery_id, owner),
                    )
            for f in followups:
                self._ingest(tx, f, at)

        await self._write(fn, payloads)

    async def recover_leases(self, now: datetime, *, all_owners_except: str | None = None) -> int:
        n = now.timestamp()

        def fn(tx: _Tx) -> int:
            c = tx.conn
            if all_owners_except is not None:
                cur = c.execute(
                    """UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL,
                       updated_at = ? WHERE state = 'in_flight' AND lease_owner IS NOT ?""",
                    (n, all_owners_except),
                )
                c.execute(
                    """UPDATE verifications SET state = 'pending', lease_owner = NULL, lease_until = NULL
                       WHERE state = 'running' AND lease_owner IS NOT ?""",
                    (all_owners_except,),
                )
            else:
                cur = c.execute(
                    """UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL,
                       updated_at = ? WHERE state = 'in_flight' AND lease_until < ?""",
                    (n, n),
                )
                c.execute(
                    """UPDATE verifications SET state = 'pending', lease_owner = NULL, lease_until = NULL
                       WHERE state = 'running' AND lease_until < ?""",
                    (n,),
                )
            return int(cur.rowcount)

        return await self._write(fn)

    async def due_destinations(self, now: datetime) -> dict[str, int]:
        n = now.timestamp()

        def fn(c: sqlite3.Connection) -> dict[str, int]:
            rows = c.execute(
                """SELECT next_hop, COUNT(*) FROM deliveries
                   WHERE next_hop IS NOT NULL AND (state = 'queued' OR (state = 'retry_wait' AND next_attempt_at <= ?))
                   GROUP BY next_hop""",
                (n,),
            ).fetchall()
            return {r[0]: int(r[1]) for r in rows}

        return await self._read(fn)

    async def next_due(self, destination: str) -> datetime | None:
        def fn(c: sqlite3.Connection) -> datetime | None:
            row = c.execute(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'retry_wait' AND next_hop = ?",
                (destination,),
            ).fetchone()
            return _dt(row[0])

        return await self._read(fn)

    async def reports_trail(self, delivery_ids: Sequence[str]) -> dict[str, list[TrailEntry]]:
        ids = list(dict.fromkeys(delivery_ids))

        def fn(c: sqlite3.Connection) -> dict[str, list[TrailEntry]]:
            out: dict[str, list[TrailEntry]] = {i: [] for i in ids}
            for i in range(0, len(ids), 200):
                chunk = ids[i : i + 200]
                marks = ",".join("?" * len(chunk))
                for row in c.execute(
                    f"SELECT * FROM trail WHERE delivery_id IN ({marks}) ORDER BY at, id", chunk  # noqa: S608
                ):
                    out[row["delivery_id"]].append(_trail_entry(row))
            return out

        return await self._read(fn)

    # -- verification --------------------------------------------------------------------------
    async def claim_verifications(self, limit: int, owner: str, now: datetime,
                                  lease_until: datetime) -> list[VerificationJob]:
        until = lease_until.timestamp()

        def fn(tx: _Tx) -> list[VerificationJob]:
            c = tx.conn
            rows = c.execute(
                """SELECT v.message_id, v.attempts, m.sender, m.document_id, m.digest, m.priority, m.meta
                   FROM verifications v JOIN messages m ON m.message_id = v.message_id
                   WHERE v.state = 'pending' ORDER BY v.rank DESC, v.created_at LIMIT ?""",
                (limit,),
            ).fetchall()
            out = []
            for r in rows:
                c.execute(
                    """UPDATE verifications SET state = 'running', lease_owner = ?, lease_until = ?,
                       attempts = attempts + 1 WHERE message_id = ?""",
                    (owner, until, r["message_id"]),
                )
                recips = tuple(
                    x[0] for x in c.execute(
                        "SELECT recipient FROM deliveries WHERE message_id = ? AND next_hop IS NULL ORDER BY seq",
                        (r["message_id"],),
                    )
                )
                out.append(VerificationJob(r["message_id"], r["sender"], r["document_id"], r["digest"],
                                           r["priority"], r["attempts"] + 1, recips, json.loads(r["meta"])))
            return out

        return await self._write(fn)

    async def finish_verification(self, result: VerificationResult, owner: str) -> None:
        payloads = list(_payloads_of(result.followups))

        def fn(tx: _Tx) -> None:
            c = tx.conn
            cur = c.execute(
                """UPDATE verifications SET state = ?, report = ?, verified_at = ?, lease_owner = NULL,
                   lease_until = NULL WHERE message_id = ? AND state = 'running' AND lease_owner = ?""",
                (result.result.value, _j(dict(result.report)), result.at.timestamp(), result.message_id, owner),
            )
            if not cur.rowcount:
                return
            dids = [r[0] for r in c.execute(
                "SELECT delivery_id FROM deliveries WHERE message_id = ? AND next_hop IS NULL", (result.message_id,)
            )]
            for did in dids:
                self._add_trail(c, did, TrailEntry(self.node_id, "verified", result.at, detail=result.result.value))
            for f in result.followups:
                self._ingest(tx, f, result.at)

        await self._write(fn, payloads)

    async def verification(self, message_id: str) -> tuple[Verification, Mapping[str, Any] | None]:
        def fn(c: sqlite3.Connection) -> tuple[Verification, Mapping[str, Any] | None]:
            row = c.execute("SELECT state, report FROM verifications WHERE message_id = ?", (message_id,)).fetchone()
            if row is None:
                return Verification.SKIPPED, None
            state = row[0] if row[0] in Verification._value2member_map_ else "pending"
            return Verification(state), json.loads(row[1]) if row[1] else None

        return await self._read(fn)

    # -- mailboxes -----------------------------------------------------------------------------
    async def delivery(self, delivery_id: str) -> Delivery | None:
        def fn(c: sqlite3.Connection) -> Delivery | None:
            row = c.execute(
                f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} FROM deliveries d
                    JOIN messages m ON m.message_id = d.message_id
                    LEFT JOIN verifications v ON v.message_id = d.message_id WHERE d.delivery_id = ?""",  # noqa: S608
                (delivery_id,),
            ).fetchone()
            return _delivery(row, with_message=True) if row else None

        return await self._read(fn)

    async def deliveries_of(self, message_id: str) -> list[Delivery]:
        def fn(c: sqlite3.Connection) -> list[Delivery]:
            rows = c.execute(
                f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} FROM deliveries d
                    JOIN messages m ON m.message_id = d.message_id
                    LEFT JOIN verifications v ON v.message_id = d.message_id
                    WHERE d.message_id = ? ORDER BY d.seq""",  # noqa: S608
                (message_id,),
            ).fetchall()
            return [_delivery(r, with_message=True) for r in rows]

        return await self._read(fn)

    async def find_deliveries(self, *, sender: str, document_id: str, recipients: Sequence[str] = (),
                              kind: MessageKind = MessageKind.DOCUMENT) -> list[Delivery]:
        def fn(c: sqlite3.Connection) -> list[Delivery]:
            sql = f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} FROM deliveries d
                      JOIN messages m ON m.message_id = d.message_id
                      LEFT JOIN verifications v ON v.message_id = d.message_id
                      WHERE d.document_id = ? AND d.sender = ? AND d.kind = ?"""  # noqa: S608
            params: list[Any] = [document_id, sender, kind.value]
            if recipients:
                sql += f" AND d.recipient IN ({','.join('?' * len(recipients))})"
                params.extend(recipients)
            return [_delivery(r, with_message=True) for r in c.execute(sql + " ORDER BY d.seq", params)]

        return await self._read(fn)

    async def inbox(self, query: InboxQuery) -> Page:
        if not query.recipients:
            return Page((), None)
        cur = _decode_cursor(query.cursor, 2)

        def fn(c: sqlite3.Connection) -> Page:
            where = [f"d.recipient IN ({','.join('?' * len(query.recipients))})", "d.next_hop IS NULL",
                     "d.kind != 'report'"]
            params: list[Any] = list(query.recipients)
            states = query.states or (
                (DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED, DeliveryState.RECALLED)
                if query.include_withdrawn else (DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED)
            )
            where.append(f"d.state IN ({','.join('?' * len(states))})")
            params.extend(s.value for s in states)
            if query.kind is not None:
                where.append("d.kind = ?")
                params.append(query.kind.value)
            if query.senders:
                where.append(f"d.sender IN ({','.join('?' * len(query.senders))})")
                params.extend(query.senders)
            if query.priorities:
                where.append(f"d.priority IN ({','.join('?' * len(query.priorities))})")
                params.extend(query.priorities)
            if query.since is not None:
                where.append("d.delivered_at >= ?")
                params.append(query.since.timestamp())
            if query.until is not None:
                where.append("d.delivered_at < ?")
                params.append(query.until.timestamp())
            if query.unacknowledged:
                where.append("d.state = 'delivered'")
            if not query.include_withdrawn:
                where.append("d.withdrawn = 0")
            if query.document_id:
                where.append("d.document_id = ?")
                params.append(query.document_id)
            if cur is not None:
                where.append("(d.rank < ? OR (d.rank = ? AND d.seq > ?))")
                params.extend([cur[0], cur[0], cur[1]])
            limit = max(1, min(query.limit, 500))
            rows = c.execute(
                f"""SELECT {_DELIVERY_COLS}, d.rank, {_MESSAGE_COLS} FROM deliveries d
                    JOIN messages m ON m.message_id = d.message_id
                    LEFT JOIN verifications v ON v.message_id = d.message_id
                    WHERE {' AND '.join(where)} ORDER BY d.rank DESC, d.seq LIMIT ?""",  # noqa: S608
                [*params, limit + 1],
            ).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = _encode_cursor(rows[-1]["rank"], rows[-1]["seq"]) if more and rows else None
            return Page(tuple(_delivery(r, with_message=True) for r in rows), nxt)

        return await self._read(fn)

    async def sent(self, query: SentQuery) -> Page:
        if not query.senders:
            return Page((), None)
        cur = _decode_cursor(query.cursor, 1)

        def fn(c: sqlite3.Connection) -> Page:
            where = [f"m.sender IN ({','.join('?' * len(query.senders))})", "m.origin_node = ?"]
            params: list[Any] = [*query.senders, self.node_id]
            if query.kind is not None:
                where.append("m.kind = ?")
                params.append(query.kind.value)
            else:
                where.append("m.kind != 'report'")
            if query.document_id:
                where.append("m.document_id = ?")
                params.append(query.document_id)
            if query.since is not None:
                where.append("m.created_at >= ?")
                params.append(query.since.timestamp())
            if query.until is not None:
                where.append("m.created_at < ?")
                params.append(query.until.timestamp())
            if cur is not None:
                where.append("m.rowid < ?")
                params.append(cur[0])
            limit = max(1, min(query.limit, 500))
            rows = c.execute(
                f"""SELECT m.rowid AS rid, m.message_id AS m_message_id, m.kind AS m_kind, m.sender AS m_sender,
                    m.document_id AS m_document_id, m.priority AS m_priority, m.business_type AS m_business_type,
                    m.status_code AS m_status_code, m.digest AS m_digest, m.size AS m_size,
                    m.origin_node AS m_origin_node, m.received_from AS m_received_from, m.meta AS m_meta,
                    m.created_at AS m_created_at
                    FROM messages m WHERE {' AND '.join(where)} ORDER BY m.rowid DESC LIMIT ?""",  # noqa: S608
                [*params, limit + 1],
            ).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = _encode_cursor(rows[-1]["rid"]) if more and rows else None
            return Page(tuple(_message(r) for r in rows), nxt)

        return await self._read(fn)

    async def mark_fetched(self, delivery_id: str, at: datetime) -> None:
        def fn(tx: _Tx) -> None:
            tx.conn.execute(
                "UPDATE deliveries SET fetched_at = COALESCE(fetched_at, ?) WHERE delivery_id = ?",
                (at.timestamp(), delivery_id),
            )

        await self._write(fn)

    async def acknowledge(self, delivery_id: str, at: datetime, followups: Sequence[Ingest] = ()) -> Delivery:
        payloads = list(_payloads_of(followups))

        def fn(tx: _Tx) -> None:
            c = tx.conn
            moved = self._move(c, delivery_id, DeliveryState.ACKNOWLEDGED, at.timestamp(),
                               ", acknowledged_at = ?, fetched_at = COALESCE(fetched_at, ?)",
                               (at.timestamp(), at.timestamp()))
            if moved:
                self._add_trail(c, delivery_id, TrailEntry(self.node_id, "acknowledged", at))
                for f in followups:
                    self._ingest(tx, f, at)

        await self._write(fn, payloads)
        d = await self.delivery(delivery_id)
        if d is None:
            raise StoreError("Không thấy lượt chuyển", f"delivery {delivery_id} vanished")
        return d

    async def trail(self, delivery_id: str) -> list[TrailEntry]:
        return (await self.reports_trail([delivery_id]))[delivery_id]

    # -- operators -----------------------------------------------------------------------------
    async def queue(self, query: QueueQuery) -> Page:
        cur = _decode_cursor(query.cursor, 1)

        def fn(c: sqlite3.Connection) -> Page:
            where = [f"d.state IN ({','.join('?' * len(query.states))})"] if query.states else ["1 = 1"]
            params: list[Any] = [s.value for s in query.states]
            if query.destination:
                where.append("d.next_hop = ?")
                params.append(query.destination)
            if cur is not None:
                where.append("d.seq > ?")
                params.append(cur[0])
            limit = max(1, min(query.limit, 1000))
            rows = c.execute(
                f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} FROM deliveries d
                    JOIN messages m ON m.message_id = d.message_id
                    LEFT JOIN verifications v ON v.message_id = d.message_id
                    WHERE {' AND '.join(where)} ORDER BY d.seq LIMIT ?""",  # noqa: S608
                [*params, limit + 1],
            ).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = _encode_cursor(rows[-1]["seq"]) if more and rows else None
            return Page(tuple(_delivery(r, with_message=True) for r in rows), nxt)

        return await self._read(fn)

    async def resend(self, delivery_id: str, at: datetime) -> Delivery:
        from docexchange.exchange.model import check_transition

        def fn(tx: _Tx) -> None:
            c = tx.conn
            row = c.execute("SELECT state FROM deliveries WHERE delivery_id = ?", (delivery_id,)).fetchone()
            if row is None:
                raise StoreError(f"Không có lượt chuyển {delivery_id}", f"no delivery {delivery_id}")
            check_transition(DeliveryState(row[0]), DeliveryState.QUEUED)
            if DeliveryState(row[0]) != DeliveryState.DEAD:
                from docexchange.exchange.model import IllegalTransition

                raise IllegalTransition(
                    "Chỉ gửi lại được thư không chuyển được (dead)", "only dead letters can be resent"
                )
            c.execute(
                """UPDATE deliveries SET state = 'queued', attempts = 0, first_attempt_at = NULL,
                   next_attempt_at = NULL, last_error = '', updated_at = ? WHERE delivery_id = ?""",
                (at.timestamp(), delivery_id),
            )
            self._add_trail(c, delivery_id, TrailEntry(self.node_id, "resent", at))

        await self._write(fn)
        d = await self.delivery(delivery_id)
        assert d is not None
        return d

    async def purge(self, delivery_id: str, at: datetime) -> None:
        def fn(tx: _Tx) -> None:
            c = tx.conn
            row = c.execute(
                "SELECT state, message_id FROM deliveries WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"Không có lượt chuyển {delivery_id}", f"no delivery {delivery_id}")
            if row[0] != DeliveryState.DEAD.value:
                from docexchange.exchange.model import IllegalTransition

                raise IllegalTransition("Chỉ xóa được thư không chuyển được (dead)", "only dead letters can be purged")
            c.execute("DELETE FROM deliveries WHERE delivery_id = ?", (delivery_id,))
            self._add_trail(c, delivery_id, TrailEntry(self.node_id, "purged", at))
            left = c.execute("SELECT COUNT(*) FROM deliveries WHERE message_id = ?", (row[1],)).fetchone()[0]
            if not left:
                c.execute("DELETE FROM verifications WHERE message_id = ?", (row[1],))
                c.execute("DELETE FROM messages WHERE message_id = ?", (row[1],))

        await self._write(fn)

    async def counts(self) -> dict[str, dict[str, int]]:
        def fn(c: sqlite3.Connection) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for dest, state, n in c.execute(
                "SELECT COALESCE(next_hop, 'local'), state, COUNT(*) FROM deliveries GROUP BY 1, 2"
            ):
                out.setdefault(dest, {})[state] = int(n)
            return out

        return await self._read(fn)

    # -- credentials ---------------------------------------------------------------------------
    async def put_credential(self, record: CredentialRecord) -> None:
        def fn(tx: _Tx) -> None:
            tx.conn.execute(
                """INSERT INTO credentials (system_id, role, agencies, secret_box, created_at, rotated_at,
                   revoked_at, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (system_id) DO UPDATE SET role = excluded.role, agencies = excluded.agencies,
                   secret_box = excluded.secret_box, rotated_at = excluded.rotated_at,
                   revoked_at = excluded.revoked_at, label = excluded.label""",
                (record.system_id, record.role, _j(list(record.agencies)), record.secret_box,
                 record.created_at.timestamp(), _ts(record.rotated_at), _ts(record.revoked_at), record.label),
            )

        await self._write(fn)

    async def credential(self, system_id: str) -> CredentialRecord | None:
        def fn(c: sqlite3.Connection) -> CredentialRecord | None:
            row = c.execute("SELECT * FROM credentials WHERE system_id = ?", (system_id,)).fetchone()
            return _credential(row) if row else None

        return await self._read(fn)

    async def credentials(self) -> list[CredentialRecord]:
        def fn(c: sqlite3.Connection) -> list[CredentialRecord]:
            return [_credential(r) for r in c.execute("SELECT * FROM credentials ORDER BY system_id")]

        return await self._read(fn)

    async def remember_nonce(self, system_id: str, nonce: str, expires_at: datetime) -> bool:
        # This store has a single process: the in-memory set is authoritative, the table survives restarts.
        key = (system_id, nonce)
        exp = expires_at.timestamp()
        with self._lock:
            if key in self._nonces:
                return False
            self._nonces[key] = exp

        def fn(tx: _Tx) -> None:
            tx.conn.execute(
                "INSERT OR IGNORE INTO nonces (system_id, nonce, expires_at) VALUES (?, ?, ?)", (system_id, nonce, exp)
            )

        if self._writer is not None:
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[Any] = loop.create_future()
            fut.add_done_callback(_log_failure)
            # Joins the next group commit; the caller does not wait for the disk.
            self._writer.submit(_Op(fn, (), fut, loop))
        return True

    # -- housekeeping --------------------------------------------------------------------------
    async def housekeeping(self, now: datetime) -> dict[str, int]:
        n = now.timestamp()
        with self._lock:
            for k in [k for k, v in self._nonces.items() if v <= n]:
                del self._nonces[k]

        def fn(tx: _Tx) -> int:
            return int(tx.conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (n,)).rowcount)

        nonces = await self._write(fn)
        removed = await asyncio.to_thread(self._gc_payloads, n - PAYLOAD_GC_AGE)
        return {"nonces": int(nonces), "payloads": removed}

    def _gc_payloads(self, older_than: float) -> int:
        """Delete payloads older than ``older_than`` that no message refers to (left by a crash between the two
        commits of a group, by duplicates, or by purged dead letters)."""
        conn = _connect(self.payload_path, busy_ms=self.busy_ms)
        try:
            conn.execute("ATTACH DATABASE ? AS meta", (str(self.path),))
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute(
                """DELETE FROM main.payloads WHERE created_at < ?
                   AND NOT EXISTS (SELECT 1 FROM meta.messages m WHERE m.digest = main.payloads.digest)""",
                (older_than,),
            )
            conn.execute("COMMIT")
            return int(cur.rowcount)
        except sqlite3.Error as exc:
            _rollback(conn)
            raise _store_error(exc, "dọn dẹp") from exc
        finally:
            conn.close()


@dataclass
class _PendingDelivery:
    delivery_id: str
    recipient: str
    duplicate: bool
    state: DeliveryState
    receipt: dict[str, Any] | None


@dataclass
class _PendingIngest:
    message_id: str
    digest: str
    items: list[_PendingDelivery] = field(default_factory=list)
    followups: list[_PendingIngest] = field(default_factory=list)

    def outcome(self) -> IngestOutcome:
        return IngestOutcome(
            self.message_id,
            self.digest,
            tuple(
                DeliveryOutcome(p.delivery_id, p.recipient, p.duplicate, p.state, p.receipt or None)
                for p in self.items
            ),
        )


def _log_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("background store write failed: %s", fut.exception())


def _payloads_of(items: Iterable[Ingest]) -> Iterable[tuple[str, bytes]]:
    for item in items:
        yield item.message.digest, item.message.payload
        for d in item.deliveries:
            yield from _payloads_of(d.followups)
