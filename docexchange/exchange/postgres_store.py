"""PostgreSQL implementation of the :class:`~docexchange.exchange.store.Store` protocol (asyncpg).

Several stateless worker processes of one node share one schema. Nothing that makes delivery exactly-once lives
in process memory:

* every change is one transaction; deduplication (``UNIQUE (message_id, recipient)``, the idempotency key),
  the receipts (one ``stored`` receipt per delivery and node) and the trail are constraints of the schema
  (:mod:`docexchange.exchange.pg_migrations`), so two workers storing the same packet at once store it once and
  both answer with the same receipt;
* work is claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` and recorded as a lease (owner + expiry): workers
  never wait for each other's rows and never claim the same delivery twice;
* a worker that dies loses nothing: its leases expire, or sooner, when its *liveness lock* is gone. Each store
  holds a session advisory lock on a dedicated connection while it runs; the owners it claims with are recorded
  in ``lease_owners`` with that lock's key. ``recover_leases`` returns to the queue the leases that expired and
  those whose owner's lock is no longer held (the process died, or lost its connection: the work is then sent
  again, and the next node deduplicates it);
* request nonces are a table with a primary key: a replay is refused by whichever worker it reaches.

Connection loss (a restarted or failed-over server, a cut connection, too many connections) is retried with
exponential backoff for ``reconnect_seconds`` (then :class:`~docexchange.errors.StoreError`, HTTP 503, which
the sender retries). Every operation is safe to run again after a connection dropped during its commit: an
ingest that did commit is found again as a duplicate with its original receipt, a settle applies only what is
still true.

URL: ``postgresql://user@host:port/database[?schema=name]``. The schema defaults to ``dx_<node id>`` (one schema
per node, so the nodes of a host can share a database); ``{node}`` anywhere in the URL is replaced by the node
id. Other query parameters are passed to asyncpg (``sslmode``, …); ``reconnect_seconds`` sets the retry window.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from docexchange.config import Settings
from docexchange.errors import ConfigError, StoreError
from docexchange.exchange.migrations import Migration, check_version
from docexchange.exchange.model import (
    TRANSITIONS,
    Delivery,
    DeliveryState,
    IllegalTransition,
    MessageKind,
    RecallState,
    StoredMessage,
    TrailEntry,
    Verification,
    delivery_id_for,
    priority_rank,
)
from docexchange.exchange.pg_migrations import POSTGRES, bootstrap_statements
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

__all__ = [
    "TRANSIENT_ERRORS",
    "PgTarget",
    "PostgresStore",
    "SchemaMissing",
    "connect_target",
    "migrate_schema",
    "parse_url",
    "schema_name",
    "schema_state",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
PAYLOAD_GC_AGE = timedelta(hours=1)
MAX_GROUP = 64
"""Writes committed together at most (one transaction, one receipt signature)."""
MAX_PAGE = 500
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_OWN_PARAMS = {"schema", "reconnect_seconds"}

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # class 08: connection lost, refused, failed
    asyncpg.exceptions.AdminShutdownError,  # pg_terminate_backend, fast shutdown
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,  # starting up / recovering / shutting down
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a standby during failover
    asyncpg.InterfaceError,  # "connection is closed", a pool that lost its connection
    asyncpg.exceptions.InternalClientError,  # a connection the server closed while it sat idle in the pool
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)
"""Errors after which the whole operation is run again on a fresh connection."""


# ---------------------------------------------------------------------------------------------------- URL


def schema_name(text: str) -> str:
    """A PostgreSQL schema name from a node id (``lgsp-h49`` → ``dx_lgsp_h49``) or a configured name."""
    name = text.strip().lower().replace("-", "_").replace(".", "_")
    if not _IDENT.match(name):
        raise ConfigError(
            f"Tên schema PostgreSQL không hợp lệ: {text!r}",
            f"invalid PostgreSQL schema name: {text!r} (letters, digits and _; at most 63)",
        )
    return name


@dataclass(frozen=True)
class PgTarget:
    """Where one node's store lives: a server/database (asyncpg DSN) and a schema."""

    dsn: str = field(repr=False)
    schema: str
    reconnect_seconds: float = 30.0

    @property
    def display(self) -> str:
        """The DSN without a password, for messages."""
        parts = urlsplit(self.dsn)
        hosts = parts.netloc.rpartition("@")[2]
        user = parts.netloc.rpartition("@")[0].partition(":")[0]
        return f"{parts.scheme}://{user + '@' if user else ''}{hosts}{parts.path}#{self.schema}"


def parse_url(url: str, node_id: str, schema: str | None = None) -> PgTarget:
    """Split ``[store] url`` into the asyncpg DSN and this node's schema."""
    url = url.strip().replace("{node}", schema_name(node_id))
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"Không phải URL PostgreSQL: {url!r}", f"not a PostgreSQL URL: {url!r}")
    params = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in params if k in _OWN_PARAMS}
    rest = [(k, v) for k, v in params if k not in _OWN_PARAMS]
    chosen = schema or own.get("schema") or f"dx_{node_id}"
    try:
        reconnect = float(own.get("reconnect_seconds", "30"))
    except ValueError:
        raise ConfigError(
            "reconnect_seconds trong URL PostgreSQL phải là số",
            "reconnect_seconds in the PostgreSQL URL must be a number",
        ) from None
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return PgTarget(dsn=dsn, schema=schema_name(chosen), reconnect_seconds=max(0.0, reconnect))


class SchemaMissing(StoreError):
    """The node's schema has not been created (a worker started with automatic migration off)."""

    code = "schema_missing"
    exit_code = 78


def _lock_namespace(schema: str) -> int:
    """First key of this schema's advisory locks (the second is 0 for migrations, a worker's key for liveness)."""
    return int.from_bytes(hashlib.sha256(f"docexchange:{schema}".encode()).digest()[:4], "big") & 0x7FFFFFFF or 1


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_j, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's reset query (a round trip per use): pooled connections hold no session
    state (no SET, LISTEN or session advisory lock; transactions are always closed by their context)."""


async def connect_target(target: PgTarget, application: str, connect_timeout: float = 10.0) -> asyncpg.Connection:
    """One connection (outside any pool) with the node's schema first on the search path."""
    conn = await asyncpg.connect(
        target.dsn, timeout=connect_timeout,
        server_settings={"search_path": f'"{target.schema}"', "application_name": application[:63]},
    )
    await _init_connection(conn)
    return conn


# ---------------------------------------------------------------------------------------------------- migrations


async def schema_state(conn: asyncpg.Connection, schema: str) -> int:
    """The schema's version (0: not created yet)."""
    exists = await conn.fetchval(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'schema_migrations'",
        schema,
    )
    if not exists:
        return 0
    return int(await conn.fetchval(f'SELECT COALESCE(MAX(version), 0) FROM "{schema}".schema_migrations'))  # noqa: S608


async def migrate_schema(conn: asyncpg.Connection, schema: str,
                         migrations: tuple[Migration, ...] = POSTGRES) -> tuple[int, list[Migration]]:
    """Bring ``schema`` to the latest version (refusing one newer than ``migrations`` knows).
    Returns (version found, migrations applied). Safe when several workers start at once."""
    ns = _lock_namespace(schema)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", ns)
        found = await schema_state(conn, schema)
        todo = check_version(found, migrations, f"PostgreSQL schema {schema}")
        if todo:
            for stmt in bootstrap_statements(schema):
                await conn.execute(stmt)
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            for m in todo:
                for stmt in m.statements:
                    await conn.execute(stmt)
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (version, description) VALUES ($1, $2)',  # noqa: S608
                    m.version, m.description,
                )
                log.info("PostgreSQL schema %s migrated to version %d (%s)", schema, m.version, m.description)
    return found, todo


