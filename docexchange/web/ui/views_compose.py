"""Soạn và gửi: compose (upload a PDF or fill the sample letter), the official signs, the clerk seals, picks
recipients and priority, looks at the signed page and sends."""

from __future__ import annotations

import asyncio
import re
import urllib.parse
import xml.sax.saxutils
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from aiohttp import web

from docexchange.clock import to_vn
from docexchange.directory import Agency, Official
from docexchange.errors import AuthError, Conflict, DocExchangeError, Forbidden, InvalidPacket, NotFound
from docexchange.exchange.model import PRIORITY_LABELS, MessageKind
from docexchange.exchange.packets import OutgoingDocument
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
from docexchange.web.ui.drafts import MAX_ATTACHMENTS, MAX_RECIPIENTS, Draft, DraftEvent, DraftState
from docexchange.web.ui.i18n import parse_date
from docexchange.web.ui.work import render_page
from docexchange.web.users import UserAccount, UserRole

__all__ = ["DOC_TYPES", "setup_compose_routes", "suggest_notation"]

DOC_TYPES = (
    ("Công văn", ""),
    ("Quyết định", "QĐ"),
    ("Thông báo", "TB"),
    ("Kế hoạch", "KH"),
    ("Báo cáo", "BC"),
    ("Tờ trình", "TTr"),
    ("Giấy mời", "GM"),
    ("Chỉ thị", "CT"),
)
_TYPE_PREFIX = dict(DOC_TYPES)
_STOP = {"tỉnh", "thành", "huyện", "xã", "phường", "thị"}

# NĐ 30 annex VI field limits (standards §3)
MAX_SUBJECT = 500
MAX_NUMBER = 11
MAX_NOTATION = 30
MAX_BODY = 20_000

POSITIONS = {
    "bottom-right": ("Góc dưới bên phải", "bottom right"),
    "middle-right": ("Giữa trang, bên phải", "middle of the page, right"),
    "bottom-left": ("Góc dưới bên trái", "bottom left"),
}


def _org_part(agency: Agency) -> str:
    if agency.name.lower().startswith("ủy ban nhân dân"):
        return "UBND"
    if agency.short_name and " " not in agency.short_name and len(agency.short_name) <= 10:
        return agency.short_name
    words = []
    for w in agency.name.split():
        if w.lower() in _STOP:
            break
        words.append(w)
    initials = "".join(w[0].upper() for w in words if w[0].isalpha())
    return initials or "VP"


def suggest_notation(agency: Agency, type_name: str) -> str:
    """The usual ký hiệu: ``QĐ-UBND`` for a decision of a people's committee, ``UBND`` for its công văn."""
    prefix = _TYPE_PREFIX.get(type_name, "")
    org = _org_part(agency)
    return f"{prefix}-{org}" if prefix else org


def _next_number(ctx: UiContext, agency: str, year: int) -> str:
    highest = 0
    for d in ctx.drafts.list(agency):
        if d.promulgation_date and d.promulgation_date.year == year and d.code_number.isdigit():
            highest = max(highest, int(d.code_number))
    return f"{highest + 1:02d}"


def _today(ctx: UiContext) -> date:
    return to_vn(ctx.clock.now()).date()


def _agency_of(ctx: UiContext, user: UserAccount) -> Agency:
    agency = ctx.agency(user.agency)
    if agency is None:
        raise NotFound("Không có cơ quan của tài khoản này trong danh bạ",
                       "the account's agency is not in the directory")
    return agency


def _official(agency: Agency, official_id: str) -> Official:
    for o in agency.officials:
        if o.id == official_id:
            return o
    raise InvalidPacket("Người ký không thuộc cơ quan", "the signer is not an official of the agency")


def _draft(ctx: UiContext, user: UserAccount, draft_id: str) -> Draft:
    return ctx.drafts.for_agency(user.agency, draft_id)


def _event(ctx: UiContext, user: UserAccount, action: str, detail: str = "") -> DraftEvent:
    return DraftEvent(at=ctx.clock.now(), by=user.username, action=action, detail=detail)


