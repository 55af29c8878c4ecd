"""Scale-out test kit: a project on PostgreSQL, nodes as processes (one or N workers), counting in the database."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from docexchange.config import Settings, load_settings
from docexchange.directory import Directory, load_directory
from helpers import REPO, free_port

PG_URL = os.environ.get("DOCEXCHANGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
HONG_GAI = "000.01.11.H49"
THUAN_HOA = "000.00.31.H57"
PDF = b"%PDF-1.7\n% docexchange scale-out test\n" + bytes(range(256)) * 40

T = TypeVar("T")


def in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop (fixtures' teardown)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


def pg_problem(url: str) -> str | None:
    async def probe() -> str | None:
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        await conn.close()
        return None

    return in_thread(probe)


def drop_schemas(url: str, prefix: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(url)
        try:
            for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "\\_%"):
                await conn.execute(f'DROP SCHEMA "{r["nspname"]}" CASCADE')
        finally:
            await conn.close()

    in_thread(drop)


TEST_CONFIG = """
[paths]
data_dir = "data"
keys_dir = "{keys_dir}"
directory = "config/agencies.toml"

[pki]
host = "127.0.0.1"
port = {pki_port}

[verification]
nd30_on_arrival = false

[exchange]
lease_seconds = 5
retry_base_seconds = 0.2
retry_max_delay_seconds = 1.0
breaker_failures = 3
breaker_open_seconds = 0.5
breaker_max_open_seconds = 2.0
batch_max_items = 64
peer_concurrency = 2
transfer_timeout_seconds = 10.0

[scheduler]
retry_seconds = 1
lease_recovery_seconds = 1
housekeeping_minutes = 60
{extra}
"""


def write_project(base: Path, keys_dir: Path, pki_port: int, extra: str = "") -> Settings:
    """A project folder: the repository's directory with a free loopback port per node, test timings (short
    leases and backoff, lease recovery every second) and ``extra`` TOML."""
    (base / "config").mkdir(parents=True, exist_ok=True)
    directory = (REPO / "config" / "agencies.toml").read_text("utf-8")
    directory = re.sub(r"(?m)^port = \d+$", lambda _m: f"port = {free_port()}", directory)
    (base / "config" / "agencies.toml").write_text(directory, "utf-8")
    cfg = base / "config" / "docexchange.toml"
    cfg.write_text(TEST_CONFIG.format(keys_dir=keys_dir, pki_port=pki_port, extra=extra), "utf-8")
    return load_settings(cfg)


class NodeProcess:
    """``docexchange serve --node X`` (one process, its own session so that it can be killed alone)."""

    def __init__(self, settings: Settings, node_id: str, log_dir: Path, *args: str) -> None:
        self.settings = settings
        self.node_id = node_id
        self.args = args
        self.log_path = log_dir / f"{node_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProcess:
        cfg = Path(self.settings.base_dir) / "config" / "docexchange.toml"
        env = dict(os.environ, DOCEXCHANGE_CONFIG=str(cfg), PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "docexchange", "serve", "--node", self.node_id, "--no-trust-services",
                 *self.args],
                cwd=self.settings.base_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> None:
        import socket

        node = load_directory(self.settings.directory_file).node(self.node_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.node_id} exited: {self.log()[-3000:]}")
            try:
                with socket.create_connection((node.host, node.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.node_id} did not start: {self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class WorkersProcess:
    """``docexchange serve --node X --workers N`` (the supervisor, in its own session; its workers die with it)."""

    READY = re.compile(r"workers ready, pids ([0-9 ]+)\)")

    def __init__(self, settings: Settings, node_id: str, workers: int, log_dir: Path) -> None:
        self.settings = settings
        self.node_id = node_id
        self.workers = workers
        self.log_path = log_dir / f"{node_id}-workers.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []

    def start(self) -> WorkersProcess:
        cfg = Path(self.settings.base_dir) / "config" / "docexchange.toml"
        env = dict(os.environ, DOCEXCHANGE_CONFIG=str(cfg), PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "docexchange", "serve", "--node", self.node_id, "--workers",
                 str(self.workers), "--no-trust-services"],
                cwd=self.settings.base_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.node_id} supervisor exited: {self.log()[-3000:]}")
            m = self.READY.search(self.log())
            if m:
                self.pids = [int(p) for p in m.group(1).split()]
                assert len(self.pids) == self.workers
                return self.pids
            time.sleep(0.2)
        raise AssertionError(f"{self.node_id} workers not ready: {self.log()[-3000:]}")

    def children(self) -> list[int]:
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class Cluster:
    """A project whose three nodes keep their stores in PostgreSQL schemas ``<prefix>_<node>``."""

    settings: Settings
    base: Path
    pg_url: str
    prefix: str
    directory: Directory
    procs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, tmp: Path, keys: Settings, pg_url: str, *, pool_max: int = 4) -> Cluster:
        prefix = f"sx{uuid.uuid4().hex[:10]}"
        extra = f"""
