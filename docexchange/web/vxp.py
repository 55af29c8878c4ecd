"""The national-axis-style API of a node: what the Government Office's axis offers document management
systems (QLVB), so they connect to ours unchanged. The exact wire format is in ``docs/national-axis-api.md``;
its constants are in :mod:`docexchange.client.wire`.

``POST /vxp/<operation>`` with the parameters in headers:

=======================  =====================================================================================
sendEdoc                 raw edXML body (document or status packet, ``messagetype``), ``from``, ``to`` (JSON)
getReceivedEdocList      packets waiting in ``from``'s inbox (``messagetype`` edoc | status), until ``done``
getEdoc                  one packet by ``docId``, answered in base64 with its SHA-256
updateStatus             ``status`` done | processing | fail: the transfer to the caller's software
getSentEdocList          what ``from`` sent from this node, each recipient's state and business status
countReceiveEdoc/Status  how many documents / statuses wait in ``from``'s inbox
getAgencyList            the agencies reachable through the axis (the directory)
=======================  =====================================================================================

Calls are authenticated with the node's credentials (:class:`~docexchange.web.auth.Credentials`, the same
system ids and shared secrets as the agency JSON API) and its HMAC-SHA256 request scheme under this API's header
names. Handlers parse, call :class:`~docexchange.exchange.service.NodeService` and answer; every error becomes
``{"status": "FAIL", "ErrorCode", "ErrorDesc", "ErrorDescEn"}`` here (never the problem+json of the JSON API),
with the HTTP status of :data:`~docexchange.client.wire.ERROR_HTTP`. Secrets, signatures and bodies are never
logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from docexchange.client.wire import (
    ALGORITHM,
    OK_CODE,
    PARAM_HEADERS,
    PATH_PREFIX,
    SERVICE_TYPE,
    ErrorCode,
    Header,
    MessageType,
    Operation,
    TransportStatus,
    vxp_scheme,
)
from docexchange.clock import iso_vn
from docexchange.edxml._xml import MiB
from docexchange.edxml.model import Packet, StatusCode, StatusPacket
from docexchange.edxml.reader import read_packet
from docexchange.errors import (
    AuthError,
    Conflict,
    DeliveryError,
    DocExchangeError,
    EdxmlError,
    Forbidden,
    NotFound,
    PacketTooLarge,
    ReplayedRequest,
    RequestExpired,
    RetryableDeliveryError,
    StoreError,
    TrustServiceError,
    UnknownAgency,
)
from docexchange.exchange.model import (
    PRIORITY_LABELS,
    STATUS_LABELS,
    Delivery,
    DeliveryState,
    MessageKind,
    StoredMessage,
)
from docexchange.exchange.service import NodeService, SentItem
from docexchange.exchange.store import InboxQuery, SentQuery
from docexchange.verify.packet import check_envelope
from docexchange.web.auth import Credentials, Principal, Role, SignedRequest
from docexchange.web.keys import CLOCK, CREDENTIALS, DIRECTORY, SERVICE, SETTINGS, STORE

__all__ = ["VXP_CREDENTIALS", "VxpFail", "setup_vxp_routes"]

log = logging.getLogger(__name__)

VXP_CREDENTIALS = web.AppKey("vxp_credentials", Credentials)
"""The node's credentials checked under this API's header names (same store, same secrets)."""

_SMALL_BODY = 64 * 1024
"""Largest body of an operation other than sendEdoc (they take none)."""
_MAX_RECIPIENTS = 500
_MAX_PAGE = 500
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_CURSOR = re.compile(r"^[0-9]{1,20}(:[0-9]{1,20}){0,3}$")
_CURSOR_PARTS = {Operation.GET_RECEIVED_EDOC_LIST: 2, Operation.GET_SENT_EDOC_LIST: 1}
_OK_VI = "Thành công"


class VxpFail(Exception):
    """A FAIL answer: stable code, Vietnamese and English descriptions, extra answer fields."""

    def __init__(self, code: ErrorCode, message_vi: str, message_en: str, **extra: Any) -> None:
        super().__init__(f"{code.value}: {message_en}")
        self.code = code
        self.message_vi = message_vi
        self.message_en = message_en
        self.extra = extra


# ------------------------------------------------------------------------------------------------ answers


def _json_response(status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> web.Response:
    resp = web.Response(
        status=status,
        body=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
    return resp


def _ok(data: Mapping[str, Any]) -> web.Response:
    return _json_response(200, {"status": "OK", "ErrorCode": OK_CODE, "ErrorDesc": _OK_VI, **data})


def _fail(f: VxpFail) -> web.Response:
    payload = {"status": "FAIL", "ErrorCode": f.code.value, "ErrorDesc": f.message_vi, "ErrorDescEn": f.message_en,
               **f.extra}
    headers = {"WWW-Authenticate": ALGORITHM} if f.code.http_status == 401 else None
    return _json_response(f.code.http_status, payload, headers)


def _from_error(exc: DocExchangeError) -> VxpFail:
    """Our error tree → a FAIL answer (errors raised by the service layer)."""
    vi, en = exc.message_vi, exc.message_en
    if isinstance(exc, PacketTooLarge):
        return VxpFail(ErrorCode.PACKET_TOO_LARGE, vi, en)
    if isinstance(exc, EdxmlError):
        return VxpFail(ErrorCode.INVALID_EDXML, vi, en)
    if isinstance(exc, UnknownAgency):
        return VxpFail(ErrorCode.UNKNOWN_AGENCY, vi, en)
    if isinstance(exc, NotFound):
        return VxpFail(ErrorCode.DOC_NOT_FOUND, vi, en)
    if isinstance(exc, Forbidden):
        return VxpFail(ErrorCode.FORBIDDEN_AGENCY, vi, en)
    if isinstance(exc, AuthError):
        return VxpFail(ErrorCode.AUTH_INVALID, vi, en)
    if isinstance(exc, (StoreError, RetryableDeliveryError, TrustServiceError)):
        return VxpFail(ErrorCode.SERVICE_UNAVAILABLE, vi, en)
    if isinstance(exc, (Conflict, DeliveryError)) and exc.http_status == 409:
        return VxpFail(ErrorCode.CONFLICT, vi, en)
    return VxpFail(ErrorCode.INTERNAL_ERROR, vi, en)


def _t(moment: datetime | None) -> str | None:
    return iso_vn(moment) if moment is not None else None


# ------------------------------------------------------------------------------------------------ a call


@dataclass
class Call:
    """One authenticated call: the request, who makes it, its body and the node's parts it may use."""

    request: web.Request
    operation: Operation
    principal: Principal
    body: bytes = field(repr=False)

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def service(self) -> NodeService:
        return self.app[SERVICE]

    def header(self, name: str, *, required: bool = False) -> str | None:
        value = self.request.headers.get(name)
        if value is None or not value.strip():
            if required:
                raise VxpFail(ErrorCode.MISSING_HEADER, f"Thiếu tiêu đề {name}", f"missing header {name}",
                              header=name)
            return None
        return value.strip()

    def require(self, name: str) -> str:
        value = self.header(name, required=True)
        assert value is not None
        return value

    def agency(self) -> str:
        """The agency named by ``from``, which the calling system must be allowed to act for."""
        raw = self.require(Header.FROM)
        directory = self.app[DIRECTORY]
        known = raw in directory
        resolved = directory.resolve(raw) if known else raw
        if self.principal.role != Role.AGENCY:
            raise VxpFail(
                ErrorCode.FORBIDDEN_ROLE,
                f"Hệ thống '{self.principal.system_id}' có vai trò {self.principal.role.label_vi}, không thao tác "
                "hộp thư của cơ quan",
                f"system '{self.principal.system_id}' has role {self.principal.role.value} and cannot use a mailbox",
            )
        if not (self.principal.may_act_for(raw) or self.principal.may_act_for(resolved)):
            raise VxpFail(
                ErrorCode.FORBIDDEN_AGENCY,
                f"Hệ thống '{self.principal.system_id}' không được phép thao tác thay cơ quan {raw}",
                f"system '{self.principal.system_id}' may not act for agency {raw}",
            )
        if not known:
            raise VxpFail(ErrorCode.UNKNOWN_AGENCY, f"Cơ quan {raw} không có trong danh bạ",
                          f"agency {raw} is not in the directory")
        return resolved

    def service_type(self) -> None:
        value = self.require(Header.SERVICETYPE)
        if value.lower() != SERVICE_TYPE.lower():
            raise VxpFail(ErrorCode.INVALID_HEADER, f"Tiêu đề servicetype phải là {SERVICE_TYPE}, nhận được {value!r}",
                          f"header servicetype must be {SERVICE_TYPE}, got {value!r}", header=Header.SERVICETYPE)

    def message_type(self, *, required: bool) -> MessageType:
        value = self.header(Header.MESSAGETYPE, required=required)
        if value is None:
            return MessageType.EDOC
        try:
            return MessageType(value.lower())
        except ValueError:
            raise VxpFail(ErrorCode.INVALID_HEADER,
                          f"Tiêu đề messagetype phải là edoc hoặc status, nhận được {value!r}",
                          f"header messagetype must be edoc or status, got {value!r}",
                          header=Header.MESSAGETYPE) from None

    def limit(self) -> int:
        value = self.header(Header.LIMIT)
        default = max(1, min(self.app[SETTINGS].vxp.list_limit, _MAX_PAGE))
        if value is None:
            return default
        if not value.isdigit() or not 1 <= int(value) <= _MAX_PAGE:
            raise VxpFail(ErrorCode.INVALID_HEADER, f"Tiêu đề limit phải là số nguyên 1–{_MAX_PAGE}",
                          f"header limit must be an integer 1-{_MAX_PAGE}", header=Header.LIMIT)
        return int(value)

    def cursor(self) -> str | None:
        value = self.header(Header.CURSOR)
        if value is None:
            return None
        parts = _CURSOR_PARTS.get(self.operation, 1)
        if not _CURSOR.match(value) or value.count(":") + 1 != parts:
            raise VxpFail(ErrorCode.INVALID_HEADER, "Tiêu đề cursor phải là giá trị nextCursor của trang trước",
                          "header cursor must be the nextCursor of the previous page", header=Header.CURSOR)
        return value

    def doc_id(self) -> str:
        return self.require(Header.DOCID)


