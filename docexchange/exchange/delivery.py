"""Forwarding: claim → send → receipt → state, one lane per neighbour.

Each neighbour (parent and children in the axis tree) has a lane of ``peer_concurrency`` workers. A worker
claims the highest-priority due deliveries bound for that neighbour (a lease, counted as an attempt), sends them
in one batch over a keep-alive mutual-TLS connection, checks each signed receipt against the neighbour's pinned
certificate and the digest it sent, and settles every delivery: ``forwarded`` on a valid receipt, ``retry_wait``
with the route's backoff on a temporary failure, ``dead`` when refused for good or out of attempts/window (and
then a report goes back to the sender's node). A crash at any point leaves the lease to expire and the delivery
to be sent again; the neighbour deduplicates it and answers with its original receipt: exactly once.

The circuit breaker of a neighbour opens after repeated failed transfers: its lane stops claiming (so queued
deliveries do not burn attempts while the node is down) until a probe (``ping``) succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from docexchange.clock import Clock
from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from docexchange.exchange.model import TrailEntry
from docexchange.exchange.receipts import InvalidReceipt, verify_receipt
from docexchange.exchange.retry import (
    BreakerPolicy,
    BreakerState,
    RetryPolicy,
    breaker_allows,
    breaker_failure,
    breaker_probe_due,
    breaker_success,
    next_attempt,
    policy_for,
)
from docexchange.exchange.routing import neighbours
from docexchange.exchange.service import NodeService
from docexchange.exchange.store import Claimed, Dead, Forwarded, Ingest, RetryLater, Settle, Store
from docexchange.exchange.transport import PeerTransport, TransferAnswer, WireItem

__all__ = ["Dispatcher", "LaneStats", "policies_from"]

log = logging.getLogger(__name__)


def policies_from(settings: Settings) -> tuple[RetryPolicy, list[tuple[str, RetryPolicy]], BreakerPolicy]:
    ex = settings.exchange
    base = RetryPolicy(
        max_attempts=ex.max_attempts,
        window=timedelta(hours=ex.retry_window_hours),
        base_delay=ex.retry_base_seconds,
        max_delay=max(ex.retry_max_delay_seconds, ex.retry_base_seconds),
    )
    routes = [
        (r.peer, RetryPolicy(max_attempts=r.max_attempts, window=timedelta(hours=r.retry_window_hours),
                             base_delay=base.base_delay, max_delay=base.max_delay))
        for r in ex.routes
    ]
    breaker = BreakerPolicy(
        failure_threshold=ex.breaker_failures,
        open_seconds=ex.breaker_open_seconds,
        max_open_seconds=ex.breaker_max_open_seconds,
    )
    return base, routes, breaker


@dataclass
class LaneStats:
    batches: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    failures: int = 0


class Dispatcher:
    def __init__(
        self,
        *,
        node_id: str,
        directory: Directory,
        store: Store,
        service: NodeService,
        transport: PeerTransport,
        clock: Clock,
        settings: Settings,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.node_id = node_id
        self.directory = directory
        self.store = store
        self.service = service
        self.transport = transport
        self.clock = clock
        self.rng = rng
        ex = settings.exchange
        self.lease = timedelta(seconds=ex.lease_seconds)
        self.batch_items = ex.batch_max_items
        self.batch_bytes = ex.batch_max_mb * 1024 * 1024
        self.concurrency = max(1, ex.peer_concurrency)
        self.idle_seconds = float(settings.scheduler.retry_seconds)
        self.default_policy, self.route_policies, self.breaker_policy = policies_from(settings)
        self.owner = f"{node_id}:{uuid.uuid4().hex[:12]}"
        self.peers = sorted(neighbours(directory, node_id))
        self.breakers: dict[str, BreakerState] = {p: BreakerState() for p in self.peers}
        self.stats: dict[str, LaneStats] = {p: LaneStats() for p in self.peers}
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._receipt_cache: dict[tuple[str, str, str], bool] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        # This node is the only user of its store (SQLite): leases held by an earlier run are void.
        recovered = await self.store.recover_leases(self.clock.now(), all_owners_except=self.owner)
        if recovered:
            log.info("%s: %d deliveries taken back from an earlier run", self.node_id, recovered)
        self._events = {p: asyncio.Event() for p in self.peers}
        for p in self.peers:
            self._events[p].set()
            for i in range(self.concurrency):
                self._tasks.append(asyncio.create_task(self._lane(p), name=f"lane-{self.node_id}-{p}-{i}"))

    async def stop(self) -> None:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    def wake(self, destination: str | None = None) -> None:
        if destination is None:
            for ev in self._events.values():
                ev.set()
        elif destination in self._events:
            self._events[destination].set()

    def policy(self, peer: str) -> RetryPolicy:
        return policy_for(self.default_policy, self.route_policies, peer)

    # -- scheduler entry points ----------------------------------------------------------------
    async def wake_due(self) -> None:
        """Wake lanes that have due retries (a scheduler job)."""
        for peer in await self.store.due_destinations(self.clock.now()):
            self.wake(peer)

    async def probe(self) -> None:
        """Probe neighbours whose breaker cool-down is over (a scheduler job)."""
        now = self.clock.now()
        for peer in self.peers:
            due, state = breaker_probe_due(self.breakers[peer], now, self.breaker_policy)
            if not due:
                continue
            self.breakers[peer] = state
            try:
                await self.transport.ping(peer)
            except DeliveryError as exc:
                self.breakers[peer] = breaker_failure(self.breakers[peer], self.clock.now(), self.breaker_policy,
                                                      str(exc))
                log.info("%s: probe of %s failed: %s", self.node_id, peer, exc.message_en)
            else:
                self.breakers[peer] = breaker_success(self.breakers[peer])
                log.info("%s: %s answers again; breaker closed", self.node_id, peer)
                self.wake(peer)

    # -- lanes ---------------------------------------------------------------------------------
    async def _lane(self, peer: str) -> None:
        ev = self._events[peer]
        while not self._stopping:
            try:
                if not breaker_allows(self.breakers[peer], self.clock.now()):
                    ev.clear()
                    await _wait(ev, self.idle_seconds)
                    continue
                ev.clear()
                now = self.clock.now()
                claimed = await self.store.claim(peer, self.batch_items, self.batch_bytes, self.owner, now,
                                                 now + self.lease)
                if not claimed:
                    await _wait(ev, self.idle_seconds)
                    continue
                ev.set()  # there may be more: let the next worker look too
                await self._send(peer, claimed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: lane to %s failed", self.node_id, peer)
                await asyncio.sleep(1.0)

    async def _send(self, peer: str, claimed: Sequence[Claimed]) -> None:
        stats = self.stats[peer]
        stats.batches += 1
        digests = [c.message.digest for c in claimed]
        payloads = await self.store.payloads(digests)
        reported: list[str] = []
        for c in claimed:
            for ev in c.message.meta.get("reports", []) or []:
                if isinstance(ev, dict) and "delivery_id" in ev:
                    reported.append(str(ev["delivery_id"]))
        # Only delivery reports carry trail entries (upstream, to the sender's node, which keeps the whole
        # journey); a packet going downstream travels without its past.
        trails = await self.store.reports_trail(reported) if reported else {}
        by_message: dict[str, list[Claimed]] = {}
        for c in claimed:
            by_message.setdefault(c.message.message_id, []).append(c)
        items: list[WireItem] = []
        missing: list[Claimed] = []
        for mid, group in by_message.items():
            m = group[0].message
            payload = payloads.get(m.digest)
            if payload is None:
                missing.extend(group)
                continue
            trail: dict[str, list[TrailEntry]] = {}
            for ev in m.meta.get("reports", []) or []:
                did = str(ev.get("delivery_id", "")) if isinstance(ev, dict) else ""
                if did and did in trails:
                    trail[did] = trails[did]
            items.append(WireItem(
                message_id=mid, kind=m.kind, sender=m.sender, document_id=m.document_id, priority=m.priority,
                origin_node=m.origin_node, digest=m.digest, recipients=tuple(c.delivery.recipient for c in group),
                payload=payload, business_type=m.business_type, status_code=m.status_code,
                created_at=m.created_at.isoformat(), meta=m.meta, trail=trail,
            ))
        now = self.clock.now()
        outcomes: list[Settle] = []
        followups: list[Ingest] = []
        for c in missing:
            reason = "payload missing from the store"
            outcomes.append(Dead(c.delivery.delivery_id, reason, now))
            followups.extend(self.service.dead_report(c.delivery, c.message, reason, now))
        sent = [c for c in claimed if c not in missing]
        if items:
            try:
                answer = await self.transport.transfer(peer, items)
            except RetryableDeliveryError as exc:
                self._failed(peer, str(exc))
                outcomes.extend(self._retry(peer, sent, exc.message_en, followups))
            except PermanentDeliveryError as exc:
                # The whole channel refused (credentials, pins, misconfiguration): keep the mail, retry later.
                self._failed(peer, str(exc))
                outcomes.extend(self._retry(peer, sent, exc.message_en, followups))
            else:
                self.breakers[peer] = breaker_success(self.breakers[peer])
                outcomes.extend(self._settle_answer(peer, sent, answer, followups))
        for o in outcomes:
            if isinstance(o, Forwarded):
                stats.delivered += 1
            elif isinstance(o, RetryLater):
                stats.retried += 1
            elif isinstance(o, Dead):
                stats.dead += 1
        await self.store.settle(outcomes, self.owner, self.clock.now(), followups)
        if followups:
            self.service.notify(destinations=[f.deliveries[0].next_hop for f in followups])

    def _failed(self, peer: str, error: str) -> None:
        self.stats[peer].failures += 1
        before = self.breakers[peer]
        self.breakers[peer] = breaker_failure(before, self.clock.now(), self.breaker_policy, error)
        if self.breakers[peer].status != before.status:
            log.warning("%s: breaker to %s opened: %s", self.node_id, peer, error)

    def _retry(self, peer: str, claimed: Sequence[Claimed], error: str, followups: list[Ingest]) -> list[Settle]:
        now = self.clock.now()
        policy = self.policy(peer)
        out: list[Settle] = []
        for c in claimed:
            d = c.delivery
            decision = next_attempt(policy, d.attempts, d.first_attempt_at or now, now, self.rng())
            if decision.retry_at is None:
                reason = f"{error} ({'hết số lần thử' if decision.reason == 'max_attempts' else 'quá thời hạn'}: " \
                         f"{decision.reason})"
                out.append(Dead(d.delivery_id, reason, now))
                followups.extend(self.service.dead_report(d, c.message, reason, now))
            else:
                out.append(RetryLater(d.delivery_id, decision.retry_at, error))
        return out

    def _receipt_ok(self, peer: str, receipt: dict[str, Any], delivery_id: str, sent_digest: str) -> bool:
        try:
            sig_key = (peer, str(receipt.get("root")), str(receipt.get("sig")))
            cached = self._receipt_cache.get(sig_key)
            cert = self.transport.tls.pins[peer]
            if cached:
                # The signature over this root was checked already: check the leaf and its path only.
                verify_receipt(receipt, cert, node=peer, delivery_id=delivery_id, received_digest=sent_digest,
                               signature_checked=True)
            else:
                verify_receipt(receipt, cert, node=peer, delivery_id=delivery_id, received_digest=sent_digest)
                if len(self._receipt_cache) > 4096:
                    self._receipt_cache.clear()
                self._receipt_cache[sig_key] = True
            return True
        except InvalidReceipt as exc:
            log.error("%s: invalid receipt from %s for %s: %s", self.node_id, peer, delivery_id, exc.message_en)
            return False

    def _settle_answer(self, peer: str, claimed: Sequence[Claimed], answer: TransferAnswer,
                       followups: list[Ingest]) -> list[Settle]:
        now = self.clock.now()
        receipts = {str(r.get("delivery_id")): dict(r) for r in answer.receipts}
        refusals = {r.delivery_id: r for r in answer.refused}
        out: list[Settle] = []
        retry: list[Claimed] = []
        for c in claimed:
            did = c.delivery.delivery_id
            r = receipts.get(did)
            if r is not None and self._receipt_ok(peer, r, did, c.message.digest):
                out.append(Forwarded(did, r, now))
                continue
            ref = refusals.get(did)
            if ref is not None and not ref.retry:
                reason = f"{peer}: {ref.message_vi} ({ref.code})"
                out.append(Dead(did, reason, now))
                followups.extend(self.service.dead_report(c.delivery, c.message, reason, now))
                continue
            retry.append(c)
        if retry:
            why = "; ".join(sorted({refusals[c.delivery.delivery_id].message_en for c in retry
                                    if c.delivery.delivery_id in refusals})) or "no valid receipt"
            out.extend(self._retry(peer, retry, why, followups))
        return out


async def _wait(ev: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(ev.wait(), seconds)
    except TimeoutError:
        pass

