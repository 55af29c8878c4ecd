"""End-to-end exchange benchmark: commune → provincial axis → national axis → other provincial axis → commune.

    python bench/bench_exchange.py                     # 2000 packets routed, then 300 with verification on
    python bench/bench_exchange.py --packets 5000 --verify-packets 500 --concurrency 64

What runs (all real: separate OS processes, HTTPS with mutual TLS between nodes, HMAC-signed agency API,
SQLite ``synchronous = FULL``): ``docexchange pki serve`` (TSA/OCSP/CRL) and three ``docexchange serve --node``
processes (lgsp-h49, vdxp, lgsp-h57). The load generator (this process) submits edXML packets carrying a
100 KB PDF signed by the official and sealed by UBND phường Hồng Gai (PAdES B-LT) to lgsp-h49, for UBND
phường Thuận Hóa at lgsp-h57. A packet counts when it is in Thuận Hóa's inbox (``delivered_at`` in the
recipient node's database); with verification on, also when its NĐ 30 verification is done.

Measured twice: routing only (arrival verification deferred: ``nd30_on_arrival = false``), and with
verification on. Alongside, in the same run: the disk's fsync/s, SQLite durable commits/s of 130 KB rows
(single and grouped), and a bare aiohttp echo server's requests/s (64 KB POSTs, keep-alive) — the figures are
printed as ratios to those baselines. "Where the time goes": CPU milliseconds per packet of each process
(node processes with their verification workers, and the load generator), from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SENDER = "000.01.11.H49"  # UBND phường Hồng Gai, at lgsp-h49
RECIPIENT = "000.00.31.H57"  # UBND phường Thuận Hóa, at lgsp-h57
NODES = ("lgsp-h49", "vdxp", "lgsp-h57")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------ baselines


def fsync_rate(folder: Path, seconds: float = 2.0) -> float:
    path = folder / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    n = 0
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < seconds:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            n += 1
    finally:
        os.close(fd)
        path.unlink()
    return n / (time.perf_counter() - t0)


def sqlite_rates(folder: Path, rows: int = 400) -> tuple[float, float]:
    """Durable commits/s of one 130 KB row each, and rows/s when grouped 32 per commit (64 KB pages, WAL)."""
    blob = os.urandom(130_000)
    out = []
    for group in (1, 32):
        path = folder / f"bench-{group}.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA page_size = 65536")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
        t0 = time.perf_counter()
        for _ in range(rows // group):
            db.execute("BEGIN")
            for _ in range(group):
                db.execute("INSERT INTO t (b) VALUES (?)", (blob,))
            db.execute("COMMIT")
        out.append((rows // group) * group / (time.perf_counter() - t0))
        db.close()
        for p in folder.glob(f"bench-{group}.sqlite*"):
            p.unlink()
    return out[0], out[1]


ECHO_SERVER = """
import sys
from aiohttp import web
async def echo(request):
    return web.Response(body=await request.read())
app = web.Application(client_max_size=1 << 20)
app.router.add_post('/echo', echo)
web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), print=None, access_log=None)
"""


async def echo_rate(seconds: float = 3.0, concurrency: int = 32, size: int = 64 * 1024) -> float:
    import aiohttp

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(port)])  # noqa: ASYNC220
    try:
        await _wait_port(port)
        body = os.urandom(size)
        done = 0
        stop = time.perf_counter() + seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
            async def worker() -> None:
                nonlocal done
                while time.perf_counter() < stop:
                    async with s.post(f"http://127.0.0.1:{port}/echo", data=body) as r:
                        await r.read()
                    done += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return done / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait()


async def _wait_port(port: int, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


# ------------------------------------------------------------------------------------------------ the federation


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and all its descendants, from /proc."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2 :].split()
        ppid = int(rest[1])
        cpu = (int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])) / TICK
        stats[int(entry.name)] = (ppid, cpu)
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += stats[p][1]
        todo.extend(c for c, (pp, _) in stats.items() if pp == p)
    return total


@dataclass
class Federation:
    base: Path
    keys: Path
    verify: bool
    profile: bool = False
    parse_workers: int = 1
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    pki_port: int = 0

    @property
    def config(self) -> Path:
        return self.base / "config" / "docexchange.toml"

    def env(self) -> dict[str, str]:
        return dict(os.environ, DOCEXCHANGE_CONFIG=str(self.config), PYTHONUNBUFFERED="1")

    def write(self, pki_port: int) -> None:
        (self.base / "config").mkdir(parents=True, exist_ok=True)
        text = (REPO / "config" / "agencies.toml").read_text("utf-8")
        for node in NODES:
            self.ports[node] = free_port()
        for node, default in (("vdxp", 8441), ("lgsp-h49", 8442), ("lgsp-h57", 8443)):
            text = text.replace(f"port = {default}\n", f"port = {self.ports[node]}\n")
        (self.base / "config" / "agencies.toml").write_text(text, "utf-8")
        self.pki_port = pki_port
        self.config.write_text(f"""
