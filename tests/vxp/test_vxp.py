"""The national-axis-style API end to end, through a client written only from docs/national-axis-api.md.

The client below (``sign`` and ``DocClient``) uses nothing but the standard library and aiohttp — this file
imports no docexchange code (checked in ``test_wire.py``); the server side
(nodes, credentials issued by the operator, store digests) comes from fixtures. A letter signed person-then-
seal goes from UBND phường Hồng Gai (Quảng Ninh) to Sở Nội vụ Huế through three real nodes over HTTPS with
mutual TLS between them; Huế polls, fetches, acknowledges, answers 03 and 06; Hồng Gai sees them. Then every bad
input the API must refuse is tried, and every node's store is checked unchanged after each refusal.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import secrets
import ssl
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="module")

HONG_GAI = "000.01.11.H49"
HA_LONG = "000.00.11.H49"
SNV_HUE = "000.00.01.H57"
THUAN_HOA = "000.00.31.H57"
NS = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
VN = timezone(timedelta(hours=7))

# ------------------------------------------------------------------------------ the client, from the doc only


def sign(secret: str, system_id: str, path: str, params: dict[str, str], body: bytes,
         timestamp: int, nonce: str) -> dict[str, str]:
    """docs/national-axis-api.md §3, as printed there."""
    headers = dict(params, timestamp=str(timestamp), nonce=nonce, sha256=hashlib.sha256(body).hexdigest())
    names = sorted(h.lower() for h in headers)
    lower = {k.lower(): v.strip() for k, v in headers.items()}
    canonical = "".join(f"{n}:{lower[n]}\n" for n in names)
    sts = "\n".join(["VXP-HMAC-SHA256", str(timestamp), nonce, "POST", path, "", canonical,
                     ";".join(names), headers["sha256"]])
    signature = hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"VXP-HMAC-SHA256 Credential={system_id}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


@dataclass
class Answer:
    http: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.http == 200 and self.body.get("status") == "OK" and self.body.get("ErrorCode") == "0"


class DocClient:
    def __init__(self, base_url: str, system_id: str, secret: str, cafile: str) -> None:
        self.base_url = base_url
        self.system_id = system_id
        self.secret = secret
        self.ssl = ssl.create_default_context(cafile=cafile)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DocClient:
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    def headers(self, operation: str, params: dict[str, str], body: bytes = b"", *, timestamp: int | None = None,
                nonce: str | None = None, secret: str | None = None, system_id: str | None = None) -> dict[str, str]:
        return sign(secret or self.secret, system_id or self.system_id, f"/vxp/{operation}", params, body,
                    int(time.time()) if timestamp is None else timestamp, nonce or secrets.token_urlsafe(18))

    async def post(self, operation: str, headers: Any, body: bytes = b"", method: str = "POST") -> Answer:
        assert self.session is not None
        async with self.session.request(method, f"{self.base_url}/vxp/{operation}", headers=headers, data=body,
                                        ssl=self.ssl) as resp:
            assert resp.content_type == "application/json"
            return Answer(resp.status, await resp.json())

    async def call(self, operation: str, params: dict[str, str], body: bytes = b"") -> Answer:
        return await self.post(operation, self.headers(operation, params, body), body)

    async def ok(self, operation: str, params: dict[str, str], body: bytes = b"") -> dict[str, Any]:
        answer = await self.call(operation, params, body)
        assert answer.ok, answer
        return answer.body

    # the operations, §5
    async def send_edoc(self, agency: str, to: list[str], messagetype: str, body: bytes) -> dict[str, Any]:
        return await self.ok("sendEdoc", {"from": agency, "to": json.dumps(to), "servicetype": "eDoc",
                                          "messagetype": messagetype}, body)

    async def received(self, agency: str, messagetype: str = "edoc") -> list[dict[str, Any]]:
        return (await self.ok("getReceivedEdocList", {"from": agency, "servicetype": "eDoc",
                                                      "messagetype": messagetype}))["data"]

    async def get_edoc(self, agency: str, doc_id: str) -> bytes:
        answer = await self.ok("getEdoc", {"from": agency, "servicetype": "eDoc", "docId": doc_id})
        data = base64.b64decode(answer["data"], validate=True)
        assert hashlib.sha256(data).hexdigest() == answer["sha256"] and len(data) == answer["size"]
        return data

    async def update_status(self, agency: str, doc_id: str, status: str) -> dict[str, Any]:
        return await self.ok("updateStatus", {"from": agency, "servicetype": "eDoc", "docId": doc_id,
                                              "status": status})

    async def sent(self, agency: str, messagetype: str = "edoc", doc_id: str | None = None) -> list[dict[str, Any]]:
        params = {"from": agency, "servicetype": "eDoc", "messagetype": messagetype}
        if doc_id:
            params["docId"] = doc_id
        return (await self.ok("getSentEdocList", params))["data"]

    async def count(self, agency: str, what: str = "Edoc") -> int:
        return int((await self.ok(f"countReceive{what}", {"from": agency, "servicetype": "eDoc"}))["total"])


def status_packet(*, sender: str, sender_name: str, doc_sender: str, code: str, document_id: str,
                  promulgation_date: str, status: str, description: str, staff: str, at: datetime) -> bytes:
    """A status packet laid out as standards §3 / the doc's worked example show."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">
  <edXML:edXMLEnvelope xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From>
          <edXML:OrganId>{sender}</edXML:OrganId>
          <edXML:OrganName>{escape(sender_name)}</edXML:OrganName>
        </edXML:From>
        <edXML:ResponseFor>
          <edXML:OrganId>{doc_sender}</edXML:OrganId>
          <edXML:Code>{escape(code)}</edXML:Code>
          <edXML:PromulgationDate>{promulgation_date}</edXML:PromulgationDate>
          <edXML:DocumentId>{escape(document_id)}</edXML:DocumentId>
        </edXML:ResponseFor>
        <edXML:StaffInfo>
          <edXML:Department>Văn phòng</edXML:Department>
          <edXML:Staff>{escape(staff)}</edXML:Staff>
        </edXML:StaffInfo>
        <edXML:StatusCode>{status}</edXML:StatusCode>
        <edXML:Description>{escape(description)}</edXML:Description>
        <edXML:Timestamp>{at.astimezone(VN):%Y/%m/%d %H:%M:%S}</edXML:Timestamp>
      </edXML:MessageHeader>
    </edXML:edXMLHeader>
  </edXML:edXMLEnvelope>
