"""Versioned schema migrations of the PostgreSQL store (one schema per axis node).

The same rules as :mod:`docexchange.exchange.migrations` (whose :class:`Migration` and :func:`check_version`
this module uses): migrations only ever add, a released migration is never edited, and a node refuses to run
against a schema newer than the last migration it knows.

The version lives in ``<schema>.schema_migrations`` (one row per applied migration). Migrations are applied in
one transaction each, under a transaction-scoped advisory lock of the schema, so several workers starting at the
same time apply them exactly once (the others wait, then find the schema current). DDL is transactional in
PostgreSQL: a migration that fails leaves no half-built schema.

What the database itself enforces (not process memory):

* deduplication: ``UNIQUE (message_id, recipient)``, a unique ``delivery_id`` (checked to be
  ``message_id.recipient``) and a unique submit idempotency key;
* receipts: one ``stored`` receipt per (delivery, node) in the trail (a duplicate gets the original);
* the trail: ``UNIQUE (delivery_id, node, event, at)``, so a replayed report adds nothing;
* leases: a delivery is ``in_flight`` exactly when it has a lease owner and expiry;
* states: only the states of :class:`~docexchange.exchange.model.DeliveryState`; the final ones
  (``acknowledged``, ``recalled``) never change again (a trigger);
* payloads: every message points at its stored packet (a foreign key, checked at commit).
"""

from __future__ import annotations

from docexchange.exchange.migrations import Migration

__all__ = ["POSTGRES", "bootstrap_statements"]


def bootstrap_statements(schema: str) -> tuple[str, ...]:
    """Run before reading the version (idempotent): the schema and its migration log. ``schema`` must be a
    checked identifier (see :func:`docexchange.exchange.postgres_store.schema_name`)."""
    return (
        f'CREATE SCHEMA IF NOT EXISTS "{schema}"',
        f"""CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations (
               version     integer PRIMARY KEY,
               description text NOT NULL,
               applied_at  timestamptz NOT NULL DEFAULT now()
           )""",
    )


