"""Văn bản đến (inbox) and Văn bản đi (sent): lists, details, verification reports, statuses, recalls, trails."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiohttp import web

from docexchange.edxml.model import StaffInfo
from docexchange.errors import Conflict, DocExchangeError, InvalidPacket, NotFound
from docexchange.exchange.model import (
    Delivery,
    DeliveryState,
    MessageKind,
    RecallState,
    TrailEntry,
    Verification,
)
from docexchange.exchange.service import NodeService
from docexchange.exchange.store import InboxQuery, SentQuery
from docexchange.web.keys import SERVICE
from docexchange.web.ui.core import (
    PREFIX,
    UiContext,
    ctx_of,
    file_response,
    flash,
    lang_of,
    read_form,
    redirect,
    render,
    require,
)
from docexchange.web.users import UserAccount, UserRole

__all__ = ["ReportView", "TimelineItem", "receipt_check", "report_view", "setup_mail_routes"]

log = logging.getLogger(__name__)

ACTIONS = {
    "03": ("Tiếp nhận", "Accept"),
    "02": ("Trả lại", "Return"),
    "04": ("Phân công xử lý", "Assign"),
    "05": ("Đang xử lý", "In progress"),
    "06": ("Hoàn thành", "Done"),
}
CLERK_CODES = ("03", "02", "04", "05", "06")
OFFICIAL_CODES = ("04", "05", "06")
HANDLED = {"02", "03", "04", "05", "06"}


def _service(request: web.Request) -> NodeService:
    service: NodeService = request.config_dict[SERVICE]
    return service


# -- verification reports -------------------------------------------------------------------------------------
@dataclass
class FileReport:
    name: str
    label_vi: str
    indication: str
    reasons: list[str]
    report: Any = None
    """A :class:`~docexchange.verify.report.VerificationReport` when the node kept the full report."""


@dataclass
class ReportView:
    result: Verification
    reasons: list[str] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    node_result: Verification | None = None
    """The verdict the node stored, when it differs from what its own full reports say."""


def _load_report(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        from docexchange.verify.report import VerificationReport

        if isinstance(raw, str):
            return VerificationReport.from_json(raw)
        if isinstance(raw, Mapping):
            return VerificationReport.from_dict(raw)
    except Exception:
        log.warning("stored verification report could not be read", exc_info=True)
    return None


def report_view(state: str | Verification, summary: Mapping[str, Any] | None) -> ReportView:
    result = Verification(state) if not isinstance(state, Verification) else state
    view = ReportView(result)
    if not summary:
        return view
    view.reasons = [str(r) for r in summary.get("reasons_vi", [])]
    for f in summary.get("files", []) or []:
        view.files.append(FileReport(
            name=str(f.get("name", "")),
            label_vi=str(f.get("label_vi", "")),
            indication=str(f.get("indication", "")),
            reasons=[str(r) for r in f.get("reasons_vi", [])],
            report=_load_report(f.get("report")),
        ))
    derived = _derived(view.files)
    if derived is not None and derived != result:
        view.node_result, view.result = result, derived
    return view


_OUTCOME = {"valid": Verification.PASSED, "invalid": Verification.FAILED}


def _derived(files: Sequence[FileReport]) -> Verification | None:
    """The verdict the full reports support: every file valid → passed, any invalid → failed, else indeterminate.
    None when some file has no full report (then only the node's verdict can be shown)."""
    if not files or any(f.report is None for f in files):
        return None
    outcomes = [_OUTCOME.get(str(getattr(f.report.outcome, "value", "")), Verification.INDETERMINATE) for f in files]
    if Verification.FAILED in outcomes:
        return Verification.FAILED
    if all(o == Verification.PASSED for o in outcomes):
        return Verification.PASSED
    return Verification.INDETERMINATE


async def verdicts(service: NodeService, principal: Any, deliveries: Sequence[Delivery]) -> dict[str, Verification]:
    """The verdict to show for each delivery of a list (see :func:`report_view`)."""
    out: dict[str, Verification] = {}
    for d in deliveries:
        if d.verification in (Verification.PENDING, Verification.SKIPPED):
            out[d.delivery_id] = d.verification
            continue
        try:
            state, summary = await service.verification(principal, d.delivery_id)
        except DocExchangeError:
            out[d.delivery_id] = d.verification
            continue
        out[d.delivery_id] = report_view(state, summary).result
    return out


# -- receipts -------------------------------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _node_cert(keys_dir: str, node: str) -> Any:
    from docexchange.pki.keystore import load_cert

    path = Path(keys_dir) / "nodes" / node / "tls.crt"
    return load_cert(path) if path.exists() else None


def receipt_check(ctx: UiContext, entry: TrailEntry, delivery_id: str) -> tuple[bool | None, str]:
    """Is a trail entry's receipt signed by the node it names? (None: no receipt or no certificate to check.)"""
    if not entry.receipt:
        return None, ""
    from docexchange.exchange.receipts import verify_receipt

    try:
        cert = _node_cert(str(ctx.settings.keys_dir), str(entry.receipt.get("node", entry.node)))
    except DocExchangeError:
        cert = None
    if cert is None:
        return None, "no certificate"
    try:
        verify_receipt(entry.receipt, cert, node=entry.node, delivery_id=delivery_id)
    except DocExchangeError as exc:
        return False, exc.message_vi
    return True, ""


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str
    """``trail`` (a node's step) or ``status`` (a business status from the recipient)."""
    node: str = ""
    node_name: str = ""
    event: str = ""
    digest: str = ""
    receipt: Mapping[str, Any] | None = None
    receipt_ok: bool | None = None
    receipt_problem: str = ""
    detail: str = ""
    status: str = ""
    by: str = ""


def timeline(ctx: UiContext, delivery_id: str, trail: Sequence[TrailEntry],
             statuses: Sequence[Mapping[str, Any]] = ()) -> list[TimelineItem]:
    items = []
    for e in trail:
        ok, problem = receipt_check(ctx, e, delivery_id)
        try:
            node_name = ctx.directory.node(e.node).name
        except DocExchangeError:
            node_name = e.node
        items.append(TimelineItem(at=e.at, kind="trail", node=e.node, node_name=node_name, event=e.event,
                                  digest=e.digest, receipt=e.receipt, receipt_ok=ok, receipt_problem=problem,
                                  detail=e.detail))
    for s in statuses:
        items.append(TimelineItem(at=s["at"], kind="status", status=s["code"], detail=s.get("description") or "",
                                  by=s.get("by", "")))
    return sorted(items, key=lambda i: i.at)


# -- inbox ----------------------------------------------------------------------------------------------------
def _agency_user(request: web.Request) -> UserAccount:
    return require(request, UserRole.CLERK, UserRole.OFFICIAL)


async def inbox_page(request: web.Request) -> web.StreamResponse:
    user = _agency_user(request)
    service = _service(request)
    view = request.query.get("view", "all")
    if view not in ("all", "new", "urgent"):
        view = "all"
    cursor = request.query.get("cursor") or None
    query = InboxQuery(recipients=(user.agency,), kind=MessageKind.DOCUMENT, limit=50, cursor=cursor,
                       priorities=(3, 4) if view == "urgent" else ())
    page = await service.inbox(user.principal(), query)
    items: list[Delivery] = list(page.items)
    if view == "new":
        items = [d for d in items if d.recipient_status not in HANDLED]
    urgent_new = [d for d in items if d.priority >= 3 and d.recipient_status not in HANDLED and not d.withdrawn]
    rest = [d for d in items if d not in urgent_new]
    shown = await verdicts(service, user.principal(), items)
    return render(request, "inbox.html", active="inbox", urgent=urgent_new, items=rest, view=view,
                  next_cursor=page.next_cursor, handled=HANDLED, verdicts=shown)


async def _inbox_item(request: web.Request, user: UserAccount) -> Delivery:
    service = _service(request)
    d = await service.inbox_item(user.principal(), request.match_info["did"])
    if d.recipient != user.agency or d.kind != MessageKind.DOCUMENT:
        raise NotFound("Không tìm thấy văn bản trong hộp thư", "no such document in this agency's inbox")
    return d


async def inbox_item(request: web.Request) -> web.StreamResponse:
    user = _agency_user(request)
    ctx = ctx_of(request)
    service = _service(request)
    d = await _inbox_item(request, user)
    state, summary = await service.verification(user.principal(), d.delivery_id)
    report = report_view(state, summary)
    codes: tuple[str, ...] = CLERK_CODES if user.role == UserRole.CLERK else OFFICIAL_CODES
    if d.withdrawn:
        codes = ()
    _, trail = await service.trail(user.principal(), d.delivery_id)
    return render(request, "inbox_item.html", active="inbox", d=d, meta=d.message.meta if d.message else {},
                  report=report, codes=codes, actions=ACTIONS, timeline=timeline(ctx, d.delivery_id, trail),
                  recall_pending=d.recall == RecallState.REQUESTED and user.role == UserRole.CLERK)


async def _attachments(request: web.Request, user: UserAccount) -> tuple[Delivery, tuple[Any, ...]]:
    d = await _inbox_item(request, user)
    _, atts = await _service(request).attachments(user.principal(), d.delivery_id)
    return d, atts


async def inbox_file(request: web.Request) -> web.StreamResponse:
    user = _agency_user(request)
    _, atts = await _attachments(request, user)
    try:
        att = atts[int(request.match_info["n"])]
    except (ValueError, IndexError):
        raise NotFound("Không có tệp đính kèm này", "no such attachment") from None
    ctype = "application/pdf" if att.content[:5] == b"%PDF-" else (att.content_type or "application/octet-stream")
    return file_response(att.content, att.name, ctype, inline=request.query.get("download") != "1")


async def inbox_packet(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    d = await _inbox_item(request, user)
    _, data = await _service(request).packet(user.principal(), d.delivery_id)
    return file_response(data, f"{d.message_id}.edxml.xml", "application/xml")


async def inbox_report(request: web.Request) -> web.StreamResponse:
    user = _agency_user(request)
    d = await _inbox_item(request, user)
    fmt = request.match_info["fmt"]
    state, summary = await _service(request).verification(user.principal(), d.delivery_id)
    name = f"bien-ban-kiem-tra-{d.message_id}"
    view = report_view(state, summary)
    if fmt == "json":
        body = json.dumps({"delivery_id": d.delivery_id, "document_id": d.document_id, "result": view.result.value,
                           "node_result": state, "summary": _expand(summary)}, ensure_ascii=False,
                          indent=2).encode()
        return file_response(body, name + ".json", "application/json")
    html = render(request, "report_standalone.html", title=f"{d.document_id}", view=view, single=None,
                  envelope=None).text or ""
    return file_response(html.encode(), name + ".html", "text/html")


def _expand(summary: Mapping[str, Any] | None) -> Any:
    """The stored summary with each file's report as JSON (not a JSON string inside JSON)."""
    if not summary:
        return summary
    out = dict(summary)
    files = []
    for f in summary.get("files", []) or []:
        f = dict(f)
        if isinstance(f.get("report"), str):
            try:
                f["report"] = json.loads(f["report"])
            except ValueError:
                pass
        files.append(f)
    out["files"] = files
    return out


async def inbox_status(request: web.Request) -> web.StreamResponse:
    user = _agency_user(request)
    form = await read_form(request)
    code = form.get("code")
    allowed = CLERK_CODES if user.role == UserRole.CLERK else OFFICIAL_CODES
    if code not in allowed:
        raise InvalidPacket("Thao tác không hợp lệ với vai trò của bạn", "this action is not allowed for your role")
    d = await _inbox_item(request, user)
    service = _service(request)
    description = form.get("description")[:2000] or None
    ctx = ctx_of(request)
    agency = ctx.agency(user.agency)
    staff = StaffInfo(department=(agency.short_name or agency.name)[:200] if agency else None,
                      staff=user.full_name[:100])
    if code == "04":
        assignee = form.get("assignee")[:100]
        if not assignee:
            flash(request, "error", "Ghi rõ người hoặc bộ phận được phân công", "name the person or unit assigned")
            raise redirect(f"{PREFIX}/inbox/{d.delivery_id}")
        staff = StaffInfo(department=form.get("department")[:200] or staff.department, staff=assignee)
        description = description or f"Phân công: {assignee}"
    if code == "02" and not description:
        flash(request, "error", "Trả lại văn bản cần ghi rõ lý do", "returning a document needs a reason")
        raise redirect(f"{PREFIX}/inbox/{d.delivery_id}")
    if code in ("02", "03") and d.state == DeliveryState.DELIVERED:
        await service.acknowledge(user.principal(), d.delivery_id)
    await service.send_status(user.principal(), d.delivery_id, code, description, staff)
    label = ACTIONS[code]
    flash(request, "ok", f"Đã gửi trạng thái {code} — {label[0]}", f"status {code} sent — {label[1]}")
    raise redirect(f"{PREFIX}/inbox/{d.delivery_id}")


async def inbox_recall_response(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    form = await read_form(request)
    d = await _inbox_item(request, user)
    agree = form.get("agree") == "1"
    await _service(request).respond_recall(user.principal(), d.delivery_id, agree, form.get("reason")[:2000] or None)
    if agree:
        flash(request, "ok", "Đã đồng ý thu hồi (15); văn bản được rút khỏi hộp thư",
              "recall agreed (15); the document leaves the inbox")
        raise redirect(f"{PREFIX}/inbox")
    flash(request, "ok", "Đã từ chối thu hồi (16)", "recall refused (16)")
    raise redirect(f"{PREFIX}/inbox/{d.delivery_id}")


# -- sent -----------------------------------------------------------------------------------------------------
async def sent_page(request: web.Request) -> web.StreamResponse:
    user = _agency_user(request)
    items, cursor = await _service(request).sent_page(
        user.principal(), SentQuery(senders=(user.agency,), limit=30, cursor=request.query.get("cursor") or None)
    )
    return render(request, "sent.html", active="sent", items=items, next_cursor=cursor)


async def _statuses(request: web.Request, user: UserAccount, document_id: str) -> dict[str, list[dict[str, Any]]]:
    """Business statuses received for one of our documents, per recipient, oldest first."""
    page = await _service(request).inbox(user.principal(), InboxQuery(
        recipients=(user.agency,), kind=MessageKind.STATUS, document_id=document_id, limit=500,
        include_withdrawn=True,
    ))
    out: dict[str, list[dict[str, Any]]] = {}
    for d in page.items:
        meta = d.message.meta if d.message else {}
        st = meta.get("status") or {}
        code = str(st.get("code") or (d.message.status_code if d.message else ""))
        try:
            at = datetime.fromisoformat(str(st.get("timestamp")))
        except ValueError:
            at = d.created_at
        if at.tzinfo is None:
            at = d.created_at
        staff = st.get("staff") or {}
        who = str((meta.get("from") or {}).get("organ_id") or d.sender)
        out.setdefault(who, []).append({"code": code, "description": st.get("description") or "", "at": at,
                                        "by": (staff.get("staff") or "") if isinstance(staff, dict) else ""})
    for v in out.values():
        v.sort(key=lambda s: s["at"])
    return out


async def sent_item(request: web.Request) -> web.StreamResponse:
    user = _agency_user(request)
    ctx = ctx_of(request)
    item = await _service(request).sent_item(user.principal(), request.match_info["mid"])
    if item.message.sender != user.agency:
        raise NotFound("Không tìm thấy văn bản đã gửi", "no such sent document")
    statuses = await _statuses(request, user, item.message.document_id)
    lines = []
    for d in item.deliveries:
        lines.append({
            "d": d,
            "statuses": statuses.get(d.recipient, []),
            "timeline": timeline(ctx, d.delivery_id, item.trails.get(d.delivery_id, ()),
                                 statuses.get(d.recipient, [])),
        })
    recallable = [d for d in item.deliveries if d.state != DeliveryState.RECALLED and not d.withdrawn]
    return render(request, "sent_item.html", active="sent", item=item, meta=item.message.meta, lines=lines,
                  recallable=recallable)


async def sent_recall(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    form = await read_form(request)
    service = _service(request)
    item = await service.sent_item(user.principal(), request.match_info["mid"], trails=False)
    if item.message.sender != user.agency:
        raise NotFound("Không tìm thấy văn bản đã gửi", "no such sent document")
    reason = form.get("reason")[:2000]
    if not reason:
        flash(request, "error", "Thu hồi văn bản cần ghi rõ lý do", "a recall needs a reason")
        raise redirect(f"{PREFIX}/sent/{item.message.message_id}")
    chosen = form.getall("recipient")
    known = {d.recipient for d in item.deliveries}
    if any(c not in known for c in chosen):
        raise Conflict("Nơi nhận không thuộc văn bản này", "a recipient is not one of this document's")
    result = await service.recall(user.principal(), user.agency, item.message.document_id, chosen, reason)
    n_asked = len(result.requested.deliveries) if result.requested else 0
    flash(request, "ok",
          f"Đã thu hồi: rút lại {len(result.withdrawn)} lượt chưa gửi, đề nghị {n_asked} nơi nhận đồng ý thu hồi (13)",
          f"recall: {len(result.withdrawn)} withdrawn before sending, {n_asked} recipient(s) asked to agree (13)")
    raise redirect(f"{PREFIX}/sent/{item.message.message_id}")


# -- trails ---------------------------------------------------------------------------------------------------
async def trail_page(request: web.Request) -> web.StreamResponse:
    user = require(request)
    ctx = ctx_of(request)
    did = request.query.get("delivery", "").strip()[:200]
    d = None
    items: list[TimelineItem] = []
    error = None
    verdict: Verification | None = None
    if did:
        try:
            d, entries = await _service(request).trail(user.principal(), did)
        except NotFound:
            error = lang_of(request).t("Không tìm thấy lượt chuyển này tại trục", "no such delivery at this node")
        else:
            items = timeline(ctx, d.delivery_id, entries)
            if d.local and d.kind == MessageKind.DOCUMENT:
                # access to the delivery was granted by service.trail just above
                state, summary = await _service(request).store.verification(d.message_id)
                verdict = report_view(state, summary).result
    return render(request, "trail.html", active="trail", did=did, d=d, timeline=items, error=error,
                  status=404 if error else 200, verdict=verdict)


def setup_mail_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/inbox", inbox_page)
    r.add_get("/inbox/{did}", inbox_item)
    r.add_get("/inbox/{did}/files/{n}", inbox_file)
    r.add_get("/inbox/{did}/packet.xml", inbox_packet)
    r.add_get("/inbox/{did}/report.{fmt:json|html}", inbox_report)
    r.add_post("/inbox/{did}/status", inbox_status)
    r.add_post("/inbox/{did}/recall-response", inbox_recall_response)
    r.add_get("/sent", sent_page)
    r.add_get("/sent/{mid}", sent_item)
    r.add_post("/sent/{mid}/recall", sent_recall)
    r.add_get("/trail", trail_page)

