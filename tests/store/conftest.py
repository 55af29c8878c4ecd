"""Fixtures of the store contract suite: every test runs once on SQLite and once on PostgreSQL.

PostgreSQL is the real server of this machine (``DOCEXCHANGE_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432/test``; ``.ci/install`` starts it and creates the database). Each test gets
its own schema, dropped afterwards; SQLite tests get their own files under ``tmp_path``.

Receipts are signed by the real :class:`~docexchange.exchange.receipts.ReceiptSigner` with a key made for the
session, so the suite also checks that what a store hands back verifies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_kit import NODE, PG_URL, T0, MovableClock, drop_schema

from docexchange.exchange.receipts import ReceiptSigner
from docexchange.exchange.store import Store


def pg_available() -> str | None:
    async def probe() -> str | None:
        try:
            conn = await asyncpg.connect(PG_URL, timeout=5)
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            return f"{type(exc).__name__}: {exc}"
        await conn.close()
        return None

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # callable from inside a running event loop
        return pool.submit(asyncio.run, probe()).result()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test server; a missing server is a failure, not a skip (CI starts it: ``.ci/install``)."""
    problem = pg_available()
    if problem is not None:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({problem}); run .ci/install", pytrace=False)
    return PG_URL


@dataclass(frozen=True)
class NodeKey:
    signer: ReceiptSigner
    cert: x509.Certificate


@pytest.fixture(scope="session")
def node_key() -> NodeKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NODE)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(T0 - timedelta(days=1)).not_valid_after(T0 + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return NodeKey(ReceiptSigner(NODE, key), cert)


@dataclass
class Backend:
    """How to make (and bump the version of) one backend's store for one test."""

    name: str
    clock: MovableClock
    signer: ReceiptSigner
    tmp: Path
    pg_url: str | None = None
    schema: str = ""
    opened: list[Store] = field(default_factory=list)

    def new_store(self, node_id: str = NODE, **kwargs: Any) -> Store:
        if self.name == "sqlite":
            from docexchange.exchange.sqlite_store import SqliteStore

            return SqliteStore(self.tmp / f"{node_id}.sqlite", node_id, signer=self.signer.sign_group,
                               clock=self.clock, **kwargs)
        from docexchange.exchange.postgres_store import PostgresStore

        assert self.pg_url is not None
        kwargs.setdefault("pool_min", 1)
        kwargs.setdefault("pool_max", 4)
        return PostgresStore(self.pg_url, node_id, signer=self.signer.sign_group, clock=self.clock,
                             schema=self.schema, **kwargs)

    async def open(self, node_id: str = NODE, **kwargs: Any) -> Store:
        store = self.new_store(node_id, **kwargs)
        await store.open()
        self.opened.append(store)
        return store

    async def set_version(self, version: int, node_id: str = NODE) -> None:
        """Write a schema version as a newer program would have (the store must be closed)."""
        if self.name == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.tmp / f"{node_id}.sqlite")
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.commit()
            conn.close()
            return
        assert self.pg_url is not None
        conn = await asyncpg.connect(self.pg_url)
        try:
            await conn.execute(
                f'INSERT INTO "{self.schema}".schema_migrations (version, description) VALUES ($1, $2)',
                version, "from the future",
            )
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path, node_key: NodeKey) -> AsyncIterator[Backend]:
    clock = MovableClock()
    if request.param == "sqlite":
        b = Backend("sqlite", clock, node_key.signer, tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        b = Backend("postgresql", clock, node_key.signer, tmp_path, pg_url=url, schema=f"t_{uuid.uuid4().hex[:16]}")
    try:
        yield b
    finally:
        for s in reversed(b.opened):
            await s.close()
        if b.pg_url is not None:
            await drop_schema(b.pg_url, b.schema)


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
