"""Schema versions of the node stores, for operators (``docexchange db status|migrate``).

Both backends keep versioned migrations (:mod:`docexchange.exchange.migrations` for SQLite,
:mod:`docexchange.exchange.pg_migrations` for PostgreSQL). A store applies what is missing when it opens and
refuses a schema newer than it knows; these functions let an operator see where each node stands and migrate
ahead of a rolling upgrade (apply the migrations once, then restart the workers one by one).
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from docexchange.config import Settings
from docexchange.errors import StoreError
from docexchange.exchange.migrations import SQLITE_META, SQLITE_PAYLOADS, Migration, latest

__all__ = ["NodeSchema", "SchemaPart", "SchemaState", "backend_of", "migrate_node", "schema_status"]


class SchemaState(str, enum.Enum):
    CURRENT = "current"
    BEHIND = "behind"
    """Older than this program: migrated on the next start (or by ``docexchange db migrate``)."""
    MISSING = "missing"
    """Not created yet."""
    TOO_NEW = "too_new"
    """Written by a newer program: this one refuses to run on it."""

    @property
    def label_vi(self) -> str:
        return {
            "current": "đúng phiên bản",
            "behind": "cần nâng cấp",
            "missing": "chưa tạo",
            "too_new": "mới hơn chương trình",
        }[self.value]


@dataclass(frozen=True)
class SchemaPart:
    name: str
    """What holds it: a file (SQLite) or a schema (PostgreSQL)."""
    found: int
    known: int

    @property
    def state(self) -> SchemaState:
        if self.found == 0:
            return SchemaState.MISSING
        if self.found > self.known:
            return SchemaState.TOO_NEW
        if self.found < self.known:
            return SchemaState.BEHIND
        return SchemaState.CURRENT


@dataclass(frozen=True)
class NodeSchema:
    node_id: str
    backend: str
    """``sqlite`` or ``postgresql``."""
    parts: tuple[SchemaPart, ...]

    @property
    def state(self) -> SchemaState:
        order = [SchemaState.TOO_NEW, SchemaState.MISSING, SchemaState.BEHIND, SchemaState.CURRENT]
        return min((p.state for p in self.parts), key=order.index)


def backend_of(settings: Settings) -> str:
    url = settings.store.url.strip()
    return "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"


def _sqlite_version(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"Không đọc được {path}: {exc}", f"cannot read {path}: {exc}") from exc


def _sqlite_parts(settings: Settings, node_id: str) -> tuple[SchemaPart, ...]:
    from docexchange.exchange.backends import sqlite_path

    meta = sqlite_path(settings, node_id)
    payloads = meta.with_name(meta.stem + ".payloads" + (meta.suffix or ".sqlite"))
    pairs: list[tuple[Path, tuple[Migration, ...]]] = [(meta, SQLITE_META), (payloads, SQLITE_PAYLOADS)]
    return tuple(SchemaPart(str(p), _sqlite_version(p), latest(m)) for p, m in pairs)


async def schema_status(settings: Settings, node_id: str) -> NodeSchema:
    """Where ``node_id``'s store stands (nothing is created or changed)."""
    if backend_of(settings) == "sqlite":
        return NodeSchema(node_id, "sqlite", _sqlite_parts(settings, node_id))
    import asyncpg

    from docexchange.exchange.pg_migrations import POSTGRES
    from docexchange.exchange.postgres_store import TRANSIENT_ERRORS, connect_target, parse_url, schema_state

    target = parse_url(settings.store.url, node_id)
    try:
        conn = await connect_target(target, f"docexchange-db:{node_id}")
        try:
            found = await schema_state(conn, target.schema)
        finally:
            await conn.close()
    except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
        raise StoreError(
            f"Không kết nối được PostgreSQL {target.display}: {exc}", f"cannot reach PostgreSQL {target.display}: {exc}"
        ) from exc
    return NodeSchema(node_id, "postgresql", (SchemaPart(target.display, found, latest(POSTGRES)),))


async def migrate_node(settings: Settings, node_id: str) -> tuple[NodeSchema, NodeSchema]:
    """Apply the missing migrations of ``node_id``'s store; (before, after). Refuses a schema that is too new
    (:class:`~docexchange.exchange.migrations.SchemaTooNew`)."""
    before = await schema_status(settings, node_id)
    if backend_of(settings) == "sqlite":
        from docexchange.exchange.backends import open_store

        store = open_store(settings, node_id)
        try:
            await store.open()  # applies the migrations (one transaction each) or refuses
        finally:
            await store.close()
    else:
        import asyncpg

        from docexchange.exchange.postgres_store import TRANSIENT_ERRORS, connect_target, migrate_schema, parse_url

        target = parse_url(settings.store.url, node_id)
        try:
            conn = await connect_target(target, f"docexchange-db:{node_id}")
            try:
                await migrate_schema(conn, target.schema)
            finally:
                await conn.close()
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise StoreError(
                f"Không nâng cấp được schema PostgreSQL {target.display}: {exc}",
                f"cannot migrate PostgreSQL {target.display}: {exc}",
            ) from exc
    return before, await schema_status(settings, node_id)