[paths]
data_dir = "data"
keys_dir = "{self.keys}"
directory = "config/agencies.toml"

[pki]
port = {pki_port}

[verification]
nd30_on_arrival = {"true" if self.verify else "false"}

[exchange]
lease_seconds = 30
batch_max_items = 64
peer_concurrency = 2
verify_workers = 2
parse_workers = {self.parse_workers}

[scheduler]
retry_seconds = 1
""", "utf-8")

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "docexchange", *args], cwd=self.base, env=self.env(),
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(out.stderr + out.stdout)
        return out.stdout

    async def start(self) -> None:
        for node in NODES:
            log = (self.base / f"{node}.log").open("ab")
            env = self.env()
            if self.profile:
                env["DOCEXCHANGE_PROFILE"] = str(self.base / node)
            self.procs[node] = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
                [sys.executable, "-m", "docexchange", "serve", "--node", node, "--no-trust-services"],
                cwd=self.base, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        for node in NODES:
            await _wait_port(self.ports[node])

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def build_pki(keys: Path, pki_port: int, work: Path) -> None:
    """The dev PKI for the repo's directory, cached between runs in bench/results/."""
    if (keys / "pki.json").exists():
        return
    proj = work / "pki-build"
    (proj / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "agencies.toml", proj / "config" / "agencies.toml")
    (proj / "config" / "docexchange.toml").write_text(f'[paths]\nkeys_dir = "{keys}"\n\n[pki]\nport = {pki_port}\n')
    subprocess.run([sys.executable, "-m", "docexchange", "pki", "init"], cwd=proj, check=True,
                   env=dict(os.environ, DOCEXCHANGE_CONFIG=str(proj / "config" / "docexchange.toml")),
                   stdout=subprocess.DEVNULL)


def signed_pdfs(config: Path) -> tuple[bytes, bytes]:
    """Two real signed PDFs: a 100 KB one (a sample letter signed by UBND phường Hồng Gai's seal as an
    appendix — the organisation's signature without image, NĐ 30 annex), and the full NĐ 30 letter (official's
    blue signature, then the red seal, both images embedded: ~220 KB with these dev images)."""
    from docexchange.config import load_settings
    from docexchange.directory import load_directory
    from docexchange.signing import AppendixMark, LetterSpec, SigningService, make_letter

    settings = load_settings(config)
    directory = load_directory(settings.directory_file)
    with SigningService(settings) as service:
        seal = service.seal(SENDER)
        target = 100 * 1024
        small = b""
        for pad in (70_000, 80_000, 90_000):
            spec = LetterSpec.for_official(directory, "h49-honggai-chu-tich", target_bytes=pad)
            small = service.sign(make_letter(spec), seal, level="B-T", appendix=AppendixMark("05/UBND-VP"))
            if len(small) >= target * 0.97:
                break
        spec = LetterSpec.for_official(directory, "h49-honggai-chu-tich")
        full = service.sign(make_letter(spec), service.person("h49-honggai-chu-tich"), level="B-T")
        full = service.sign(full, seal, level="B-T")
        return small, full


def packets(pdf: bytes, n: int, tag: str) -> list[tuple[str, bytes]]:
    from docexchange.edxml.model import (
        Attachment,
        Bussiness,
        Code,
        DocumentPacket,
        DocumentType,
        Organization,
        OtherInfo,
        Priority,
        PromulgationInfo,
        TraceHeaderList,
        make_document_id,
    )
    from docexchange.edxml.writer import write_document

    out = []
    day = date.today()
    for i in range(n):
        code = Code(f"{i + 1}", f"{tag}-UBND")
        p = DocumentPacket(
            sender=Organization(SENDER, "Ủy ban nhân dân phường Hồng Gai"),
            to=(Organization(RECIPIENT, "Ủy ban nhân dân phường Thuận Hóa"),),
            document_id=make_document_id(SENDER, day, code), code=code,
            promulgation=PromulgationInfo(day, "Hạ Long"), document_type=DocumentType("Công văn"),
            subject=f"Văn bản đo hiệu năng số {i + 1}", other_info=OtherInfo(priority=Priority.NORMAL),
            trace=TraceHeaderList((), Bussiness.new()),
            attachments=(Attachment("cong-van.pdf", pdf),),
        )
        out.append((p.document_id, write_document(p)))
    return out