# ---------------------------------------------------------------------------------------------------- rows


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
    d.seq, d.delivery_id, d.message_id, d.recipient, d.kind, d.sender, d.document_id, d.priority, d.rank,
    d.next_hop, d.state, d.attempts, d.first_attempt_at, d.next_attempt_at, d.lease_owner, d.lease_until,
    d.last_error, d.created_at, d.updated_at, d.delivered_at, d.acknowledged_at, d.fetched_at,
    d.recipient_status, d.recipient_status_at, d.recall, d.withdrawn, v.state AS v_state
"""
_MESSAGE_COLS = """
    m.message_id AS m_message_id, m.kind AS m_kind, m.sender AS m_sender, m.document_id AS m_document_id,
    m.priority AS m_priority, m.business_type AS m_business_type, m.status_code AS m_status_code,
    m.digest AS m_digest, m.size AS m_size, m.origin_node AS m_origin_node, m.received_from AS m_received_from,
    m.meta AS m_meta, m.created_at AS m_created_at
"""
_JOINS = """
    FROM deliveries d JOIN messages m ON m.message_id = d.message_id
    LEFT JOIN verifications v ON v.message_id = d.message_id
"""


def _message(row: Mapping[str, Any], prefix: str = "m_") -> StoredMessage:
    return StoredMessage(
        message_id=row[prefix + "message_id"],
        kind=MessageKind(row[prefix + "kind"]),
        sender=row[prefix + "sender"],
        document_id=row[prefix + "document_id"],
        priority=row[prefix + "priority"],
        digest=row[prefix + "digest"],
        size=int(row[prefix + "size"]),
        origin_node=row[prefix + "origin_node"],
        received_from=row[prefix + "received_from"],
        created_at=row[prefix + "created_at"],
        business_type=row[prefix + "business_type"],
        status_code=row[prefix + "status_code"],
        meta=row[prefix + "meta"],
    )


def _delivery(row: Mapping[str, Any], with_message: bool = False) -> Delivery:
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
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        first_attempt_at=row["first_attempt_at"],
        next_attempt_at=row["next_attempt_at"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        last_error=row["last_error"],
        delivered_at=row["delivered_at"],
        acknowledged_at=row["acknowledged_at"],
        fetched_at=row["fetched_at"],
        recipient_status=row["recipient_status"],
        recipient_status_at=row["recipient_status_at"],
        recall=RecallState(row["recall"]) if row["recall"] else None,
        withdrawn=bool(row["withdrawn"]),
        verification=Verification(v) if v in Verification._value2member_map_ else (
            Verification.PENDING if v else Verification.SKIPPED),
        message=_message(row) if with_message else None,
    )


def _trail_entry(row: Mapping[str, Any]) -> TrailEntry:
    receipt = row["receipt"]
    return TrailEntry(
        node=row["node"],
        event=row["event"],
        at=row["at"],
        digest=row["digest"],
        receipt=dict(receipt) if receipt is not None else None,
        detail=row["detail"],
    )


def _credential(row: Mapping[str, Any]) -> CredentialRecord:
    return CredentialRecord(
        system_id=row["system_id"],
        role=row["role"],
        agencies=tuple(row["agencies"]),
        secret_box=bytes(row["secret_box"]),
        created_at=row["created_at"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
        label=row["label"],
    )


def _olds_for(new: DeliveryState) -> list[str]:
    """States from which the machine allows a move to ``new``."""
    return [s.value for s, targets in TRANSITIONS.items() if new in targets and s != new]


_RECALLABLE = _olds_for(DeliveryState.RECALLED)


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


class _OneFailed(Exception):
    """An operation of a group raised a non-transient error (the group is rolled back and run one by one)."""


@dataclass
class _GroupOp:
    fn: Callable[[_Tx], Awaitable[Any]]
    future: asyncio.Future[Any]
    what: str


class _Tx:
    """What an operation sees inside its transaction (one per attempt: nothing survives a retry)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.leaves: list[tuple[str, str, str, dict[str, Any]]] = []
        self.sinks: dict[str, dict[str, Any]] = {}
        """Receipts promised earlier in this transaction (a duplicate in the same group shares its original's)."""

    def want_receipt(self, delivery_id: str, received: str, stored: str, sink: dict[str, Any]) -> None:
        self.leaves.append((delivery_id, received, stored, sink))
        self.sinks[delivery_id] = sink


def _wrap(exc: BaseException, what: str) -> StoreError:
    if isinstance(exc, asyncpg.PostgresError):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return StoreError(
        f"Không truy cập được cơ sở dữ liệu PostgreSQL ({what}); hãy thử lại sau",
        f"PostgreSQL store failure ({what}): {text}; retry later",
    )


# ---------------------------------------------------------------------------------------------------- store