# ------------------------------------------------------------------------------------------------ plumbing


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes (before reading when the length is announced)."""

    def too_large() -> VxpFail:
        return VxpFail(
            ErrorCode.PACKET_TOO_LARGE,
            f"Nội dung gửi lên vượt giới hạn {limit // MiB if limit >= MiB else limit} "
            f"{'MB' if limit >= MiB else 'byte'}",
            f"request body exceeds the {limit} byte limit",
            limit=limit,
        )

    if request.content_length is not None and request.content_length > limit:
        raise too_large()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        total += len(chunk)
        if total > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_authorization(value: str) -> tuple[str, list[str]]:
    """(system id, signed header names) of an Authorization header, or AUTH_MALFORMED."""
    algo, _, rest = value.strip().partition(" ")
    if algo != ALGORITHM:
        raise VxpFail(ErrorCode.AUTH_MALFORMED, f"Tiêu đề Authorization phải bắt đầu bằng {ALGORITHM}",
                      f"the Authorization header must start with {ALGORITHM}")
    parts: dict[str, str] = {}
    for item in rest.split(","):
        k, sep, v = item.strip().partition("=")
        if sep:
            parts[k.strip()] = v.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not parts.get(k)]
    if missing:
        raise VxpFail(ErrorCode.AUTH_MALFORMED, f"Tiêu đề Authorization thiếu trường {', '.join(missing)}",
                      f"the Authorization header lacks {', '.join(missing)}")
    if not re.fullmatch(r"[0-9a-f]{64}", parts["Signature"]):
        raise VxpFail(ErrorCode.AUTH_MALFORMED, "Chữ ký (Signature) phải là 64 ký tự hex chữ thường",
                      "Signature must be 64 lower-case hex characters")
    return parts["Credential"], [h for h in parts["SignedHeaders"].split(";") if h]


async def _authenticate(request: web.Request, body: bytes) -> Principal:
    """Check the request signature with precise errors; the cryptographic check is the node's own
    (:meth:`Credentials.authenticate`), run after the structural checks done here."""
    headers = request.headers
    for name in (*PARAM_HEADERS, Header.TIMESTAMP, Header.NONCE, Header.SHA256, Header.AUTHORIZATION):
        if len(headers.getall(name, [])) > 1:
            raise VxpFail(ErrorCode.INVALID_HEADER, f"Tiêu đề {name} xuất hiện nhiều lần",
                          f"header {name} appears more than once", header=name)
    auth = headers.get(Header.AUTHORIZATION)
    if not auth:
        raise VxpFail(ErrorCode.AUTH_MISSING,
                      f"Thiếu tiêu đề Authorization: lời gọi phải được ký ({ALGORITHM})",
                      f"missing Authorization header: the call must be signed ({ALGORITHM})")
    _system_id, signed = _parse_authorization(auth)
    stamp = headers.get(Header.TIMESTAMP, "").strip()
    if not stamp.isdigit() or len(stamp) > 12:
        raise VxpFail(ErrorCode.AUTH_MALFORMED, "Tiêu đề timestamp phải là thời điểm Unix tính bằng giây",
                      "header timestamp must be Unix time in seconds", header=Header.TIMESTAMP)
    if not _NONCE.match(headers.get(Header.NONCE, "").strip()):
        raise VxpFail(ErrorCode.AUTH_MALFORMED, "Tiêu đề nonce phải gồm 16–64 ký tự A-Z a-z 0-9 _ -",
                      "header nonce must be 16-64 characters A-Z a-z 0-9 _ -", header=Header.NONCE)
    claimed = headers.get(Header.SHA256, "").strip().lower()
    if not claimed:
        raise VxpFail(ErrorCode.AUTH_MALFORMED, "Thiếu tiêu đề sha256 (mã băm SHA-256 của nội dung)",
                      "missing header sha256 (SHA-256 of the body)", header=Header.SHA256)
    required = [Header.TIMESTAMP, Header.NONCE, Header.SHA256,
                *(p.lower() for p in PARAM_HEADERS if p in headers)]
    unsigned = [h for h in required if h.lower() not in signed]
    if unsigned:
        raise VxpFail(ErrorCode.AUTH_UNSIGNED_HEADER,
                      f"Các tiêu đề sau phải nằm trong SignedHeaders: {', '.join(unsigned)}",
                      f"these headers must be in SignedHeaders: {', '.join(unsigned)}", headers=unsigned)
    actual = hashlib.sha256(body).hexdigest()
    if claimed != actual:
        raise VxpFail(ErrorCode.BODY_HASH_MISMATCH,
                      "Mã băm SHA-256 của nội dung không khớp với tiêu đề sha256 (nội dung bị thay đổi hoặc cắt cụt)",
                      "the SHA-256 of the body does not match the sha256 header (body altered or truncated)",
                      sha256=actual)
    try:
        return await request.app[VXP_CREDENTIALS].authenticate(
            SignedRequest(
                method=request.method,
                path=request.path,
                query=tuple((k, v) for k, v in request.query.items()),
                headers=headers,
                body=body,
            )
        )
    except RequestExpired as exc:
        raise VxpFail(ErrorCode.AUTH_EXPIRED, exc.message_vi, exc.message_en) from None
    except ReplayedRequest as exc:
        raise VxpFail(ErrorCode.AUTH_REPLAYED, exc.message_vi, exc.message_en) from None
    except AuthError:
        # Unknown or revoked system id, or a wrong signature: one answer, so system ids cannot be probed.
        raise VxpFail(ErrorCode.AUTH_INVALID, "Sai thông tin xác thực (mã hệ thống hoặc chữ ký không đúng)",
                      "invalid credentials (unknown system id or wrong signature)") from None


# ------------------------------------------------------------------------------------------------ JSON views


def _meta(m: StoredMessage | None) -> Mapping[str, Any]:
    return m.meta if m is not None else {}


def received_item(d: Delivery) -> dict[str, Any]:
    """One entry of getReceivedEdocList."""
    meta = _meta(d.message)
    sender = meta.get("from") or {}
    item: dict[str, Any] = {
        "docId": d.delivery_id,
        "messagetype": MessageType.STATUS.value if d.kind == MessageKind.STATUS else MessageType.EDOC.value,
        "from": d.sender,
        "fromName": sender.get("name"),
        "to": d.recipient,
        "documentId": d.document_id,
        "receivedAt": _t(d.delivered_at or d.created_at),
        "size": d.message.size if d.message else None,
        "sha256": d.message.digest if d.message else None,
        "fetched": d.fetched_at is not None,
    }
    if d.kind == MessageKind.STATUS:
        status = meta.get("status") or {}
        code = str(status.get("code") or (d.message.status_code if d.message else ""))
        rf = meta.get("response_for") or {}
        item.update({
            "statusCode": code,
            "statusName": STATUS_LABELS.get(code),
            "description": status.get("description"),
            "timestamp": status.get("timestamp"),
            "responseFor": {"organId": rf.get("organ_id"), "code": rf.get("code"), "documentId": d.document_id},
        })
    else:
        item.update({
            "code": meta.get("code"),
            "subject": meta.get("subject"),
            "typeName": meta.get("type_name"),
            "promulgationDate": meta.get("promulgation_date"),
            "priority": d.priority,
            "priorityName": PRIORITY_LABELS.get(d.priority),
            "businessType": d.message.business_type if d.message else 0,
            "verification": d.verification.value,
            "verificationName": d.verification.label_vi,
            "recall": d.recall.value if d.recall else None,
        })
    return item


def sent_item(item: SentItem, names: Mapping[str, str]) -> dict[str, Any]:
    """One entry of getSentEdocList: the packet and, per recipient, where it stands."""
    m = item.message
    meta = m.meta
    out: dict[str, Any] = {
        "docId": m.message_id,
        "messagetype": MessageType.STATUS.value if m.kind == MessageKind.STATUS else MessageType.EDOC.value,
        "documentId": m.document_id,
        "sentAt": _t(m.created_at),
        "size": m.size,
        "sha256": m.digest,
    }
    if m.kind == MessageKind.STATUS:
        out["statusCode"] = m.status_code
        out["statusName"] = STATUS_LABELS.get(m.status_code)
    else:
        out.update({"code": meta.get("code"), "subject": meta.get("subject"), "priority": m.priority,
                    "priorityName": PRIORITY_LABELS.get(m.priority)})
    out["recipients"] = [
        {
            "to": d.recipient,
            "toName": names.get(d.recipient),
            "docId": d.delivery_id,
            "state": d.state.value,
            "stateName": d.state.label_vi,
            "deliveredAt": _t(d.delivered_at),
            "acknowledgedAt": _t(d.acknowledged_at),
            "statusCode": d.recipient_status or None,
            "statusName": STATUS_LABELS.get(d.recipient_status) if d.recipient_status else None,
            "statusAt": _t(d.recipient_status_at),
            "lastError": d.last_error or None,
        }
        for d in item.deliveries
    ]
    return out


# ------------------------------------------------------------------------------------------------ operations


def _parse_to(raw: str) -> tuple[str, ...]:
    """The ``to`` header: a JSON array of agency codes (strings, or objects with ``OrganId`` or ``code``)."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise VxpFail(ErrorCode.INVALID_TO, "Tiêu đề to phải là JSON, ví dụ [\"000.00.01.H57\"]",
                      'header to must be JSON, e.g. ["000.00.01.H57"]') from None
    if not isinstance(value, list):
        raise VxpFail(ErrorCode.INVALID_TO, "Tiêu đề to phải là một mảng JSON các mã cơ quan",
                      "header to must be a JSON array of agency codes")
    if len(value) > _MAX_RECIPIENTS:
        raise VxpFail(ErrorCode.INVALID_TO, f"Tiêu đề to có quá {_MAX_RECIPIENTS} nơi nhận",
                      f"header to lists more than {_MAX_RECIPIENTS} recipients")
    codes: list[str] = []
    for entry in value:
        code = entry
        if isinstance(entry, dict):
            code = entry.get("OrganId", entry.get("organId", entry.get("code")))
        if not isinstance(code, str) or not code.strip() or len(code) > 64:
            raise VxpFail(ErrorCode.INVALID_TO,
                          "Mỗi phần tử của to phải là mã cơ quan (chuỗi) hoặc đối tượng có OrganId",
                          "each element of to must be an agency code (string) or an object with OrganId")
        codes.append(code.strip())
    return tuple(dict.fromkeys(codes))


