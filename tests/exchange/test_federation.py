"""A four-level federation of axis nodes in one process (real HTTPS, mutual TLS, signed receipts):
national axis → Quảng Ninh → Hạ Long → Hồng Gai, and Huế. Packets cross it exactly once, with a full trail,
statuses flow back, recall / update / replace work, duplicates collapse, priorities are honoured."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from exchange_harness import HONG_GAI, THUAN_HOA, Federation, eventually

from docexchange.edxml.model import DocumentPacket
from docexchange.edxml.reader import read_packet
from docexchange.errors import Conflict, InvalidPacket, NotFound, UnknownAgency
from docexchange.exchange.receipts import verify_receipt

VPCP = "000.00.00.G22"
H49 = "000.00.00.H49"
SNV_H49 = "000.00.01.H49"
HA_LONG = "000.00.11.H49"
VAN_DON = "000.00.12.H49"
DONG_XA = "000.02.12.H49"
PHU_VANG = "000.00.32.H57"
PATH_HG_TH = ["lgsp-h49-hg", "lgsp-h49-hl", "lgsp-h49", "vdxp", "lgsp-h57"]


def letter_meta(to: list[str], number: str, *, priority: int = 0, subject: str = "Về việc liên thông văn bản") -> dict:
    return {
        "to": to,
        "subject": subject,
        "code_number": number,
        "code_notation": "UBND-VP",
        "type_name": "Công văn",
        "priority": priority,
        "signer": {"full_name": "Vũ Thị Mai", "position": "CHỦ TỊCH", "competence": "TM. ỦY BAN NHÂN DÂN"},
    }


async def inbox_items(client: Any, agency: str, **filters: Any) -> list[dict]:
    return (await client.inbox(agency, **filters))["items"]


async def test_commune_to_commune_in_another_province(federation: Federation, letters: dict[str, bytes]) -> None:
    hg = await federation.client(HONG_GAI)
    th = await federation.client(THUAN_HOA)
    result = await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "101"), letters[HONG_GAI])
    assert not result["duplicate"]
    (first,) = result["deliveries"]
    assert first["recipient"] == THUAN_HOA and first["state"] == "queued"
    verify_receipt(first["receipt"], federation.pki.node_cert("lgsp-h49-hg"), node="lgsp-h49-hg",
                   delivery_id=first["delivery_id"])
    did, mid = first["delivery_id"], result["message_id"]

    items = await eventually(lambda: inbox_items(th, THUAN_HOA, kind="document"), what="arrival")
    assert [i["delivery_id"] for i in items] == [did]
    assert items[0]["state"] == "delivered" and items[0]["message"]["meta"]["subject"] == "Về việc liên thông văn bản"

    # The packet that arrived carries one TraceHeader per node it passed, in order, and the signed letter intact.
    packet = read_packet(await th.packet(THUAN_HOA, did))
    assert isinstance(packet, DocumentPacket)
    organs = {n.id: n.organ_id for n in federation.directory.nodes}
    assert [t.organ_id for t in packet.trace.headers] == [organs[n] for n in PATH_HG_TH]
    assert packet.attachments[0].content == letters[HONG_GAI]
    assert await th.attachment(THUAN_HOA, did, 0) == letters[HONG_GAI]

    # Back at the sender: status 01 and the delivery report have come back; the trail names every node with a
    # receipt signed by that node's key over exactly what it stored.
    async def delivered() -> Any:
        item = await hg.sent_item(HONG_GAI, mid)
        r = item["recipients"][0]
        return item if r["state"] == "delivered" and r["recipient_status"] == "01" else None

    item = await eventually(delivered, what="status 01 and delivery report at the sender")
    trail = item["recipients"][0]["trail"]
    stored = [e for e in trail if e["event"] == "stored"]
    assert [e["node"] for e in stored] == PATH_HG_TH
    for e in stored:
        verify_receipt(e["receipt"], federation.pki.node_cert(e["node"]), node=e["node"], delivery_id=did,
                       digest=e["digest"])
    # Each hop received exactly what the previous one stored (its TraceHeader added before storing).
    for prev, nxt in itertools.pairwise(stored):
        assert nxt["receipt"]["received_digest"] == prev["digest"]
    assert any(e["event"] == "delivered" and e["node"] == "lgsp-h57" for e in trail)

    # The recipient acknowledges, accepts (03) and finishes (06); the sender sees each.
    await th.ack(THUAN_HOA, did)
    await th.status(THUAN_HOA, did, "03", "Đã vào sổ công văn đến")
    await th.status(THUAN_HOA, did, "06", "Đã xử lý xong")

    async def done() -> Any:
        r = (await hg.sent_item(HONG_GAI, mid))["recipients"][0]
        return r if r["state"] == "acknowledged" and r["recipient_status"] == "06" else None

    await eventually(done, what="acknowledged and 06 at the sender")
    statuses = await eventually(lambda: _codes(hg, HONG_GAI, {"01", "03", "06"}), what="status packets")
    assert statuses == ["01", "03", "06"]

    # Exactly once, counted at the recipient's node.
    assert len(await inbox_items(th, THUAN_HOA, kind="document", document_id=result["document_id"])) == 1
    counts = await federation.store("lgsp-h57").counts()
    assert counts["local"].get("acknowledged", 0) == 1


async def _codes(client: Any, agency: str, want: set[str]) -> list[str] | None:
    items = await inbox_items(client, agency, kind="status")
    codes = sorted(i["message"]["status_code"] for i in items)
    return codes if set(codes) >= want else None


async def test_duplicate_submits_make_one_delivery(federation: Federation, letters: dict[str, bytes]) -> None:
    hg = await federation.client(HONG_GAI)
    th = await federation.client(THUAN_HOA)
    meta = letter_meta([THUAN_HOA], "102")
    results = await asyncio.gather(*(hg.submit_document(HONG_GAI, meta, letters[HONG_GAI]) for _ in range(5)))
    ids = {r["deliveries"][0]["delivery_id"] for r in results}
    assert len(ids) == 1
    receipts = {r["deliveries"][0]["receipt"]["sig"] for r in results}
    assert len(receipts) == 1, "a duplicate gets the original receipt"
    assert sum(not r["duplicate"] for r in results) <= 1 or len({r["message_id"] for r in results}) == 1
    # The same DocumentId with other bytes (another attempt by the clerk) is still the same delivery.
    again = await hg.submit_document(HONG_GAI, {**meta, "subject": "Sửa trích yếu"}, letters[HONG_GAI])
    assert again["duplicate"] and again["deliveries"][0]["delivery_id"] in ids
    await eventually(lambda: inbox_items(th, THUAN_HOA, kind="document"), what="arrival")
    await asyncio.sleep(1.0)
    items = await inbox_items(th, THUAN_HOA, kind="document")
    assert len(items) == 1 and items[0]["message"]["meta"]["subject"] == meta["subject"]


async def test_province_to_its_districts_and_communes(federation: Federation, letters: dict[str, bytes]) -> None:
    """One packet, N recipients on three different nodes: N deliveries, each with its own state and trail."""
    h49 = await federation.client(H49)
    recipients = [SNV_H49, HA_LONG, VAN_DON, HONG_GAI, DONG_XA]
    result = await h49.submit_document(H49, letter_meta(recipients, "201", priority=3), letters[H49])
    assert sorted(d["recipient"] for d in result["deliveries"]) == sorted(recipients)
    # Local mailboxes (same node as the sender) are delivered at once; the others travel down the tree.
    states = {d["recipient"]: d["state"] for d in result["deliveries"]}
    assert states[SNV_H49] == "delivered" and states[VAN_DON] == "delivered" and states[HONG_GAI] == "queued"
    clients = {r: await federation.client(r) for r in recipients}
    for r in recipients:
        items = await eventually(lambda r=r: inbox_items(clients[r], r, kind="document"), what=f"arrival at {r}")
        assert len(items) == 1 and items[0]["priority"] == 3 and items[0]["priority_label_vi"] == "Hỏa tốc"

    async def all_delivered() -> Any:
        item = await h49.sent_item(H49, result["message_id"])
        rs = item["recipients"]
        return rs if all(x["state"] == "delivered" and x["recipient_status"] == "01" for x in rs) else None

    rs = await eventually(all_delivered, what="every recipient delivered")
    hg_trail = next(x for x in rs if x["recipient"] == HONG_GAI)["trail"]
    assert [e["node"] for e in hg_trail if e["event"] == "stored"] == ["lgsp-h49", "lgsp-h49-hl", "lgsp-h49-hg"]


async def test_commune_to_government_office(federation: Federation, letters: dict[str, bytes]) -> None:
    hg = await federation.client(HONG_GAI)
    vpcp = await federation.client(VPCP)
    result = await hg.submit_document(HONG_GAI, letter_meta([VPCP], "301"), letters[HONG_GAI])
    items = await eventually(lambda: inbox_items(vpcp, VPCP), what="arrival at VPCP")
    assert items[0]["delivery_id"] == result["deliveries"][0]["delivery_id"]


async def test_bad_input_is_refused_precisely(federation: Federation, letters: dict[str, bytes]) -> None:
    hg = await federation.client(HONG_GAI)
    with pytest.raises(UnknownAgency) as exc:
        await hg.submit_document(HONG_GAI, letter_meta(["000.99.99.H49"], "401"), letters[HONG_GAI])
    assert "000.99.99.H49" in exc.value.message_vi
    with pytest.raises(InvalidPacket):
        await hg.submit_packet(HONG_GAI, b"<edXML><not-closed>")
    with pytest.raises(InvalidPacket):
        await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "402"), b"not a pdf")
    # A packet claiming to be from another agency than the one the caller acts for.
    other = await federation.client(DONG_XA, node_id="lgsp-h49-hg", system_id="dx-at-hg")
    from docexchange.errors import Forbidden

    with pytest.raises(Forbidden):
        await other.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "403"), letters[HONG_GAI])
    # Nothing was stored by any of these.
    assert (await federation.store("lgsp-h49-hg").counts()) == {}


async def test_recall_withdraws_with_the_recipients_agreement(federation: Federation,
                                                              letters: dict[str, bytes]) -> None:
    hg = await federation.client(HONG_GAI)
    th = await federation.client(THUAN_HOA)
    result = await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "501"), letters[HONG_GAI])
    mid, did = result["message_id"], result["deliveries"][0]["delivery_id"]
    await eventually(lambda: inbox_items(th, THUAN_HOA, kind="document"), what="arrival")

    answer = await hg.recall(HONG_GAI, mid, reason="Gửi nhầm nơi nhận")
    assert answer["withdrawn"] == [] and answer["requested"]["deliveries"][0]["recipient"] == THUAN_HOA

    async def requested() -> Any:
        items = await inbox_items(th, THUAN_HOA, kind="document")
        return items if items and items[0]["recall"] == "requested" else None

    await eventually(requested, what="recall request at the recipient")
    codes = await eventually(lambda: _codes(th, THUAN_HOA, {"13"}), what="status 13 in the recipient's inbox")
    assert "13" in codes
    await th.recall_response(THUAN_HOA, did, agree=True, reason="Đồng ý thu hồi")
    assert await inbox_items(th, THUAN_HOA, kind="document") == []  # withdrawn from the inbox
    withdrawn = await inbox_items(th, THUAN_HOA, kind="document", include_withdrawn=True)
    assert withdrawn[0]["withdrawn"] and withdrawn[0]["state"] == "recalled"
    with pytest.raises(Conflict):
        await th.status(THUAN_HOA, did, "03")

    async def recalled() -> Any:
        r = (await hg.sent_item(HONG_GAI, mid))["recipients"][0]
        return r if r["recipient_status"] == "15" and r["withdrawn"] else None

    r = await eventually(recalled, what="status 15 at the sender")
    assert r["state"] == "recalled"


async def test_recall_refused_and_recall_before_leaving(federation: Federation, letters: dict[str, bytes]) -> None:
    hg = await federation.client(HONG_GAI)
    th = await federation.client(THUAN_HOA)
    result = await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "502"), letters[HONG_GAI])
    mid, did = result["message_id"], result["deliveries"][0]["delivery_id"]
    await eventually(lambda: inbox_items(th, THUAN_HOA, kind="document"), what="arrival")
    await th.ack(THUAN_HOA, did)
    await hg.recall(HONG_GAI, mid)
    await eventually(lambda: _recall_state(th, "requested"), what="recall request")
    await th.recall_response(THUAN_HOA, did, agree=False, reason="Văn bản đã được xử lý")
    with pytest.raises(Conflict):
        await th.recall_response(THUAN_HOA, did, agree=True)

    async def refused() -> Any:
        r = (await hg.sent_item(HONG_GAI, mid))["recipients"][0]
        return r if r["recipient_status"] == "16" else None

    r = await eventually(refused, what="status 16 at the sender")
    assert r["state"] == "acknowledged" and not r["withdrawn"] and r["recall"] == "refused"
    assert len(await inbox_items(th, THUAN_HOA, kind="document")) == 1

    # A letter that has not left the sender's node yet is recalled at once, without asking anyone.
    await federation.stop("lgsp-h49-hl")
    pending = await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "503"), letters[HONG_GAI])
    await asyncio.sleep(0.5)
    answer = await hg.recall(HONG_GAI, pending["message_id"])
    assert answer["withdrawn"] == [pending["deliveries"][0]["delivery_id"]] and answer["requested"] is None
    r = (await hg.sent_item(HONG_GAI, pending["message_id"]))["recipients"][0]
    assert r["state"] == "recalled"


async def _recall_state(client: Any, state: str) -> Any:
    items = await inbox_items(client, THUAN_HOA, kind="document")
    return items if items and items[0]["recall"] == state else None


@pytest.mark.parametrize(("op", "btype"), [("update", 2), ("replace", 3), ("revoke", 1)])
async def test_update_replace_and_revoke(federation: Federation, letters: dict[str, bytes], op: str,
                                         btype: int) -> None:
    hg = await federation.client(HONG_GAI)
    th = await federation.client(THUAN_HOA)
    original = await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "601"), letters[HONG_GAI])
    await eventually(lambda: inbox_items(th, THUAN_HOA, kind="document"), what="arrival")
    meta = letter_meta([THUAN_HOA], "602", subject="Văn bản thay thế / cập nhật / thu hồi")
    if op == "revoke":
        # A revocation (thu hồi) is a document of its own, BussinessDocType 1, naming its target.
        meta = {**meta, "business_type": 1, "business_target": original["document_id"],
                "business_reason": "Ban hành không đúng thẩm quyền"}
        new = await hg.submit_document(HONG_GAI, meta, letters[HONG_GAI])
    else:
        new = await hg.update(HONG_GAI, original["message_id"], meta, letters[HONG_GAI], replace=op == "replace")
    new_did = new["deliveries"][0]["delivery_id"]

    async def both() -> Any:
        items = await inbox_items(th, THUAN_HOA, kind="document")
        return items if len(items) == 2 else None

    items = await eventually(both, what="the new version")
    by_id = {i["delivery_id"]: i for i in items}
    old = by_id[original["deliveries"][0]["delivery_id"]]
    assert old["recall"] == "requested"
    assert by_id[new_did]["message"]["business_type"] == btype
    assert by_id[new_did]["message"]["meta"]["business"]["target"] == original["document_id"]
    await th.recall_response(THUAN_HOA, old["delivery_id"], agree=True)
    left = await inbox_items(th, THUAN_HOA, kind="document")
    assert [i["delivery_id"] for i in left] == [new_did]


async def test_priority_order_in_the_queue(federation: Federation, letters: dict[str, bytes]) -> None:
    """With the parent down, letters pile up; when it returns, Hỏa tốc leaves first."""
    await federation.stop("lgsp-h49-hl")
    hg = await federation.client(HONG_GAI)
    sent = {}
    for number, prio in [("701", 0), ("702", 1), ("703", 3), ("704", 2), ("705", 0), ("706", 3)]:
        r = await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], number, priority=prio), letters[HONG_GAI])
        sent[r["deliveries"][0]["delivery_id"]] = prio
    store = federation.store("lgsp-h49-hg")
    now = federation.service("lgsp-h49-hg").clock.now()
    from datetime import timedelta

    # What the lane would claim next, highest priority first, oldest first within a priority.
    await store.recover_leases(now + timedelta(hours=1))
    claimed = await store.claim("lgsp-h49-hl", 10, 1 << 30, "probe", now + timedelta(hours=1),
                                now + timedelta(hours=2))
    order = [sent[c.delivery.delivery_id] for c in claimed]
    assert order == [3, 3, 2, 1, 0, 0]
    assert [c.message.meta["code"] for c in claimed][:2] == ["703/UBND-VP", "706/UBND-VP"]


async def test_unknown_and_foreign_items_are_not_found(federation: Federation, letters: dict[str, bytes]) -> None:
    hg = await federation.client(HONG_GAI)
    th = await federation.client(THUAN_HOA)
    r = await hg.submit_document(HONG_GAI, letter_meta([THUAN_HOA], "801"), letters[HONG_GAI])
    did = r["deliveries"][0]["delivery_id"]
    await eventually(lambda: inbox_items(th, THUAN_HOA, kind="document"), what="arrival")
    pv = await federation.client(PHU_VANG)  # same node, another agency
    with pytest.raises(NotFound):
        await pv.item(PHU_VANG, did)
    with pytest.raises((NotFound, Exception)):
        await pv.packet(THUAN_HOA, did)
