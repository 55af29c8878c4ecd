"""Periodic jobs of a node on apscheduler's AsyncIOScheduler. Each job calls the core and holds no logic:

* ``retries`` — wake the lanes that have deliveries whose backoff has elapsed;
* ``leases`` — return expired leases (a worker that died mid-transfer) to the queue;
* ``probes`` — probe neighbours whose circuit breaker cool-down is over;
* ``housekeeping`` — drop expired request nonces and unreferenced payloads.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from docexchange.clock import Clock
from docexchange.config import SchedulerSettings
from docexchange.exchange.delivery import Dispatcher
from docexchange.exchange.store import Store

__all__ = ["build_scheduler"]

log = logging.getLogger(__name__)


def build_scheduler(
    settings: SchedulerSettings,
    *,
    store: Store,
    clock: Clock,
    dispatcher: Dispatcher | None,
    node_id: str,
) -> AsyncIOScheduler:
    """A scheduler with the node's jobs, not started (``start()`` inside the running event loop)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}

    async def leases() -> None:
        n = await store.recover_leases(clock.now())
        if n:
            log.info("%s: %d expired leases returned to the queue", node_id, n)

    async def housekeeping() -> None:
        removed = await store.housekeeping(clock.now())
        if any(removed.values()):
            log.info("%s: housekeeping removed %s", node_id, removed)

    if dispatcher is not None:
        scheduler.add_job(dispatcher.wake_due, "interval", seconds=max(1, settings.retry_seconds),
                          id=f"{node_id}-retries", **common)
        scheduler.add_job(dispatcher.probe, "interval", seconds=1, id=f"{node_id}-probes", **common)
    scheduler.add_job(leases, "interval", seconds=max(1, settings.lease_recovery_seconds), id=f"{node_id}-leases",
                      **common)
    scheduler.add_job(housekeeping, "interval", minutes=max(1, settings.housekeeping_minutes),
                      id=f"{node_id}-housekeeping", **common)
    return scheduler