POSTGRES: tuple[Migration, ...] = (
    Migration(
        1,
        "payloads, messages, deliveries, trail, verifications, credentials, nonces, lease owners",
        (
            """
            CREATE TABLE payloads (
                digest     text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
                data       bytea NOT NULL,
                created_at timestamptz NOT NULL
            )
            """,
            # Packets are zip/base64 already: compressing them again costs CPU for little gain.
            "ALTER TABLE payloads ALTER COLUMN data SET STORAGE EXTERNAL",
            """
            CREATE TABLE messages (
                seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
                message_id      text PRIMARY KEY,
                kind            text NOT NULL CHECK (kind IN ('document', 'status', 'report')),
                sender          text NOT NULL,
                document_id     text NOT NULL,
                priority        integer NOT NULL,
                business_type   integer NOT NULL DEFAULT 0,
                status_code     text NOT NULL DEFAULT '',
                digest          text NOT NULL REFERENCES payloads (digest) DEFERRABLE INITIALLY DEFERRED,
                received_digest text NOT NULL,
                size            bigint NOT NULL CHECK (size >= 0),
                origin_node     text NOT NULL,
                received_from   text NOT NULL,
                meta            jsonb NOT NULL,
                created_at      timestamptz NOT NULL
            )
            """,
            "CREATE INDEX messages_sent ON messages (sender, origin_node, kind, seq DESC)",
            "CREATE INDEX messages_digest ON messages (digest)",
            """
            CREATE TABLE deliveries (
                seq                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                delivery_id         text NOT NULL UNIQUE,
                message_id          text NOT NULL REFERENCES messages (message_id),
                recipient           text NOT NULL,
                kind                text NOT NULL CHECK (kind IN ('document', 'status', 'report')),
                sender              text NOT NULL,
                document_id         text NOT NULL,
                priority            integer NOT NULL,
                rank                integer NOT NULL CHECK (rank BETWEEN 0 AND 3),
                next_hop            text,
                state               text NOT NULL CHECK (state IN ('queued', 'in_flight', 'retry_wait',
                                        'forwarded', 'delivered', 'acknowledged', 'dead', 'recalled')),
                attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                first_attempt_at    timestamptz,
                next_attempt_at     timestamptz,
                lease_owner         text,
                lease_until         timestamptz,
                last_error          text NOT NULL DEFAULT '',
                created_at          timestamptz NOT NULL,
                updated_at          timestamptz NOT NULL,
                delivered_at        timestamptz,
                acknowledged_at     timestamptz,
                fetched_at          timestamptz,
                recipient_status    text NOT NULL DEFAULT '',
                recipient_status_at timestamptz,
                recall              text CHECK (recall IN ('requested', 'agreed', 'refused')),
                recall_request      text NOT NULL DEFAULT '',
                recall_by           text NOT NULL DEFAULT '',
                withdrawn           boolean NOT NULL DEFAULT false,
                idem_key            text,
                UNIQUE (message_id, recipient),
                CONSTRAINT delivery_id_shape CHECK (delivery_id = message_id || '.' || recipient),
                CONSTRAINT lease_iff_in_flight CHECK (
                    (state = 'in_flight') = (lease_owner IS NOT NULL AND lease_until IS NOT NULL)),
                CONSTRAINT retry_has_time CHECK (state <> 'retry_wait' OR next_attempt_at IS NOT NULL)
            )
            """,
            "CREATE INDEX deliveries_ready ON deliveries (next_hop, rank DESC, seq) WHERE state = 'queued'",
            "CREATE INDEX deliveries_retry ON deliveries (next_hop, next_attempt_at) WHERE state = 'retry_wait'",
            "CREATE INDEX deliveries_lease ON deliveries (lease_until) WHERE state = 'in_flight'",
            "CREATE INDEX deliveries_lease_owner ON deliveries (lease_owner) WHERE state = 'in_flight'",
            "CREATE INDEX deliveries_inbox ON deliveries (recipient, rank DESC, seq) WHERE next_hop IS NULL",
            "CREATE INDEX deliveries_document ON deliveries (document_id, sender)",
            "CREATE INDEX deliveries_message ON deliveries (message_id)",
            "CREATE INDEX deliveries_state ON deliveries (state, seq)",
            "CREATE UNIQUE INDEX deliveries_idem ON deliveries (idem_key) WHERE idem_key IS NOT NULL",
            """
            CREATE FUNCTION deliveries_final_stays_final() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.state IN ('acknowledged', 'recalled') AND NEW.state <> OLD.state THEN
                    RAISE EXCEPTION 'delivery % is %: a final state stays final', OLD.delivery_id, OLD.state
                        USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END
            $$
            """,
            """
            CREATE TRIGGER deliveries_final BEFORE UPDATE OF state ON deliveries
                FOR EACH ROW EXECUTE FUNCTION deliveries_final_stays_final()
            """,
            """
            CREATE TABLE trail (
                id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                delivery_id text NOT NULL,
                node        text NOT NULL,
                event       text NOT NULL,
                at          timestamptz NOT NULL,
                digest      text NOT NULL DEFAULT '',
                receipt     jsonb,
                detail      text NOT NULL DEFAULT '',
                UNIQUE (delivery_id, node, event, at)
            )
            """,
            "CREATE UNIQUE INDEX trail_one_receipt ON trail (delivery_id, node) WHERE event = 'stored'",
            """
            CREATE TABLE verifications (
                message_id  text PRIMARY KEY REFERENCES messages (message_id),
                state       text NOT NULL CHECK (state IN ('pending', 'running', 'passed', 'failed',
                                'indeterminate', 'skipped')),
                rank        integer NOT NULL,
                attempts    integer NOT NULL DEFAULT 0,
                lease_owner text,
                lease_until timestamptz,
                report      jsonb,
                verified_at timestamptz,
                created_at  timestamptz NOT NULL,
                CONSTRAINT verification_lease CHECK ((state = 'running') = (lease_owner IS NOT NULL))
            )
            """,
            "CREATE INDEX verifications_queue ON verifications (rank DESC, created_at) WHERE state = 'pending'",
            "CREATE INDEX verifications_lease ON verifications (lease_until) WHERE state = 'running'",
            """
            CREATE TABLE credentials (
                system_id  text PRIMARY KEY,
                role       text NOT NULL,
                agencies   jsonb NOT NULL,
                secret_box bytea NOT NULL,
                created_at timestamptz NOT NULL,
                rotated_at timestamptz,
                revoked_at timestamptz,
                label      text NOT NULL DEFAULT ''
            )
            """,
            """
            CREATE TABLE nonces (
                system_id  text NOT NULL,
                nonce      text NOT NULL,
                expires_at timestamptz NOT NULL,
                PRIMARY KEY (system_id, nonce)
            )
            """,
            "CREATE INDEX nonces_expiry ON nonces (expires_at)",
            """
            CREATE TABLE lease_owners (
                owner         text PRIMARY KEY,
                lock_key      integer NOT NULL CHECK (lock_key > 0),
                host          text NOT NULL DEFAULT '',
                pid           integer NOT NULL DEFAULT 0,
                registered_at timestamptz NOT NULL DEFAULT now()
            )
            """,
        ),
    ),
)