# -- compose --------------------------------------------------------------------------------------------------
async def compose_page(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    ctx = ctx_of(request)
    agency = _agency_of(ctx, user)
    today = _today(ctx)
    amend: dict[str, Any] | None = None
    if request.query.get("amend"):
        amend = await _amend_source(request, user, request.query["amend"], request.query.get("kind", "replace"))
    values = {
        "source": "letter",
        "type_name": "Công văn",
        "code_number": _next_number(ctx, agency.code, today.year),
        "code_notation": suggest_notation(agency, "Công văn"),
        "subject": amend["subject"] if amend else "",
        "signer": agency.officials[0].id if agency.officials else "",
        "priority": str(amend["priority"]) if amend else "0",
        "due_date": "",
        "body": "",
        "to_places": "",
        "addressee": "",
        "content": "",
    }
    return render(request, "compose.html", active="compose", agency=agency, values=values, doc_types=DOC_TYPES,
                  priorities=sorted(PRIORITY_LABELS), amend=amend, errors={}, today=today,
                  notations={t: suggest_notation(agency, t) for t, _ in DOC_TYPES})


async def _amend_source(request: web.Request, user: UserAccount, message_id: str, kind: str) -> dict[str, Any]:
    service = request.config_dict[SERVICE]
    item = await service.sent_item(user.principal(), message_id, trails=False)
    if item.message.sender != user.agency or item.message.kind != MessageKind.DOCUMENT:
        raise NotFound("Không tìm thấy văn bản đã gửi", "no such sent document")
    if kind not in ("update", "replace"):
        raise NotFound("Không có thao tác này", "no such action")
    meta = item.message.meta
    return {
        "message_id": message_id,
        "kind": kind,
        "business_type": 2 if kind == "update" else 3,
        "target": item.message.document_id,
        "code": meta.get("code") or "",
        "subject": meta.get("subject") or "",
        "priority": item.message.priority,
        "recipients": [d.recipient for d in item.deliveries],
    }


def _clean(text: str, limit: int) -> str:
    text = "".join(c for c in text if c.isprintable() or c in "\n\t").strip()
    return text[:limit]


async def compose(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    ctx = ctx_of(request)
    agency = _agency_of(ctx, user)
    limit = ctx.settings.signing.max_pdf_mb * 1024 * 1024
    form = await read_form(request, max_bytes=limit * 2 + 1024 * 1024, max_files=1 + MAX_ATTACHMENTS)
    lang = lang_of(request)
    today = _today(ctx)
    values = {k: form.raw(k) for k in ("source", "type_name", "code_number", "code_notation", "subject", "signer",
                                       "priority", "due_date", "body", "to_places", "addressee", "content")}
    errors: dict[str, str] = {}
    source = values["source"] if values["source"] in ("upload", "letter") else "letter"
    type_name = _clean(values["type_name"], 100) or "Công văn"
    number = _clean(values["code_number"], MAX_NUMBER)
    notation = _clean(values["code_notation"], MAX_NOTATION)
    subject = _clean(values["subject"], MAX_SUBJECT)
    if not number or not re.fullmatch(r"[0-9A-Za-z.\-]{1,11}", number):
        errors["code_number"] = lang.t("Nhập số văn bản (tối đa 11 ký tự)", "enter the number (up to 11 characters)")
    if not notation:
        errors["code_notation"] = lang.t("Nhập ký hiệu văn bản", "enter the notation")
    if not subject:
        errors["subject"] = lang.t("Nhập trích yếu nội dung", "enter the subject")
    try:
        official = _official(agency, values["signer"])
    except DocExchangeError:
        errors["signer"] = lang.t("Chọn người ký", "choose the signer")
        official = None
    try:
        priority = int(values["priority"] or 0)
        if priority not in PRIORITY_LABELS:
            raise ValueError
    except ValueError:
        errors["priority"] = lang.t("Độ khẩn không hợp lệ", "invalid priority")
        priority = 0
    due: date | None = None
    if values["due_date"].strip():
        try:
            due = parse_date(values["due_date"])
        except ValueError:
            errors["due_date"] = lang.t("Hạn xử lý phải là ngày hợp lệ", "the due date must be a valid date")
    body_text = _clean(values["body"], MAX_BODY)
    places = tuple(p.strip()[:200] for p in _clean(values["to_places"], 4000).splitlines() if p.strip())[:30]
    upload = form.file("document")
    attachments = [(u.filename[:200] or f"phu-luc-{i + 1}", u.content_type or "application/octet-stream", u.data)
                   for i, u in enumerate(form.uploads("attachment"))]
    for _, _, data in attachments:
        if len(data) > limit:
            errors["attachment"] = lang.t("Tệp đính kèm quá lớn", "an attachment is too large")
    if source == "upload":
        if upload is None:
            errors["document"] = lang.t("Chọn tệp PDF văn bản", "choose the PDF file")
        elif not upload.data.startswith(b"%PDF-"):
            errors["document"] = lang.t("Tệp văn bản phải là PDF", "the document must be a PDF")
        elif len(upload.data) > limit:
            errors["document"] = lang.t("Tệp PDF quá lớn", "the PDF is too large")
    elif not body_text:
        errors["body"] = lang.t("Nhập nội dung văn bản", "enter the letter's text")
    business_type = 0
    target = ""
    amend = None
    if form.get("amend"):
        amend = await _amend_source(request, user, form.get("amend"), form.get("amend_kind"))
        business_type, target = amend["business_type"], amend["target"]
    if errors:
        return render(request, "compose.html", status=400, active="compose", agency=agency, values=values,
                      doc_types=DOC_TYPES, priorities=sorted(PRIORITY_LABELS), amend=amend, errors=errors, today=today,
                      notations={t: suggest_notation(agency, t) for t, _ in DOC_TYPES})
    assert official is not None
    if source == "letter":
        paragraphs = [xml.sax.saxutils.escape(p.strip()) for p in re.split(r"\n\s*\n|\r\n\s*\r\n", body_text)
                      if p.strip()]
        parent = ctx.directory.parent_agency(agency.code)
        spec = {
            "agency_name": agency.name,
            "parent_name": "" if parent is None or agency.name.lower().startswith("ủy ban nhân dân")
            else (parent.short_name or parent.name),
            "number": number,
            "notation": notation,
            "place": agency.place or "Hà Nội",
            "issued": today.isoformat(),
            "doc_type": type_name.upper(),
            "subject": subject,
            "body": [p.replace("\n", " ") for p in paragraphs][:200],
            "recipients": list(places) or ["Như trên;", "Lưu: VT."],
            "competence": official.competence,
            "position": official.position,
            "signer_name": official.full_name,
        }
        addressee = _clean(values["addressee"], 300).replace("\n", " ")
        if addressee:
            spec["addressee"] = addressee  # "Kính gửi" of a công văn
        pdf = await ctx.worker.letter(spec)
        name = f"{number}-{notation}.pdf".replace("/", "-")
    else:
        assert upload is not None
        pdf = upload.data
        name = upload.filename[:200] or "van-ban.pdf"
    await ctx.worker.facts(pdf)  # a damaged PDF is refused now, not at signing time
    now = ctx.clock.now()
    draft = Draft(
        id=ctx.drafts.new_id(), agency=agency.code, created_by=user.username, created_at=now, updated_at=now,
        state=DraftState.COMPOSED, signer=official.id, subject=subject, code_number=number, code_notation=notation,
        type_name=type_name, promulgation_date=today, source=source, document_name=name, priority=priority,
        due_date=due, content=_clean(values["content"], 2000), to_places=places,
        recipients=tuple(amend["recipients"]) if amend else (), business_type=business_type, business_target=target,
        business_reason=_clean(form.get("amend_reason"), 500) if amend else "",
        history=(_event(ctx, user, "composed"),),
    )
    draft = await asyncio.to_thread(ctx.drafts.create, draft, pdf, attachments)
    flash(request, "ok", f"Đã tạo dự thảo, chờ {official.full_name} ký",
          f"draft created; {official.full_name} signs next")
    raise redirect(f"{PREFIX}/drafts/{draft.id}")


# -- drafts ---------------------------------------------------------------------------------------------------
async def drafts_page(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK, UserRole.OFFICIAL)
    ctx = ctx_of(request)
    drafts = await asyncio.to_thread(ctx.drafts.list, user.agency)
    if user.role == UserRole.OFFICIAL:
        mine = [d for d in drafts if d.signer == user.official_id and d.state == DraftState.COMPOSED]
        others = [d for d in drafts if d not in mine]
    else:
        mine = [d for d in drafts if d.open]
        others = [d for d in drafts if not d.open][:50]
    return render(request, "drafts.html", active="drafts", mine=mine, others=others)


def _signer_name(ctx: UiContext, draft: Draft) -> str:
    try:
        return ctx.directory.find_official(draft.signer)[1].full_name
    except DocExchangeError:
        return draft.signer


async def draft_page(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK, UserRole.OFFICIAL)
    ctx = ctx_of(request)
    draft = _draft(ctx, user, request.match_info["id"])
    agency = _agency_of(ctx, user)
    certificates: list[dict[str, Any]] = []
    needs_box = False
    pages = 1
    can_sign = (user.role == UserRole.OFFICIAL and draft.state == DraftState.COMPOSED
                and draft.signer == user.official_id)
    if can_sign:
        certificates = await ctx.worker.person_certificates(user.official_id)
        for c in certificates:
            c["not_before_dt"] = datetime.fromisoformat(c["not_before"])
            c["not_after_dt"] = datetime.fromisoformat(c["not_after"])
            c["usable"] = c["not_before_dt"] <= ctx.clock.now() <= c["not_after_dt"]
    facts = None
    if draft.open:
        facts = await ctx.worker.facts(await asyncio.to_thread(ctx.drafts.read, draft, draft.current_file))
        pages = facts.pages
        needs_box = not facts.empty_fields
    q = request.query.get("q", "").strip()[:100]
    results: list[Agency] = []
    if q and user.role == UserRole.CLERK and draft.open:
        results = [a for a in ctx.directory.search(q, limit=30) if a.code != user.agency
                   and a.code not in draft.recipients][:20]
    seal = None
    if user.role == UserRole.CLERK and draft.state == DraftState.SIGNED:
        seal = _seal_info(ctx, agency.code)
    return render(
        request, "draft.html", active="drafts", draft=draft, agency=agency, signer_name=_signer_name(ctx, draft),
        can_sign=can_sign, certificates=certificates, needs_box=needs_box, pages=pages, positions=POSITIONS,
        q=q, results=results, seal=seal, priorities=sorted(PRIORITY_LABELS), facts=facts,
        preview_version=int(draft.updated_at.timestamp()),
    )


def _seal_info(ctx: UiContext, code: str) -> dict[str, Any] | None:
    try:
        from docexchange.pki.devpki import DevPki

        cert = DevPki.open(ctx.settings).seal_cert(code)
    except (DocExchangeError, OSError):
        return None
    from cryptography.hazmat.primitives import hashes

    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc,
        "not_before": cert.not_valid_before_utc,
        "sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }


def _box_for(position: str, size: tuple[float, float]) -> tuple[float, float, float, float]:
    w, h = size
    bw, bh = 170.0, 80.0
    if position == "bottom-left":
        x1, y1 = 60.0, 90.0
    elif position == "middle-right":
        x1, y1 = w - 60.0 - bw, h / 2 - bh / 2
    else:
        x1, y1 = w - 60.0 - bw, 90.0
    return (round(x1, 2), round(y1, 2), round(x1 + bw, 2), round(y1 + bh, 2))


async def sign(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.OFFICIAL)
    ctx = ctx_of(request)
    form = await read_form(request)
    draft_id = request.match_info["id"]
    async with ctx.drafts.lock(draft_id):
        draft = _draft(ctx, user, draft_id)
        if draft.state != DraftState.COMPOSED:
            raise Conflict("Văn bản không ở bước chờ ký", "the draft is not waiting for a signature")
        if draft.signer != user.official_id:
            raise Forbidden("Văn bản này do người khác ký", "another official signs this draft")
        try:
            await asyncio.to_thread(ctx.users.authenticate, user.username, form.raw("password")[:256])
        except AuthError:
            ctx.throttle.failed(f"u:{user.username}")
            flash(request, "error", "Mật khẩu xác nhận không đúng: văn bản chưa được ký",
                  "the confirmation password is wrong: nothing was signed")
            raise redirect(f"{PREFIX}/drafts/{draft.id}") from None
        original = await asyncio.to_thread(ctx.drafts.read, draft, "original.pdf")
        page: int | None = None
        box = None
        facts = await ctx.worker.facts(original)
        if not facts.empty_fields:
            try:
                page = int(form.get("page") or facts.pages)
            except ValueError:
                page = facts.pages
            page = min(max(1, page), facts.pages)
            box = _box_for(form.get("position"), facts.page_sizes[page - 1])
        signed, cert = await ctx.worker.sign_person(original, user.official_id, form.get("certificate"), page, box)
        await asyncio.to_thread(ctx.drafts.write, draft, "signed.pdf", signed)
        draft = replace(draft, state=DraftState.SIGNED, person_cert=cert, updated_at=ctx.clock.now(),
                        history=(*draft.history, _event(ctx, user, "signed", cert[:16])))
        await asyncio.to_thread(ctx.drafts.save, draft)
    flash(request, "ok", "Đã ký số văn bản; văn thư sẽ đóng dấu và gửi", "signed; the clerk seals and sends next")
    raise redirect(f"{PREFIX}/drafts/{draft.id}")


async def seal(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    ctx = ctx_of(request)
    await read_form(request)
    draft_id = request.match_info["id"]
    async with ctx.drafts.lock(draft_id):
        draft = _draft(ctx, user, draft_id)
        if draft.state != DraftState.SIGNED:
            raise Conflict("Văn bản chưa được lãnh đạo ký hoặc đã đóng dấu",
                           "the draft is not signed yet, or already sealed")
        signed = await asyncio.to_thread(ctx.drafts.read, draft, "signed.pdf")
        sealed, cert = await ctx.worker.sign_seal(signed, draft.agency)
        await asyncio.to_thread(ctx.drafts.write, draft, "sealed.pdf", sealed)
        draft = replace(draft, state=DraftState.SEALED, seal_cert=cert, updated_at=ctx.clock.now(),
                        history=(*draft.history, _event(ctx, user, "sealed", cert[:16])))
        await asyncio.to_thread(ctx.drafts.save, draft)
    flash(request, "ok", "Đã ký số của cơ quan (đóng dấu). Kiểm tra trang đã ký rồi gửi.",
          "sealed. Check the signed page, then send.")
    raise redirect(f"{PREFIX}/drafts/{draft.id}#gui")


async def recipients(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    ctx = ctx_of(request)
    form = await read_form(request)
    draft_id = request.match_info["id"]
    async with ctx.drafts.lock(draft_id):
        draft = _draft(ctx, user, draft_id)
        if not draft.open:
            raise Conflict("Văn bản đã gửi hoặc đã hủy", "the draft was sent or discarded")
        current = list(draft.recipients)
        action = form.get("action")
        code = form.get("code")
        if action == "add":
            if code not in ctx.directory:
                raise NotFound("Không có cơ quan này trong danh bạ", f"no agency {code!r} in the directory")
            code = ctx.directory.resolve(code)
            if code == draft.agency:
                raise InvalidPacket("Không gửi văn bản cho chính cơ quan mình", "an agency does not send to itself")
            if code not in current:
                if len(current) >= MAX_RECIPIENTS:
                    raise InvalidPacket("Quá nhiều nơi nhận", "too many recipients")
                current.append(code)
        elif action == "remove":
            current = [c for c in current if c != code]
        else:
            raise web.HTTPBadRequest()
        draft = replace(draft, recipients=tuple(current), updated_at=ctx.clock.now())
        await asyncio.to_thread(ctx.drafts.save, draft)
    q = form.get("q")
    suffix = f"?q={urllib.parse.quote(q)}" if q and action == "add" else ""
    raise redirect(f"{PREFIX}/drafts/{draft.id}{suffix}#noi-nhan")


async def options(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    ctx = ctx_of(request)
    form = await read_form(request)
    draft_id = request.match_info["id"]
    async with ctx.drafts.lock(draft_id):
        draft = _draft(ctx, user, draft_id)
        if not draft.open:
            raise Conflict("Văn bản đã gửi hoặc đã hủy", "the draft was sent or discarded")
        try:
            priority = int(form.get("priority") or 0)
            if priority not in PRIORITY_LABELS:
                raise ValueError
            due = parse_date(form.get("due_date")) if form.get("due_date") else None
        except ValueError:
            raise InvalidPacket("Độ khẩn hoặc hạn xử lý không hợp lệ", "invalid priority or due date") from None
        draft = replace(draft, priority=priority, due_date=due, updated_at=ctx.clock.now(),
                        history=(*draft.history, _event(ctx, user, "edited", f"priority={priority}")))
        await asyncio.to_thread(ctx.drafts.save, draft)
    flash(request, "ok", "Đã lưu độ khẩn và hạn xử lý", "priority and due date saved")
    raise redirect(f"{PREFIX}/drafts/{draft.id}#gui")


async def send(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    ctx = ctx_of(request)
    await read_form(request)
    draft_id = request.match_info["id"]
    service = request.config_dict[SERVICE]
    async with ctx.drafts.lock(draft_id):
        draft = _draft(ctx, user, draft_id)
        if draft.state != DraftState.SEALED:
            raise Conflict("Văn bản phải được ký và đóng dấu trước khi gửi",
                           "the document must be signed and sealed before it is sent")
        if not draft.recipients:
            flash(request, "error", "Chọn ít nhất một nơi nhận", "choose at least one recipient")
            raise redirect(f"{PREFIX}/drafts/{draft.id}#noi-nhan")
        _, official = ctx.directory.find_official(draft.signer)
        sealed = await asyncio.to_thread(ctx.drafts.read, draft, "sealed.pdf")
        extra = []
        for a in draft.attachments:
            extra.append((a.name, a.content_type, await asyncio.to_thread(ctx.drafts.read, draft, a.file)))
        to = list(draft.recipients)
        added: tuple[str, ...] = ()
        removed: tuple[str, ...] = ()
        if draft.business_type == 2 and draft.business_target:
            before = await _original_recipients(request, user, draft.business_target)
            added = tuple(c for c in to if c not in before)
            removed = tuple(c for c in before if c not in to)
            to = list(dict.fromkeys([*to, *removed]))
        doc = OutgoingDocument(
            to=tuple(to), subject=draft.subject, code_number=draft.code_number, code_notation=draft.code_notation,
            type_name=draft.type_name, promulgation_date=draft.promulgation_date,
            place=(ctx.agency(draft.agency).place if ctx.agency(draft.agency) else None) or None,  # type: ignore[union-attr]
            content=draft.content or None, signer_full_name=official.full_name, signer_position=official.position,
            signer_competence=official.competence or None, priority=draft.priority, due_date=draft.due_date,
            to_places=draft.to_places or tuple(ctx.agency_name(c) for c in draft.recipients)[:30],
            business_type=draft.business_type, business_target=draft.business_target or None,
            business_reason=draft.business_reason or None, added_receivers=added, removed_receivers=removed,
            replaces=(draft.business_target,) if draft.business_type == 3 and draft.business_target else (),
            document_name=draft.document_name if draft.document_name.lower().endswith(".pdf")
            else draft.document_name + ".pdf",
        )
        result = await service.submit_document(user.principal(), draft.agency, doc, sealed, extra)
        draft = replace(draft, state=DraftState.SENT, sent_message_id=result.message_id,
                        sent_document_id=result.document_id, updated_at=ctx.clock.now(),
                        history=(*draft.history, _event(ctx, user, "sent", result.message_id)))
        await asyncio.to_thread(ctx.drafts.save, draft)
    flash(request, "ok", f"Đã gửi văn bản số {draft.reference} đến {len(draft.recipients)} nơi nhận",
          f"document {draft.reference} sent to {len(draft.recipients)} recipient(s)")
    raise redirect(f"{PREFIX}/sent/{result.message_id}")


async def _original_recipients(request: web.Request, user: UserAccount, document_id: str) -> list[str]:
    store_deliveries = await request.config_dict[SERVICE].store.find_deliveries(sender=user.agency,
                                                                                 document_id=document_id)
    return list(dict.fromkeys(d.recipient for d in store_deliveries))


async def discard(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK)
    ctx = ctx_of(request)
    await read_form(request)
    draft_id = request.match_info["id"]
    async with ctx.drafts.lock(draft_id):
        draft = _draft(ctx, user, draft_id)
        if not draft.open:
            raise Conflict("Văn bản đã gửi hoặc đã hủy", "the draft was sent or discarded")
        draft = replace(draft, state=DraftState.DISCARDED, updated_at=ctx.clock.now(),
                        history=(*draft.history, _event(ctx, user, "discarded")))
        await asyncio.to_thread(ctx.drafts.save, draft)
        await asyncio.to_thread(ctx.drafts.purge_files, draft)
    flash(request, "info", "Đã hủy dự thảo", "draft discarded")
    raise redirect(f"{PREFIX}/drafts")


async def preview(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK, UserRole.OFFICIAL)
    ctx = ctx_of(request)
    draft = _draft(ctx, user, request.match_info["id"])
    if not draft.open and draft.state != DraftState.SENT:
        raise NotFound("Không còn tệp", "the file is gone")
    name = draft.current_file
    data = await asyncio.to_thread(ctx.drafts.read, draft, name)
    facts = await ctx.worker.facts(data)
    try:
        page = int(request.query.get("page", "0")) or facts.signature_page + 1
    except ValueError:
        page = facts.signature_page + 1
    page = min(max(1, page), facts.pages)
    stage = name.removesuffix(".pdf")
    out = ctx.drafts.preview_path(draft, stage, page)
    if not out.exists():
        src = ctx.drafts.root / draft.id / name
        await render_page(src, page, out)
    body = await asyncio.to_thread(out.read_bytes)
    return web.Response(body=body, content_type="image/png", headers={"Cache-Control": "private, max-age=60"})


async def document(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK, UserRole.OFFICIAL)
    ctx = ctx_of(request)
    draft = _draft(ctx, user, request.match_info["id"])
    data = await asyncio.to_thread(ctx.drafts.read, draft, draft.current_file)
    return file_response(data, draft.document_name, "application/pdf",
                         inline=request.query.get("download") != "1")


async def attachment(request: web.Request) -> web.StreamResponse:
    user = require(request, UserRole.CLERK, UserRole.OFFICIAL)
    ctx = ctx_of(request)
    draft = _draft(ctx, user, request.match_info["id"])
    try:
        att = draft.attachments[int(request.match_info["n"])]
    except (ValueError, IndexError):
        raise NotFound("Không có tệp đính kèm này", "no such attachment") from None
    data = await asyncio.to_thread(ctx.drafts.read, draft, att.file)
    return file_response(data, att.name, att.content_type)


def setup_compose_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/compose", compose_page)
    r.add_post("/compose", compose)
    r.add_get("/drafts", drafts_page)
    r.add_get("/drafts/{id}", draft_page)
    r.add_post("/drafts/{id}/sign", sign)
    r.add_post("/drafts/{id}/seal", seal)
    r.add_post("/drafts/{id}/recipients", recipients)
    r.add_post("/drafts/{id}/options", options)
    r.add_post("/drafts/{id}/send", send)
    r.add_post("/drafts/{id}/discard", discard)
    r.add_get("/drafts/{id}/preview.png", preview)
    r.add_get("/drafts/{id}/document.pdf", document)
    r.add_get("/drafts/{id}/attachments/{n}", attachment)

