"""Arrival verification: every document delivered to a mailbox here is checked against the NĐ 30 profile (the
person's signature, then the seal of the *sending* agency) — never on the event loop.

Verification is CPU-bound (tens of milliseconds per PDF) and handles untrusted bytes: the
:class:`~docexchange.verify.Verifier` parses each PDF in a long-lived worker process of its own, bounded in time
and memory (``[verification] isolation = "process"``). This module keeps ``[exchange] verify_workers`` such
verifiers, each driven from a thread of a small pool, and loads the verifier, the trust anchors and the
directory once per worker.

A document that fails gets status 02 back to its sender, with the reasons, automatically (configurable:
``[exchange] auto_reject_invalid``). The result (passed / failed / indeterminate) and the full report are kept
with the message and shown in the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from docexchange.clock import Clock
from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.exchange.model import Verification
from docexchange.exchange.service import NodeService
from docexchange.exchange.store import Store, VerificationJob, VerificationResult

__all__ = ["PacketVerifier", "VerificationRunner", "make_pool", "verify_packet"]

log = logging.getLogger(__name__)

VerifyFn = Callable[[bytes, str], dict[str, Any]]


def _indication(report: Any) -> str:
    """ETSI main indication as ``TOTAL_PASSED`` / ``INDETERMINATE`` / ``TOTAL_FAILED``."""
    value = getattr(report, "indication", "")
    return str(getattr(value, "value", value)).replace("-", "_")


def _report_json(report: Any) -> Any:
    if not hasattr(report, "to_json"):
        return None
    data = report.to_json(indent=None)
    return json.loads(data) if isinstance(data, (str, bytes)) else data


class PacketVerifier:
    """Verifies the PDFs of document packets; one verifier (and its sandbox process) per calling thread."""

    def __init__(self, settings: Settings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory
        self.max_bytes = settings.exchange.max_packet_mb * 1024 * 1024
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def _verifier(self) -> Any:
        v = getattr(self._local, "verifier", None)
        if v is None:
            from docexchange.verify import Verifier

            v = Verifier.from_settings(self.settings, self.directory)
            self._local.verifier = v
            with self._lock:
                self._all.append(v)
        return v

    def close(self) -> None:
        with self._lock:
            for v in self._all:
                with contextlib.suppress(Exception):
                    v.close()
            self._all.clear()

    def __call__(self, data: bytes, sender: str) -> dict[str, Any]:
        return verify_packet(data, sender, self._verifier(), self.max_bytes)


def verify_packet(data: bytes, sender: str, verifier: Any, max_bytes: int = 50 << 20) -> dict[str, Any]:
    """Verify every PDF of a document packet: the main document with the NĐ 30 profile (person + the sender's
    seal), the others as appendices (the sender's seal). Returns a JSON-able summary whose ``result`` is
    ``failed`` when a signature is broken or a profile rule is not met (the seal of another agency), and
    ``indeterminate`` only when validity cannot be established yet (e.g. revocation status unavailable)."""
    from docexchange.edxml._xml import ReadLimits
    from docexchange.edxml.model import DocumentPacket
    from docexchange.edxml.reader import read_packet
    from docexchange.errors import DocExchangeError

    try:
        packet = read_packet(data, limits=ReadLimits(max_packet_bytes=max_bytes))
    except DocExchangeError as exc:
        return {"result": "failed", "reasons_vi": [f"Gói tin không đọc được: {exc.message_vi}"], "files": []}
    if not isinstance(packet, DocumentPacket):
        return {"result": "skipped", "reasons_vi": [], "files": []}
    pdfs = [a for a in packet.attachments if a.content[:5] == b"%PDF-" or a.content_type == "application/pdf"]
    if not pdfs:
        return {"result": "failed", "reasons_vi": ["Văn bản không có tệp PDF đã ký"], "files": []}
    files = []
    reasons: list[str] = []
    worst = "passed"
    for i, att in enumerate(pdfs):
        try:
            report = verifier.verify_pdf(att.content, name=att.name, sender=sender,
                                         policy="nd30" if i == 0 else "nd30-appendix")
        except DocExchangeError as exc:
            files.append({"name": att.name, "indication": "INDETERMINATE", "label_vi": "chưa xác định",
                          "reasons_vi": [exc.message_vi], "report": None})
            reasons.append(f"{att.name}: {exc.message_vi}")
            if worst != "failed":
                worst = "indeterminate"
            continue
        ind = _indication(report)
        file_reasons = [str(r) for r in getattr(report, "reasons_vi", ())]
        files.append({
            "name": att.name,
            "indication": ind,
            "label_vi": str(getattr(report, "label_vi", "")),
            "reasons_vi": file_reasons,
            "report": _report_json(report),
        })
        policy = getattr(report, "policy", None)
        broken = [r for r in getattr(policy, "failed_rules", ()) if r.id != "nd30.signatures_valid"]
        files[-1]["profile_failures"] = [r.id for r in broken]
        if ind == "TOTAL_FAILED" or broken:
            # Cryptographically broken, or a rule of the NĐ 30 profile is not met (above all: the seal is not
            # the sending agency's): the document is returned. Only "cannot tell yet" stays indeterminate.
            worst = "failed"
            reasons.extend(f"{att.name}: {r}" for r in file_reasons or ["không hợp lệ"])
        elif ind != "TOTAL_PASSED" and worst != "failed":
            worst = "indeterminate"
            reasons.extend(f"{att.name}: {r}" for r in file_reasons)
    return {"result": worst, "reasons_vi": reasons, "files": files}


def make_pool(workers: int) -> ThreadPoolExecutor:
    """Threads that drive the verifiers' worker processes (the CPU work happens in those processes)."""
    return ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="verify")


