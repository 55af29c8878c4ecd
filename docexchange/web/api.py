"""The agency JSON API of a node (described by ``/openapi.json``, OpenAPI 3.1).

Every ``/api/v1`` call is signed (HMAC-SHA256, :mod:`docexchange.web.auth`); the acting agency is in the path
and must be one the calling system may act for. Handlers parse, call :class:`~docexchange.exchange.service.
NodeService` and answer; errors become ``application/problem+json`` in :mod:`docexchange.web.middlewares`.
Times are ISO 8601 in Vietnam time (``+07:00``).
"""

from __future__ import annotations

import email.parser
import email.policy
import importlib.resources
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from aiohttp import web

from docexchange.clock import to_vn, vn_datetime
from docexchange.edxml.model import StaffInfo
from docexchange.errors import Conflict, DocExchangeError, NotFound
from docexchange.exchange.model import (
    PRIORITY_LABELS,
    STATUS_LABELS,
    Delivery,
    DeliveryState,
    MessageKind,
    StoredMessage,
    TrailEntry,
)
from docexchange.exchange.packets import OutgoingDocument
from docexchange.exchange.service import NodeService, SentItem, SubmitResult
from docexchange.exchange.store import InboxQuery, QueueQuery, SentQuery
from docexchange.web.auth import Principal, SignedRequest
from docexchange.web.keys import CREDENTIALS, DIRECTORY, DISPATCHER, NODE_ID, SERVICE, STORE

__all__ = [
    "authenticate",
    "delivery_json",
    "message_json",
    "outgoing_from_json",
    "parse_multipart",
    "setup_api_routes",
    "submit_json",
    "trail_json",
]

API = "/api/v1"
XML_TYPES = ("application/xml", "text/xml", "application/edxml+xml")


class BadRequest(DocExchangeError, ValueError):
    code = "bad_request"


# ------------------------------------------------------------------------------------------------ helpers


async def authenticate(request: web.Request) -> tuple[Principal, bytes]:
    """The signed caller and the request body (read once, within the size limit)."""
    body = await request.read()
    principal = await request.app[CREDENTIALS].authenticate(
        SignedRequest(
            method=request.method,
            path=request.path,
            query=tuple((k, v) for k, v in request.query.items()),
            headers=request.headers,
            body=body,
        )
    )
    return principal, body


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode(),
        content_type="application/json",
        charset="utf-8",
    )


def _t(moment: datetime | None) -> str | None:
    """ISO 8601 in Vietnam time, to the millisecond (``2025-01-05T08:00:00.123+07:00``)."""
    return to_vn(moment).isoformat(timespec="milliseconds") if moment is not None else None


def _agency(request: web.Request) -> str:
    code = request.match_info["agency"]
    try:
        return request.app[DIRECTORY].resolve(code)
    except DocExchangeError:
        raise NotFound(f"Không có cơ quan {code}", f"no agency {code}") from None


def _node_name(request: web.Request, node_id: str) -> str:
    try:
        return request.app[DIRECTORY].node(node_id).name
    except DocExchangeError:
        return node_id


def message_json(m: StoredMessage) -> dict[str, Any]:
    meta = dict(m.meta)
    meta.pop("trace", None)
    return {
        "message_id": m.message_id,
        "kind": m.kind.value,
        "sender": m.sender,
        "document_id": m.document_id,
        "priority": m.priority,
        "priority_label_vi": PRIORITY_LABELS.get(m.priority, ""),
        "business_type": m.business_type,
        "status_code": m.status_code or None,
        "digest": m.digest,
        "size": m.size,
        "origin_node": m.origin_node,
        "created_at": _t(m.created_at),
        "meta": meta,
    }


