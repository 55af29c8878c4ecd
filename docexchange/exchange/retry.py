"""Retry policy and circuit breaker: pure functions of values (no clock, no randomness inside).

* :func:`next_attempt` decides, after a failed attempt, when to try again or that the delivery is dead: an
  exponential backoff with jitter, bounded by the route's maximum attempts and total window.
* The circuit breaker keeps one :class:`BreakerState` per destination node. After ``failure_threshold``
  consecutive failures it opens: nothing is sent there (so queued deliveries do not burn attempts while a node
  is down) until a probe succeeds. Probes are spaced by a growing cool-down.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "BreakerStatus",
    "RetryDecision",
    "RetryPolicy",
    "backoff_delay",
    "breaker_allows",
    "breaker_failure",
    "breaker_probe_due",
    "breaker_success",
    "next_attempt",
    "policy_for",
]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 12
    """Attempts (including the first) before the delivery becomes a dead letter."""
    window: timedelta = timedelta(hours=48)
    """Total time from the first attempt after which no more attempts are made."""
    base_delay: float = 1.0
    """Seconds before the second attempt."""
    factor: float = 2.0
    """Growth of the delay per further attempt."""
    max_delay: float = 600.0
    """Ceiling of one delay, seconds."""
    jitter: float = 0.2
    """Spread of the delay: ±jitter × delay, so retries from many deliveries do not move in lockstep."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay <= 0 or self.factor < 1 or self.max_delay < self.base_delay:
            raise ValueError("need base_delay > 0, factor >= 1, max_delay >= base_delay")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.window <= timedelta(0):
            raise ValueError("window must be positive")


@dataclass(frozen=True)
class RetryDecision:
    retry_at: datetime | None
    """When to try again; None when the delivery is dead."""
    reason: str = ""
    """Why it is dead (``max_attempts`` or ``window``); empty when it will be retried."""

    @property
    def dead(self) -> bool:
        return self.retry_at is None


def backoff_delay(policy: RetryPolicy, attempts: int, spread: float = 0.5) -> timedelta:
    """Delay after the ``attempts``-th failed attempt (1-based). ``spread`` in [0, 1] picks the point in the
    jitter band (0.5 = the middle, no jitter)."""
    if attempts < 1:
        raise ValueError("attempts is 1-based")
    if not 0 <= spread <= 1:
        raise ValueError("spread must be in [0, 1]")
    raw = min(policy.max_delay, policy.base_delay * policy.factor ** (attempts - 1))
    return timedelta(seconds=raw * (1 + policy.jitter * (2 * spread - 1)))


def next_attempt(
    policy: RetryPolicy, attempts: int, first_attempt_at: datetime, now: datetime, spread: float = 0.5
) -> RetryDecision:
    """After ``attempts`` failed attempts (the first at ``first_attempt_at``), the decision at ``now``."""
    if attempts >= policy.max_attempts:
        return RetryDecision(None, "max_attempts")
    deadline = first_attempt_at + policy.window
    if now >= deadline:
        return RetryDecision(None, "window")
    return RetryDecision(min(now + backoff_delay(policy, attempts, spread), deadline))


def policy_for(default: RetryPolicy, overrides: Iterable[tuple[str, RetryPolicy]], destination: str) -> RetryPolicy:
    """The policy of the route to ``destination``: its override if one is configured, else the default."""
    for name, policy in overrides:
        if name == destination:
            return policy
    return default


class BreakerStatus(str, enum.Enum):
    CLOSED = "closed"
    """Traffic flows."""
    OPEN = "open"
    """The destination is failing: nothing is sent until the cool-down ends and a probe succeeds."""
    HALF_OPEN = "half_open"
    """Cool-down over: one probe is allowed; its outcome closes or re-opens the breaker."""


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 3
    """Consecutive failures that open the breaker."""
    open_seconds: float = 2.0
    """First cool-down."""
    max_open_seconds: float = 60.0
    """Longest cool-down (reached by doubling at each failed probe)."""
    probe_timeout_seconds: float = 30.0
    """A probe not reported within this time counts as lost and another may start."""


@dataclass(frozen=True)
class BreakerState:
    status: BreakerStatus = BreakerStatus.CLOSED
    failures: int = 0
    """Consecutive failures while closed."""
    trips: int = 0
    """Consecutive openings without a success in between (drives the cool-down)."""
    open_until: datetime | None = None
    probe_started: datetime | None = None
    last_error: str = ""


def breaker_allows(state: BreakerState, now: datetime) -> bool:
    """May traffic be sent now? Only a closed breaker lets ordinary batches through."""
    return state.status == BreakerStatus.CLOSED


def breaker_probe_due(state: BreakerState, now: datetime, policy: BreakerPolicy) -> tuple[bool, BreakerState]:
    """Is a probe due now? Returns the state to keep (half-open with the probe's start time if one is due)."""
    if state.status == BreakerStatus.OPEN and state.open_until is not None and now >= state.open_until:
        return True, replace(state, status=BreakerStatus.HALF_OPEN, probe_started=now)
    if (
        state.status == BreakerStatus.HALF_OPEN
        and state.probe_started is not None
        and now - state.probe_started >= timedelta(seconds=policy.probe_timeout_seconds)
    ):
        return True, replace(state, probe_started=now)
    return False, state


def breaker_success(state: BreakerState) -> BreakerState:
    return BreakerState()


def breaker_failure(state: BreakerState, now: datetime, policy: BreakerPolicy, error: str = "") -> BreakerState:
    if state.status == BreakerStatus.CLOSED:
        failures = state.failures + 1
        if failures < policy.failure_threshold:
            return replace(state, failures=failures, last_error=error)
    trips = state.trips + 1
    cool = min(policy.max_open_seconds, policy.open_seconds * 2 ** (trips - 1))
    return BreakerState(
        status=BreakerStatus.OPEN,
        failures=0,
        trips=trips,
        open_until=now + timedelta(seconds=cool),
        probe_started=None,
        last_error=error,
    )