def _read(data: bytes, service: NodeService) -> Packet:
    return read_packet(data, limits=service.limits)


async def send_edoc(call: Call) -> dict[str, Any]:
    call.service_type()
    agency = call.agency()
    mtype = call.message_type(required=True)
    to = _parse_to(call.require(Header.TO))
    directory = call.app[DIRECTORY]
    unknown = [c for c in to if c not in directory]
    if unknown:
        raise VxpFail(ErrorCode.UNKNOWN_AGENCY, f"Nơi nhận không có trong danh bạ: {', '.join(unknown)}",
                      f"recipients not in the directory: {', '.join(unknown)}", unknown=unknown)
    to = tuple(dict.fromkeys(directory.resolve(c) for c in to))
    service = call.service
    if not call.body:
        raise VxpFail(ErrorCode.INVALID_EDXML, "Nội dung rỗng: sendEdoc gửi gói tin edXML trong thân yêu cầu",
                      "empty body: sendEdoc carries the edXML packet as the request body")
    try:
        if len(call.body) > 2 * MiB:
            packet = await asyncio.to_thread(_read, call.body, service)
        else:
            packet = _read(call.body, service)
    except PacketTooLarge as exc:
        raise VxpFail(ErrorCode.PACKET_TOO_LARGE, exc.message_vi, exc.message_en) from None
    except EdxmlError as exc:
        raise VxpFail(ErrorCode.INVALID_EDXML, exc.message_vi, exc.message_en) from None
    is_status = isinstance(packet, StatusPacket)
    if is_status != (mtype == MessageType.STATUS):
        found = "status" if is_status else "edoc"
        raise VxpFail(ErrorCode.MESSAGETYPE_MISMATCH,
                      f"messagetype là {mtype.value} nhưng nội dung là gói tin {found}",
                      f"messagetype says {mtype.value} but the body is a {found} packet")
    sender = packet.sender.organ_id
    if sender not in directory or directory.resolve(sender) != agency:
        raise VxpFail(ErrorCode.SENDER_MISMATCH,
                      f"Gói tin ghi nơi gửi (From) {sender} nhưng tiêu đề from là {agency}",
                      f"the packet's From is {sender} but the from header is {agency}")
    if isinstance(packet, StatusPacket):
        await _check_status_target(call, packet, agency, to)
    report = check_envelope(packet, directory, acting_agency=agency, extra_recipients=to)
    if not report.ok:
        problems = [{"code": p.code, "message_vi": p.message_vi, "message_en": p.message_en} for p in report.problems]
        vi = "; ".join(p.message_vi for p in report.problems)
        en = "; ".join(p.message_en for p in report.problems)
        if all(p.code == "unknown_recipient" for p in report.problems):
            raise VxpFail(ErrorCode.UNKNOWN_AGENCY, vi, en, problems=problems)
        raise VxpFail(ErrorCode.INVALID_EDXML, f"Gói tin không hợp lệ: {vi}", f"invalid packet: {en}",
                      problems=problems)
    result = await service.submit_packet(call.principal, agency, call.body, to=to)
    return {
        "docId": result.message_id,
        "messagetype": mtype.value,
        "documentId": result.document_id,
        "duplicate": result.duplicate,
        "deliveries": [{"to": d.recipient, "docId": d.delivery_id, "state": d.state.value,
                        "duplicate": d.duplicate} for d in result.deliveries],
    }


