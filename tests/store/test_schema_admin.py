"""``docexchange db status|migrate`` on both backends: a missing schema, migration, and a newer schema refused
(by the command and by a node opening its store)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner
from store_kit import PG_URL

from docexchange.errors import DocExchangeError
from docexchange.exchange.migrations import SQLITE_META, SchemaTooNew, latest
from docexchange.exchange.pg_migrations import POSTGRES
from helpers import REPO


def project(base: Path, store_url: str) -> Path:
    (base / "config").mkdir(parents=True)
    text = (REPO / "config" / "docexchange.toml").read_text("utf-8")
    assert 'url = ""' in text
    text = text.replace('url = ""', f'url = "{store_url}"', 1)
    (base / "config" / "docexchange.toml").write_text(text, "utf-8")
    (base / "config" / "agencies.toml").write_text((REPO / "config" / "agencies.toml").read_text("utf-8"), "utf-8")
    return base / "config" / "docexchange.toml"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None


def db(cfg: Path, *args: str) -> Ran:
    """``docexchange --config cfg db …`` in this process (errors as the CLI runtime would report them)."""
    from docexchange.cli.main import cli

    result = CliRunner().invoke(cli, ["--config", str(cfg), "db", *args])
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    if isinstance(exc, DocExchangeError):
        return Ran(exc.exit_code, result.output, f"[{exc.code}] {exc.message_vi} — {exc.message_en}", exc)
    if exc is not None:
        raise exc
    return Ran(result.exit_code, result.output, "", None)


@pytest.fixture(params=["sqlite", "postgresql"])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    if request.param == "sqlite":
        yield "sqlite", project(tmp_path, "sqlite:///data/{node}.sqlite"), ""
        return
    url = request.getfixturevalue("pg_url")
    prefix = f"t_{uuid.uuid4().hex[:12]}"
    yield "postgresql", project(tmp_path, f"{url}?schema={prefix}_{{node}}"), prefix

    async def drop() -> None:
        conn = await asyncpg.connect(url)
        try:
            for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "%"):
                await conn.execute(f'DROP SCHEMA "{r["nspname"]}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def bump(backend: str, cfg: Path, prefix: str, node: str, version: int) -> None:
    if backend == "sqlite":
        conn = sqlite3.connect(cfg.parent.parent / "data" / f"{node}.sqlite")
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()
        conn.close()
        return
    async def run() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(f'INSERT INTO "{prefix}_{node.replace("-", "_")}".schema_migrations '
                               "(version, description) VALUES ($1, 'future')", version)
        finally:
            await conn.close()

    asyncio.run(run())


def test_status_migrate_and_refusal(cfg: tuple[str, Path, str]) -> None:
    backend, path, prefix = cfg
    known = latest(SQLITE_META) if backend == "sqlite" else latest(POSTGRES)
    out = db(path, "status", "--node", "vdxp", "--json")
    assert out.returncode == 1, out.stderr
    [st] = json.loads(out.stdout)
    assert st["backend"] == backend and st["state"] == "missing"

    out = db(path, "migrate", "--node", "vdxp", "--node", "lgsp-h49")
    assert out.returncode == 0, out.stderr
    assert f"0 → {known}" in out.stdout
    out = db(path, "status", "--node", "vdxp", "--node", "lgsp-h49")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "đúng phiên bản (current)" in out.stdout and out.stdout.count("vdxp") >= 1
    out = db(path, "migrate", "--node", "vdxp")
    assert out.returncode == 0 and "already at version" in out.stdout

    bump(backend, path, prefix, "vdxp", known + 1)
    out = db(path, "status", "--node", "vdxp", "--json")
    assert out.returncode == 78
    assert json.loads(out.stdout)[0]["state"] == "too_new"
    out = db(path, "migrate", "--node", "vdxp")
    assert out.returncode == 78
    assert "schema_too_new" in out.stderr and "upgrade docexchange" in out.stderr

    # A node opening that store refuses too.
    from docexchange.config import load_settings
    from docexchange.exchange.backends import open_store

    settings = load_settings(path)

    async def open_it() -> None:
        store = open_store(settings, "vdxp")
        try:
            await store.open()
        finally:
            await store.close()

    with pytest.raises(SchemaTooNew):
        asyncio.run(open_it())
    assert db(path, "status", "--node", "lgsp-h49").returncode == 0  # other nodes are unaffected


def test_unknown_node_is_a_clear_error(tmp_path: Path) -> None:
    path = project(tmp_path, "")
    out = db(path, "status", "--node", "no-such-node")
    assert out.returncode != 0 and "no-such-node" in out.stderr