class PostgresStore:
    """One node's store in one PostgreSQL schema, shared by any number of worker processes.

    Create, then ``await open()`` (connects, migrates, takes the liveness lock); ``await close()`` when done.
    """

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        signer: ReceiptSigning | None = None,
        clock: Callable[[], datetime] | None = None,
        settings: Settings | None = None,
        schema: str | None = None,
        pool_min: int | None = None,
        pool_max: int | None = None,
        reconnect_seconds: float | None = None,
        command_timeout: float = 60.0,
        migrate: bool = True,
        group_commit: bool = True,
        writers: int = 2,
    ) -> None:
        self.target = parse_url(url, node_id, schema)
        self.node_id = node_id
        self.signer = signer
        self._clock = clock or (lambda: datetime.now(UTC))
        store_settings = settings.store if settings is not None else None
        self.pool_min = max(0, pool_min if pool_min is not None else (store_settings.pool_min if store_settings else 1))
        self.pool_max = max(1, self.pool_min,
                            pool_max if pool_max is not None else (store_settings.pool_max if store_settings else 10))
        self.reconnect_seconds = (self.target.reconnect_seconds if reconnect_seconds is None
                                  else max(0.0, reconnect_seconds))
        self.command_timeout = command_timeout
        self.migrate = migrate
        self.application = f"docexchange:{node_id}:{self.target.schema}"[:63]
        """``application_name`` of every connection (visible in ``pg_stat_activity``)."""
        self._ns = _lock_namespace(self.target.schema)
        self._lock_key = secrets.randbelow(0x7FFFFFFE) + 1
        self._pool: asyncpg.Pool | None = None
        self._owners: set[str] = set()
        self._live_conn: asyncpg.Connection | None = None
        self._live_task: asyncio.Task[None] | None = None
        self._live = asyncio.Event()
        self.retries = 0
        """Operations run again after a lost connection (for tests and metrics)."""
        self.group_commit = group_commit
        self._writers_n = max(1, writers)
        self._queue: list[_GroupOp] = []
        self._queued = asyncio.Event()
        self._writers: list[asyncio.Task[None]] = []
        self._closing = False
        self.groups = 0
        self.grouped_ops = 0

    @property
    def schema(self) -> str:
        return self.target.schema

    # -- lifecycle -----------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        conn = await self._retry_connect("mở")
        try:
            if self.migrate:
                await migrate_schema(conn, self.schema)
            found = await schema_state(conn, self.schema)
            check_version(found, POSTGRES, f"PostgreSQL schema {self.schema}")
            if found == 0:
                raise SchemaMissing(
                    f"Schema PostgreSQL {self.schema} chưa được tạo: hãy chạy 'docexchange db migrate'",
                    f"PostgreSQL schema {self.schema} does not exist yet: run 'docexchange db migrate'",
                )
        except TRANSIENT_ERRORS as exc:
            raise _wrap(exc, "migrate") from exc
        except asyncpg.PostgresError as exc:
            raise _wrap(exc, "migrate") from exc
        finally:
            await conn.close()
        try:
            self._pool = await asyncpg.create_pool(
                self.target.dsn, min_size=min(self.pool_min, self.pool_max), max_size=self.pool_max,
                command_timeout=self.command_timeout, init=_init_connection, reset=_keep_session,
                server_settings={"search_path": f'"{self.schema}"', "application_name": self.application[:63]},
            )
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise _wrap(exc, "pool") from exc
        await self._take_liveness()
        self._live_task = asyncio.create_task(self._keep_liveness(), name=f"pg-liveness-{self.node_id}")

    async def close(self) -> None:
        writers, self._writers = self._writers, []
        if writers:
            self._closing = True  # the writers commit what is queued, then stop
            self._queued.set()
            _done, pending = await asyncio.wait(writers, timeout=30)
            for w in pending:
                w.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
        for op in self._queue:
            if not op.future.done():
                op.future.set_exception(StoreError("Kho dữ liệu đã đóng", "store is closed"))
        self._queue.clear()
        if self._live_task is not None:
            self._live_task.cancel()
            try:
                await self._live_task
            except (asyncio.CancelledError, Exception):
                log.debug("liveness task ended", exc_info=True)
            self._live_task = None
        if self._live_conn is not None:
            try:
                await asyncio.wait_for(self._live_conn.close(), 5)
            except (*TRANSIENT_ERRORS, asyncpg.PostgresError):
                self._live_conn.terminate()
            self._live_conn = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (*TRANSIENT_ERRORS, asyncpg.PostgresError):
                pool.terminate()

    async def schema_version(self) -> int:
        return await self._read(lambda c: schema_state(c, self.schema))

    async def _retry_connect(self, what: str) -> asyncpg.Connection:
        deadline = time.monotonic() + self.reconnect_seconds
        delay = 0.05
        while True:
            try:
                return await connect_target(self.target, self.application)
            except TRANSIENT_ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    raise _wrap(exc, what) from exc
                log.warning("%s: cannot connect to %s (%s); retrying", self.node_id, self.target.display, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except asyncpg.PostgresError as exc:
                raise _wrap(exc, what) from exc

    # -- liveness ------------------------------------------------------------------------------
    async def _take_liveness(self) -> None:
        """Hold this store's advisory lock on its own connection (the lock goes when the process does)."""
        conn = await self._retry_connect("liveness")
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", self._ns, self._lock_key)
        except BaseException:
            conn.terminate()
            raise
        if not got:  # a session of ours that PostgreSQL has not reaped yet: take a fresh key
            conn.terminate()
            self._lock_key = secrets.randbelow(0x7FFFFFFE) + 1
            self._owners.clear()
            raise StoreError("Khóa hoạt động bị chiếm", "liveness lock is held by another session")
        self._live_conn = conn
        self._live.set()

    async def _keep_liveness(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            conn = self._live_conn
            try:
                if conn is None or conn.is_closed():
                    raise ConnectionError("liveness connection lost")
                await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._live.clear()
                log.warning("%s: liveness connection lost (%s); our leases may be taken over", self.node_id, exc)
                if conn is not None:
                    conn.terminate()
                self._live_conn = None
                # Our owners are now seen as dead by other workers; register them afresh with the new key.
                self._owners.clear()
                try:
                    await self._take_liveness()
                except asyncio.CancelledError:
                    raise
                except Exception as exc2:
                    log.warning("%s: liveness lock not yet back (%s)", self.node_id, exc2)

    async def _ensure_owner(self, owner: str) -> None:
        """Record which liveness lock stands for ``owner`` (once per owner and lock), before it claims."""
        if owner in self._owners:
            return

        async def fn(c: asyncpg.Connection) -> None:
            await c.execute(
                """INSERT INTO lease_owners (owner, lock_key, host, pid) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (owner) DO UPDATE SET lock_key = EXCLUDED.lock_key, host = EXCLUDED.host,
                   pid = EXCLUDED.pid, registered_at = now()""",
                owner, self._lock_key, socket.gethostname()[:200], os.getpid(),
            )

        await self._attempts("đăng ký tiến trình", fn)
        self._owners.add(owner)

    # -- plumbing ------------------------------------------------------------------------------
    async def _attempts(self, what: str, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StoreError("Kho dữ liệu chưa mở", "store is not open")
        deadline = time.monotonic() + self.reconnect_seconds
        delay = 0.02
        while True:
            pool = self._pool
            if pool is None:
                raise StoreError("Kho dữ liệu đã đóng", "store is closed")
            try:
                conn = await pool.acquire()
                try:
                    return await fn(conn)
                except BaseException as exc:
                    if isinstance(exc, TRANSIENT_ERRORS):
                        conn.terminate()  # never hand a connection in an unknown state back to the pool
                    raise
                finally:
                    await pool.release(conn)
            except TRANSIENT_ERRORS as exc:
                if time.monotonic() + delay > deadline:
                    raise _wrap(exc, what) from exc
                self.retries += 1
                log.warning("%s: PostgreSQL %s failed (%s: %s); retrying in %.2fs",
                            self.node_id, what, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(delay * 2, 2.0)
            except asyncpg.PostgresError as exc:
                raise _wrap(exc, what) from exc

    async def _read(self, fn: Callable[[asyncpg.Connection], Awaitable[T]], what: str = "đọc") -> T:
        return await self._attempts(what, fn)

    async def _write(self, fn: Callable[[_Tx], Awaitable[T]], what: str = "ghi") -> T:
        """Run ``fn`` in a transaction (with the receipts it asked for signed inside it); with group commit,
        together with the other writes waiting at that moment."""
        if not self.group_commit:
            return await self._write_one(fn, what)
        if self._pool is None:
            raise StoreError("Kho dữ liệu chưa mở", "store is not open")
        if not self._writers:
            self._writers = [asyncio.create_task(self._writer(), name=f"pg-writer-{self.node_id}-{i}")
                             for i in range(self._writers_n)]
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_GroupOp(fn, fut, what))
        self._queued.set()
        return await fut

    async def _write_one(self, fn: Callable[[_Tx], Awaitable[T]], what: str) -> T:
        async def run(conn: asyncpg.Connection) -> T:
            tx = _Tx(conn)
            async with conn.transaction():
                result = await fn(tx)
                await self._sign(tx)
            return result

        return await self._attempts(what, run)

    async def _writer(self) -> None:
        """Group commit: take every write waiting, run them in one transaction, sign their receipts once."""
        while True:
            await self._queued.wait()
            if not self._queue:
                if self._closing:
                    return
                self._queued.clear()
                continue
            batch, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            if not self._queue:
                self._queued.clear()
            try:
                await self._run_group(batch)
            except asyncio.CancelledError:
                for op in batch:
                    if not op.future.done():
                        op.future.set_exception(StoreError("Kho dữ liệu đã đóng", "store is closed"))
                raise
            except Exception:  # a writer must not die: the operations get the error, the next group runs
                log.exception("%s: group commit failed", self.node_id)

    async def _run_group(self, batch: list[_GroupOp]) -> None:
        if len(batch) == 1:
            await self._run_alone(batch[0])
            return

        async def run(conn: asyncpg.Connection) -> list[Any]:
            tx = _Tx(conn)
            results: list[Any] = []
            async with conn.transaction():
                for op in batch:
                    try:
                        results.append(await op.fn(tx))
                    except TRANSIENT_ERRORS:
                        raise
                    except Exception as exc:
                        raise _OneFailed from exc
                await self._sign(tx)
            return results

        try:
            results = await self._attempts(batch[0].what, run)
        except _OneFailed:
            # One operation failed on its own terms (a refused transition, a constraint): nothing of the group
            # was committed; run each alone so that only that one fails.
            for op in batch:
                await self._run_alone(op)
            return
        except Exception as exc:
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(exc)
            return
        self.groups += 1
        self.grouped_ops += len(batch)
        for op, res in zip(batch, results, strict=True):
            if not op.future.done():
                op.future.set_result(res)

    async def _run_alone(self, op: _GroupOp) -> None:
        try:
            res = await self._write_one(op.fn, op.what)
        except Exception as exc:
            if not op.future.done():
                op.future.set_exception(exc)
        else:
            self.groups += 1
            self.grouped_ops += 1
            if not op.future.done():
                op.future.set_result(res)

    async def _sign(self, tx: _Tx) -> None:
        if not tx.leaves:
            return
        at = self._clock()
        if self.signer is None:
            receipts: list[dict[str, Any]] = [
                {"v": 0, "node": self.node_id, "stored_at": at.isoformat(), "delivery_id": d, "digest": s,
                 "received_digest": r, "unsigned": True}
                for d, r, s, _sink in tx.leaves
            ]
        else:
            receipts = self.signer([(d, r, s) for d, r, s, _sink in tx.leaves], at)
        rows = []
        for (d, _r, s, sink), receipt in zip(tx.leaves, receipts, strict=True):
            sink.update(receipt)
            rows.append((d, self.node_id, "stored", at, s, receipt, ""))
        await tx.conn.executemany(
            """INSERT INTO trail (delivery_id, node, event, at, digest, receipt, detail)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
            rows,
        )

    # -- ingest --------------------------------------------------------------------------------
    async def ingest(self, items: Sequence[Ingest], at: datetime) -> list[IngestOutcome]:
        return await self.apply((), items, at)

    async def apply(self, effects: Sequence[Effect], ingests: Sequence[Ingest], at: datetime) -> list[IngestOutcome]:
        async def fn(tx: _Tx) -> list[_PendingIngest]:
            for e in effects:
                await self._effect(tx, e, at)
            return [await self._ingest(tx, item, at) for item in ingests]

        pending = await self._write(fn, "lưu gói tin")
        return [p.outcome() for p in pending]

    async def _ingest(self, tx: _Tx, item: Ingest, at: datetime) -> _PendingIngest:
        c = tx.conn
        m = item.message
        # One round trip: the message and, when it is new here, its packet (touching an existing payload row
        # with the same bytes locks it against housekeeping's sweep).
        row = await c.fetchrow(
            """WITH ins AS (
                   INSERT INTO messages (message_id, kind, sender, document_id, priority, business_type, status_code,
                       digest, received_digest, size, origin_node, received_from, meta, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                   ON CONFLICT (message_id) DO NOTHING RETURNING digest
               ), pay AS (
                   INSERT INTO payloads (digest, data, created_at)
                   SELECT $8::text, $15::bytea, $14::timestamptz WHERE EXISTS (SELECT 1 FROM ins)
                   ON CONFLICT (digest)
                   DO UPDATE SET created_at = GREATEST(payloads.created_at, EXCLUDED.created_at)
               )
               SELECT (SELECT digest FROM ins) AS new, (SELECT digest FROM messages WHERE message_id = $1) AS old""",
            m.message_id, m.kind.value, m.sender, m.document_id, m.priority, m.business_type, m.status_code,
            m.digest, m.received_digest, len(m.payload), m.origin_node, m.received_from, dict(m.meta), at,
            m.payload,
        )
        inserted = row["new"]
        if inserted is not None:
            stored_digest = str(inserted)
        elif row["old"] is not None:
            stored_digest = str(row["old"])
        else:  # stored by a transaction that committed while this statement ran: a fresh snapshot sees it
            stored_digest = str(await c.fetchval("SELECT digest FROM messages WHERE message_id = $1", m.message_id))
        pend = _PendingIngest(m.message_id, stored_digest)
        any_new = False
        original: str | None = None
        rank = priority_rank(m.priority)
        for d in item.deliveries:
            did = delivery_id_for(m.message_id, d.recipient)
            local = d.next_hop is None
            state = DeliveryState.DELIVERED if local else DeliveryState.QUEUED
            trail = list(item.trail.get(did, ()))
            if not item.receipt:
                trail.append(TrailEntry(self.node_id, "stored", at, stored_digest))
            if local:
                trail.append(TrailEntry(self.node_id, "delivered", at, stored_digest))
            # One round trip: the delivery and, when it is new here, its trail and its verification job.
            seq = await c.fetchval(
                """WITH d AS (
                       INSERT INTO deliveries (delivery_id, message_id, recipient, kind, sender, document_id, priority,
                           rank, next_hop, state, created_at, updated_at, delivered_at, idem_key)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13)
                       ON CONFLICT DO NOTHING RETURNING seq
                   ), t AS (
                       INSERT INTO trail (delivery_id, node, event, at, digest, receipt, detail)
                       SELECT $1, x.node, x.event, x.at, x.digest, x.receipt, x.detail
                       FROM unnest($14::text[], $15::text[], $16::timestamptz[], $17::text[], $18::jsonb[],
                                   $19::text[]) WITH ORDINALITY AS x(node, event, at, digest, receipt, detail, n)
                       WHERE EXISTS (SELECT 1 FROM d) ORDER BY x.n
                       ON CONFLICT DO NOTHING
                   ), v AS (
                       INSERT INTO verifications (message_id, state, rank, created_at)
                       SELECT $2, 'pending', $8, $11 WHERE $20::boolean AND EXISTS (SELECT 1 FROM d)
                       ON CONFLICT DO NOTHING
                   )
                   SELECT seq FROM d""",
                did, m.message_id, d.recipient, m.kind.value, m.sender, m.document_id, m.priority, rank,
                d.next_hop, state.value, at, at if local else None, d.idem_key,
                [e.node for e in trail], [e.event for e in trail], [e.at for e in trail], [e.digest for e in trail],
                [e.receipt for e in trail], [e.detail for e in trail], bool(local and d.verify),
            )
            if seq is not None:
                any_new = True
                sink: dict[str, Any] = {}
                if item.receipt:
                    tx.want_receipt(did, m.received_digest, stored_digest, sink)
                pend.items.append(_PendingDelivery(did, d.recipient, False, state, sink))
                for f in d.followups:
                    pend.followups.append(await self._ingest(tx, f, at))
            else:
                row = await c.fetchrow(
                    "SELECT state, delivery_id, message_id FROM deliveries WHERE delivery_id = $1", did
                )
                if row is None and d.idem_key is not None:
                    row = await c.fetchrow(
                        "SELECT state, delivery_id, message_id FROM deliveries WHERE idem_key = $1", d.idem_key
                    )
                if row is None:  # pragma: no cover - a conflict implies one of the two keys exists
                    raise StoreError("Xung đột khóa không xác định", f"unexplained conflict storing {did}")
                did = row["delivery_id"]
                original = row["message_id"]
                rec = await c.fetchval(
                    """SELECT receipt FROM trail WHERE delivery_id = $1 AND node = $2 AND event = 'stored'
                       AND receipt IS NOT NULL ORDER BY id LIMIT 1""",
                    did, self.node_id,
                )
                receipt = dict(rec) if rec is not None else tx.sinks.get(did)
                pend.items.append(_PendingDelivery(did, d.recipient, True, DeliveryState(row["state"]), receipt))
        if any_new:
            for e in item.effects:
                await self._effect(tx, e, at)
        elif not await c.fetchval("SELECT 1 FROM deliveries WHERE message_id = $1 LIMIT 1", m.message_id):
            # Every delivery duplicated an earlier message (same idempotency key): keep no orphan.
            await c.execute("DELETE FROM messages WHERE message_id = $1", m.message_id)
            if original is not None:
                pend.message_id = original
                pend.digest = str(await c.fetchval("SELECT digest FROM messages WHERE message_id = $1", original))
        return pend

    @staticmethod
    async def _add_trail(c: asyncpg.Connection, delivery_id: str, e: TrailEntry) -> None:
        await c.execute(
            """INSERT INTO trail (delivery_id, node, event, at, digest, receipt, detail)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
            delivery_id, e.node, e.event, e.at, e.digest, e.receipt, e.detail,
        )

    @staticmethod
    async def _add_trails(c: asyncpg.Connection, delivery_id: str, entries: Iterable[TrailEntry]) -> None:
        rows = [(delivery_id, e.node, e.event, e.at, e.digest, e.receipt, e.detail) for e in entries]
        if rows:
            await c.executemany(
                """INSERT INTO trail (delivery_id, node, event, at, digest, receipt, detail)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
                rows,
            )

    async def _move(self, c: asyncpg.Connection, delivery_id: str, new: DeliveryState, at: datetime,
                    extra: str = "", params: Sequence[Any] = (), trail: Sequence[TrailEntry] = ()) -> bool:
        """Move one delivery if the machine allows it from the state it is in *now* (one atomic UPDATE), and
        add ``trail`` to its trail in the same statement."""
        n = len(params)
        args: list[Any] = [new.value, at, *params, delivery_id, _olds_for(new)]
        prefix = ""
        if trail:
            k = len(args)
            prefix = f"""WITH t AS (
                INSERT INTO trail (delivery_id, node, event, at, digest, receipt, detail)
                SELECT ${n + 3}, x.node, x.event, x.at, x.digest, x.receipt, x.detail
                FROM unnest(${k + 1}::text[], ${k + 2}::text[], ${k + 3}::timestamptz[], ${k + 4}::text[],
                            ${k + 5}::jsonb[], ${k + 6}::text[]) WITH ORDINALITY AS x(node, event, at, digest,
                            receipt, detail, n)
                ORDER BY x.n ON CONFLICT DO NOTHING) """  # noqa: S608 - numbered placeholders only
            args += [[e.node for e in trail], [e.event for e in trail], [e.at for e in trail],
                     [e.digest for e in trail], [e.receipt for e in trail], [e.detail for e in trail]]
        sql = f"""{prefix}UPDATE deliveries SET state = $1, updated_at = $2, lease_owner = NULL, lease_until = NULL
                  {extra} WHERE delivery_id = ${n + 3} AND state = ANY(${n + 4}::text[]) RETURNING 1"""  # noqa: S608
        return await c.fetchval(sql, *args) is not None

    async def _effect(self, tx: _Tx, e: Effect, at: datetime) -> None:
        c = tx.conn
        if isinstance(e, ReportEffect):
            ev = e.event
            when = max((t.at for t in ev.trail if t.event == ev.state.value), default=at)
            if ev.state == DeliveryState.DELIVERED:
                await self._move(c, ev.delivery_id, ev.state, at, ", delivered_at = $3", (when,), ev.trail)
            elif ev.state == DeliveryState.ACKNOWLEDGED:
                await self._move(c, ev.delivery_id, ev.state, at,
                                 ", acknowledged_at = $3, delivered_at = COALESCE(delivered_at, $4)", (when, when),
                                 ev.trail)
            elif ev.state == DeliveryState.DEAD:
                await self._move(c, ev.delivery_id, ev.state, at, ", last_error = $3", (ev.reason,), ev.trail)
            else:
                await self._move(c, ev.delivery_id, ev.state, at, trail=ev.trail)
        elif isinstance(e, StatusEffect):
            # One round trip: lock the matching deliveries, extend their trail, record the newest status.
            rows = await c.fetch(
                """WITH r AS (
                       SELECT delivery_id, seq, recipient_status_at, recall FROM deliveries
                       WHERE document_id = $1 AND sender = $2 AND recipient = $3 AND kind = 'document'
                       ORDER BY seq FOR UPDATE
                   ), t AS (
                       INSERT INTO trail (delivery_id, node, event, at)
                       SELECT delivery_id, $4, $5, $6 FROM r ORDER BY seq ON CONFLICT DO NOTHING
                   ), u AS (
                       UPDATE deliveries d SET recipient_status = $7, recipient_status_at = $6, updated_at = $8
                       FROM r WHERE d.delivery_id = r.delivery_id
                       AND (r.recipient_status_at IS NULL OR r.recipient_status_at <= $6)
                   )
                   SELECT delivery_id, recall FROM r ORDER BY seq""",
                e.document_id, e.doc_sender, e.doc_recipient, self.node_id, f"status:{e.code}", e.at, e.code, at,
            )
            for r in rows:
                did = r["delivery_id"]
                # 15/16 answer a pending request only: a new version with the same DocumentId is not touched.
                if r["recall"] != RecallState.REQUESTED.value:
                    continue
                if e.code == "15":
                    await self._withdraw(c, did, at, "recall agreed (15)", e.at)
                elif e.code == "16":
                    await c.execute(
                        "UPDATE deliveries SET recall = 'refused', updated_at = $1 WHERE delivery_id = $2", at, did
                    )
        elif isinstance(e, RecallRequestEffect):
            rows = await c.fetch(
                """UPDATE deliveries SET recall = 'requested', recall_request = $1, recall_by = $2, updated_at = $3
                   WHERE document_id = $4 AND sender = $5 AND recipient = $6 AND kind = 'document'
                   AND NOT withdrawn AND message_id <> $2 RETURNING delivery_id""",
                e.request, e.by_message, at, e.document_id, e.doc_sender, e.doc_recipient,
            )
            for r in rows:
                await self._add_trail(c, r["delivery_id"],
                                      TrailEntry(self.node_id, "recall_requested", e.at, detail=e.request))
        elif isinstance(e, WithdrawEffect):
            for did in e.delivery_ids:
                await self._withdraw(c, did, at, e.reason, e.at)
        else:  # pragma: no cover - exhaustive
            raise TypeError(f"unknown effect {e!r}")

    async def _withdraw(self, c: asyncpg.Connection, did: str, now: datetime, reason: str, at: datetime) -> None:
        """Take a delivery out of the inbox; its transport state becomes ``recalled`` where the machine allows
        (not once acknowledged, nor while a worker holds it in flight)."""
        found = await c.fetchval(
            """UPDATE deliveries SET
                   state = CASE WHEN state = ANY($3::text[]) THEN 'recalled' ELSE state END,
                   lease_owner = CASE WHEN state = ANY($3::text[]) THEN NULL ELSE lease_owner END,
                   lease_until = CASE WHEN state = ANY($3::text[]) THEN NULL ELSE lease_until END,
                   withdrawn = true, recall = CASE WHEN recall IS NULL THEN NULL ELSE 'agreed' END, updated_at = $2
               WHERE delivery_id = $1 RETURNING 1""",
            did, now, _RECALLABLE,
        )
        if found is not None:
            await self._add_trail(c, did, TrailEntry(self.node_id, "recalled", at, detail=reason))

    # -- forwarding ----------------------------------------------------------------------------
    async def claim(self, destination: str, limit: int, max_bytes: int, owner: str, now: datetime,
                    lease_until: datetime) -> list[Claimed]:
        await self._ensure_owner(owner)

        async def fn(c: asyncpg.Connection) -> list[Claimed]:
            # One statement (its own transaction, outside the group commit: an idle lane's claim costs one round
            # trip): lock the highest-priority due deliveries nobody else is touching (queued, or
            # retries whose backoff elapsed), keep the longest prefix within the byte cap (the first always
            # goes), lease them, and return them with their messages.
            rows = await c.fetch(
                f"""WITH c AS (
                        SELECT d.seq, d.rank, m.size FROM deliveries d JOIN messages m ON m.message_id = d.message_id
                        WHERE d.next_hop = $1
                        AND (d.state = 'queued' OR (d.state = 'retry_wait' AND d.next_attempt_at <= $3))
                        ORDER BY d.rank DESC, d.seq LIMIT $2 FOR UPDATE OF d SKIP LOCKED
                    ), r AS (
                        SELECT seq, SUM(size) OVER w AS running, ROW_NUMBER() OVER w AS n FROM c
                        WINDOW w AS (ORDER BY rank DESC, seq)
                    ), u AS (
                        UPDATE deliveries d SET state = 'in_flight', lease_owner = $4, lease_until = $5,
                            attempts = d.attempts + 1, first_attempt_at = COALESCE(d.first_attempt_at, $3),
                            updated_at = $3
                        FROM r WHERE d.seq = r.seq AND (r.n = 1 OR r.running <= $6::bigint)
                        RETURNING d.*
                    )
                    SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS}
                    FROM u AS d JOIN messages m ON m.message_id = d.message_id
                    LEFT JOIN verifications v ON v.message_id = d.message_id
                    ORDER BY d.rank DESC, d.seq""",  # noqa: S608 - constant column lists
                destination, max(1, limit), now, owner, lease_until, max_bytes,
            )
            return [Claimed(_delivery(r), _message(r)) for r in rows]

        return await self._attempts("nhận việc", fn)

    async def payloads(self, digests: Sequence[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(digests))
        if not wanted:
            return {}

        async def fn(c: asyncpg.Connection) -> dict[str, bytes]:
            rows = await c.fetch("SELECT digest, data FROM payloads WHERE digest = ANY($1::text[])", wanted)
            return {r["digest"]: bytes(r["data"]) for r in rows}

        return await self._read(fn, "đọc gói tin")

    async def settle(self, outcomes: Sequence[Settle], owner: str, at: datetime,
                     followups: Sequence[Ingest] = ()) -> None:
        forwarded = [o for o in outcomes if isinstance(o, Forwarded)]
        retries = [o for o in outcomes if isinstance(o, RetryLater)]
        deads = [o for o in outcomes if isinstance(o, Dead)]
        requeues = [o for o in outcomes if isinstance(o, Requeue)]

        async def fn(tx: _Tx) -> None:
            c = tx.conn
            if forwarded:
                # A receipt is proof the next node has it: it applies whoever holds the lease now.
                rows = []
                for o in forwarded:
                    r = o.receipt
                    stored_at = datetime.fromisoformat(str(r.get("stored_at"))) if r.get("stored_at") else o.at
                    rows.append((o.delivery_id, str(r.get("node", "")), stored_at, str(r.get("digest", "")), dict(r)))
                await c.execute(
                    """WITH u AS (
                           UPDATE deliveries SET state = 'forwarded', lease_owner = NULL, lease_until = NULL,
                           next_attempt_at = NULL, last_error = '', updated_at = $1
                           WHERE delivery_id = ANY($2::text[])
                           AND state IN ('in_flight', 'queued', 'retry_wait', 'dead')
                       )
                       INSERT INTO trail (delivery_id, node, event, at, digest, receipt, detail)
                       SELECT x.id, x.node, 'stored', x.at, x.digest, x.receipt, ''
                       FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::jsonb[])
                            WITH ORDINALITY AS x(id, node, at, digest, receipt, n)
                       ORDER BY x.n ON CONFLICT DO NOTHING""",
                    at, [x[0] for x in rows], [x[1] for x in rows], [x[2] for x in rows], [x[3] for x in rows],
                    [x[4] for x in rows],
                )
            if retries:
                await c.execute(
                    """UPDATE deliveries d SET state = 'retry_wait', next_attempt_at = u.retry_at,
                       last_error = left(u.error, 2000), lease_owner = NULL, lease_until = NULL, updated_at = $4
                       FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(id, retry_at, error)
                       WHERE d.delivery_id = u.id AND d.state = 'in_flight' AND d.lease_owner = $5""",
                    [o.delivery_id for o in retries], [o.retry_at for o in retries], [o.error for o in retries],
                    at, owner,
                )
            if deads:
                done = await c.fetch(
                    """UPDATE deliveries d SET state = 'dead', last_error = left(u.reason, 2000), lease_owner = NULL,
                       lease_until = NULL, next_attempt_at = NULL, updated_at = $3
                       FROM unnest($1::text[], $2::text[]) AS u(id, reason)
                       WHERE d.delivery_id = u.id AND d.state = 'in_flight' AND d.lease_owner = $4
                       RETURNING d.delivery_id""",
                    [o.delivery_id for o in deads], [o.reason for o in deads], at, owner,
                )
                moved = {r["delivery_id"] for r in done}
                for dead in deads:
                    if dead.delivery_id in moved:
                        await self._add_trail(c, dead.delivery_id,
                                              TrailEntry(self.node_id, "dead", dead.at, detail=dead.reason))
            if requeues:
                await c.execute(
                    """UPDATE deliveries SET state = 'queued', attempts = GREATEST(attempts - 1, 0),
                       lease_owner = NULL, lease_until = NULL, updated_at = $1
                       WHERE delivery_id = ANY($2::text[]) AND state = 'in_flight' AND lease_owner = $3""",
                    at, [o.delivery_id for o in requeues], owner,
                )
            for f in followups:
                await self._ingest(tx, f, at)

        await self._write(fn, "ghi kết quả gửi")

    async def _dead_owners(self, c: asyncpg.Connection) -> list[str]:
        """Owners whose process no longer holds its liveness lock (died, or lost its connection)."""
        rows = await c.fetch(
            """SELECT o.owner FROM lease_owners o
               WHERE NOT EXISTS (
                   SELECT 1 FROM pg_locks l
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND l.classid = ($1::int4)::oid AND l.objid = (o.lock_key)::oid)""",
            self._ns,
        )
        return [r["owner"] for r in rows]

    async def recover_leases(self, now: datetime, *, all_owners_except: str | None = None) -> int:
        """Return to the queue the leases that expired and those of owners that died. Several workers share
        this store, so ``all_owners_except`` does not take live workers' leases: it only keeps the caller's
        own (the leases of every *dead* owner are recovered in any case)."""

        async def fn(tx: _Tx) -> int:
            c = tx.conn
            dead = await self._dead_owners(c)
            keep = all_owners_except or ""
            rows = await c.fetch(
                """UPDATE deliveries SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = $1
                   WHERE seq IN (SELECT seq FROM deliveries WHERE state = 'in_flight' AND lease_owner <> $3
                                 AND (lease_until < $1 OR lease_owner = ANY($2::text[]))
                                 FOR UPDATE SKIP LOCKED)
                   RETURNING 1""",
                now, dead, keep,
            )
            await c.execute(
                """UPDATE verifications SET state = 'pending', lease_owner = NULL, lease_until = NULL
                   WHERE message_id IN (SELECT message_id FROM verifications WHERE state = 'running'
                                        AND lease_owner <> $3 AND (lease_until < $1 OR lease_owner = ANY($2::text[]))
                                        FOR UPDATE SKIP LOCKED)""",
                now, dead, keep,
            )
            return len(rows)

        return await self._write(fn, "thu hồi hợp đồng thuê")

    async def due_destinations(self, now: datetime) -> dict[str, int]:
        async def fn(c: asyncpg.Connection) -> dict[str, int]:
            rows = await c.fetch(
                """SELECT next_hop, COUNT(*) AS n FROM deliveries
                   WHERE next_hop IS NOT NULL
                   AND (state = 'queued' OR (state = 'retry_wait' AND next_attempt_at <= $1))
                   GROUP BY next_hop""",
                now,
            )
            return {r["next_hop"]: int(r["n"]) for r in rows}

        return await self._read(fn)

    async def next_due(self, destination: str) -> datetime | None:
        async def fn(c: asyncpg.Connection) -> datetime | None:
            value: datetime | None = await c.fetchval(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'retry_wait' AND next_hop = $1",
                destination,
            )
            return value

        return await self._read(fn)

    async def reports_trail(self, delivery_ids: Sequence[str]) -> dict[str, list[TrailEntry]]:
        ids = list(dict.fromkeys(delivery_ids))
        if not ids:
            return {}

        async def fn(c: asyncpg.Connection) -> dict[str, list[TrailEntry]]:
            out: dict[str, list[TrailEntry]] = {i: [] for i in ids}
            rows = await c.fetch(
                "SELECT * FROM trail WHERE delivery_id = ANY($1::text[]) ORDER BY at, id", ids
            )
            for row in rows:
                out[row["delivery_id"]].append(_trail_entry(row))
            return out

        return await self._read(fn)

    # -- verification --------------------------------------------------------------------------
    async def claim_verifications(self, limit: int, owner: str, now: datetime,
                                  lease_until: datetime) -> list[VerificationJob]:
        await self._ensure_owner(owner)

        async def fn(c: asyncpg.Connection) -> list[VerificationJob]:
            rows = await c.fetch(
                """WITH picked AS (
                       SELECT message_id FROM verifications WHERE state = 'pending'
                       ORDER BY rank DESC, created_at LIMIT $1 FOR UPDATE SKIP LOCKED
                   ), u AS (
                       UPDATE verifications v SET state = 'running', lease_owner = $2, lease_until = $3,
                           attempts = v.attempts + 1
                       FROM picked WHERE v.message_id = picked.message_id
                       RETURNING v.message_id, v.attempts, v.rank, v.created_at
                   )
                   SELECT u.message_id, u.attempts, m.sender, m.document_id, m.digest, m.priority, m.meta,
                       COALESCE((SELECT array_agg(d.recipient ORDER BY d.seq) FROM deliveries d
                                 WHERE d.message_id = u.message_id AND d.next_hop IS NULL), '{}') AS recipients
                   FROM u JOIN messages m ON m.message_id = u.message_id
                   ORDER BY u.rank DESC, u.created_at""",
                max(1, limit), owner, lease_until,
            )
            return [VerificationJob(r["message_id"], r["sender"], r["document_id"], r["digest"], r["priority"],
                                    r["attempts"], tuple(r["recipients"]), r["meta"]) for r in rows]

        del now
        return await self._attempts("nhận việc kiểm tra", fn)

    async def finish_verification(self, result: VerificationResult, owner: str) -> None:
        async def fn(tx: _Tx) -> None:
            c = tx.conn
            done = await c.fetchval(
                """UPDATE verifications SET state = $1, report = $2, verified_at = $3, lease_owner = NULL,
                   lease_until = NULL WHERE message_id = $4 AND state = 'running' AND lease_owner = $5 RETURNING 1""",
                result.result.value, dict(result.report), result.at, result.message_id, owner,
            )
            if done is None:
                return
            dids = await c.fetch(
                "SELECT delivery_id FROM deliveries WHERE message_id = $1 AND next_hop IS NULL ORDER BY seq",
                result.message_id,
            )
            for r in dids:
                await self._add_trail(c, r["delivery_id"], TrailEntry(self.node_id, "verified", result.at,
                                                                      detail=result.result.value))
            for f in result.followups:
                await self._ingest(tx, f, result.at)

        await self._write(fn, "ghi kết quả kiểm tra")

    async def verification(self, message_id: str) -> tuple[Verification, Mapping[str, Any] | None]:
        async def fn(c: asyncpg.Connection) -> tuple[Verification, Mapping[str, Any] | None]:
            row = await c.fetchrow("SELECT state, report FROM verifications WHERE message_id = $1", message_id)
            if row is None:
                return Verification.SKIPPED, None
            state = row["state"] if row["state"] in Verification._value2member_map_ else "pending"
            return Verification(state), row["report"]

        return await self._read(fn)

    # -- mailboxes -----------------------------------------------------------------------------
    async def delivery(self, delivery_id: str) -> Delivery | None:
        async def fn(c: asyncpg.Connection) -> Delivery | None:
            row = await c.fetchrow(
                f"SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} {_JOINS} WHERE d.delivery_id = $1",
                delivery_id,
            )
            return _delivery(row, with_message=True) if row else None

        return await self._read(fn)

    async def deliveries_of(self, message_id: str) -> list[Delivery]:
        async def fn(c: asyncpg.Connection) -> list[Delivery]:
            rows = await c.fetch(
                f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} {_JOINS}
                    WHERE d.message_id = $1 ORDER BY d.seq""",
                message_id,
            )
            return [_delivery(r, with_message=True) for r in rows]

        return await self._read(fn)

    async def find_deliveries(self, *, sender: str, document_id: str, recipients: Sequence[str] = (),
                              kind: MessageKind = MessageKind.DOCUMENT) -> list[Delivery]:
        async def fn(c: asyncpg.Connection) -> list[Delivery]:
            rows = await c.fetch(
                f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} {_JOINS}
                    WHERE d.document_id = $1 AND d.sender = $2 AND d.kind = $3
                    AND (cardinality($4::text[]) = 0 OR d.recipient = ANY($4::text[]))
                    ORDER BY d.seq""",
                document_id, sender, kind.value, list(recipients),
            )
            return [_delivery(r, with_message=True) for r in rows]

        return await self._read(fn)

    async def inbox(self, query: InboxQuery) -> Page:
        if not query.recipients:
            return Page((), None)
        cur = _decode_cursor(query.cursor, 2)
        where = ["d.recipient = ANY($1::text[])", "d.next_hop IS NULL", "d.kind <> 'report'"]
        params: list[Any] = [list(query.recipients)]

        def p(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        states = query.states or (
            (DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED, DeliveryState.RECALLED)
            if query.include_withdrawn else (DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED)
        )
        where.append(f"d.state = ANY({p([s.value for s in states])}::text[])")
        if query.kind is not None:
            where.append(f"d.kind = {p(query.kind.value)}")
        if query.senders:
            where.append(f"d.sender = ANY({p(list(query.senders))}::text[])")
        if query.priorities:
            where.append(f"d.priority = ANY({p(list(query.priorities))}::int[])")
        if query.since is not None:
            where.append(f"d.delivered_at >= {p(query.since)}")
        if query.until is not None:
            where.append(f"d.delivered_at < {p(query.until)}")
        if query.unacknowledged:
            where.append("d.state = 'delivered'")
        if not query.include_withdrawn:
            where.append("NOT d.withdrawn")
        if query.document_id:
            where.append(f"d.document_id = {p(query.document_id)}")
        if cur is not None:
            rank, seq = p(cur[0]), p(cur[1])
            where.append(f"(d.rank < {rank} OR (d.rank = {rank} AND d.seq > {seq}))")
        limit = max(1, min(query.limit, MAX_PAGE))
        lim = p(limit + 1)
        sql = f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} {_JOINS}
                  WHERE {' AND '.join(where)} ORDER BY d.rank DESC, d.seq LIMIT {lim}"""

        async def fn(c: asyncpg.Connection) -> Page:
            rows = await c.fetch(sql, *params)
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = _encode_cursor(rows[-1]["rank"], rows[-1]["seq"]) if more and rows else None
            return Page(tuple(_delivery(r, with_message=True) for r in rows), nxt)

        return await self._read(fn)

    async def sent(self, query: SentQuery) -> Page:
        if not query.senders:
            return Page((), None)
        cur = _decode_cursor(query.cursor, 1)
        where = ["m.sender = ANY($1::text[])", "m.origin_node = $2"]
        params: list[Any] = [list(query.senders), self.node_id]

        def p(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if query.kind is not None:
            where.append(f"m.kind = {p(query.kind.value)}")
        else:
            where.append("m.kind <> 'report'")
        if query.document_id:
            where.append(f"m.document_id = {p(query.document_id)}")
        if query.since is not None:
            where.append(f"m.created_at >= {p(query.since)}")
        if query.until is not None:
            where.append(f"m.created_at < {p(query.until)}")
        if cur is not None:
            where.append(f"m.seq < {p(cur[0])}")
        limit = max(1, min(query.limit, MAX_PAGE))
        lim = p(limit + 1)
        sql = f"""SELECT m.seq AS rid, {_MESSAGE_COLS} FROM messages m
                  WHERE {' AND '.join(where)} ORDER BY m.seq DESC LIMIT {lim}"""  # noqa: S608

        async def fn(c: asyncpg.Connection) -> Page:
            rows = await c.fetch(sql, *params)
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = _encode_cursor(rows[-1]["rid"]) if more and rows else None
            return Page(tuple(_message(r) for r in rows), nxt)

        return await self._read(fn)

    async def mark_fetched(self, delivery_id: str, at: datetime) -> None:
        async def fn(tx: _Tx) -> None:
            await tx.conn.execute(
                "UPDATE deliveries SET fetched_at = COALESCE(fetched_at, $1) WHERE delivery_id = $2", at, delivery_id
            )

        await self._write(fn, "ghi đã tải")

    async def acknowledge(self, delivery_id: str, at: datetime, followups: Sequence[Ingest] = ()) -> Delivery:
        async def fn(tx: _Tx) -> None:
            c = tx.conn
            moved = await self._move(c, delivery_id, DeliveryState.ACKNOWLEDGED, at,
                                     ", acknowledged_at = $3, fetched_at = COALESCE(fetched_at, $3)", (at,))
            if moved:
                await self._add_trail(c, delivery_id, TrailEntry(self.node_id, "acknowledged", at))
                for f in followups:
                    await self._ingest(tx, f, at)

        await self._write(fn, "ghi đã nhận")
        d = await self.delivery(delivery_id)
        if d is None:
            raise StoreError("Không thấy lượt chuyển", f"delivery {delivery_id} vanished")
        return d

    async def trail(self, delivery_id: str) -> list[TrailEntry]:
        return (await self.reports_trail([delivery_id])).get(delivery_id, [])

    # -- operators -----------------------------------------------------------------------------
    async def queue(self, query: QueueQuery) -> Page:
        cur = _decode_cursor(query.cursor, 1)
        where = ["(cardinality($1::text[]) = 0 OR d.state = ANY($1::text[]))"]
        params: list[Any] = [[s.value for s in query.states]]
        if query.destination:
            params.append(query.destination)
            where.append(f"d.next_hop = ${len(params)}")
        if cur is not None:
            params.append(cur[0])
            where.append(f"d.seq > ${len(params)}")
        limit = max(1, min(query.limit, 1000))
        params.append(limit + 1)
        sql = f"""SELECT {_DELIVERY_COLS}, {_MESSAGE_COLS} {_JOINS}
                  WHERE {' AND '.join(where)} ORDER BY d.seq LIMIT ${len(params)}"""

        async def fn(c: asyncpg.Connection) -> Page:
            rows = await c.fetch(sql, *params)
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = _encode_cursor(rows[-1]["seq"]) if more and rows else None
            return Page(tuple(_delivery(r, with_message=True) for r in rows), nxt)

        return await self._read(fn)

    async def resend(self, delivery_id: str, at: datetime) -> Delivery:
        async def fn(tx: _Tx) -> None:
            c = tx.conn
            done = await c.fetchval(
                """UPDATE deliveries SET state = 'queued', attempts = 0, first_attempt_at = NULL,
                   next_attempt_at = NULL, last_error = '', updated_at = $1
                   WHERE delivery_id = $2 AND state = 'dead' RETURNING 1""",
                at, delivery_id,
            )
            if done is None:
                state = await c.fetchval("SELECT state FROM deliveries WHERE delivery_id = $1", delivery_id)
                if state is None:
                    raise StoreError(f"Không có lượt chuyển {delivery_id}", f"no delivery {delivery_id}")
                raise IllegalTransition(
                    "Chỉ gửi lại được thư không chuyển được (dead)", "only dead letters can be resent"
                )
            await self._add_trail(c, delivery_id, TrailEntry(self.node_id, "resent", at))

        await self._write(fn, "gửi lại")
        d = await self.delivery(delivery_id)
        if d is None:
            raise StoreError("Không thấy lượt chuyển", f"delivery {delivery_id} vanished")
        return d

    async def purge(self, delivery_id: str, at: datetime) -> None:
        async def fn(tx: _Tx) -> None:
            c = tx.conn
            message_id = await c.fetchval(
                "DELETE FROM deliveries WHERE delivery_id = $1 AND state = 'dead' RETURNING message_id", delivery_id
            )
            if message_id is None:
                state = await c.fetchval("SELECT state FROM deliveries WHERE delivery_id = $1", delivery_id)
                if state is None:
                    raise StoreError(f"Không có lượt chuyển {delivery_id}", f"no delivery {delivery_id}")
                raise IllegalTransition("Chỉ xóa được thư không chuyển được (dead)", "only dead letters can be purged")
            await self._add_trail(c, delivery_id, TrailEntry(self.node_id, "purged", at))
            left = await c.fetchval("SELECT 1 FROM deliveries WHERE message_id = $1 LIMIT 1", message_id)
            if left is None:
                await c.execute("DELETE FROM verifications WHERE message_id = $1", message_id)
                digest = await c.fetchval("DELETE FROM messages WHERE message_id = $1 RETURNING digest", message_id)
                await c.execute(
                    """DELETE FROM payloads p WHERE p.digest = $1
                       AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.digest = $1)""",
                    digest,
                )

        await self._write(fn, "xóa thư")

    async def counts(self) -> dict[str, dict[str, int]]:
        async def fn(c: asyncpg.Connection) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for r in await c.fetch(
                "SELECT COALESCE(next_hop, 'local') AS dest, state, COUNT(*) AS n FROM deliveries GROUP BY 1, 2"
            ):
                out.setdefault(r["dest"], {})[r["state"]] = int(r["n"])
            return out

        return await self._read(fn)

    # -- credentials ---------------------------------------------------------------------------
    async def put_credential(self, record: CredentialRecord) -> None:
        async def fn(tx: _Tx) -> None:
            await tx.conn.execute(
                """INSERT INTO credentials (system_id, role, agencies, secret_box, created_at, rotated_at,
                   revoked_at, label) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   ON CONFLICT (system_id) DO UPDATE SET role = EXCLUDED.role, agencies = EXCLUDED.agencies,
                   secret_box = EXCLUDED.secret_box, rotated_at = EXCLUDED.rotated_at,
                   revoked_at = EXCLUDED.revoked_at, label = EXCLUDED.label""",
                record.system_id, record.role, list(record.agencies), record.secret_box, record.created_at,
                record.rotated_at, record.revoked_at, record.label,
            )

        await self._write(fn, "ghi khóa truy cập")

    async def credential(self, system_id: str) -> CredentialRecord | None:
        async def fn(c: asyncpg.Connection) -> CredentialRecord | None:
            row = await c.fetchrow("SELECT * FROM credentials WHERE system_id = $1", system_id)
            return _credential(row) if row else None

        return await self._read(fn)

    async def credentials(self) -> list[CredentialRecord]:
        async def fn(c: asyncpg.Connection) -> list[CredentialRecord]:
            return [_credential(r) for r in await c.fetch("SELECT * FROM credentials ORDER BY system_id")]

        return await self._read(fn)

    async def remember_nonce(self, system_id: str, nonce: str, expires_at: datetime) -> bool:
        # The primary key decides, whichever worker the replay reaches (one statement, its own transaction).
        async def fn(c: asyncpg.Connection) -> bool:
            got = await c.fetchval(
                """INSERT INTO nonces (system_id, nonce, expires_at) VALUES ($1, $2, $3)
                   ON CONFLICT DO NOTHING RETURNING 1""",
                system_id, nonce, expires_at,
            )
            return got is not None

        return await self._attempts("ghi nonce", fn)

    # -- housekeeping --------------------------------------------------------------------------
    async def housekeeping(self, now: datetime) -> dict[str, int]:
        async def nonces(tx: _Tx) -> int:
            rows = await tx.conn.fetch("DELETE FROM nonces WHERE expires_at <= $1 RETURNING 1", now)
            return len(rows)

        async def payloads(tx: _Tx) -> int:
            rows = await tx.conn.fetch(
                """DELETE FROM payloads p WHERE p.created_at < $1
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.digest = p.digest) RETURNING 1""",
                now - PAYLOAD_GC_AGE,
            )
            return len(rows)

        async def owners(tx: _Tx) -> int:
            dead = await self._dead_owners(tx.conn)
            rows = await tx.conn.fetch(
                """DELETE FROM lease_owners o WHERE o.owner = ANY($1::text[]) AND NOT EXISTS (
                       SELECT 1 FROM deliveries d WHERE d.state = 'in_flight' AND d.lease_owner = o.owner)
                   AND NOT EXISTS (SELECT 1 FROM verifications v WHERE v.state = 'running'
                                   AND v.lease_owner = o.owner)
                   RETURNING 1""",
                dead,
            )
            return len(rows)

        return {
            "nonces": await self._write(nonces, "dọn nonce"),
            "payloads": await self._write(payloads, "dọn gói tin"),
            "owners": await self._write(owners, "dọn tiến trình"),
        }
