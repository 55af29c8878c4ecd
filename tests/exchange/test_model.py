"""The delivery state machine: final states stay final; every allowed move is listed."""

from __future__ import annotations

import pytest

from docexchange.exchange.model import (
    FINAL_STATES,
    TRANSITIONS,
    DeliveryState,
    IllegalTransition,
    check_transition,
    delivery_id_for,
    message_id_for,
    priority_rank,
    split_delivery_id,
)

S = DeliveryState


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(DeliveryState)


@pytest.mark.parametrize("final", sorted(FINAL_STATES, key=lambda s: s.value))
@pytest.mark.parametrize("target", list(DeliveryState))
def test_final_states_stay_final(final: DeliveryState, target: DeliveryState) -> None:
    if target == final:
        check_transition(final, target)
        return
    with pytest.raises(IllegalTransition):
        check_transition(final, target)


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (S.QUEUED, S.IN_FLIGHT, True),
        (S.IN_FLIGHT, S.QUEUED, True),  # lease expired
        (S.IN_FLIGHT, S.FORWARDED, True),
        (S.IN_FLIGHT, S.RETRY_WAIT, True),
        (S.RETRY_WAIT, S.IN_FLIGHT, True),
        (S.IN_FLIGHT, S.DEAD, True),
        (S.DEAD, S.QUEUED, True),  # operator resend
        (S.FORWARDED, S.DELIVERED, True),
        (S.DELIVERED, S.ACKNOWLEDGED, True),
        (S.DELIVERED, S.RECALLED, True),
        (S.FORWARDED, S.QUEUED, False),
        (S.DELIVERED, S.QUEUED, False),
        (S.DELIVERED, S.DEAD, False),
        (S.QUEUED, S.FORWARDED, False),  # never forwarded without being sent
        (S.RETRY_WAIT, S.FORWARDED, False),
        (S.RETRY_WAIT, S.DELIVERED, True),  # the answer was lost, the delivery report came back
        (S.QUEUED, S.ACKNOWLEDGED, True),
    ],
)
def test_transitions(old: DeliveryState, new: DeliveryState, ok: bool) -> None:
    if ok:
        check_transition(old, new)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(old, new)


def test_priority_order() -> None:
    ranks = [priority_rank(p) for p in (3, 2, 1, 0)]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == 4
    assert priority_rank(4) == priority_rank(3)  # Hỏa tốc hẹn giờ travels as Hỏa tốc
    assert priority_rank(99) == priority_rank(0)


def test_ids() -> None:
    mid = message_id_for("document", "000.01.11.H49", "000.01.11.H49,2025/01/05,05/UBND", "ab" * 32)
    assert mid == message_id_for("document", "000.01.11.H49", "000.01.11.H49,2025/01/05,05/UBND", "ab" * 32)
    assert mid != message_id_for("document", "000.01.11.H49", "000.01.11.H49,2025/01/05,06/UBND", "ab" * 32)
    did = delivery_id_for(mid, "000.00.31.H57")
    assert split_delivery_id(did) == (mid, "000.00.31.H57")
    with pytest.raises(ValueError):
        split_delivery_id("nonsense")