async def _check_status_target(call: Call, packet: StatusPacket, agency: str, to: tuple[str, ...]) -> None:
    """A status goes to the sender of the document it answers, about a document the two really exchanged here."""
    directory = call.app[DIRECTORY]
    rf = packet.response_for
    about = rf.organ_id or ""
    if about not in directory:
        raise VxpFail(ErrorCode.UNKNOWN_AGENCY, f"ResponseFor/OrganId {about!r} không có trong danh bạ",
                      f"ResponseFor/OrganId {about!r} is not in the directory")
    about = directory.resolve(about)
    recall = packet.status_code == StatusCode.RECALL
    if recall:
        # 13 (lấy lại) goes from the document's sender to its recipients: `to` names them.
        if about != agency:
            raise VxpFail(ErrorCode.UNKNOWN_DOCUMENT,
                          "Trạng thái 13 (lấy lại) chỉ do nơi gửi văn bản gửi: ResponseFor/OrganId phải là from",
                          "status 13 (recall) is sent by the document's sender: ResponseFor/OrganId must be from")
        if not to:
            raise VxpFail(ErrorCode.INVALID_TO, "Trạng thái 13 cần tiêu đề to liệt kê các nơi nhận văn bản",
                          "status 13 needs the header to listing the document's recipients")
    elif any(c != about for c in to):
        raise VxpFail(ErrorCode.INVALID_TO,
                      f"Gói tin trạng thái chỉ gửi tới nơi gửi văn bản ({about}); tiêu đề to ghi {', '.join(to)}",
                      f"a status packet goes to the document's sender ({about}); header to says {', '.join(to)}")
    store = call.app[STORE]
    if recall:
        found = [d for d in await store.find_deliveries(sender=agency, document_id=rf.document_id or "",
                                                        recipients=to)
                 if d.message is not None and d.message.origin_node == call.service.node_id]
    else:
        found = [d for d in await store.find_deliveries(sender=about, document_id=rf.document_id or "",
                                                        recipients=(agency,))
                 if d.next_hop is None]
    if not found:
        raise VxpFail(
            ErrorCode.UNKNOWN_DOCUMENT,
            f"Không có văn bản {rf.document_id!r} giữa {about} và {agency if not recall else ', '.join(to)} "
            "tại trục này",
            f"no document {rf.document_id!r} between {about} and {agency if not recall else ', '.join(to)} "
            "at this node",
        )


