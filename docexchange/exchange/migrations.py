"""Versioned schema migrations, applied on start.

Each backend has its own ordered list; a store refuses to run against a schema newer than the last migration
it knows (a newer node wrote it: running older code against it could lose data). Migrations only ever add:
a released migration is never edited, a change is a new entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from docexchange.errors import StoreError

__all__ = ["SQLITE_META", "SQLITE_PAYLOADS", "Migration", "SchemaTooNew", "check_version", "latest"]


class SchemaTooNew(StoreError):
    code = "schema_too_new"
    exit_code = 78


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


SQLITE_META: tuple[Migration, ...] = (
    Migration(
        1,
        "messages, deliveries, trail, verifications, credentials, nonces",
        (
            """
            CREATE TABLE messages (
                message_id      TEXT PRIMARY KEY,
                kind            TEXT NOT NULL,
                sender          TEXT NOT NULL,
                document_id     TEXT NOT NULL,
                priority        INTEGER NOT NULL,
                business_type   INTEGER NOT NULL DEFAULT 0,
                status_code     TEXT NOT NULL DEFAULT '',
                digest          TEXT NOT NULL,
                received_digest TEXT NOT NULL,
                size            INTEGER NOT NULL,
                origin_node     TEXT NOT NULL,
                received_from   TEXT NOT NULL,
                meta            TEXT NOT NULL,
                created_at      REAL NOT NULL
            )
            """,
            "CREATE INDEX messages_sent ON messages (sender, origin_node, kind)",
            """
            CREATE TABLE deliveries (
                seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
                delivery_id         TEXT NOT NULL UNIQUE,
                message_id          TEXT NOT NULL REFERENCES messages (message_id),
                recipient           TEXT NOT NULL,
                kind                TEXT NOT NULL,
                sender              TEXT NOT NULL,
                document_id         TEXT NOT NULL,
                priority            INTEGER NOT NULL,
                rank                INTEGER NOT NULL,
                next_hop            TEXT,
                state               TEXT NOT NULL,
                attempts            INTEGER NOT NULL DEFAULT 0,
                first_attempt_at    REAL,
                next_attempt_at     REAL,
                lease_owner         TEXT,
                lease_until         REAL,
                last_error          TEXT NOT NULL DEFAULT '',
                created_at          REAL NOT NULL,
                updated_at          REAL NOT NULL,
                delivered_at        REAL,
                acknowledged_at     REAL,
                fetched_at          REAL,
                recipient_status    TEXT NOT NULL DEFAULT '',
                recipient_status_at REAL,
                recall              TEXT,
                recall_request      TEXT NOT NULL DEFAULT '',
                recall_by           TEXT NOT NULL DEFAULT '',
                withdrawn           INTEGER NOT NULL DEFAULT 0,
                idem_key            TEXT,
                UNIQUE (message_id, recipient)
            )
            """,
            "CREATE INDEX deliveries_queue ON deliveries (next_hop, state, rank DESC, seq)",
            "CREATE INDEX deliveries_retry ON deliveries (state, next_attempt_at) WHERE state = 'retry_wait'",
            "CREATE INDEX deliveries_lease ON deliveries (state, lease_until) WHERE state = 'in_flight'",
            "CREATE INDEX deliveries_inbox ON deliveries (recipient, rank DESC, seq) WHERE next_hop IS NULL",
            "CREATE INDEX deliveries_document ON deliveries (document_id, sender)",
            "CREATE UNIQUE INDEX deliveries_idem ON deliveries (idem_key) WHERE idem_key IS NOT NULL",
            """
            CREATE TABLE trail (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                delivery_id TEXT NOT NULL,
                node        TEXT NOT NULL,
                event       TEXT NOT NULL,
                at          REAL NOT NULL,
                digest      TEXT NOT NULL DEFAULT '',
                receipt     TEXT,
                detail      TEXT NOT NULL DEFAULT '',
                UNIQUE (delivery_id, node, event, at)
            )
            """,
            """
            CREATE TABLE verifications (
                message_id  TEXT PRIMARY KEY REFERENCES messages (message_id),
                state       TEXT NOT NULL,
                rank        INTEGER NOT NULL,
                attempts    INTEGER NOT NULL DEFAULT 0,
                lease_owner TEXT,
                lease_until REAL,
                report      TEXT,
                verified_at REAL,
                created_at  REAL NOT NULL
            )
            """,
            "CREATE INDEX verifications_queue ON verifications (state, rank DESC, created_at)",
            """
            CREATE TABLE credentials (
                system_id  TEXT PRIMARY KEY,
                role       TEXT NOT NULL,
                agencies   TEXT NOT NULL,
                secret_box BLOB NOT NULL,
                created_at REAL NOT NULL,
                rotated_at REAL,
                revoked_at REAL,
                label      TEXT NOT NULL DEFAULT ''
            )
            """,
            """
            CREATE TABLE nonces (
                system_id  TEXT NOT NULL,
                nonce      TEXT NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (system_id, nonce)
            )
            """,
        ),
    ),
)

SQLITE_PAYLOADS: tuple[Migration, ...] = (
    Migration(
        1,
        "content-addressed payloads",
        (
            """
            CREATE TABLE payloads (
                id         INTEGER PRIMARY KEY,
                digest     TEXT NOT NULL UNIQUE,
                data       BLOB NOT NULL,
                created_at REAL NOT NULL
            )
            """,
        ),
    ),
)


def latest(migrations: tuple[Migration, ...]) -> int:
    return migrations[-1].version if migrations else 0


def check_version(found: int, migrations: tuple[Migration, ...], where: str) -> list[Migration]:
    """Migrations still to apply to a schema at version ``found``; refuse a schema newer than we know."""
    known = latest(migrations)
    if found > known:
        raise SchemaTooNew(
            f"Cơ sở dữ liệu {where} ở phiên bản {found}, mới hơn phiên bản {known} chương trình này biết: "
            "hãy cập nhật docexchange",
            f"database {where} is at schema version {found}, newer than {known} known to this program: "
            "upgrade docexchange",
        )
    return [m for m in migrations if m.version > found]