</edXML>
""".encode()


def answer_to(item: dict[str, Any], sender: str, sender_name: str, status: str, description: str) -> bytes:
    """The status packet answering a received document, from what getReceivedEdocList listed about it."""
    return status_packet(
        sender=sender, sender_name=sender_name, doc_sender=item["from"], code=item["code"],
        document_id=item["documentId"], promulgation_date=item["promulgationDate"].replace("-", "/"),
        status=status, description=description, staff="Lê Thị Thu Hà", at=datetime.now(VN),
    )


async def poll(check: Callable[[], Awaitable[Any]], what: str, within: float = 90.0) -> Any:
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def packet_facts(data: bytes) -> tuple[list[str], bytes | None, str | None]:
    """(TraceHeader OrganIds in order, the first attachment's file, the StatusCode) of an edXML packet."""
    root = ET.fromstring(data)
    trace = [t.findtext(f"{NS}OrganId") for t in root.iter(f"{NS}TraceHeader")]
    status = root.findtext(f".//{NS}StatusCode")
    content = None
    att = next(root.iter(f"{NS}Attachment"), None)
    if att is not None:
        raw = base64.b64decode("".join((att.findtext(f"{NS}ContentTransferEncoded") or "").split()))
        if raw.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                (name,) = z.namelist()
                raw = z.read(name)
        content = raw
    return [t or "" for t in trace], content, status


# ------------------------------------------------------------------------------ the whole exchange


async def test_commune_to_department_in_another_province(axis: Any, letter: Any) -> None:
    commune_secret = await axis.credential("lgsp-h49", "qlvb-honggai", [HONG_GAI])
    # A vendor's system serving two agencies of Huế.
    vendor_secret = await axis.credential("lgsp-h57", "qlvb-hue-vendor", [SNV_HUE, THUAN_HOA])
    async with DocClient(axis.url("lgsp-h49"), "qlvb-honggai", commune_secret, axis.ca_file) as commune, \
            DocClient(axis.url("lgsp-h57"), "qlvb-hue-vendor", vendor_secret, axis.ca_file) as hue:
        # 1. The commune's software sends the signed letter on its provincial axis.
        sent = await commune.send_edoc(HONG_GAI, [SNV_HUE], "edoc", letter.packet)
        assert sent["documentId"] == letter.document_id and sent["messagetype"] == "edoc"
        assert sent["duplicate"] is False
        (delivery,) = sent["deliveries"]
        assert delivery["to"] == SNV_HUE and delivery["state"] == "queued"

        # A retry (new nonce, same packet) is answered with the original ids: nothing is sent twice.
        again = await commune.send_edoc(HONG_GAI, [SNV_HUE], "edoc", letter.packet)
        assert again["duplicate"] is True and again["docId"] == sent["docId"]
        assert again["deliveries"][0]["docId"] == delivery["docId"]

        # 2. Huế's software polls its axis until the letter is there.
        assert await poll(lambda: hue.count(SNV_HUE), "the letter at Huế") == 1
        (item,) = await hue.received(SNV_HUE)
        assert item["messagetype"] == "edoc" and item["from"] == HONG_GAI and item["to"] == SNV_HUE
        assert item["documentId"] == letter.document_id and item["code"] == letter.code
        assert item["subject"] == "Về việc phối hợp liên thông văn bản điện tử"
        assert (item["priority"], item["priorityName"]) == (1, "Khẩn")
        assert item["fetched"] is False
        assert await hue.received(THUAN_HOA) == [], "the other agency served by the vendor got nothing"

        # 3. getEdoc: base64 edXML whose SHA-256 is announced; one TraceHeader per node, the signed PDF intact.
        data = await hue.get_edoc(SNV_HUE, item["docId"])
        assert hashlib.sha256(data).hexdigest() == item["sha256"]
        trace, pdf, _ = packet_facts(data)
        assert trace == ["000.00.00.H49", "000.00.00.G22", "000.00.00.H57"]
        assert pdf == letter.pdf

        # 4. The node verified the PDF on arrival (person, then the commune's own seal).
        async def verified() -> Any:
            (it,) = await hue.received(SNV_HUE)
            return it if it["verification"] != "pending" else None

        checked = await poll(verified, "arrival verification")
        assert (checked["verification"], checked["verificationName"]) == ("passed", "hợp lệ")
        assert checked["fetched"] is True

        # 5. Transport acknowledgement: fail and processing keep it waiting, done takes it off the list for good.
        answer = await hue.update_status(SNV_HUE, item["docId"], "fail")
        assert answer["transportStatus"] == "fail" and answer["state"] == "delivered"
        assert [i["docId"] for i in await hue.received(SNV_HUE)] == [item["docId"]], "to fetch again"
        answer = await hue.update_status(SNV_HUE, item["docId"], "processing")
        assert answer["transportStatus"] == "processing" and answer["state"] == "delivered"
        assert [i["docId"] for i in await hue.received(SNV_HUE)] == [item["docId"]]
        answer = await hue.update_status(SNV_HUE, item["docId"], "done")
        assert answer["state"] == "acknowledged"
        assert await hue.received(SNV_HUE) == [] and await hue.count(SNV_HUE) == 0
        assert (await hue.update_status(SNV_HUE, item["docId"], "done"))["state"] == "acknowledged"
        for late in ("processing", "fail"):
            refused = await hue.call("updateStatus", {"from": SNV_HUE, "servicetype": "eDoc", "docId": item["docId"],
                                                      "status": late})
            assert (refused.http, refused.body["status"], refused.body["ErrorCode"]) == (409, "FAIL", "ALREADY_DONE")
        assert await hue.get_edoc(SNV_HUE, item["docId"]) == data, "still fetchable after done"

        # 6. Business statuses back: 03 accepted, 06 done, as status packets through sendEdoc.
        for code, text in [("03", "Đã tiếp nhận, vào sổ văn bản đến số 125"), ("06", "Đã giải quyết xong")]:
            body = answer_to(item, SNV_HUE, "Sở Nội vụ thành phố Huế", code, text)
            st = await hue.send_edoc(SNV_HUE, [HONG_GAI], "status", body)
            assert st["messagetype"] == "status" and st["documentId"] == letter.document_id
            assert [d["to"] for d in st["deliveries"]] == [HONG_GAI]

        # 7. The commune sees 01 (automatic on arrival), 03 and 06, about its letter, from the department.
        async def statuses() -> Any:
            items = await commune.received(HONG_GAI, "status")
            return items if {i["statusCode"] for i in items} >= {"01", "03", "06"} else None

        items = await poll(statuses, "statuses 01, 03 and 06 at the commune")
        assert sorted(i["statusCode"] for i in items) == ["01", "03", "06"], "no 02: the letter was valid"
        for i in items:
            assert i["messagetype"] == "status" and i["from"] == SNV_HUE and i["to"] == HONG_GAI
            assert i["documentId"] == letter.document_id
            assert i["responseFor"]["documentId"] == letter.document_id
        by_code = {i["statusCode"]: i for i in items}
        assert by_code["06"]["statusName"] == "Hoàn thành"
        assert by_code["06"]["description"] == "Đã giải quyết xong"
        six = await commune.get_edoc(HONG_GAI, by_code["06"]["docId"])
        trace, _, code = packet_facts(six)
        assert code == "06" and trace == ["000.00.00.H57", "000.00.00.G22", "000.00.00.H49"]
        assert await commune.count(HONG_GAI, "Status") == 3

        # getSentEdocList: the department acknowledged the transfer and its latest status is 06.
        async def acknowledged() -> Any:
            (s,) = await commune.sent(HONG_GAI, doc_id=sent["docId"])
            (r,) = s["recipients"]
            return s if r["state"] == "acknowledged" and r["statusCode"] == "06" else None

        s = await poll(acknowledged, "acknowledged with status 06 on the sender's side")
        assert s["documentId"] == letter.document_id and s["code"] == letter.code
        assert s["recipients"][0]["to"] == SNV_HUE and s["recipients"][0]["statusName"] == "Hoàn thành"
        assert [x["docId"] for x in await commune.sent(HONG_GAI)] == [sent["docId"]], "sent exactly once"
        (hue_sent,) = await hue.sent(SNV_HUE, "status", doc_id=st["docId"])
        assert hue_sent["statusCode"] == "06"

        for i in items:
            await commune.update_status(HONG_GAI, i["docId"], "done")
        assert await commune.count(HONG_GAI, "Status") == 0

        agencies = (await hue.ok("getAgencyList", {}))["data"]
        by = {a["code"]: a for a in agencies}
        assert by[HONG_GAI]["node"] == "lgsp-h49" and by[SNV_HUE]["node"] == "lgsp-h57"
        assert by[HONG_GAI]["parentCode"] == HA_LONG and by[HONG_GAI]["level"] == "commune"


# ------------------------------------------------------------------------------ bad input


@dataclass
class Ctx:
    axis: Any
    commune: DocClient
    hue: DocClient
    operator: DocClient
    letter: Any
    snv_doc: str
    """docId of the second letter in Sở Nội vụ Huế's inbox."""
    th_doc: str
    """docId of the same letter in UBND phường Thuận Hóa's inbox."""

    async def quiet(self) -> dict[str, str]:
        """Wait until no node's store changes any more (deliveries, statuses and verifications settled)."""
        last = self.axis.snapshots()
        stable = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            now = self.axis.snapshots()
            stable = stable + 1 if now == last else 0
            if stable >= 2:
                return now
            last = now
        raise AssertionError("the federation did not settle")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(axis: Any, second_letter: Any) -> Any:
    commune_secret = await axis.credential("lgsp-h49", "qlvb-honggai-2", [HONG_GAI])
    vendor_secret = await axis.credential("lgsp-h57", "qlvb-hue-vendor-2", [SNV_HUE, THUAN_HOA])
    operator_secret = await axis.credential("lgsp-h57", "ops-hue", [], role="operator")
    async with DocClient(axis.url("lgsp-h49"), "qlvb-honggai-2", commune_secret, axis.ca_file) as commune, \
            DocClient(axis.url("lgsp-h57"), "qlvb-hue-vendor-2", vendor_secret, axis.ca_file) as hue, \
            DocClient(axis.url("lgsp-h57"), "ops-hue", operator_secret, axis.ca_file) as operator:
        await commune.send_edoc(HONG_GAI, [], "edoc", second_letter.packet)  # recipients from the packet's To

        async def arrived(agency: str) -> Any:
            items = [i for i in await hue.received(agency) if i["documentId"] == second_letter.document_id]
            return items[0] if items and items[0]["verification"] != "pending" else None

        snv = await poll(lambda: arrived(SNV_HUE), "the second letter at Sở Nội vụ")
        th = await poll(lambda: arrived(THUAN_HOA), "the second letter at Thuận Hóa")
        c = Ctx(axis, commune, hue, operator, second_letter, snv["docId"], th["docId"])
        yield c


def _status_about(ctx: Ctx, document_id: str) -> bytes:
    return status_packet(sender=SNV_HUE, sender_name="Sở Nội vụ thành phố Huế", doc_sender=HONG_GAI,
                         code=ctx.letter.code, document_id=document_id,
                         promulgation_date=ctx.letter.document_id.split(",")[1], status="03",
                         description="Đã tiếp nhận", staff="Lê Thị Thu Hà", at=datetime.now(VN))


SEND = {"from": HONG_GAI, "to": json.dumps([SNV_HUE]), "servicetype": "eDoc", "messagetype": "edoc"}
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><x>&xxe;</x></edXML>"""


async def _bad(ctx: Ctx, case: str) -> tuple[DocClient, str, Any, bytes, str]:
    """(client, operation, headers, body, method) of one bad call."""
    c, h, letter = ctx.commune, ctx.hue, ctx.letter
    now = int(time.time())
    body = letter.packet
    if case == "missing signature":
        headers = c.headers("sendEdoc", SEND, body)
        del headers["Authorization"]
        return c, "sendEdoc", headers, body, "POST"
    if case == "wrong secret":
        return c, "sendEdoc", c.headers("sendEdoc", SEND, body, secret="not-the-secret"), body, "POST"
    if case == "header changed after signing":
        headers = c.headers("sendEdoc", SEND, body)
        headers["to"] = json.dumps([THUAN_HOA])
        return c, "sendEdoc", headers, body, "POST"
    if case == "unsigned to":
        headers = c.headers("sendEdoc", {k: v for k, v in SEND.items() if k != "to"}, body)
        headers["to"] = SEND["to"]
        return c, "sendEdoc", headers, body, "POST"
    if case == "expired timestamp":
        return c, "sendEdoc", c.headers("sendEdoc", SEND, body, timestamp=now - 3600), body, "POST"
    if case == "timestamp from the future":
        return c, "sendEdoc", c.headers("sendEdoc", SEND, body, timestamp=now + 3600), body, "POST"
    if case == "unknown system id":
        return c, "sendEdoc", c.headers("sendEdoc", SEND, body, system_id="qlvb-khong-co"), body, "POST"
    if case == "revoked system id":
        secret = await ctx.axis.credential("lgsp-h49", "qlvb-revoked", [HONG_GAI])
        await ctx.axis.revoke("lgsp-h49", "qlvb-revoked")
        await asyncio.sleep(0)
        return c, "sendEdoc", c.headers("sendEdoc", SEND, body, secret=secret, system_id="qlvb-revoked"), body, "POST"
    if case == "not our signature scheme":
        headers = c.headers("sendEdoc", SEND, body)
        headers["Authorization"] = "Bearer eyJhbGciOiJIUzI1NiJ9"
        return c, "sendEdoc", headers, body, "POST"
    if case == "body does not match its hash":
        return c, "sendEdoc", c.headers("sendEdoc", SEND, body), body[:-200], "POST"
    if case == "header given twice":
        headers = c.headers("sendEdoc", SEND, body)
        return c, "sendEdoc", [*headers.items(), ("to", json.dumps([THUAN_HOA]))], body, "POST"
    if case == "system not allowed for from":
        return c, "sendEdoc", c.headers("sendEdoc", {**SEND, "from": HA_LONG}, body), body, "POST"
    if case == "operator on a mailbox":
        params = {"from": SNV_HUE, "servicetype": "eDoc"}
        return ctx.operator, "countReceiveEdoc", ctx.operator.headers("countReceiveEdoc", params), b"", "POST"
    if case == "to is not JSON":
        return c, "sendEdoc", c.headers("sendEdoc", {**SEND, "to": SNV_HUE}, body), body, "POST"
    if case == "to is not an array":
        return c, "sendEdoc", c.headers("sendEdoc", {**SEND, "to": '{"OrganId": "000.00.01.H57"}'}, body), body, \
            "POST"
    if case == "unknown recipient":
        return c, "sendEdoc", c.headers("sendEdoc", {**SEND, "to": '["000.99.99.H57"]'}, body), body, "POST"
    if case == "missing from":
        params = {k: v for k, v in SEND.items() if k != "from"}
        return c, "sendEdoc", c.headers("sendEdoc", params, body), body, "POST"
    if case == "wrong servicetype":
        return c, "sendEdoc", c.headers("sendEdoc", {**SEND, "servicetype": "eMail"}, body), body, "POST"
    if case == "messagetype says status, body is a document":
        return c, "sendEdoc", c.headers("sendEdoc", {**SEND, "messagetype": "status"}, body), body, "POST"
    if case == "packet from another agency":
        other = _status_about(ctx, letter.document_id)
        params = {**SEND, "messagetype": "status", "to": json.dumps([HONG_GAI])}
        return c, "sendEdoc", c.headers("sendEdoc", params, other), other, "POST"
    if case == "malformed XML":
        bad = b"<edXML><edXML:edXMLEnvelope>"
        return c, "sendEdoc", c.headers("sendEdoc", SEND, bad), bad, "POST"
    if case == "XML with an external entity":
        return c, "sendEdoc", c.headers("sendEdoc", SEND, XXE), XXE, "POST"
    if case == "empty body":
        return c, "sendEdoc", c.headers("sendEdoc", SEND), b"", "POST"
    if case == "status about a document never received":
        st = _status_about(ctx, f"{HONG_GAI},2025/01/05,999/UBND-VP")
        params = {"from": SNV_HUE, "to": json.dumps([HONG_GAI]), "servicetype": "eDoc", "messagetype": "status"}
        return h, "sendEdoc", h.headers("sendEdoc", params, st), st, "POST"
    if case == "recall (13) by someone else than the sender":
        st = status_packet(sender=SNV_HUE, sender_name="Sở Nội vụ thành phố Huế", doc_sender=HONG_GAI,
                           code=letter.code, document_id=letter.document_id,
                           promulgation_date=letter.document_id.split(",")[1], status="13",
                           description="Thu hồi", staff="Lê Thị Thu Hà", at=datetime.now(VN))
        params = {"from": SNV_HUE, "to": json.dumps([THUAN_HOA]), "servicetype": "eDoc", "messagetype": "status"}
        return h, "sendEdoc", h.headers("sendEdoc", params, st), st, "POST"
    if case == "unknown docId (getEdoc)":
        params = {"from": SNV_HUE, "servicetype": "eDoc", "docId": "m" + "0" * 31 + "." + SNV_HUE}
        return h, "getEdoc", h.headers("getEdoc", params), b"", "POST"
    if case == "unknown docId (updateStatus)":
        params = {"from": SNV_HUE, "servicetype": "eDoc", "docId": "not-a-doc-id", "status": "done"}
        return h, "updateStatus", h.headers("updateStatus", params), b"", "POST"
    if case == "docId of another agency's inbox":
        params = {"from": SNV_HUE, "servicetype": "eDoc", "docId": ctx.th_doc, "status": "done"}
        return h, "updateStatus", h.headers("updateStatus", params), b"", "POST"
    if case == "transport status not done/processing/fail":
        params = {"from": SNV_HUE, "servicetype": "eDoc", "docId": ctx.snv_doc, "status": "received"}
        return h, "updateStatus", h.headers("updateStatus", params), b"", "POST"
    if case == "body too large for the operation":
        big = b"x" * (65 * 1024)
        params = {"from": SNV_HUE, "servicetype": "eDoc"}
        return h, "countReceiveEdoc", h.headers("countReceiveEdoc", params, big), big, "POST"
    if case == "unknown operation":
        return h, "deleteEdoc", h.headers("deleteEdoc", {"from": SNV_HUE}), b"", "POST"
    if case == "GET instead of POST":
        params = {"from": SNV_HUE, "servicetype": "eDoc"}
        return h, "getReceivedEdocList", h.headers("getReceivedEdocList", params), b"", "GET"
    raise AssertionError(case)


BAD_INPUTS = [
    # case, ErrorCode, HTTP status, refused before authentication (nothing at all recorded, not even the nonce),
    # what the Vietnamese ErrorDesc must name
    ("missing signature", "AUTH_MISSING", 401, True, "Authorization"),
    ("wrong secret", "AUTH_INVALID", 401, True, "chữ ký"),
    ("header changed after signing", "AUTH_INVALID", 401, True, "chữ ký"),
    ("unsigned to", "AUTH_UNSIGNED_HEADER", 401, True, "SignedHeaders: to"),
    ("expired timestamp", "AUTH_EXPIRED", 401, True, "hết hạn"),
    ("timestamp from the future", "AUTH_EXPIRED", 401, True, "lệch"),
    ("unknown system id", "AUTH_INVALID", 401, True, "mã hệ thống"),
    ("revoked system id", "AUTH_INVALID", 401, True, "mã hệ thống"),
    ("not our signature scheme", "AUTH_MALFORMED", 401, True, "VXP-HMAC-SHA256"),
    ("body does not match its hash", "BODY_HASH_MISMATCH", 400, True, "SHA-256"),
    ("header given twice", "INVALID_HEADER", 400, True, "nhiều lần"),
    ("system not allowed for from", "FORBIDDEN_AGENCY", 403, False, HA_LONG),
    ("operator on a mailbox", "FORBIDDEN_ROLE", 403, False, "vai trò"),
    ("to is not JSON", "INVALID_TO", 400, False, "JSON"),
    ("to is not an array", "INVALID_TO", 400, False, "mảng"),
    ("unknown recipient", "UNKNOWN_AGENCY", 400, False, "000.99.99.H57"),
    ("missing from", "MISSING_HEADER", 400, False, "Thiếu tiêu đề from"),
    ("wrong servicetype", "INVALID_HEADER", 400, False, "eMail"),
    ("messagetype says status, body is a document", "MESSAGETYPE_MISMATCH", 400, False, "messagetype"),
    ("packet from another agency", "SENDER_MISMATCH", 403, False, SNV_HUE),
    ("malformed XML", "INVALID_EDXML", 400, False, "XML"),
    ("XML with an external entity", "INVALID_EDXML", 400, False, "DOCTYPE"),
    ("empty body", "INVALID_EDXML", 400, False, "rỗng"),
    ("status about a document never received", "UNKNOWN_DOCUMENT", 404, False, "999/UBND-VP"),
    ("recall (13) by someone else than the sender", "UNKNOWN_DOCUMENT", 404, False, "13"),
    ("unknown docId (getEdoc)", "DOC_NOT_FOUND", 404, False, "m0000"),
    ("unknown docId (updateStatus)", "DOC_NOT_FOUND", 404, False, "not-a-doc-id"),
    ("docId of another agency's inbox", "DOC_NOT_FOUND", 404, False, SNV_HUE),
    ("transport status not done/processing/fail", "INVALID_HEADER", 400, False, "received"),
    ("body too large for the operation", "PACKET_TOO_LARGE", 413, True, "giới hạn"),
    ("unknown operation", "UNKNOWN_OPERATION", 404, True, "deleteEdoc"),
    ("GET instead of POST", "METHOD_NOT_ALLOWED", 405, True, "POST"),
]


@pytest.mark.parametrize(("case", "code", "http", "before_auth", "names"), BAD_INPUTS,
                         ids=[b[0] for b in BAD_INPUTS])
async def test_bad_input_is_refused_and_changes_nothing(ctx: Ctx, case: str, code: str, http: int,
                                                        before_auth: bool, names: str) -> None:
    client, operation, headers, body, method = await _bad(ctx, case)
    before = await ctx.quiet()
    before_business = ctx.axis.snapshots(nonces=False)
    answer = await client.post(operation, headers, body, method=method)
    assert answer.body["status"] == "FAIL", answer
    assert (answer.body["ErrorCode"], answer.http) == (code, http), answer
    desc = answer.body["ErrorDesc"]
    assert desc and desc != answer.body["ErrorDescEn"] and any(ord(ch) > 127 for ch in desc), "Vietnamese ErrorDesc"
    assert names in desc, f"the ErrorDesc should name {names!r}: {desc!r}"
    if before_auth:
        assert ctx.axis.snapshots() == before, "a call refused before authentication changed a store"
    else:
        assert ctx.axis.snapshots(nonces=False) == before_business, "a refused call changed a store"


async def test_replayed_call_is_refused_and_changes_nothing(ctx: Ctx) -> None:
    # A status 04 (assigned) sent once is accepted; the very same request sent again is a replay.
    h = ctx.hue
    (item,) = [i for i in await h.received(SNV_HUE) if i["docId"] == ctx.snv_doc]
    body = answer_to(item, SNV_HUE, "Sở Nội vụ thành phố Huế", "04", "Giao Phòng Văn thư - Lưu trữ xử lý")
    params = {"from": SNV_HUE, "to": json.dumps([HONG_GAI]), "servicetype": "eDoc", "messagetype": "status"}
    headers = h.headers("sendEdoc", params, body)
    before_first = await ctx.quiet()
    first = await h.post("sendEdoc", headers, body)
    assert first.ok, first
    settled = await ctx.quiet()
    assert settled != before_first, "the accepted call did change the stores (the snapshot sees changes)"
    replay = await h.post("sendEdoc", headers, body)
    assert (replay.http, replay.body["status"], replay.body["ErrorCode"]) == (401, "FAIL", "AUTH_REPLAYED")
    assert "phát lại" in replay.body["ErrorDesc"]
    assert ctx.axis.snapshots() == settled
    # The same status with a fresh signature is accepted again, as a duplicate: still one status 04.
    again = await h.call("sendEdoc", params, body)
    assert again.ok and again.body["duplicate"] is True and again.body["docId"] == first.body["docId"]


async def test_agency_list_needs_a_valid_signature(ctx: Ctx) -> None:
    anon = await ctx.hue.post("getAgencyList", {}, b"")
    assert (anon.http, anon.body["ErrorCode"]) == (401, "AUTH_MISSING")
    ops = await ctx.operator.ok("getAgencyList", {})
    assert {a["code"] for a in ops["data"]} >= {HONG_GAI, SNV_HUE, THUAN_HOA}


async def test_recall_and_its_answer_travel_as_status_packets(ctx: Ctx) -> None:
    """13 (lấy lại) from the sender to one recipient; 15 (đồng ý thu hồi) back: the document leaves that
    recipient's waiting list, the other recipient keeps it, the sender sees the answer."""
    c, h, letter = ctx.commune, ctx.hue, ctx.letter
    date = letter.document_id.split(",")[1]
    recall = status_packet(sender=HONG_GAI, sender_name="Ủy ban nhân dân phường Hồng Gai", doc_sender=HONG_GAI,
                           code=letter.code, document_id=letter.document_id, promulgation_date=date, status="13",
                           description="Đề nghị thu hồi do gửi nhầm nơi nhận", staff="Vũ Thị Mai", at=datetime.now(VN))
    sent = await c.send_edoc(HONG_GAI, [THUAN_HOA], "status", recall)
    assert [d["to"] for d in sent["deliveries"]] == [THUAN_HOA]

    async def asked() -> Any:
        statuses = [i for i in await h.received(THUAN_HOA, "status") if i["statusCode"] == "13"]
        docs = [i for i in await h.received(THUAN_HOA) if i["docId"] == ctx.th_doc]
        return (statuses, docs) if statuses and docs and docs[0]["recall"] == "requested" else None

    statuses, _ = await poll(asked, "the recall request at Thuận Hóa")
    assert statuses[0]["from"] == HONG_GAI and statuses[0]["documentId"] == letter.document_id

    agree = status_packet(sender=THUAN_HOA, sender_name="Ủy ban nhân dân phường Thuận Hóa", doc_sender=HONG_GAI,
                          code=letter.code, document_id=letter.document_id, promulgation_date=date, status="15",
                          description="Đồng ý thu hồi", staff="Trương Thị Ngọc Ánh", at=datetime.now(VN))
    await h.send_edoc(THUAN_HOA, [HONG_GAI], "status", agree)
    assert ctx.th_doc not in [i["docId"] for i in await h.received(THUAN_HOA)], "withdrawn from the recipient"
    assert ctx.snv_doc in [i["docId"] for i in await h.received(SNV_HUE)], "the other recipient keeps it"

    async def answered() -> Any:
        (s,) = [x for x in await c.sent(HONG_GAI) if x["documentId"] == letter.document_id]
        r = {x["to"]: x for x in s["recipients"]}
        return r if r[THUAN_HOA]["statusCode"] == "15" else None

    recipients = await poll(answered, "status 15 on the sender's side")
    assert recipients[SNV_HUE]["statusCode"] != "15"
    codes = {i["statusCode"] for i in await c.received(HONG_GAI, "status") if i["from"] == THUAN_HOA}
    assert "15" in codes