def _no_doc(doc_id: str, agency: str) -> VxpFail:
    return VxpFail(ErrorCode.DOC_NOT_FOUND, f"Không có docId {doc_id} trong hộp thư của {agency}",
                   f"no docId {doc_id} in the inbox of {agency}")


async def _owned_item(call: Call, agency: str, doc_id: str) -> Delivery:
    try:
        d = await call.service.inbox_item(call.principal, doc_id)
    except NotFound:
        raise _no_doc(doc_id, agency) from None
    if d.recipient != agency:
        raise _no_doc(doc_id, agency)
    return d


async def get_received_edoc_list(call: Call) -> dict[str, Any]:
    call.service_type()
    agency = call.agency()
    mtype = call.message_type(required=False)
    page = await call.service.inbox(call.principal, InboxQuery(
        recipients=(agency,),
        kind=MessageKind.STATUS if mtype == MessageType.STATUS else MessageKind.DOCUMENT,
        unacknowledged=True,
        limit=call.limit(),
        cursor=call.cursor(),
    ))
    return {"messagetype": mtype.value, "data": [received_item(d) for d in page.items],
            "nextCursor": page.next_cursor}


async def get_edoc(call: Call) -> dict[str, Any]:
    call.service_type()
    agency = call.agency()
    doc_id = call.doc_id()
    await _owned_item(call, agency, doc_id)
    d, data = await call.service.packet(call.principal, doc_id)
    return {
        "docId": d.delivery_id,
        "messagetype": MessageType.STATUS.value if d.kind == MessageKind.STATUS else MessageType.EDOC.value,
        "from": d.sender,
        "documentId": d.document_id,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "data": base64.b64encode(data).decode("ascii"),
    }