def delivery_json(d: Delivery, *, with_message: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "delivery_id": d.delivery_id,
        "message_id": d.message_id,
        "kind": d.kind.value,
        "sender": d.sender,
        "recipient": d.recipient,
        "document_id": d.document_id,
        "priority": d.priority,
        "priority_label_vi": PRIORITY_LABELS.get(d.priority, ""),
        "state": d.state.value,
        "state_label_vi": d.state.label_vi,
        "next_hop": d.next_hop,
        "attempts": d.attempts,
        "last_error": d.last_error or None,
        "created_at": _t(d.created_at),
        "updated_at": _t(d.updated_at),
        "next_attempt_at": _t(d.next_attempt_at),
        "delivered_at": _t(d.delivered_at),
        "delivered_at_vn": vn_datetime(d.delivered_at) if d.delivered_at else None,
        "acknowledged_at": _t(d.acknowledged_at),
        "fetched_at": _t(d.fetched_at),
        "recipient_status": d.recipient_status or None,
        "recipient_status_label_vi": STATUS_LABELS.get(d.recipient_status) if d.recipient_status else None,
        "recipient_status_at": _t(d.recipient_status_at),
        "recall": d.recall.value if d.recall else None,
        "withdrawn": d.withdrawn,
        "verification": d.verification.value,
        "verification_label_vi": d.verification.label_vi,
    }
    if with_message and d.message is not None:
        out["message"] = message_json(d.message)
    return out


def trail_json(entries: Sequence[TrailEntry], names: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "node": e.node,
            "node_name": (names or {}).get(e.node, e.node),
            "event": e.event,
            "at": _t(e.at),
            "at_vn": vn_datetime(e.at),
            "digest": e.digest or None,
            "receipt": e.receipt,
            "detail": e.detail or None,
        }
        for e in entries
    ]


def submit_json(result: SubmitResult) -> dict[str, Any]:
    return result.to_json()


def _names(request: web.Request) -> dict[str, str]:
    return {n.id: n.name for n in request.app[DIRECTORY].nodes}


def sent_json(request: web.Request, item: SentItem) -> dict[str, Any]:
    names = _names(request)
    return {
        **message_json(item.message),
        "recipients": [
            {
                **delivery_json(d, with_message=False),
                **({"trail": trail_json(item.trails.get(d.delivery_id, ()), names)} if item.trails else {}),
            }
            for d in item.deliveries
        ],
    }


