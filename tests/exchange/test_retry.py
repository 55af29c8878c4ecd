"""The pure retry policy and circuit breaker: table-driven, no clock, no randomness inside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from docexchange.exchange.retry import (
    BreakerPolicy,
    BreakerState,
    BreakerStatus,
    RetryPolicy,
    backoff_delay,
    breaker_allows,
    breaker_failure,
    breaker_probe_due,
    breaker_success,
    next_attempt,
    policy_for,
)

T0 = datetime(2025, 1, 5, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 256.0), (10, 300.0), (30, 300.0)],
)
def test_backoff_grows_exponentially_up_to_the_ceiling(attempts: int, expected: float) -> None:
    policy = RetryPolicy(base_delay=1.0, factor=2.0, max_delay=300.0, jitter=0.2)
    assert backoff_delay(policy, attempts, spread=0.5) == timedelta(seconds=expected)


def test_jitter_band_is_symmetric_and_bounded() -> None:
    policy = RetryPolicy(base_delay=10.0, factor=2.0, max_delay=100.0, jitter=0.2)
    assert backoff_delay(policy, 1, spread=0.0) == timedelta(seconds=8.0)
    assert backoff_delay(policy, 1, spread=1.0) == timedelta(seconds=12.0)
    for spread in (0.0, 0.1, 0.37, 0.9, 1.0):
        d = backoff_delay(policy, 4, spread).total_seconds()
        assert 64.0 - 1e-9 <= d <= 96.0 + 1e-9  # 10 × 2³ = 80 s ± 20 %


def test_max_attempts_makes_a_dead_letter() -> None:
    policy = RetryPolicy(max_attempts=3, window=timedelta(hours=1))
    assert not next_attempt(policy, 1, T0, T0).dead
    assert not next_attempt(policy, 2, T0, T0 + timedelta(seconds=5)).dead
    decision = next_attempt(policy, 3, T0, T0 + timedelta(seconds=10))
    assert decision.dead and decision.reason == "max_attempts"


def test_total_window_makes_a_dead_letter_and_clamps_the_last_retry() -> None:
    policy = RetryPolicy(max_attempts=100, window=timedelta(minutes=10), base_delay=60, max_delay=600)
    # The next delay (8 min at attempt 4) would overshoot the window: the retry is clamped to its end.
    decision = next_attempt(policy, 4, T0, T0 + timedelta(minutes=5))
    assert decision.retry_at == T0 + timedelta(minutes=10)
    dead = next_attempt(policy, 5, T0, T0 + timedelta(minutes=10))
    assert dead.dead and dead.reason == "window"


def test_retry_time_is_after_now() -> None:
    policy = RetryPolicy()
    now = T0 + timedelta(minutes=3)
    decision = next_attempt(policy, 2, T0, now, spread=0.0)
    assert decision.retry_at is not None and decision.retry_at > now


@pytest.mark.parametrize(
    "kwargs",
    [dict(max_attempts=0), dict(base_delay=0), dict(factor=0.5), dict(jitter=1.0), dict(window=timedelta(0)),
     dict(base_delay=10, max_delay=5)],
)
def test_invalid_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_route_override() -> None:
    default = RetryPolicy(max_attempts=12)
    special = RetryPolicy(max_attempts=3)
    assert policy_for(default, [("vdxp", special)], "vdxp") is special
    assert policy_for(default, [("vdxp", special)], "lgsp-h57") is default


def test_breaker_opens_after_threshold_and_blocks_traffic() -> None:
    policy = BreakerPolicy(failure_threshold=3, open_seconds=2, max_open_seconds=30)
    s = BreakerState()
    for i in range(2):
        s = breaker_failure(s, T0, policy, "refused")
        assert s.status == BreakerStatus.CLOSED and breaker_allows(s, T0)
    s = breaker_failure(s, T0, policy, "refused")
    assert s.status == BreakerStatus.OPEN
    assert not breaker_allows(s, T0)
    assert s.open_until == T0 + timedelta(seconds=2)


def test_breaker_probe_cycle_with_growing_cooldown() -> None:
    policy = BreakerPolicy(failure_threshold=1, open_seconds=2, max_open_seconds=5, probe_timeout_seconds=10)
    s = breaker_failure(BreakerState(), T0, policy)
    due, s2 = breaker_probe_due(s, T0 + timedelta(seconds=1), policy)
    assert not due and s2 == s
    due, s = breaker_probe_due(s, T0 + timedelta(seconds=2), policy)
    assert due and s.status == BreakerStatus.HALF_OPEN
    assert not breaker_allows(s, T0 + timedelta(seconds=2))  # only the probe, no ordinary traffic
    # A second probe is not started while the first is out, unless it timed out.
    assert not breaker_probe_due(s, T0 + timedelta(seconds=5), policy)[0]
    assert breaker_probe_due(s, T0 + timedelta(seconds=12), policy)[0]
    # The probe fails: open again, twice as long; then capped.
    s = breaker_failure(s, T0 + timedelta(seconds=3), policy)
    assert s.status == BreakerStatus.OPEN and s.open_until == T0 + timedelta(seconds=7)
    s = breaker_failure(s, T0 + timedelta(seconds=8), policy)
    assert s.open_until == T0 + timedelta(seconds=13)  # 8 s cool-down capped at 5
    s = breaker_success(s)
    assert s == BreakerState() and breaker_allows(s, T0)