@dataclass
class Result:
    packets: int
    seconds: float
    latencies: list[float]
    verify_latencies: list[float]
    submit_latencies: list[float]
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.packets / self.seconds


def _q(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run_load(fed: Federation, secret: str, load: list[tuple[str, bytes]], concurrency: int,
                   rate: float | None = None) -> Result:
    """Submit ``load``: closed loop (``concurrency`` submits in flight, for throughput) or, with ``rate``, open
    loop at that many packets per second (for latency below saturation)."""
    from docexchange.web.client import AgencyClient

    ca = fed.keys / "ca" / "root.crt"
    started: dict[str, float] = {}
    submit_lat: list[float] = []
    cpu0 = {n: tree_cpu(p.pid) for n, p in fed.procs.items()}
    me0 = time.process_time()
    db = fed.base / "data" / "lgsp-h57.sqlite"
    before = _count(db, fed.verify)
    queue = list(reversed(load))
    url = f"https://127.0.0.1:{fed.ports['lgsp-h49']}"
    async with AgencyClient(url, "bench-hg", secret, ca_file=ca) as client:
        async def worker() -> None:
            while queue:
                doc_id, data = queue.pop()
                t = time.time()
                started[doc_id] = t
                await client.submit_packet(SENDER, data)
                submit_lat.append(time.time() - t)

        async def one(i: int, doc_id: str, data: bytes) -> None:
            await asyncio.sleep(max(0.0, t_first + i / rate - time.time()))  # type: ignore[operator]
            t = time.time()
            started[doc_id] = t
            await client.submit_packet(SENDER, data)
            submit_lat.append(time.time() - t)

        t_first = time.time()
        if rate:
            await asyncio.gather(*(one(i, d, b) for i, (d, b) in enumerate(load)))
        else:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    n = len(load)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if _count(db, fed.verify) >= before + n:
            break
        await asyncio.sleep(0.1)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT d.document_id, d.delivered_at, v.verified_at FROM deliveries d "
        "LEFT JOIN verifications v ON v.message_id = d.message_id "
        "WHERE d.kind = 'document' AND d.next_hop IS NULL"
    ).fetchall()
    conn.close()
    cpu = {n_: tree_cpu(p.pid) - cpu0[n_] for n_, p in fed.procs.items()}
    cpu["load generator"] = time.process_time() - me0
    mine = [r for r in rows if r[0] in started]
    last = max(r[2] if fed.verify and r[2] else r[1] for r in mine)
    return Result(
        packets=len(mine),
        seconds=last - t_first,
        latencies=[r[1] - started[r[0]] for r in mine],
        verify_latencies=[r[2] - started[r[0]] for r in mine if r[2]],
        submit_latencies=submit_lat,
        cpu=cpu,
    )


def _count(db: Path, verify: bool) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        if verify:
            sql = ("SELECT COUNT(*) FROM verifications WHERE state IN ('passed', 'failed', 'indeterminate')")
        else:
            sql = "SELECT COUNT(*) FROM deliveries WHERE kind = 'document' AND next_hop IS NULL"
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


async def scenario(work: Path, keys: Path, pki_port: int, verify: bool, load: list[tuple[str, bytes]],
                   concurrency: int, profile: bool = False, paced: int = 0,
                   parse_workers: int = 1) -> tuple[Result, Result | None]:
    fed = Federation(work / f"{'verify' if verify else 'route'}-p{parse_workers}", keys, verify, profile=profile,
                     parse_workers=parse_workers)
    paced_from = len(load) - paced
    fed.write(pki_port)
    secret_file = fed.base / "hg.secret"
    fed.cli("agency", "credentials", "create", "--node", "lgsp-h49", "--agency", SENDER, "--system-id", "bench-hg",
            "--secret-file", str(secret_file))
    await fed.start()
    try:
        # Warm up: connections, caches, the verifier's worker processes.
        warm = load[:20]
        await run_load(fed, secret_file.read_text().strip(), warm, min(concurrency, 8))
        if profile:
            for p in fed.procs.values():
                p.send_signal(signal.SIGUSR1)
        result = await run_load(fed, secret_file.read_text().strip(), load[20:paced_from], concurrency)
        if profile:
            for p in fed.procs.values():
                p.send_signal(signal.SIGUSR2)
            await asyncio.sleep(2.0)
        paced = None
        if paced_from < len(load):
            # Latency below saturation: an open-loop run at half the throughput just measured.
            await asyncio.sleep(2.0)
            paced = await run_load(fed, secret_file.read_text().strip(), load[paced_from:], concurrency,
                                   rate=max(1.0, result.rate * 0.5))
        return result, paced
    finally:
        fed.stop()


