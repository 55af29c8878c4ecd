"""Scale-out: end-to-end packets per second with 1, 2 and 4 worker processes per node on PostgreSQL, against one
SQLite node, measured in the same run.

    python bench/bench_scaleout.py                          # both scenarios, 1500 packets each
    python bench/bench_scaleout.py --scenario node --packets 3000 --workers 1 2 4 8
    python bench/bench_scaleout.py --pg postgresql://postgres@127.0.0.1:5432/test

Scenarios (real processes, real HTTPS with mutual TLS between nodes, HMAC-signed agency API, durable commits:
PostgreSQL ``synchronous_commit = on``, SQLite ``synchronous = FULL``; arrival verification off — routing only):

* ``node`` — one node under test (lgsp-h49): agencies submit documents (``POST /documents``, the node writes
  the edXML) for another agency of the same node; a packet counts when it is in the recipient's inbox (the
  database is polled). This isolates what the workers share: the API, the packet building, the store.
* ``route`` — commune → lgsp-h49 → vdxp → lgsp-h57 → commune: every node runs with N workers (the SQLite
  baseline: each node one process); a packet counts when it is in the recipient's inbox at lgsp-h57.

Load: one generator process per client (``--clients``, default 2), each keeping ``--concurrency`` submits in
flight over its own keep-alive connections, so the kernel's SO_REUSEPORT spreads connections over the workers.
Figures: packets/s end to end (first submit → last arrival), as a ratio to the SQLite node and to one
PostgreSQL worker (the scaling factor), and the submit latency p50/p99. The load generators, PostgreSQL and the
workers share the machine's cores: where the scaling flattens is where the cores run out (``os.cpu_count()`` is
printed with the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

import asyncpg

from docexchange.config import Settings, load_settings
from docexchange.directory import load_directory

REPO = Path(__file__).resolve().parent.parent
SENDER = "000.01.11.H49"  # Hồng Gai (lgsp-h49)
LOCAL_RECIPIENT = "000.00.00.H49"  # UBND tỉnh Quảng Ninh (lgsp-h49)
REMOTE_RECIPIENT = "000.00.31.H57"  # Thuận Hóa (lgsp-h57)
PDF = b"%PDF-1.7\n% docexchange scale-out benchmark\n" + os.urandom(48 * 1024)

CONFIG = """
[paths]
data_dir = "{data_dir}"
keys_dir = "{keys_dir}"
directory = "config/agencies.toml"

[pki]
host = "127.0.0.1"
port = {pki_port}

[verification]
nd30_on_arrival = false

[store]
url = "{store_url}"
pool_min = 2
pool_max = {pool_max}

[exchange]
lease_seconds = 30
batch_max_items = 64
peer_concurrency = 2

[scheduler]
retry_seconds = 1
lease_recovery_seconds = 5
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Config:
    label: str
    backend: str
    workers: int


@dataclass
class Result:
    config: Config
    packets: int
    seconds: float
    latencies: list[float]
    node_cpu: float
    """CPU seconds used by the node processes (supervisors and workers) during the measurement."""
    db_cpu: float
    """CPU seconds used by the PostgreSQL backends serving them (0 for SQLite: in the node's own process)."""
    load_cpu: float
    """CPU seconds used by the load generators."""

    @property
    def cpu_ms_per_packet(self) -> float:
        return (self.node_cpu + self.db_cpu) * 1000 / self.packets

    @property
    def rate(self) -> float:
        return self.packets / self.seconds


def write_project(base: Path, keys_dir: Path, pki_port: int, store_url: str, data_dir: Path,
                  pool_max: int) -> Settings:
    (base / "config").mkdir(parents=True, exist_ok=True)
    directory = (REPO / "config" / "agencies.toml").read_text("utf-8")
    directory = re.sub(r"(?m)^port = \d+$", lambda _m: f"port = {free_port()}", directory)
    (base / "config" / "agencies.toml").write_text(directory, "utf-8")
    cfg = base / "config" / "docexchange.toml"
    cfg.write_text(CONFIG.format(data_dir=data_dir, keys_dir=keys_dir, pki_port=pki_port, store_url=store_url,
                                 pool_max=pool_max), "utf-8")
    return load_settings(cfg)