class VerificationRunner:
    def __init__(
        self,
        *,
        service: NodeService,
        store: Store,
        clock: Clock,
        settings: Settings,
        executor: Executor | None = None,
        verify: VerifyFn | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.clock = clock
        self.settings = settings
        self._own_verifier: PacketVerifier | None = None
        if verify is None:
            verify = self._own_verifier = PacketVerifier(settings, service.directory)
        self.verify = verify
        self.executor = executor
        self.concurrency = concurrency or max(1, settings.exchange.verify_workers)
        self.lease = timedelta(seconds=max(60, settings.exchange.lease_seconds * 5))
        self.owner = f"verify:{service.node_id}:{uuid.uuid4().hex[:8]}"
        self.auto_reject = settings.exchange.auto_reject_invalid
        self._event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.done = 0
        service.on_queued(lambda _dest: self._event.set())

    async def start(self) -> None:
        self._event.set()
        for i in range(self.concurrency):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"verify-{self.service.node_id}-{i}"))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self._own_verifier is not None:
            await asyncio.to_thread(self._own_verifier.close)

    async def _worker(self) -> None:
        while not self._stopping:
            try:
                self._event.clear()
                now = self.clock.now()
                jobs = await self.store.claim_verifications(1, self.owner, now, now + self.lease)
                if not jobs:
                    try:
                        await asyncio.wait_for(self._event.wait(), 2.0)
                    except TimeoutError:
                        pass
                    continue
                self._event.set()
                for job in jobs:
                    await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("verification worker failed")
                await asyncio.sleep(2.0)

    async def _run(self, job: VerificationJob) -> None:
        data = (await self.store.payloads([job.digest])).get(job.digest)
        at = self.clock.now()
        if data is None:
            summary: Mapping[str, Any] = {"result": "failed", "reasons_vi": ["Gói tin không còn trong kho"],
                                          "files": []}
        else:
            loop = asyncio.get_running_loop()
            summary = await loop.run_in_executor(self.executor, self.verify, data, job.sender)
        result = Verification(summary.get("result", "indeterminate"))
        followups: tuple[Any, ...] = ()
        if result == Verification.FAILED and self.auto_reject:
            followups = self.service.rejection_followups(
                job.meta, job.message_id, job.sender, job.document_id, job.priority, job.recipients,
                list(summary.get("reasons_vi", [])), at,
            )
        await self.store.finish_verification(
            VerificationResult(job.message_id, result, summary, self.clock.now(), followups), self.owner
        )
        self.done += 1
        if followups:
            self.service.notify(destinations=[f.deliveries[0].next_hop for f in followups])