async def update_status(call: Call) -> dict[str, Any]:
    call.service_type()
    agency = call.agency()
    doc_id = call.doc_id()
    raw = call.require(Header.STATUS)
    try:
        status = TransportStatus(raw.lower())
    except ValueError:
        raise VxpFail(ErrorCode.INVALID_HEADER, f"Tiêu đề status phải là done, processing hoặc fail, nhận được {raw!r}",
                      f"header status must be done, processing or fail, got {raw!r}", header=Header.STATUS) from None
    d = await _owned_item(call, agency, doc_id)
    if status == TransportStatus.DONE:
        d = await call.service.acknowledge(call.principal, doc_id)
    elif d.state == DeliveryState.ACKNOWLEDGED:
        raise VxpFail(ErrorCode.ALREADY_DONE,
                      f"docId {doc_id} đã được xác nhận done; không đổi sang {status.value} được nữa",
                      f"docId {doc_id} was already confirmed done; it cannot become {status.value}")
    elif status == TransportStatus.PROCESSING:
        if d.fetched_at is None:
            await call.app[STORE].mark_fetched(doc_id, call.app[CLOCK].now())
    else:
        log.info("vxp: %s reports transfer failure of %s (stays pending)", call.principal.system_id, doc_id)
    return {"docId": doc_id, "transportStatus": status.value,
            "state": DeliveryState.ACKNOWLEDGED.value if status == TransportStatus.DONE else d.state.value}