[store]
url = "{pg_url}?schema={prefix}_{{node}}"
pool_min = 1
pool_max = {pool_max}
"""
        settings = write_project(tmp / "project", keys.keys_dir, keys.pki.port, extra)
        return cls(settings, tmp, pg_url, prefix, load_directory(settings.directory_file))

    def schema(self, node_id: str) -> str:
        return f"{self.prefix}_{node_id.replace('-', '_')}"

    def start(self, node_id: str, workers: int = 1) -> Any:
        if workers > 1:
            p: Any = WorkersProcess(self.settings, node_id, workers, self.base).start()
        else:
            p = NodeProcess(self.settings, node_id, self.base).start()
        self.procs[node_id] = p
        return p

    def stop_all(self) -> None:
        for p in self.procs.values():
            p.stop()

    async def credential(self, node_id: str, agency: str, system_id: str) -> str:
        """A credential for ``agency``'s software, created in the node's store (as the operator's CLI does)."""
        from docexchange.clock import SystemClock
        from docexchange.exchange.backends import open_store
        from docexchange.web.app import credentials_box
        from docexchange.web.auth import Credentials, Role

        store = open_store(self.settings, node_id)
        await store.open()
        try:
            _, secret = await Credentials(store, credentials_box(self.settings, node_id), SystemClock()).create(
                system_id, Role.AGENCY, [agency])
        finally:
            await store.close()
        return secret

    async def fetchval(self, node_id: str, sql: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.pg_url, server_settings={"search_path": self.schema(node_id)})
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, node_id: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.pg_url, server_settings={"search_path": self.schema(node_id)})
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def cut_connections(self) -> int:
        """``pg_terminate_backend`` on every connection of this cluster's nodes (all workers)."""
        conn = await asyncpg.connect(self.pg_url)
        try:
            rows = await conn.fetch(
                """SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
                   WHERE datname = current_database() AND application_name LIKE $1 AND pid <> pg_backend_pid()""",
                f"docexchange:%:{self.prefix}\\_%",
            )
            return sum(1 for r in rows if r["ok"])
        finally:
            await conn.close()


def meta(n: int) -> dict[str, Any]:
    return {"to": [THUAN_HOA], "subject": f"Văn bản thử số {n}", "code_number": str(n),
            "code_notation": "UBND-VP", "priority": 3 if n % 10 == 0 else 0}


async def submit_all(client: Any, numbers: range, concurrency: int = 24) -> list[dict[str, Any]]:
    """Submit one document per number, retrying each until the sender's node accepts it."""
    sem = asyncio.Semaphore(concurrency)
    done: list[dict[str, Any]] = []

    async def one(n: int) -> None:
        async with sem:
            last: Exception | None = None
            for _ in range(200):
                try:
                    done.append(await client.submit_document(HONG_GAI, meta(n), PDF))
                    return
                except Exception as exc:
                    last = exc
                    await asyncio.sleep(0.2)
            raise AssertionError(f"could not submit {n}: {last}")

    await asyncio.gather(*(one(n) for n in numbers))
    return done


async def eventually(check: Callable[[], Awaitable[T | None]], within: float, what: str,
                     interval: float = 0.5) -> T:
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


async def inbox_document_ids(client: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.inbox(THUAN_HOA, kind="document", limit=500, cursor=cursor)
        seen.extend(i["document_id"] for i in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return seen
