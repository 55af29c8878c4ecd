"""Several worker processes per axis node over one PostgreSQL (``docexchange serve --workers N``).

The supervisor (the ``serve`` process) applies the schema migrations once, runs the trust services if asked,
then starts N worker processes. Every worker runs the same nodes in full: it listens on each node's port with
``SO_REUSEPORT`` (the kernel spreads incoming connections over the workers; any load balancer in front works
too), accepts agency and peer requests, forwards with its own dispatcher lanes and verifies arrivals with its
own verification pool. The workers share nothing but the database: a packet is stored (and its receipt signed)
by whichever worker took the request; work is claimed with ``FOR UPDATE SKIP LOCKED`` leases, so a worker that
dies — even ``kill -9`` — loses nothing: its leases return to the queue as soon as its liveness lock is gone
(see :mod:`docexchange.exchange.postgres_store`) and another worker sends them; the next node deduplicates.

The supervisor restarts a worker that exits unexpectedly (after 1 s, doubling up to 30 s while it keeps
failing). A worker that fails before it ever became ready stops the whole start-up (a configuration error must
not loop). SIGINT/SIGTERM stop every worker gracefully (SIGKILL after ``stop_timeout``). Each worker asks the
kernel to send it SIGTERM if the supervisor dies, so no orphan keeps serving.

Worker entry point: ``python -m docexchange.exchange.workers --index I --node ID … [--no-verify]`` (the
configuration comes from ``$DOCEXCHANGE_CONFIG``, as for every command).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from docexchange.config import CONFIG_ENV, Settings, load_settings
from docexchange.errors import ConfigError, DocExchangeError

__all__ = ["READY", "WorkerPlan", "check_plan", "supervise", "worker_main"]

log = logging.getLogger(__name__)

READY = "docexchange-worker-ready"
"""Printed by a worker once all its nodes listen."""


@dataclass(frozen=True)
class WorkerPlan:
    nodes: tuple[str, ...]
    workers: int
    config_path: Path | None = None
    verify_on_arrival: bool | None = None
    trust_services: bool = False
    restart: bool = True
    """Restart a worker that exits unexpectedly (after start-up)."""
    stop_timeout: float = 30.0
    """Seconds a worker has to stop gracefully before SIGKILL."""


def check_plan(settings: Settings, plan: WorkerPlan) -> None:
    if plan.workers < 1:
        raise ConfigError("Số tiến trình phải ≥ 1", f"--workers must be at least 1, not {plan.workers}")
    url = settings.store.url.strip()
    if plan.workers > 1 and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "Nhiều tiến trình cho một trục chỉ dùng được với kho PostgreSQL ([store] url = \"postgresql://…\")",
            "several worker processes per node need the PostgreSQL store ([store] url = \"postgresql://…\")",
        )
    if not plan.nodes:
        raise ConfigError("Không có trục nào để chạy", "no node to run")


# ---------------------------------------------------------------------------------------------------- supervisor


@dataclass
class _Worker:
    index: int
    proc: asyncio.subprocess.Process | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = 0.0
    restarts: int = 0
    delay: float = 1.0
    relay: asyncio.Task[None] | None = None


class _Supervisor:
    def __init__(self, settings: Settings, plan: WorkerPlan, out: TextIO) -> None:
        self.settings = settings
        self.plan = plan
        self.out = out
        self.stopping = False
        self.failed: str | None = None
        self.workers = [_Worker(i) for i in range(plan.workers)]
        self.changed = asyncio.Event()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _argv(self, w: _Worker) -> list[str]:
        argv = [sys.executable, "-m", "docexchange.exchange.workers", "--index", str(w.index)]
        for n in self.plan.nodes:
            argv += ["--node", n]
        if self.plan.verify_on_arrival is False:
            argv.append("--no-verify")
        elif self.plan.verify_on_arrival is True:
            argv.append("--verify")
        return argv

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.plan.config_path is not None:
            env[CONFIG_ENV] = str(Path(self.plan.config_path).resolve())
        return env

    async def spawn(self, w: _Worker) -> None:
        w.ready.clear()
        w.proc = await asyncio.create_subprocess_exec(
            *self._argv(w), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=self._env(),
            cwd=self.settings.base_dir,
        )
        w.started = time.monotonic()
        w.relay = asyncio.create_task(self._relay(w, w.proc), name=f"relay-w{w.index}")

    async def _relay(self, w: _Worker, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip()
            if text == READY:
                w.ready.set()
                self.changed.set()
                continue
            self.say(f"[w{w.index} {proc.pid}] {text}")
        await proc.wait()
        self.changed.set()

    async def start_all(self) -> None:
        await asyncio.gather(*(self.spawn(w) for w in self.workers))
        while not all(w.ready.is_set() for w in self.workers):
            for w in self.workers:
                if w.proc is not None and w.proc.returncode is not None and not w.ready.is_set():
                    self.failed = f"worker {w.index} exited with code {w.proc.returncode} during start-up"
                    return
            if self.stopping:
                return
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)

    async def watch(self, stop: asyncio.Event) -> None:
        """Restart workers that exit (each after its own backoff) until ``stop`` is set."""
        pending: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                self.changed.clear()
                for w in self.workers:
                    proc = w.proc
                    if proc is None or proc.returncode is None:
                        continue
                    w.proc = None
                    if not self.plan.restart:
                        self.say(f"Tiến trình w{w.index} (pid {proc.pid}) đã dừng, mã {proc.returncode}; không "
                                 "khởi động lại (worker exited, not restarted)")
                        continue
                    if time.monotonic() - w.started > 60:
                        w.delay = 1.0
                    delay, w.delay = w.delay, min(w.delay * 2, 30.0)
                    self.say(f"Tiến trình w{w.index} (pid {proc.pid}) dừng bất thường, mã {proc.returncode}: khởi "
                             f"động lại sau {delay:.0f} s (worker exited unexpectedly; restarting)")
                    task = asyncio.create_task(self._restart_later(w, delay, stop))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(_either(self.changed, stop), 1.0)
        finally:
            for t in pending:
                t.cancel()

    async def _restart_later(self, w: _Worker, delay: float, stop: asyncio.Event) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set() or self.stopping:
            return
        w.restarts += 1
        await self.spawn(w)

    async def stop_all(self) -> None:
        self.stopping = True
        procs = [w.proc for w in self.workers if w.proc is not None and w.proc.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.plan.stop_timeout
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                self.say(f"Tiến trình pid {p.pid} không dừng kịp: SIGKILL (did not stop in time)")
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
        for w in self.workers:
            if w.relay is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(w.relay, 5)


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    ta, tb = asyncio.create_task(a.wait()), asyncio.create_task(b.wait())
    try:
        await asyncio.wait({ta, tb}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ta.cancel()
        tb.cancel()


async def supervise(settings: Settings, plan: WorkerPlan, *, out: TextIO | None = None,
                    stop: asyncio.Event | None = None,
                    on_ready: Callable[[Sequence[int]], None] | None = None) -> int:
    """Run ``plan.workers`` worker processes for ``plan.nodes`` until SIGINT/SIGTERM (or ``stop`` is set).
    Returns the exit status (0 after a clean stop, 1 when start-up failed)."""
    from docexchange.exchange.schema_admin import migrate_node

    check_plan(settings, plan)
    stream = out or sys.stdout
    sup = _Supervisor(settings, plan, stream)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    trust = None
    try:
        for node in plan.nodes:  # once, before the workers race for it
            await migrate_node(settings, node)
        if plan.trust_services:
            from docexchange.cli.serve import start_trust_services

            trust = await start_trust_services(settings)
        starting = asyncio.create_task(sup.start_all())
        await asyncio.wait({starting, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            sup.stopping = True
            await starting
        if sup.failed is not None:
            sup.say(f"Không khởi động được các tiến trình: {sup.failed} (start-up failed)")
            return 1
        if stop.is_set():
            return 0
        pids = [w.proc.pid for w in sup.workers if w.proc is not None]
        sup.say(f"{plan.workers} tiến trình cho {', '.join(plan.nodes)} đã sẵn sàng "
                f"({plan.workers} workers ready, pids {' '.join(map(str, pids))})")
        if on_ready is not None:
            on_ready(pids)
        sup.say("Nhấn Ctrl+C để dừng (press Ctrl+C to stop).")
        await sup.watch(stop)
        return 0
    finally:
        await sup.stop_all()
        if trust is not None:
            await trust.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_workers(settings: Settings, plan: WorkerPlan) -> int:
    """Blocking entry point for ``docexchange serve --workers N``."""
    return asyncio.run(supervise(settings, plan))


# ---------------------------------------------------------------------------------------------------- worker


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when the supervisor goes away (best effort elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable")
    if os.getppid() == 1:  # the supervisor died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


async def _worker(settings: Settings, nodes: Sequence[str], verify: bool | None) -> None:
    from docexchange.cli.serve import NodeSet

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nodeset = NodeSet(settings, reuse_port=True)
    try:
        await nodeset.start(nodes, verify_on_arrival=verify, quiet=True)
        print(READY, flush=True)
        await stop.wait()
    finally:
        await nodeset.stop()


def worker_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docexchange.exchange.workers",
                                     description="One worker process of docexchange serve --workers N.")
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--node", action="append", required=True)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-verify", action="store_true")
    group.add_argument("--verify", action="store_true")
    args = parser.parse_args(argv)
    _die_with_parent()
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s %(levelname)s w{args.index} %(name)s: %(message)s")
    verify = False if args.no_verify else (True if args.verify else None)
    try:
        settings = load_settings()
        asyncio.run(_worker(settings, args.node, verify))
    except DocExchangeError as exc:
        print(f"Lỗi [{exc.code}]: {exc.message_vi} — {exc.message_en}", flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