async def make_credential(settings: Settings, node_id: str, agency: str, system_id: str) -> str:
    from docexchange.clock import SystemClock
    from docexchange.exchange.backends import open_store
    from docexchange.web.app import credentials_box
    from docexchange.web.auth import Credentials, Role

    store = open_store(settings, node_id)
    await store.open()
    try:
        _, secret = await Credentials(store, credentials_box(settings, node_id), SystemClock()).create(
            system_id, Role.AGENCY, [agency], replace_existing=True)
    finally:
        await store.close()
    return secret


class Node:
    def __init__(self, settings: Settings, node_id: str, workers: int, log: Path) -> None:
        self.settings, self.node_id, self.workers, self.log = settings, node_id, workers, log
        cfg = Path(settings.base_dir) / "config" / "docexchange.toml"
        argv = [sys.executable, "-m", "docexchange", "serve", "--node", node_id, "--no-trust-services", "--no-verify"]
        if workers > 1:
            argv += ["--workers", str(workers)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(argv, cwd=settings.base_dir, stdout=out, stderr=subprocess.STDOUT,
                                         env=dict(os.environ, DOCEXCHANGE_CONFIG=str(cfg), PYTHONUNBUFFERED="1"),
                                         start_new_session=True)

    def wait_ready(self, timeout: float = 180.0) -> None:
        node = load_directory(self.settings.directory_file).node(self.node_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.node_id} exited: {self.log.read_text(errors='replace')[-2000:]}")
            text = self.log.read_text(errors="replace")
            if self.workers > 1 and "workers ready" not in text:
                time.sleep(0.2)
                continue
            try:
                with socket.create_connection((node.host, node.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"{self.node_id} did not start: {self.log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# ---------------------------------------------------------------------------------------------- CPU


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _tree(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*") if Path(f"/proc/{pid}/task").exists() else []:
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for k in kids:
            out.extend(_tree(int(k)))
    return out


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    hz = os.sysconf("SC_CLK_TCK")
    return {p: _ticks(p) / hz for p in pids}


async def pg_backends(pg: str, prefix: str) -> list[int]:
    conn = await asyncpg.connect(pg)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1",
                                f"docexchange:%:{prefix}\\_%")
        return [int(r["pid"]) for r in rows]
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------- load


def _client_main(url: str, system_id: str, secret: str, ca: str, recipient: str, start: int, count: int,
                 concurrency: int, tag: str, out: Any) -> None:
    """One load generator process: ``count`` submits, ``concurrency`` at a time; sends back the latencies."""

    async def run() -> tuple[list[float], float]:
        import aiohttp

        from docexchange.web.client import AgencyClient

        lat: list[float] = []
        connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = AgencyClient(url, system_id, secret, ca_file=Path(ca), session=session, timeout=300)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(start, start + count):
                queue.put_nowait(n)

            async def worker() -> None:
                while not queue.empty():
                    n = queue.get_nowait()
                    meta = {"to": [recipient], "subject": f"Văn bản đo tải {tag} số {n}", "code_number": str(n),
                            "code_notation": f"BENCH-{tag}", "priority": 3 if n % 10 == 0 else 0}
                    for attempt in range(50):
                        t = time.perf_counter()
                        try:
                            await client.submit_document(SENDER, meta, PDF)
                        except Exception:
                            await asyncio.sleep(0.1 * (attempt + 1))
                            continue
                        lat.append(time.perf_counter() - t)
                        break

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return lat, time.process_time()

    out.send(asyncio.run(run()))
    out.close()


def run_load(url: str, system_id: str, secret: str, ca: Path, recipient: str, packets: int, clients: int,
             concurrency: int, tag: str) -> tuple[float, list[float], float]:
    ctx = multiprocessing.get_context("spawn")
    per = [packets // clients + (1 if i < packets % clients else 0) for i in range(clients)]
    procs, pipes = [], []
    start = 0
    for i in range(clients):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client_main, args=(url, system_id, secret, str(ca), recipient, start, per[i],
                                                   concurrency, tag, child))
        start += per[i]
        procs.append(p)
        pipes.append(parent)
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    latencies: list[float] = []
    cpu = 0.0
    for parent in pipes:
        lat, used = parent.recv()
        latencies.extend(lat)
        cpu += used
    for p in procs:
        p.join()
    return t0, latencies, cpu


# ---------------------------------------------------------------------------------------------- counting


class InboxCounter:
    """Counts benchmark documents in the recipient's inbox, cheaply (one connection kept open, polled)."""

    SQL = ("SELECT COUNT(*) FROM deliveries WHERE recipient = $1 AND next_hop IS NULL AND kind = 'document' "
           "AND document_id LIKE '%BENCH%'")

    def __init__(self, settings: Settings, node_id: str, recipient: str, pg: str | None, schema: str) -> None:
        self.recipient = recipient
        self.loop = asyncio.new_event_loop()
        self.pg: Any = None
        self.sqlite: Any = None
        if pg is not None:
            self.pg = self.loop.run_until_complete(asyncpg.connect(pg, server_settings={"search_path": schema}))
        else:
            from docexchange.exchange.backends import sqlite_path

            self.path = sqlite_path(settings, node_id)

    def __call__(self) -> int:
        if self.pg is not None:
            return int(self.loop.run_until_complete(self.pg.fetchval(self.SQL, self.recipient)))
        import sqlite3

        if self.sqlite is None:
            if not self.path.exists():
                return 0
            self.sqlite = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        return int(self.sqlite.execute(self.SQL.replace("$1", "?"), (self.recipient,)).fetchone()[0])

    def close(self) -> None:
        if self.pg is not None:
            self.loop.run_until_complete(self.pg.close())
        if self.sqlite is not None:
            self.sqlite.close()
        self.loop.close()


# ---------------------------------------------------------------------------------------------- one run


def measure(cfg: Config, scenario: str, base: Path, keys: Path, pki_port: int, pg: str, packets: int,
            warmup: int, clients: int, concurrency: int, pool_max: int) -> Result:
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench{run_id}"
    work = base / f"{cfg.label}-{scenario}-{run_id}"
    if cfg.backend == "postgresql":
        store_url = f"{pg}?schema={prefix}_{{node}}"
    else:
        store_url = "sqlite:///" + str(work / "data" / "{node}.sqlite")  # sqlite:////absolute/path
    settings = write_project(work, keys, pki_port, store_url, work / "data", pool_max)
    nodes = ["lgsp-h49"] if scenario == "node" else ["lgsp-h57", "vdxp", "lgsp-h49"]
    recipient_node, recipient = ("lgsp-h49", LOCAL_RECIPIENT) if scenario == "node" else ("lgsp-h57",
                                                                                         REMOTE_RECIPIENT)
    secret = asyncio.run(make_credential(settings, "lgsp-h49", SENDER, "bench-honggai"))
    running = [Node(settings, n, cfg.workers, work / f"{n}.log") for n in nodes]
    counters: list[InboxCounter] = []
    schema = f"{prefix}_{recipient_node.replace('-', '_')}"
    try:
        for node in running:
            node.wait_ready()
        url = load_directory(settings.directory_file).node("lgsp-h49").url
        ca = keys / "ca" / "root.crt"
        pg_arg = pg if cfg.backend == "postgresql" else None

        count = InboxCounter(settings, recipient_node, recipient, pg_arg, schema)
        counters.append(count)

        def wait_for(n: int, limit: float) -> float:
            """When the n-th packet is in the inbox (polled every 0.2 s, every 0.05 s near the end)."""
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                got = count()
                if got >= n:
                    return time.perf_counter()
                time.sleep(0.05 if got >= 0.95 * n else 0.2)
            raise SystemExit(f"{cfg.label}: only {count()}/{n} arrived in {limit:.0f} s")

        run_load(url, "bench-honggai", secret, ca, recipient, warmup, clients, concurrency, f"W{run_id}")
        wait_for(warmup, 300)
        node_pids = [p for n in running for p in _tree(n.proc.pid)]
        db_pids = asyncio.run(pg_backends(pg, prefix)) if cfg.backend == "postgresql" else []
        before = cpu_seconds(node_pids + db_pids)
        t0, latencies, load_cpu = run_load(url, "bench-honggai", secret, ca, recipient, packets, clients,
                                           concurrency, f"M{run_id}")
        t1 = wait_for(warmup + packets, 600)
        after = cpu_seconds(node_pids + db_pids)
        used = {p: max(0.0, after[p] - before[p]) for p in before}
        return Result(cfg, packets, t1 - t0, latencies, sum(used[p] for p in node_pids),
                      sum(used[p] for p in db_pids), load_cpu)
    finally:
        for c in counters:
            c.close()
        for node in reversed(running):
            node.stop()
        if cfg.backend == "postgresql":
            asyncio.run(drop(pg, prefix))


async def drop(pg: str, prefix: str) -> None:
    conn = await asyncpg.connect(pg)
    try:
        for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", prefix + "\\_%"):
            await conn.execute(f'DROP SCHEMA "{r["nspname"]}" CASCADE')
    finally:
        await conn.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def report(scenario: str, results: list[Result]) -> dict[str, Any]:
    base = next(r for r in results if r.config.backend == "sqlite")
    pg1 = next((r for r in results if r.config.backend == "postgresql" and r.config.workers == 1), None)
    print(f"\n== scenario {scenario}: {results[0].packets} packets, {os.cpu_count()} CPU cores ==")
    print(f"{'configuration':<26}{'packets/s':>10}{'× SQLite':>10}{'× 1 PG worker':>15}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'CPU ms/packet':>15}{'(node+db)':>10}")
    rows = []
    prev: Result | None = None
    for r in results:
        scale = r.rate / pg1.rate if pg1 and r.config.backend == "postgresql" else float("nan")
        print(f"{r.config.label:<26}{r.rate:>10.1f}{r.rate / base.rate:>10.2f}{scale:>15.2f}"
              f"{pct(r.latencies, 0.5) * 1000:>9.0f}{pct(r.latencies, 0.99) * 1000:>9.0f}"
              f"{r.cpu_ms_per_packet:>15.1f}{r.cpu_ms_per_packet / base.cpu_ms_per_packet:>9.2f}×")
        rows.append({"config": r.config.label, "packets_per_s": round(r.rate, 1),
                     "cpu_ms_per_packet": round(r.cpu_ms_per_packet, 2),
                     "node_cpu_s": round(r.node_cpu, 2), "db_cpu_s": round(r.db_cpu, 2),
                     "load_cpu_s": round(r.load_cpu, 2),
                     "vs_sqlite": round(r.rate / base.rate, 2), "scaling": round(scale, 2),
                     "p50_ms": round(pct(r.latencies, 0.5) * 1000), "p99_ms": round(pct(r.latencies, 0.99) * 1000)})
        prev = r
    pgs = [r for r in results if r.config.backend == "postgresql"]
    flat = None
    for a, b in itertools.pairwise(pgs):
        gain = b.rate / a.rate
        if gain < 1.15:
            flat = (a.config.workers, b.config.workers, gain)
            break
    if flat:
        print(f"scaling flattens from {flat[0]} to {flat[1]} workers (×{flat[2]:.2f}) on {os.cpu_count()} cores")
    else:
        print(f"no flattening seen up to {pgs[-1].config.workers} workers" if pgs else "")
    del prev
    return {"scenario": scenario, "cpu_count": os.cpu_count(), "rows": rows,
            "flattens": list(flat[:2]) if flat else None, "median_latency_all_ms":
            round(statistics.median([x for r in results for x in r.latencies]) * 1000) if results else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg", default=os.environ.get("DOCEXCHANGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--scenario", choices=["node", "route", "both"], default="both")
    ap.add_argument("--packets", type=int, default=1500)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--clients", type=int, default=2, help="load generator processes")
    ap.add_argument("--concurrency", type=int, default=32, help="submits in flight per load generator")
    ap.add_argument("--pool-max", type=int, default=8, help="[store] pool_max per worker and node")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from docexchange.pki.devpki import DevPki

    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dx-bench-scaleout-") as tmp:
        base = Path(tmp)
        keys = base / "keys"
        pki_port = free_port()
        boot = write_project(base / "pki", keys, pki_port, "", base / "pki" / "data", args.pool_max)
        print("building the dev PKI …", flush=True)
        DevPki.from_settings(boot).init(load_directory(boot.directory_file))
        configs = [Config("SQLite, 1 process", "sqlite", 1)] + [
            Config(f"PostgreSQL, {n} worker{'s' if n > 1 else ''}", "postgresql", n) for n in args.workers]
        for scenario in (["node", "route"] if args.scenario == "both" else [args.scenario]):
            results = []
            for cfg in configs:
                print(f"[{scenario}] {cfg.label} …", flush=True)
                r = measure(cfg, scenario, base, keys, pki_port, args.pg, args.packets, args.warmup, args.clients,
                            args.concurrency, args.pool_max)
                print(f"[{scenario}] {cfg.label}: {r.rate:.1f} packets/s", flush=True)
                results.append(r)
            out.append(report(scenario, results))
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=2), "utf-8")


if __name__ == "__main__":
    main()