def _ints(values: Sequence[str], name: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise BadRequest(f"Tham số {name} phải là số nguyên", f"parameter {name} must be an integer") from None


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    (value,) = _ints([raw], name)
    if not lo <= value <= hi:
        raise BadRequest(f"Tham số {name} phải trong khoảng {lo}–{hi}", f"parameter {name} must be in {lo}..{hi}")
    return value


def _moment(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            f"Tham số {name} phải là thời điểm ISO 8601 (vd 2025-01-05T08:00:00+07:00)",
            f"parameter {name} must be an ISO 8601 instant",
        ) from None
    if value.tzinfo is None:
        raise BadRequest(f"Tham số {name} phải ghi múi giờ", f"parameter {name} needs a time zone")
    return value


def _bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _enum_values(request: web.Request, name: str, enum: Any) -> tuple[Any, ...]:
    out = []
    for raw in request.query.getall(name, []):
        for part in raw.split(","):
            if not part:
                continue
            try:
                out.append(enum(part))
            except ValueError:
                allowed = ", ".join(e.value for e in enum)
                raise BadRequest(
                    f"Giá trị {name}={part!r} không hợp lệ ({allowed})", f"invalid {name}={part!r} ({allowed})"
                ) from None
    return tuple(out)


async def _body_json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("Nội dung phải là JSON", "the body must be JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("Nội dung JSON phải là một đối tượng", "the JSON body must be an object")
    return data


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[tuple[str, str, str, bytes]]]:
    """``multipart/form-data`` from bytes: (text fields, files as (field, filename, content type, bytes))."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    if not msg.is_multipart():
        raise BadRequest("Nội dung multipart không đọc được", "unreadable multipart body")
    fields_: dict[str, str] = {}
    files: list[tuple[str, str, str, bytes]] = []
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if filename is not None:
            files.append((name, filename, part.get_content_type(), data))
        else:
            fields_[name] = data.decode(part.get_content_charset() or "utf-8", errors="strict")
    return fields_, files


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{name} phải có dạng YYYY-MM-DD", f"{name} must be YYYY-MM-DD") from None


def outgoing_from_json(data: Mapping[str, Any]) -> OutgoingDocument:
    """The letter's metadata (JSON) into :class:`OutgoingDocument`, refusing unknown or mistyped fields."""
    known = {f.name for f in fields(OutgoingDocument)} | {"signer"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadRequest(f"Trường không được hỗ trợ: {', '.join(unknown)}", f"unknown fields: {', '.join(unknown)}")
    for req in ("to", "subject", "code_number", "code_notation"):
        if not data.get(req):
            raise BadRequest(f"Thiếu trường bắt buộc {req}", f"missing required field {req}")

    def strs(name: str) -> tuple[str, ...]:
        v = data.get(name, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise BadRequest(f"{name} phải là danh sách chuỗi", f"{name} must be a list of strings")
        return tuple(v)

    def opt(name: str) -> str | None:
        v = data.get(name)
        if v is None:
            return None
        if not isinstance(v, str):
            raise BadRequest(f"{name} phải là chuỗi", f"{name} must be a string")
        return v

    signer = data.get("signer") or {}
    if not isinstance(signer, dict):
        raise BadRequest("signer phải là đối tượng", "signer must be an object")
    priority = data.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 4:
        raise BadRequest("priority phải là 0–4", "priority must be 0-4")
    btype = data.get("business_type", 0)
    if isinstance(btype, bool) or not isinstance(btype, int) or not 0 <= btype <= 3:
        raise BadRequest("business_type phải là 0–3", "business_type must be 0-3")
    return OutgoingDocument(
        to=strs("to"),
        subject=str(data["subject"]),
        code_number=str(data["code_number"]),
        code_notation=str(data["code_notation"]),
        type_name=opt("type_name") or "Công văn",
        promulgation_date=_date(data.get("promulgation_date"), "promulgation_date"),
        place=opt("place"),
        content=opt("content"),
        signer_full_name=signer.get("full_name") or opt("signer_full_name"),
        signer_position=signer.get("position") or opt("signer_position"),
        signer_competence=signer.get("competence") or opt("signer_competence"),
        priority=priority,
        due_date=_date(data.get("due_date"), "due_date"),
        to_places=strs("to_places"),
        steering_type=opt("steering_type"),
        business_type=btype,
        business_target=opt("business_target"),
        business_reason=opt("business_reason"),
        added_receivers=strs("added_receivers"),
        removed_receivers=strs("removed_receivers"),
        replaces=strs("replaces"),
        document_name=opt("document_name") or "van-ban.pdf",
    )


async def _submit(request: web.Request, principal: Principal, body: bytes, agency: str,
                  business: tuple[int, str] | None = None) -> SubmitResult:
    service: NodeService = request.app[SERVICE]
    ctype = request.content_type
    if ctype in XML_TYPES:
        if business is not None:
            raise BadRequest(
                "Cập nhật/thay thế gửi tệp PDF và siêu dữ liệu (multipart/form-data)",
                "update/replace take a PDF and metadata (multipart/form-data)",
            )
        to = tuple(t for raw in request.query.getall("to", []) for t in raw.split(",") if t)
        # The signature check has just verified X-DX-Content-SHA256 against this very body.
        digest = request.headers.get(request.app[CREDENTIALS].scheme.content_sha256, "").strip().lower()
        return await service.submit_packet(principal, agency, body, to=to, data_sha256=digest or None)
    if ctype == "multipart/form-data":
        form, files = parse_multipart(request.headers.get("Content-Type", ""), body)
        try:
            meta = json.loads(form.get("metadata", ""))
        except ValueError:
            raise BadRequest("Trường metadata phải là JSON", "the metadata field must be JSON") from None
        if not isinstance(meta, dict):
            raise BadRequest("metadata phải là đối tượng JSON", "metadata must be a JSON object")
        if business is not None:
            meta = {**meta, "business_type": business[0], "business_target": business[1]}
        doc = outgoing_from_json(meta)
        main = [f for f in files if f[0] == "document"]
        if len(main) != 1:
            raise BadRequest("Cần đúng một tệp 'document' (PDF đã ký)", "exactly one 'document' file (signed PDF)")
        _, fname, _, pdf = main[0]
        if fname and "document_name" not in meta:
            doc = OutgoingDocument(**{**doc.__dict__, "document_name": fname})
        extra = [(fn or "phu-luc", ct, data) for name, fn, ct, data in files if name == "attachment"]
        return await service.submit_document(principal, agency, doc, pdf, extra)
    raise BadRequest(
        "Kiểu nội dung phải là application/xml (gói tin edXML) hoặc multipart/form-data (PDF + metadata)",
        "content type must be application/xml (edXML packet) or multipart/form-data (PDF + metadata)",
    )


# ------------------------------------------------------------------------------------------------ handlers


async def submit(request: web.Request) -> web.Response:
    principal, body = await authenticate(request)
    agency = _agency(request)
    result = await _submit(request, principal, body, agency)
    return _json(submit_json(result), status=200 if result.duplicate else 201)


async def inbox(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    agency = _agency(request)
    kinds = _enum_values(request, "kind", MessageKind)
    query = InboxQuery(
        recipients=(agency,),
        kind=kinds[0] if len(kinds) == 1 else None,
        states=_enum_values(request, "state", DeliveryState),
        senders=tuple(s for raw in request.query.getall("sender", []) for s in raw.split(",") if s),
        priorities=_ints([p for raw in request.query.getall("priority", []) for p in raw.split(",") if p], "priority"),
        since=_moment(request, "since"),
        until=_moment(request, "until"),
        unacknowledged=_bool(request, "unacknowledged"),
        include_withdrawn=_bool(request, "include_withdrawn"),
        document_id=request.query.get("document_id") or None,
        limit=_int(request, "limit", 50, 1, 500),
        cursor=request.query.get("cursor") or None,
    )
    service: NodeService = request.app[SERVICE]
    wait = _int(request, "wait", 0, 0, 60)
    token = service.mail_token()
    page = await service.inbox(principal, query)
    if not page.items and wait:
        await service.wait_for_mail(wait, token)
        page = await service.inbox(principal, query)
    return _json({
        "agency": agency,
        "items": [delivery_json(d) for d in page.items],
        "next_cursor": page.next_cursor,
    })


async def _inbox_delivery(request: web.Request, principal: Principal) -> Delivery:
    agency = _agency(request)
    d = await request.app[SERVICE].inbox_item(principal, request.match_info["delivery_id"])
    if d.recipient != agency:
        raise NotFound("Không tìm thấy văn bản trong hộp thư", "no such item in this agency's inbox")
    return d


async def inbox_item(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d = await _inbox_delivery(request, principal)
    service: NodeService = request.app[SERVICE]
    _state, report = await service.verification(principal, d.delivery_id)
    data = delivery_json(d)
    data["verification_report"] = report
    return _json(data)


async def inbox_packet(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d = await _inbox_delivery(request, principal)
    _, data = await request.app[SERVICE].packet(principal, d.delivery_id)
    return web.Response(body=data, content_type="application/xml", charset="utf-8",
                        headers={"X-DX-Digest": d.message.digest if d.message else ""})


def _disposition(name: str) -> str:
    ascii_name = "".join(c if c.isascii() and c not in '"\\' and c.isprintable() else "_" for c in name) or "tep"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name)}"


async def inbox_attachments(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d = await _inbox_delivery(request, principal)
    _, atts = await request.app[SERVICE].attachments(principal, d.delivery_id)
    return _json({
        "delivery_id": d.delivery_id,
        "attachments": [
            {"index": i, "name": a.name, "content_type": a.content_type, "size": a.size,
             "description": a.description}
            for i, a in enumerate(atts)
        ],
    })


async def inbox_attachment(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d = await _inbox_delivery(request, principal)
    _, atts = await request.app[SERVICE].attachments(principal, d.delivery_id)
    try:
        index = int(request.match_info["index"])
        att = atts[index]
    except (ValueError, IndexError):
        raise NotFound("Không có tệp đính kèm này", "no such attachment") from None
    return web.Response(body=att.content, content_type=att.content_type or "application/octet-stream",
                        headers={"Content-Disposition": _disposition(att.name)})


async def inbox_ack(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d = await _inbox_delivery(request, principal)
    done = await request.app[SERVICE].acknowledge(principal, d.delivery_id)
    return _json(delivery_json(done, with_message=False))


def _staff(data: Mapping[str, Any]) -> StaffInfo | None:
    s = data.get("staff")
    if s is None:
        return None
    if not isinstance(s, dict) or not all(isinstance(v, str) for v in s.values()):
        raise BadRequest("staff phải là đối tượng các chuỗi", "staff must be an object of strings")
    allowed = {"department", "staff", "email", "mobile"}
    if set(s) - allowed:
        raise BadRequest(f"staff chỉ gồm {', '.join(sorted(allowed))}", f"staff fields: {', '.join(sorted(allowed))}")
    return StaffInfo(**s)


async def inbox_status(request: web.Request) -> web.Response:
    principal, body = await authenticate(request)
    d = await _inbox_delivery(request, principal)
    data = await _body_json(body)
    code = str(data.get("code", "")).zfill(2)
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequest("description phải là chuỗi", "description must be a string")
    result = await request.app[SERVICE].send_status(principal, d.delivery_id, code, description, _staff(data))
    return _json(submit_json(result), status=200 if result.duplicate else 201)


async def inbox_recall_response(request: web.Request) -> web.Response:
    principal, body = await authenticate(request)
    d = await _inbox_delivery(request, principal)
    data = await _body_json(body)
    agree = data.get("agree")
    if not isinstance(agree, bool):
        raise BadRequest("agree phải là true hoặc false", "agree must be true or false")
    reason = data.get("reason")
    result = await request.app[SERVICE].respond_recall(principal, d.delivery_id, agree,
                                                       reason if isinstance(reason, str) else None)
    return _json(submit_json(result), status=201)


async def sent(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    agency = _agency(request)
    kinds = _enum_values(request, "kind", MessageKind)
    query = SentQuery(
        senders=(agency,),
        kind=kinds[0] if kinds else MessageKind.DOCUMENT,
        document_id=request.query.get("document_id") or None,
        since=_moment(request, "since"),
        until=_moment(request, "until"),
        limit=_int(request, "limit", 50, 1, 500),
        cursor=request.query.get("cursor") or None,
    )
    items, cursor = await request.app[SERVICE].sent_page(principal, query)
    return _json({"agency": agency, "items": [sent_json(request, i) for i in items], "next_cursor": cursor})


async def _sent_item(request: web.Request, principal: Principal) -> SentItem:
    agency = _agency(request)
    principal.require_agency(agency)
    item = await request.app[SERVICE].sent_item(principal, request.match_info["message_id"])
    if item.message.sender != agency:
        raise NotFound("Không tìm thấy văn bản đã gửi", "no such sent message")
    return item


async def sent_item(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    item = await _sent_item(request, principal)
    return _json(sent_json(request, item))


async def sent_recall(request: web.Request) -> web.Response:
    principal, body = await authenticate(request)
    item = await _sent_item(request, principal)
    data = await _body_json(body)
    recipients = data.get("recipients", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise BadRequest("recipients phải là danh sách mã cơ quan", "recipients must be a list of agency codes")
    reason = data.get("reason")
    result = await request.app[SERVICE].recall(principal, item.message.sender, item.message.document_id,
                                               recipients, reason if isinstance(reason, str) else None)
    return _json({
        "withdrawn": list(result.withdrawn),
        "requested": submit_json(result.requested) if result.requested else None,
    }, status=201)


async def _sent_business(request: web.Request, btype: int) -> web.Response:
    principal, body = await authenticate(request)
    item = await _sent_item(request, principal)
    if item.message.kind != MessageKind.DOCUMENT:
        raise Conflict("Chỉ cập nhật/thay thế được văn bản", "only documents can be updated or replaced")
    result = await _submit(request, principal, body, item.message.sender, (btype, item.message.document_id))
    return _json(submit_json(result), status=200 if result.duplicate else 201)


async def sent_update(request: web.Request) -> web.Response:
    return await _sent_business(request, 2)


async def sent_replace(request: web.Request) -> web.Response:
    return await _sent_business(request, 3)


async def delivery_trail(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d, entries = await request.app[SERVICE].trail(principal, request.match_info["delivery_id"])
    return _json({**delivery_json(d, with_message=False), "trail": trail_json(entries, _names(request))})


async def admin_queue(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    states = _enum_values(request, "state", DeliveryState) or (DeliveryState.DEAD,)
    page = await request.app[SERVICE].queue(principal, QueueQuery(
        states=states, destination=request.query.get("destination") or None,
        limit=_int(request, "limit", 100, 1, 1000), cursor=request.query.get("cursor") or None,
    ))
    return _json({"items": [delivery_json(d) for d in page.items], "next_cursor": page.next_cursor})


async def admin_queue_item(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d, entries = await request.app[SERVICE].queue_item(principal, request.match_info["delivery_id"])
    return _json({**delivery_json(d), "trail": trail_json(entries, _names(request))})


async def admin_resend(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    d = await request.app[SERVICE].resend(principal, request.match_info["delivery_id"])
    return _json(delivery_json(d, with_message=False))


async def admin_purge(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    await request.app[SERVICE].purge(principal, request.match_info["delivery_id"])
    return web.Response(status=204)


async def admin_status(request: web.Request) -> web.Response:
    principal, _ = await authenticate(request)
    counts = await request.app[SERVICE].counts(principal)
    dispatcher = request.app.get(DISPATCHER)
    peers = {}
    if dispatcher is not None:
        for peer, b in dispatcher.breakers.items():
            st = dispatcher.stats[peer]
            peers[peer] = {
                "breaker": b.status.value,
                "open_until": _t(b.open_until),
                "last_error": b.last_error or None,
                "batches": st.batches,
                "forwarded": st.delivered,
                "retried": st.retried,
                "dead": st.dead,
            }
    store = request.app[STORE]
    return _json({
        "node": request.app[NODE_ID],
        "queues": counts,
        "peers": peers,
        "schema_version": await store.schema_version(),
    })


async def directory_list(request: web.Request) -> web.Response:
    await authenticate(request)
    d = request.app[DIRECTORY]
    return _json({
        "agencies": [
            {"code": a.code, "name": a.name, "level": a.level.value, "node": a.node, "parent": a.parent or None,
             "aliases": list(a.aliases), "sample": a.sample}
            for a in d
        ],
        "nodes": [{"id": n.id, "name": n.name, "url": n.url, "parent": n.parent or None} for n in d.nodes],
    })


async def health(request: web.Request) -> web.Response:
    return _json({"node": request.app[NODE_ID], "ok": True})


_OPENAPI: bytes | None = None


async def openapi(request: web.Request) -> web.Response:
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = importlib.resources.files("docexchange.web").joinpath("openapi.json").read_bytes()
    return web.Response(body=_OPENAPI, content_type="application/json", charset="utf-8")


def setup_api_routes(app: web.Application) -> None:
    r = app.router
    a = f"{API}/agencies/{{agency}}"
    r.add_post(f"{a}/documents", submit)
    r.add_get(f"{a}/inbox", inbox)
    r.add_get(f"{a}/inbox/{{delivery_id}}", inbox_item)
    r.add_get(f"{a}/inbox/{{delivery_id}}/packet", inbox_packet)
    r.add_get(f"{a}/inbox/{{delivery_id}}/attachments", inbox_attachments)
    r.add_get(f"{a}/inbox/{{delivery_id}}/attachments/{{index}}", inbox_attachment)
    r.add_post(f"{a}/inbox/{{delivery_id}}/ack", inbox_ack)
    r.add_post(f"{a}/inbox/{{delivery_id}}/status", inbox_status)
    r.add_post(f"{a}/inbox/{{delivery_id}}/recall-response", inbox_recall_response)
    r.add_get(f"{a}/sent", sent)
    r.add_get(f"{a}/sent/{{message_id}}", sent_item)
    r.add_post(f"{a}/sent/{{message_id}}/recall", sent_recall)
    r.add_post(f"{a}/sent/{{message_id}}/update", sent_update)
    r.add_post(f"{a}/sent/{{message_id}}/replace", sent_replace)
    r.add_get(f"{API}/deliveries/{{delivery_id}}/trail", delivery_trail)
    r.add_get(f"{API}/admin/queue", admin_queue)
    r.add_get(f"{API}/admin/queue/{{delivery_id}}", admin_queue_item)
    r.add_post(f"{API}/admin/queue/{{delivery_id}}/resend", admin_resend)
    r.add_delete(f"{API}/admin/queue/{{delivery_id}}", admin_purge)
    r.add_get(f"{API}/admin/status", admin_status)
    r.add_get(f"{API}/directory", directory_list)
    r.add_get("/health", health)
    r.add_get("/openapi.json", openapi)