async def get_sent_edoc_list(call: Call) -> dict[str, Any]:
    call.service_type()
    agency = call.agency()
    mtype = call.message_type(required=False)
    kind = MessageKind.STATUS if mtype == MessageType.STATUS else MessageKind.DOCUMENT
    names = {a.code: a.name for a in call.app[DIRECTORY]}
    doc_id = call.header(Header.DOCID)
    if doc_id is not None:
        try:
            item = await call.service.sent_item(call.principal, doc_id, trails=False)
        except NotFound:
            item = None
        if item is None or item.message.sender != agency or item.message.kind != kind:
            raise VxpFail(ErrorCode.DOC_NOT_FOUND, f"{agency} không gửi docId {doc_id} từ trục này",
                          f"{agency} sent no docId {doc_id} from this node")
        return {"messagetype": mtype.value, "data": [sent_item(item, names)], "nextCursor": None}
    items, cursor = await call.service.sent_page(call.principal, SentQuery(
        senders=(agency,), kind=kind, limit=call.limit(), cursor=call.cursor(),
    ))
    return {"messagetype": mtype.value, "data": [sent_item(i, names) for i in items], "nextCursor": cursor}


async def _count(call: Call, kind: MessageKind) -> dict[str, Any]:
    call.service_type()
    agency = call.agency()
    total = 0
    cursor: str | None = None
    while True:
        page = await call.service.inbox(call.principal, InboxQuery(
            recipients=(agency,), kind=kind, unacknowledged=True, limit=_MAX_PAGE, cursor=cursor,
        ))
        total += len(page.items)
        cursor = page.next_cursor
        if not cursor:
            return {"messagetype": MessageType.STATUS.value if kind == MessageKind.STATUS else MessageType.EDOC.value,
                    "total": total}


