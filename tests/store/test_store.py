"""The Store contract: every operation of :class:`~docexchange.exchange.store.Store`, run on SQLite and on
PostgreSQL (the ``backend`` fixture is parametrized over both; each test has its own files or schema)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from store_kit import CHILD, NODE, PEER, T0, ingest, message, report, sha

from docexchange.errors import StoreError
from docexchange.exchange.migrations import SchemaTooNew
from docexchange.exchange.model import (
    DeliveryState,
    IllegalTransition,
    MessageKind,
    RecallState,
    TrailEntry,
    Verification,
    delivery_id_for,
)
from docexchange.exchange.receipts import verify_receipt
from docexchange.exchange.store import (
    Claimed,
    CredentialRecord,
    Dead,
    Forwarded,
    InboxQuery,
    Ingest,
    QueueQuery,
    RecallRequestEffect,
    ReportEffect,
    Requeue,
    RetryLater,
    SentQuery,
    StatusEffect,
    Store,
    VerificationResult,
    WithdrawEffect,
)

S = DeliveryState
H57 = "000.00.31.H57"
H57B = "000.01.31.H57"
LOCAL_A = "000.01.11.H49"
LOCAL_B = "000.02.12.H49"
LEASE = timedelta(seconds=30)


async def claim_all(store: Store, owner: str = "w1", dest: str = PEER, limit: int = 100,
                    max_bytes: int = 1 << 30) -> list[Claimed]:
    now = store_now(store)
    return await store.claim(dest, limit, max_bytes, owner, now, now + LEASE)


def store_now(store: Store) -> object:
    return store._clock()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- schema


async def test_open_migrates_to_latest_and_reopens(backend, store) -> None:
    version = await store.schema_version()
    assert version >= 1
    await store.close()
    backend.opened.remove(store)
    again = await backend.open()
    assert await again.schema_version() == version


async def test_refuses_a_schema_newer_than_it_knows(backend, store) -> None:
    version = await store.schema_version()
    await store.close()
    backend.opened.remove(store)
    await backend.set_version(version + 1)
    newer = backend.new_store()
    with pytest.raises(SchemaTooNew) as info:
        await newer.open()
    assert info.value.code == "schema_too_new"
    assert str(version + 1) in info.value.message_en and "upgrade" in info.value.message_en
    await newer.close()


# ---------------------------------------------------------------------------------------------- ingest


async def test_ingest_stores_message_deliveries_payload_and_signed_receipts(store, node_key) -> None:
    item = ingest("a", recipients=(H57, H57B))
    [out] = await store.ingest([item], T0)
    assert out.message_id == item.message.message_id and out.digest == item.message.digest
    assert not out.duplicate
    assert [d.recipient for d in out.deliveries] == [H57, H57B]
    for d in out.deliveries:
        assert not d.duplicate and d.state == S.QUEUED
        assert d.receipt is not None
        verify_receipt(d.receipt, node_key.cert, node=NODE, delivery_id=d.delivery_id,
                       received_digest=item.message.received_digest, digest=item.message.digest)
    assert await store.payloads([item.message.digest]) == {item.message.digest: item.message.payload}
    stored = await store.delivery(out.deliveries[0].delivery_id)
    assert stored is not None and stored.state == S.QUEUED and stored.next_hop == PEER and stored.attempts == 0
    assert stored.message is not None and stored.message.size == len(item.message.payload)
    assert dict(stored.message.meta) == {"subject": "Công văn a"}
    trail = await store.trail(out.deliveries[0].delivery_id)
    assert [(t.node, t.event) for t in trail] == [(NODE, "stored")]
    assert trail[0].receipt == dict(out.deliveries[0].receipt)  # type: ignore[arg-type]


async def test_local_delivery_lands_in_the_inbox_with_verification_queued(store) -> None:
    [out] = await store.ingest([ingest("b", recipients=(LOCAL_A,), next_hop=None, verify=True)], T0)
    d = await store.delivery(out.deliveries[0].delivery_id)
    assert d is not None and d.state == S.DELIVERED and d.local and d.delivered_at == T0
    assert d.verification == Verification.PENDING
    assert sorted(t.event for t in await store.trail(d.delivery_id)) == ["delivered", "stored"]


async def test_duplicate_by_message_id_and_recipient_gets_the_original_receipt(store) -> None:
    first = (await store.ingest([ingest("dup", recipients=(H57,))], T0))[0]
    again = (await store.ingest([ingest("dup", recipients=(H57, H57B))], T0 + timedelta(seconds=5)))[0]
    by = {d.recipient: d for d in again.deliveries}
    assert by[H57].duplicate and by[H57].receipt == first.deliveries[0].receipt
    assert not by[H57B].duplicate  # a new recipient of the same message is a new delivery
    assert not again.duplicate
    third = (await store.ingest([ingest("dup", recipients=(H57, H57B))], T0 + timedelta(seconds=9)))[0]
    assert third.duplicate
    assert len(await store.deliveries_of(first.message_id)) == 2
    assert (await store.counts())[PEER] == {"queued": 2}


async def test_idempotency_key_makes_a_resubmission_with_another_id_a_duplicate(store) -> None:
    first = (await store.ingest([ingest("idem-1", idem=True, document_id="D-1")], T0))[0]
    second = (await store.ingest([ingest("idem-2", idem=True, document_id="D-1")], T0))[0]
    assert second.duplicate
    assert second.message_id == first.message_id and second.digest == first.digest
    assert second.deliveries[0].delivery_id == first.deliveries[0].delivery_id
    assert second.deliveries[0].receipt == first.deliveries[0].receipt
    page = await store.sent(SentQuery(senders=(LOCAL_A,)))
    assert [m.message_id for m in page.items] == [first.message_id]  # no orphan message is kept


async def test_concurrent_identical_ingests_store_one_delivery(store) -> None:
    item = ingest("race", recipients=(H57, H57B))
    outs = await asyncio.gather(*(store.ingest([item], T0) for _ in range(12)))
    new = [d for [o] in outs for d in o.deliveries if not d.duplicate]
    assert sorted(d.recipient for d in new) == [H57, H57B]
    receipts = {(d.recipient, d.receipt["sig"]) for [o] in outs for d in o.deliveries}  # type: ignore[index]
    assert len(receipts) == 2  # every answer carries the one original receipt
    assert len(await store.deliveries_of(item.message.message_id)) == 2


async def test_followups_and_effects_are_stored_only_for_new_deliveries(store) -> None:
    target = (await store.ingest([ingest("orig", recipients=(H57,))], T0))[0].deliveries[0].delivery_id
    await store.settle([Forwarded(target, {"node": PEER, "digest": "x", "stored_at": T0.isoformat()}, T0)], "w", T0)
    ack = ingest("status01", recipients=(LOCAL_B,), next_hop=CHILD, kind=MessageKind.STATUS, receipt=False)
    arrival = ingest("arrival", recipients=(LOCAL_A,), next_hop=None, followups=(ack,),
                     effects=(ReportEffect(report(target, S.DELIVERED)),))
    await store.ingest([arrival], T0)
    assert (await store.delivery(target)).state == S.DELIVERED  # type: ignore[union-attr]
    follow = await store.deliveries_of(ack.message.message_id)
    assert len(follow) == 1 and follow[0].state == S.QUEUED and follow[0].next_hop == CHILD
    assert [t.event for t in await store.trail(follow[0].delivery_id)] == ["stored"]  # no receipt for internals
    await store.ingest([arrival], T0 + timedelta(seconds=1))
    assert len(await store.deliveries_of(ack.message.message_id)) == 1


async def test_upstream_trail_is_kept_with_a_new_delivery(store) -> None:
    item = ingest("trail-in", recipients=(H57,))
    did = delivery_id_for(item.message.message_id, H57)
    upstream = [TrailEntry(CHILD, "stored", T0 - timedelta(seconds=3), "cd" * 32, {"node": CHILD, "sig": "x"})]
    item = Ingest(item.message, item.deliveries, trail={did: upstream})
    await store.ingest([item], T0)
    trail = await store.trail(did)
    assert [(t.node, t.event) for t in trail] == [(CHILD, "stored"), (NODE, "stored")]
    assert trail[0].receipt == {"node": CHILD, "sig": "x"} and trail[0].at == T0 - timedelta(seconds=3)


# ---------------------------------------------------------------------------------------------- claims


async def test_claim_takes_highest_priority_first_then_arrival_order(backend, store) -> None:
    labels = {0: "Thường", 1: "Khẩn", 2: "Thượng khẩn", 3: "Hỏa tốc", 4: "Hỏa tốc hẹn giờ"}
    order = [0, 1, 0, 2, 3, 1, 4, 2, 0, 3]
    for i, p in enumerate(order):
        backend.clock.advance(1)
        await store.ingest([ingest(f"p{i}", priority=p)], backend.clock.at)
    claimed = await claim_all(store, limit=4)
    got = [labels[c.message.priority] for c in claimed]
    assert got == ["Hỏa tốc", "Hỏa tốc hẹn giờ", "Hỏa tốc", "Thượng khẩn"]
    assert [c.message.message_id for c in claimed[:3]] == [
        (await store.deliveries_of(ingest(f"p{i}").message.message_id))[0].message_id for i in (4, 6, 9)
    ]
    rest = await claim_all(store, limit=100)
    assert [c.message.priority for c in rest] == [2, 1, 1, 0, 0, 0]
    for c in claimed + rest:
        assert c.delivery.state == S.IN_FLIGHT and c.delivery.attempts == 1 and c.delivery.lease_owner == "w1"
        assert c.delivery.lease_until == backend.clock.at + LEASE and c.delivery.first_attempt_at == backend.clock.at
    assert await claim_all(store) == []


async def test_claim_respects_limit_bytes_and_destination(store) -> None:
    for i in range(4):
        await store.ingest([ingest(f"b{i}", payload=bytes([i]) * 1000)], T0)
    await store.ingest([ingest("other", next_hop=CHILD, recipients=(LOCAL_B,))], T0)
    first = await claim_all(store, max_bytes=2500)
    assert len(first) == 2
    big = await claim_all(store, max_bytes=10)  # a packet larger than the cap still goes, alone
    assert len(big) == 1
    assert len(await claim_all(store, limit=1)) == 1
    assert await claim_all(store) == []
    assert [c.delivery.recipient for c in await claim_all(store, dest=CHILD)] == [LOCAL_B]


async def test_concurrent_claims_never_share_a_delivery(store) -> None:
    for i in range(30):
        await store.ingest([ingest(f"c{i}")], T0)
    batches = await asyncio.gather(*(claim_all(store, owner=f"w{i}", limit=4) for i in range(10)))
    ids = [c.delivery.delivery_id for b in batches for c in b]
    assert len(ids) == len(set(ids)) == 30
    for i, b in enumerate(batches):
        assert all(c.delivery.lease_owner == f"w{i}" for c in b)


async def test_an_expired_lease_returns_the_delivery_to_the_queue(backend, store) -> None:
    await store.ingest([ingest("lease")], T0)
    [c] = await claim_all(store)
    assert await store.recover_leases(T0 + timedelta(seconds=10)) == 0
    assert await claim_all(store, owner="w2") == []
    assert await store.recover_leases(T0 + LEASE + timedelta(seconds=1)) == 1
    d = await store.delivery(c.delivery.delivery_id)
    assert d is not None and d.state == S.QUEUED and d.lease_owner is None and d.attempts == 1
    backend.clock.advance(60)
    [again] = await claim_all(store, owner="w2")
    assert again.delivery.attempts == 2 and again.delivery.lease_owner == "w2"
    assert again.delivery.first_attempt_at == T0  # the window counts from the first attempt


async def test_settle_applies_only_under_the_held_lease_except_a_receipt(backend, store) -> None:
    for k in ("s1", "s2", "s3", "s4"):
        await store.ingest([ingest(k)], T0)
    claimed = await claim_all(store, owner="w1")
    ids = [c.delivery.delivery_id for c in claimed]
    later = T0 + timedelta(minutes=5)
    # Another worker's outcomes do not touch w1's leases.
    await store.settle([RetryLater(ids[0], later, "boom"), Dead(ids[1], "no", T0), Requeue(ids[2])], "w2", T0)
    assert {(await store.delivery(i)).state for i in ids[:3]} == {S.IN_FLIGHT}  # type: ignore[union-attr]
    await store.settle([RetryLater(ids[0], later, "connection refused"), Dead(ids[1], "refused for good", T0),
                        Requeue(ids[2])], "w1", T0)
    d0, d1, d2 = [await store.delivery(i) for i in ids[:3]]
    assert d0 is not None and d0.state == S.RETRY_WAIT and d0.next_attempt_at == later
    assert d0.last_error == "connection refused" and d0.lease_owner is None
    assert d1 is not None and d1.state == S.DEAD and d1.last_error == "refused for good"
    assert [t.event for t in await store.trail(ids[1])][-1] == "dead"
    assert d2 is not None and d2.state == S.QUEUED and d2.attempts == 0
    # A receipt is proof: it applies even after the lease was lost and the delivery went back to the queue.
    await store.recover_leases(T0 + LEASE * 2)
    receipt = {"node": PEER, "digest": "ef" * 32, "stored_at": (T0 + timedelta(seconds=2)).isoformat(), "sig": "s"}
    await store.settle([Forwarded(ids[3], receipt, T0)], "somebody-else", T0)
    d3 = await store.delivery(ids[3])
    assert d3 is not None and d3.state == S.FORWARDED
    trail = await store.trail(ids[3])
    assert trail[-1].node == PEER and trail[-1].receipt == receipt and trail[-1].at == T0 + timedelta(seconds=2)
    # The same receipt settled twice leaves one trail entry.
    await store.settle([Forwarded(ids[3], receipt, T0)], "w1", T0)
    assert len(await store.trail(ids[3])) == len(trail)


async def test_retry_wait_becomes_due_after_its_backoff(backend, store) -> None:
    await store.ingest([ingest("r")], T0)
    [c] = await claim_all(store)
    due_at = T0 + timedelta(seconds=40)
    await store.settle([RetryLater(c.delivery.delivery_id, due_at, "timeout")], "w1", T0)
    assert await store.next_due(PEER) == due_at
    assert await store.due_destinations(T0 + timedelta(seconds=39)) == {}
    assert await store.claim(PEER, 10, 1 << 30, "w1", T0 + timedelta(seconds=39), due_at + LEASE) == []
    assert await store.due_destinations(due_at) == {PEER: 1}
    [again] = await store.claim(PEER, 10, 1 << 30, "w1", due_at, due_at + LEASE)
    assert again.delivery.attempts == 2 and again.delivery.state == S.IN_FLIGHT
    assert await store.next_due(PEER) is None


# ---------------------------------------------------------------------------------------------- dead letters


async def test_dead_letters_are_listed_resent_and_purged(backend, store) -> None:
    for k in ("d1", "d2", "alive"):
        await store.ingest([ingest(k)], T0)
    claimed = await claim_all(store)
    dead_ids = [c.delivery.delivery_id for c in claimed if c.message.message_id != ingest("alive").message.message_id]
    await store.settle([Dead(i, "out of attempts", T0) for i in dead_ids], "w1", T0)
    page = await store.queue(QueueQuery(states=(S.DEAD,), limit=1))
    assert len(page.items) == 1 and page.next_cursor
    page2 = await store.queue(QueueQuery(states=(S.DEAD,), limit=1, cursor=page.next_cursor))
    assert {page.items[0].delivery_id, page2.items[0].delivery_id} == set(dead_ids)
    assert page2.next_cursor is None
    assert (await store.queue(QueueQuery(states=(S.DEAD,), destination=CHILD))).items == ()

    resent = await store.resend(dead_ids[0], T0 + timedelta(minutes=1))
    assert resent.state == S.QUEUED and resent.attempts == 0 and resent.last_error == ""
    assert [t.event for t in await store.trail(dead_ids[0])][-1] == "resent"
    with pytest.raises(IllegalTransition):
        await store.resend(dead_ids[0], T0)
    with pytest.raises(StoreError):
        await store.resend("m-nothing.000.00.31.H57", T0)
    with pytest.raises(IllegalTransition):
        await store.purge(dead_ids[0], T0)

    purged = await store.delivery(dead_ids[1])
    assert purged is not None and purged.message is not None
    digest = purged.message.digest
    await store.purge(dead_ids[1], T0 + timedelta(minutes=2))
    assert await store.delivery(dead_ids[1]) is None
    assert [t.event for t in await store.trail(dead_ids[1])][-1] == "purged"
    assert await store.deliveries_of(purged.message_id) == []
    removed = await store.housekeeping(T0 + timedelta(hours=3))
    assert set(removed) >= {"nonces", "payloads"}
    assert await store.payloads([digest]) == {}
    with pytest.raises(StoreError):
        await store.purge(dead_ids[1], T0)


# ---------------------------------------------------------------------------------------------- mailboxes


async def test_inbox_pages_by_priority_and_is_isolated_per_agency(backend, store) -> None:
    prios = [0, 3, 1, 0, 2, 3, 0]
    for i, p in enumerate(prios):
        backend.clock.advance(1)
        await store.ingest([ingest(f"in{i}", recipients=(LOCAL_A,), next_hop=None, priority=p)], backend.clock.at)
    await store.ingest([ingest("for-b", recipients=(LOCAL_B,), next_hop=None)], T0)
    await store.ingest([ingest("in-transit", recipients=(H57,))], T0)
    await store.ingest([ingest("rep", recipients=(LOCAL_A,), next_hop=None, kind=MessageKind.REPORT)], T0)
    seen = []
    cursor = None
    while True:
        page = await store.inbox(InboxQuery(recipients=(LOCAL_A,), limit=3, cursor=cursor))
        seen.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [d.priority for d in seen] == [3, 3, 2, 1, 0, 0, 0]
    assert len({d.delivery_id for d in seen}) == 7 and all(d.recipient == LOCAL_A for d in seen)
    assert all(d.message is not None and d.kind == MessageKind.DOCUMENT for d in seen)
    only_b = await store.inbox(InboxQuery(recipients=(LOCAL_B,)))
    assert [d.recipient for d in only_b.items] == [LOCAL_B]
    assert (await store.inbox(InboxQuery(recipients=()))).items == ()
    assert (await store.inbox(InboxQuery(recipients=(H57,)))).items == ()  # not delivered here
    urgent = await store.inbox(InboxQuery(recipients=(LOCAL_A,), priorities=(3,)))
    assert len(urgent.items) == 2
    one = await store.inbox(InboxQuery(recipients=(LOCAL_A,), document_id=seen[0].document_id))
    assert [d.delivery_id for d in one.items] == [seen[0].delivery_id]
    with pytest.raises(StoreError):
        await store.inbox(InboxQuery(recipients=(LOCAL_A,), cursor="not-a-cursor"))


async def test_acknowledge_is_final_and_idempotent(store) -> None:
    [out] = await store.ingest([ingest("ack", recipients=(LOCAL_A,), next_hop=None)], T0)
    did = out.deliveries[0].delivery_id
    await store.mark_fetched(did, T0 + timedelta(seconds=1))
    await store.mark_fetched(did, T0 + timedelta(seconds=9))
    assert (await store.delivery(did)).fetched_at == T0 + timedelta(seconds=1)  # type: ignore[union-attr]
    rep = ingest("ack-report", recipients=(H57,), kind=MessageKind.REPORT, receipt=False)
    d = await store.acknowledge(did, T0 + timedelta(seconds=2), [rep])
    assert d.state == S.ACKNOWLEDGED and d.acknowledged_at == T0 + timedelta(seconds=2)
    again = await store.acknowledge(did, T0 + timedelta(seconds=3), [ingest("ack-report-2", kind=MessageKind.REPORT)])
    assert again.acknowledged_at == T0 + timedelta(seconds=2)
    assert await store.deliveries_of(ingest("ack-report-2").message.message_id) == []
    assert len(await store.deliveries_of(rep.message.message_id)) == 1
    # Final states stay final: a late report does not move it.
    await store.apply([ReportEffect(report(did, S.DEAD, reason="late"))], [], T0 + timedelta(seconds=4))
    assert (await store.delivery(did)).state == S.ACKNOWLEDGED  # type: ignore[union-attr]
    unacked = await store.inbox(InboxQuery(recipients=(LOCAL_A,), unacknowledged=True))
    assert unacked.items == ()
    events = [t.event for t in await store.trail(did)]
    assert events.count("acknowledged") == 1


async def test_sent_lists_own_submissions_newest_first(backend, store) -> None:
    for i in range(5):
        backend.clock.advance(1)
        await store.ingest([ingest(f"sent{i}", sender=LOCAL_A)], backend.clock.at)
    await store.ingest([ingest("by-b", sender=LOCAL_B)], T0)
    await store.ingest([ingest("passing", sender=LOCAL_A, origin=CHILD)], T0)  # forwarded through here
    await store.ingest([ingest("st", sender=LOCAL_A, kind=MessageKind.STATUS)], T0)
    page = await store.sent(SentQuery(senders=(LOCAL_A,), limit=3))
    page2 = await store.sent(SentQuery(senders=(LOCAL_A,), limit=3, cursor=page.next_cursor))
    ids = [m.message_id for m in page.items + page2.items]
    assert ids == [ingest(f"sent{i}").message.message_id for i in (4, 3, 2, 1, 0)]
    assert page2.next_cursor is None
    every = await store.sent(SentQuery(senders=(LOCAL_A,), kind=None))
    assert ingest("st").message.message_id in [m.message_id for m in every.items]
    assert len((await store.sent(SentQuery(senders=(LOCAL_B,)))).items) == 1
    assert (await store.sent(SentQuery(senders=()))).items == ()


async def test_find_deliveries_by_document(store) -> None:
    await store.ingest([ingest("fd", recipients=(H57, H57B), document_id="DOC-7", sender=LOCAL_A)], T0)
    both = await store.find_deliveries(sender=LOCAL_A, document_id="DOC-7")
    assert sorted(d.recipient for d in both) == [H57, H57B]
    one = await store.find_deliveries(sender=LOCAL_A, document_id="DOC-7", recipients=[H57B])
    assert [d.recipient for d in one] == [H57B]
    assert await store.find_deliveries(sender=LOCAL_B, document_id="DOC-7") == []


# ---------------------------------------------------------------------------------------------- effects


async def test_reports_move_deliveries_and_extend_the_trail_once(store) -> None:
    [out] = await store.ingest([ingest("rep-target", recipients=(H57,))], T0)
    did = out.deliveries[0].delivery_id
    assert len(await claim_all(store)) == 1
    await store.settle([Forwarded(did, {"node": PEER, "digest": "d", "stored_at": T0.isoformat()}, T0)], "w1", T0)
    ev = report(did, S.DELIVERED, node="lgsp-h57", at=T0 + timedelta(seconds=7))
    await store.apply([ReportEffect(ev)], [], T0 + timedelta(seconds=8))
    await store.apply([ReportEffect(ev)], [], T0 + timedelta(seconds=9))  # the same report again
    d = await store.delivery(did)
    assert d is not None and d.state == S.DELIVERED and d.delivered_at == T0 + timedelta(seconds=7)
    trail = await store.trail(did)
    assert [(t.node, t.event) for t in trail] == [(NODE, "stored"), (PEER, "stored"), ("lgsp-h57", "delivered")]
    got = await store.reports_trail([did, "m-unknown.x"])
    assert [t.event for t in got[did]] == ["stored", "stored", "delivered"] and got["m-unknown.x"] == []


async def test_statuses_recall_and_withdrawal(store) -> None:
    doc = ingest("recall-me", recipients=(LOCAL_A, LOCAL_B), next_hop=None, sender="000.00.31.H57",
                 document_id="DOC-R")
    [out] = await store.ingest([doc], T0)
    a, b = (d.delivery_id for d in out.deliveries)
    await store.apply([StatusEffect("DOC-R", "000.00.31.H57", LOCAL_A, "03", T0 + timedelta(seconds=5))], [], T0)
    await store.apply([StatusEffect("DOC-R", "000.00.31.H57", LOCAL_A, "05", T0 + timedelta(seconds=3))], [], T0)
    da = await store.delivery(a)
    assert da is not None and da.recipient_status == "03"  # an older status does not overwrite a newer one
    await store.apply([RecallRequestEffect("DOC-R", "000.00.31.H57", LOCAL_A, "13", "m-recall", T0)], [], T0)
    await store.apply([RecallRequestEffect("DOC-R", "000.00.31.H57", LOCAL_B, "revoke", "m-recall", T0)], [], T0)
    assert (await store.delivery(a)).recall == RecallState.REQUESTED  # type: ignore[union-attr]
    await store.apply([StatusEffect("DOC-R", "000.00.31.H57", LOCAL_A, "15", T0 + timedelta(seconds=9))], [], T0)
    await store.apply([StatusEffect("DOC-R", "000.00.31.H57", LOCAL_B, "16", T0 + timedelta(seconds=9))], [], T0)
    da, db = await store.delivery(a), await store.delivery(b)
    assert da is not None and da.withdrawn and da.state == S.RECALLED and da.recall == RecallState.AGREED
    assert db is not None and not db.withdrawn and db.state == S.DELIVERED and db.recall == RecallState.REFUSED
    inbox = await store.inbox(InboxQuery(recipients=(LOCAL_A, LOCAL_B)))
    assert [d.delivery_id for d in inbox.items] == [b]
    everything = await store.inbox(InboxQuery(recipients=(LOCAL_A,), include_withdrawn=True))
    assert [d.delivery_id for d in everything.items] == [a]  # recalled, shown only when asked for
    assert "recalled" in [t.event for t in await store.trail(a)]
    # 15/16 answer a pending request only: a new version under the same DocumentId is not touched.
    [v2] = await store.ingest([ingest("recall-me-v2", recipients=(LOCAL_A,), next_hop=None, sender="000.00.31.H57",
                                      document_id="DOC-R")], T0)
    await store.apply([StatusEffect("DOC-R", "000.00.31.H57", LOCAL_A, "15", T0 + timedelta(seconds=20))], [], T0)
    dv2 = await store.delivery(v2.deliveries[0].delivery_id)
    assert dv2 is not None and not dv2.withdrawn and dv2.state == S.DELIVERED and dv2.recall is None
    assert dv2.recipient_status == "15"


async def test_15_and_16_act_only_on_the_delivery_with_a_pending_request(store) -> None:
    # An update reuses the DocumentId: both versions are live in the same inbox at once.
    old, new = (ingest(k, recipients=(LOCAL_A,), next_hop=None, sender=H57, document_id="DOC-U")
                for k in ("upd-v1", "upd-v2"))
    [o1], [o2] = await store.ingest([old], T0), await store.ingest([new], T0)
    v1, v2 = o1.deliveries[0].delivery_id, o2.deliveries[0].delivery_id
    # No request pending: 15 and 16 are recorded as statuses and change nothing else.
    await store.apply([StatusEffect("DOC-U", H57, LOCAL_A, "15", T0 + timedelta(seconds=1))], [], T0)
    await store.apply([StatusEffect("DOC-U", H57, LOCAL_A, "16", T0 + timedelta(seconds=2))], [], T0)
    for did in (v1, v2):
        d = await store.delivery(did)
        assert d is not None and not d.withdrawn and d.state == S.DELIVERED and d.recall is None
        assert d.recipient_status == "16"
        assert "recalled" not in [t.event for t in await store.trail(did)]
    inbox = await store.inbox(InboxQuery(recipients=(LOCAL_A,)))
    assert sorted(d.delivery_id for d in inbox.items) == sorted([v1, v2])
    # The update (carried by v2) asks to supersede v1 only; 15 then withdraws v1 and leaves v2 alone.
    await store.apply([RecallRequestEffect("DOC-U", H57, LOCAL_A, "update", new.message.message_id, T0)], [], T0)
    d1, d2 = await store.delivery(v1), await store.delivery(v2)
    assert d1 is not None and d1.recall == RecallState.REQUESTED
    assert d2 is not None and d2.recall is None
    await store.apply([StatusEffect("DOC-U", H57, LOCAL_A, "15", T0 + timedelta(seconds=3))], [], T0)
    d1, d2 = await store.delivery(v1), await store.delivery(v2)
    assert d1 is not None and d1.withdrawn and d1.state == S.RECALLED and d1.recall == RecallState.AGREED
    assert d2 is not None and not d2.withdrawn and d2.state == S.DELIVERED and d2.recall is None
    assert "recalled" not in [t.event for t in await store.trail(v2)]
    inbox = await store.inbox(InboxQuery(recipients=(LOCAL_A,)))
    assert [d.delivery_id for d in inbox.items] == [v2]


async def test_withdraw_before_it_left_and_after_acknowledgement(store) -> None:
    [queued] = await store.ingest([ingest("wq", recipients=(H57,))], T0)
    [local] = await store.ingest([ingest("wl", recipients=(LOCAL_A,), next_hop=None)], T0)
    qid, lid = queued.deliveries[0].delivery_id, local.deliveries[0].delivery_id
    await store.acknowledge(lid, T0)
    await store.apply([WithdrawEffect((qid, lid, "m-nothing.x"), T0, "sender recalled")], [], T0)
    dq, dl = await store.delivery(qid), await store.delivery(lid)
    assert dq is not None and dq.state == S.RECALLED and dq.withdrawn
    assert dl is not None and dl.state == S.ACKNOWLEDGED and dl.withdrawn  # final stays final
    assert await claim_all(store) == []


# ---------------------------------------------------------------------------------------------- verification


async def test_verification_jobs_are_leased_and_finished_by_their_owner(backend, store) -> None:
    low = ingest("v-low", recipients=(LOCAL_A, LOCAL_B), next_hop=None, verify=True, priority=0)
    high = ingest("v-high", recipients=(LOCAL_A,), next_hop=None, verify=True, priority=3)
    await store.ingest([low], T0)
    await store.ingest([high], T0 + timedelta(seconds=1))
    await store.ingest([ingest("no-verify", recipients=(LOCAL_A,), next_hop=None)], T0)
    jobs = await store.claim_verifications(10, "v1", T0, T0 + LEASE)
    assert [j.message_id for j in jobs] == [high.message.message_id, low.message.message_id]
    assert jobs[1].recipients == (LOCAL_A, LOCAL_B) and jobs[1].attempts == 1
    assert jobs[1].digest == low.message.digest and jobs[1].meta == {"subject": "Công văn v-low"}
    assert await store.claim_verifications(10, "v2", T0, T0 + LEASE) == []
    status02 = ingest("st02", recipients=(H57,), kind=MessageKind.STATUS, receipt=False)
    bad = VerificationResult(low.message.message_id, Verification.FAILED, {"verdict": "không hợp lệ"}, T0,
                             (status02,))
    await store.finish_verification(bad, "v2")  # not the owner: ignored
    assert (await store.verification(low.message.message_id))[0] == Verification.PENDING
    await store.finish_verification(bad, "v1")
    state, rep = await store.verification(low.message.message_id)
    assert state == Verification.FAILED and rep == {"verdict": "không hợp lệ"}
    assert len(await store.deliveries_of(status02.message.message_id)) == 1
    for did in (delivery_id_for(low.message.message_id, r) for r in (LOCAL_A, LOCAL_B)):
        assert [t.event for t in await store.trail(did)][-1] == "verified"
        assert (await store.delivery(did)).verification == Verification.FAILED  # type: ignore[union-attr]
    # The other job's lease expires: it is claimed again.
    assert await store.recover_leases(T0 + LEASE + timedelta(seconds=1)) == 0  # verifications are not counted
    [again] = await store.claim_verifications(10, "v2", T0, T0 + LEASE)
    assert again.message_id == high.message.message_id and again.attempts == 2
    assert await store.verification("m-none") == (Verification.SKIPPED, None)


# ---------------------------------------------------------------------------------------------- credentials


async def test_credentials_are_stored_updated_and_listed(store) -> None:
    rec = CredentialRecord("sys-a", "agency", (LOCAL_A, LOCAL_B), b"\x00box\xff", T0, label="Phần mềm QLVB")
    await store.put_credential(rec)
    await store.put_credential(CredentialRecord("aud", "auditor", (), b"k", T0))
    got = await store.credential("sys-a")
    assert got == rec
    rotated = CredentialRecord("sys-a", "agency", (LOCAL_A,), b"new", T0, rotated_at=T0 + timedelta(days=1),
                               revoked_at=T0 + timedelta(days=2), label="x")
    await store.put_credential(rotated)
    assert await store.credential("sys-a") == rotated
    assert [c.system_id for c in await store.credentials()] == ["aud", "sys-a"]
    assert await store.credential("nobody") is None


async def test_a_replayed_nonce_is_refused_even_after_a_restart(backend, store) -> None:
    exp = T0 + timedelta(minutes=5)
    assert await store.remember_nonce("sys-a", "n1", exp) is True
    assert await store.remember_nonce("sys-a", "n1", exp) is False
    assert await store.remember_nonce("sys-b", "n1", exp) is True
    results = await asyncio.gather(*(store.remember_nonce("sys-a", "n2", exp) for _ in range(8)))
    assert results.count(True) == 1
    await asyncio.sleep(0.05)  # SQLite writes nonces in its next group commit
    await store.close()
    backend.opened.remove(store)
    again = await backend.open()
    assert await again.remember_nonce("sys-a", "n1", exp) is False
    removed = await again.housekeeping(T0 + timedelta(minutes=6))
    assert removed["nonces"] == 3
    assert await again.remember_nonce("sys-a", "n1", T0 + timedelta(minutes=20)) is True  # expired, forgotten


# ---------------------------------------------------------------------------------------------- counts


async def test_counts_per_destination_and_state(store) -> None:
    for i in range(3):
        await store.ingest([ingest(f"n{i}")], T0)
    await store.ingest([ingest("l", recipients=(LOCAL_A,), next_hop=None)], T0)
    await claim_all(store, limit=1)
    assert await store.counts() == {PEER: {"queued": 2, "in_flight": 1}, "local": {"delivered": 1}}


async def test_payloads_are_content_addressed(store) -> None:
    body = b"%PDF-1.7 same bytes"
    await store.ingest([ingest("same-1", payload=body)], T0)
    await store.ingest([ingest("same-2", payload=body)], T0)
    assert await store.payloads([sha(body), sha(body), "00" * 32]) == {sha(body): body}
    assert message("same-1", payload=body).digest == sha(body)


async def test_a_report_overtaking_a_lost_receipt_settles_queued_and_waiting_deliveries(store) -> None:
    [a] = await store.ingest([ingest("lost-1")], T0)
    [b] = await store.ingest([ingest("lost-2")], T0)
    qid, wid = a.deliveries[0].delivery_id, b.deliveries[0].delivery_id
    claimed = await claim_all(store)
    await store.settle([RetryLater(wid, T0 + timedelta(minutes=5), "timeout")], "w1", T0)
    await store.recover_leases(T0 + LEASE * 2)  # qid's lease expired: queued again
    assert {c.delivery.delivery_id for c in claimed} == {qid, wid}
    assert (await store.delivery(qid)).state == S.QUEUED  # type: ignore[union-attr]
    await store.apply([ReportEffect(report(qid, S.DELIVERED)), ReportEffect(report(wid, S.ACKNOWLEDGED))], [], T0)
    dq, dw = await store.delivery(qid), await store.delivery(wid)
    assert dq is not None and dq.state == S.DELIVERED and dq.lease_owner is None
    assert dw is not None and dw.state == S.ACKNOWLEDGED
    assert await claim_all(store, owner="w2") == []  # not sent again