def report(name: str, r: Result, echo: float, fsync: float, commit1: float) -> dict[str, Any]:
    out = {
        "scenario": name,
        "packets": r.packets,
        "packets_per_s": round(r.rate, 1),
        "p50_ms": round(_q(r.latencies, 0.5) * 1000, 1),
        "p99_ms": round(_q(r.latencies, 0.99) * 1000, 1),
        "submit_p50_ms": round(_q(r.submit_latencies, 0.5) * 1000, 1),
        "submit_p99_ms": round(_q(r.submit_latencies, 0.99) * 1000, 1),
        "vs_echo": round(r.rate / echo, 3),
        "vs_fsync": round(r.rate / fsync, 3),
        "vs_sqlite_commit": round(r.rate / commit1, 3),
        "cpu_ms_per_packet": {k: round(v * 1000 / max(1, r.packets), 2) for k, v in r.cpu.items()},
    }
    if r.verify_latencies:
        out["verified_p50_ms"] = round(_q(r.verify_latencies, 0.5) * 1000, 1)
        out["verified_p99_ms"] = round(_q(r.verify_latencies, 0.99) * 1000, 1)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=2000, help="packets routed (routing-only run)")
    ap.add_argument("--verify-packets", type=int, default=300, help="packets in the run with verification on")
    ap.add_argument("--concurrency", type=int, default=48, help="submits in flight")
    ap.add_argument("--paced", type=int, default=300,
                    help="packets sent open-loop at half the measured rate, for latency below saturation")
    ap.add_argument("--skip-verify", action="store_true")
    ap.add_argument("--parse-workers", type=int, default=1,
                    help="[exchange] parse_workers of the nodes (0: the entry node parses in its event loop)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    ap.add_argument("--profile", action="store_true", help="run the nodes under cProfile (profiles kept in the "
                    "work folder; implies --keep; the figures are then slower)")
    args = ap.parse_args()
    args.keep = args.keep or args.profile

    results_dir = REPO / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-exchange-", dir=results_dir))
    keys = results_dir / "exchange-keys"
    pki_port = free_port()
    print(f"cpu cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    fsync = fsync_rate(work)
    commit1, commit32 = sqlite_rates(work)
    echo = await echo_rate()
    print(json.dumps({"baseline": {"fsync_per_s": round(fsync), "sqlite_commits_per_s_130KB": round(commit1),
                                   "sqlite_rows_per_s_130KB_grouped32": round(commit32),
                                   "aiohttp_echo_64KB_req_per_s": round(echo)}}), flush=True)
    # The PKI's URLs must point at the trust services we run: rebuild the cache if the port differs.
    if (keys / "pki.json").exists():
        manifest = json.loads((keys / "pki.json").read_text())
        m = re.search(r":(\d+)$", manifest.get("base_url", ""))
        if m:
            pki_port = int(m.group(1))
    build_pki(keys, pki_port, work)
    pki_proj = work / "pki"
    (pki_proj / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "agencies.toml", pki_proj / "config" / "agencies.toml")
    cfg = pki_proj / "config" / "docexchange.toml"
    cfg.write_text(f'[paths]\nkeys_dir = "{keys}"\n\n[pki]\nport = {pki_port}\n')
    trust = subprocess.Popen([sys.executable, "-m", "docexchange", "pki", "serve"], cwd=pki_proj,  # noqa: ASYNC220
                             env=dict(os.environ, DOCEXCHANGE_CONFIG=str(cfg)), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        await _wait_port(pki_port)
        small, full = await asyncio.to_thread(signed_pdfs, cfg)
        load = await asyncio.to_thread(packets, small, args.packets + 20 + args.paced, "R")
        print(json.dumps({"routing_pdf_bytes": len(small), "routing_packet_bytes": len(load[0][1]),
                          "verify_pdf_bytes": len(full)}), flush=True)
        routed, paced = await scenario(work, keys, pki_port, False, load, args.concurrency, args.profile,
                                       args.paced, args.parse_workers)
        print(json.dumps(report("routing only (verification deferred), saturated", routed, echo, fsync, commit1),
                         ensure_ascii=False), flush=True)
        if paced is not None:
            print(json.dumps(report("routing only, open loop at half that rate", paced, echo, fsync, commit1),
                             ensure_ascii=False), flush=True)
        if not args.skip_verify:
            vload = await asyncio.to_thread(packets, full, args.verify_packets + 20, "V")
            verified, _ = await scenario(work, keys, pki_port, True, vload, args.concurrency, args.profile,
                                         parse_workers=args.parse_workers)
            print(json.dumps(report("verification on, saturated", verified, echo, fsync, commit1),
                             ensure_ascii=False), flush=True)
    finally:
        trust.terminate()
        trust.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