async def count_receive_edoc(call: Call) -> dict[str, Any]:
    return await _count(call, MessageKind.DOCUMENT)


async def count_receive_status(call: Call) -> dict[str, Any]:
    return await _count(call, MessageKind.STATUS)


async def get_agency_list(call: Call) -> dict[str, Any]:
    if call.header(Header.FROM) is not None:
        call.agency()
    directory = call.app[DIRECTORY]
    node_names = {n.id: n.name for n in directory.nodes}
    return {
        "data": [
            {
                "code": a.code,
                "name": a.name,
                "shortName": a.short_name or None,
                "level": a.level.value,
                "parentCode": a.parent or None,
                "node": a.node,
                "nodeName": node_names.get(a.node),
                "aliases": list(a.aliases),
                "sample": a.sample,
            }
            for a in directory
        ]
    }


_OPERATIONS: Mapping[Operation, Callable[[Call], Awaitable[dict[str, Any]]]] = {
    Operation.SEND_EDOC: send_edoc,
    Operation.GET_RECEIVED_EDOC_LIST: get_received_edoc_list,
    Operation.GET_EDOC: get_edoc,
    Operation.UPDATE_STATUS: update_status,
    Operation.GET_SENT_EDOC_LIST: get_sent_edoc_list,
    Operation.COUNT_RECEIVE_EDOC: count_receive_edoc,
    Operation.COUNT_RECEIVE_STATUS: count_receive_status,
    Operation.GET_AGENCY_LIST: get_agency_list,
}


# ------------------------------------------------------------------------------------------------ the route


async def handle(request: web.Request) -> web.Response:
    name = request.match_info.get("operation", "")[:64]
    system_id = "-"
    try:
        try:
            operation = Operation(name)
        except ValueError:
            raise VxpFail(ErrorCode.UNKNOWN_OPERATION, f"Không có thao tác {name!r}",
                          f"no operation {name!r}", operations=[o.value for o in Operation]) from None
        if request.method != "POST":
            raise VxpFail(ErrorCode.METHOD_NOT_ALLOWED, f"Thao tác {operation.value} chỉ nhận POST",
                          f"operation {operation.value} takes POST only")
        limit = request.app[SERVICE].max_packet if operation == Operation.SEND_EDOC else _SMALL_BODY
        body = await _read_body(request, limit)
        principal = await _authenticate(request, body)
        system_id = principal.system_id
        data = await _OPERATIONS[operation](Call(request, operation, principal, body))
        return _ok(data)
    except VxpFail as f:
        failure = f
    except DocExchangeError as exc:
        failure = _from_error(exc)
        if failure.code == ErrorCode.INTERNAL_ERROR:
            log.warning("vxp %s by %s: %s (%s)", name, system_id, exc.code, exc.message_en)
    except Exception:
        log.exception("vxp %s by %s: unexpected error", name, system_id)
        failure = VxpFail(ErrorCode.INTERNAL_ERROR, "Lỗi nội bộ của trục", "internal error")
    if failure.code.http_status >= 500 and failure.code != ErrorCode.INTERNAL_ERROR:
        log.warning("vxp %s by %s: %s", name, system_id, failure.message_en)
    else:
        log.info("vxp %s by %s: FAIL %s", name, system_id, failure.code.value)
    return _fail(failure)


async def _vxp_ctx(app: web.Application) -> AsyncIterator[None]:
    creds = app[CREDENTIALS]
    window = timedelta(seconds=app[SETTINGS].vxp.timestamp_window_seconds)
    app[VXP_CREDENTIALS] = Credentials(creds.store, creds.box, app[CLOCK], scheme=vxp_scheme(window),
                                       cache_seconds=creds.cache_seconds)
    yield


def setup_vxp_routes(app: web.Application) -> None:
    """Mount ``/vxp/<operation>`` (after the node's store context, whose credentials it uses)."""
    if not app[SETTINGS].vxp.enabled:
        return
    app.cleanup_ctx.append(_vxp_ctx)
    app.router.add_route("*", PATH_PREFIX + "/{operation}", handle)
