"""Kiểm tra chữ ký: drop any signed PDF or edXML packet and read the verification report (TT 15/2025 fields);
download it as JSON or HTML. Reports are kept a week for the person who asked (``<data_dir>/ui/<node>/reports``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from docexchange.edxml._xml import MiB, ReadLimits
from docexchange.errors import DocExchangeError, NotFound, VerificationError
from docexchange.exchange.model import Verification
from docexchange.pki.keystore import write_atomic
from docexchange.web.ui.core import (
    PREFIX,
    UiContext,
    ctx_of,
    file_response,
    lang_of,
    read_form,
    redirect,
    render,
    require,
)
from docexchange.web.ui.views_mail import FileReport, ReportView
from docexchange.web.users import UserAccount

__all__ = ["setup_audit_routes", "verify_upload"]

log = logging.getLogger(__name__)

_RID = re.compile(r"^r[0-9a-f]{20}$")
KEEP = timedelta(days=7)
POLICIES = ("auto", "none", "nd30", "nd30-appendix")


def _reports_dir(ctx: UiContext) -> Path:
    return ctx.work_dir / "reports"


def _path(ctx: UiContext, rid: str) -> Path:
    if not _RID.match(rid):
        raise NotFound("Không tìm thấy biên bản kiểm tra", "no such report")
    return _reports_dir(ctx) / f"{rid}.json"


def _is_xml(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") or b"<?xml" in data[:1024] or b"edXML" in data[:4096]


def _outcome(report: Any) -> str:
    return str(getattr(getattr(report, "outcome", None), "value", "cannot_validate"))


def _verdict(outcomes: list[str]) -> Verification:
    if not outcomes:
        return Verification.INDETERMINATE
    if any(o == "invalid" for o in outcomes):
        return Verification.FAILED
    if all(o == "valid" for o in outcomes):
        return Verification.PASSED
    return Verification.INDETERMINATE


async def verify_upload(ctx: UiContext, data: bytes, name: str, *, sender: str | None,
                        policy: str) -> dict[str, Any]:
    """Verify a PDF or an edXML packet; returns the record kept for the report page (JSON-able)."""
    verifier = await ctx.get_verifier()
    record: dict[str, Any] = {
        "name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "sender": sender or "",
        "policy": policy, "kind": "pdf", "files": [], "envelope": None, "packet": None,
    }
    if data.startswith(b"%PDF-") or not _is_xml(data):
        pol: str | None = {"none": None, "auto": "nd30" if sender else None}.get(policy, policy)
        report = await asyncio.to_thread(verifier.verify_pdf, data, name=name, sender=sender or None, policy=pol)
        record["files"].append({"name": name, "report": report.to_dict()})
        record["result"] = _verdict([_outcome(report)]).value
        return record
    from docexchange.edxml import DocumentPacket, read_packet, verify_packet
    from docexchange.verify.packet import check_envelope

    limits = ReadLimits(max_packet_bytes=ctx.settings.exchange.max_packet_mb * MiB)
    record["kind"] = "packet"
    packet = await asyncio.to_thread(read_packet, data, limits=limits)
    envelope = check_envelope(packet, ctx.directory)
    sig = await asyncio.to_thread(verify_packet, data, limits=limits)
    record["envelope"] = {**envelope.to_json(), "signature": sig.to_dict(), "signature_en": sig.message_en,
                          "signature_vi": sig.message_vi}
    record["packet"] = {"sender": packet.sender.organ_id, "document_id": getattr(packet, "document_id", None),
                        "subject": getattr(packet, "subject", None),
                        "type": "document" if isinstance(packet, DocumentPacket) else "status"}
    outcomes = []
    if isinstance(packet, DocumentPacket):
        pdfs = [a for a in packet.attachments if a.content[:5] == b"%PDF-"]
        psender = sender or packet.sender.organ_id
        for i, att in enumerate(pdfs):
            pol = None if policy == "none" else ("nd30" if i == 0 else "nd30-appendix") if policy == "auto" else policy
            report = await asyncio.to_thread(verifier.verify_pdf, att.content, name=att.name,
                                             sender=psender if pol else None, policy=pol)
            record["files"].append({"name": att.name, "report": report.to_dict()})
            outcomes.append(_outcome(report))
        if not pdfs:
            outcomes.append("invalid")
    if not envelope.ok or sig.status.value == "invalid":
        outcomes.append("invalid")
    record["result"] = _verdict(outcomes).value
    return record


def _view(record: dict[str, Any]) -> ReportView:
    from docexchange.verify.report import VerificationReport

    view = ReportView(Verification(record.get("result", "indeterminate")))
    for f in record.get("files", []):
        try:
            rep = VerificationReport.from_dict(f["report"])
        except Exception:
            log.warning("stored report unreadable", exc_info=True)
            rep = None
        view.files.append(FileReport(name=f["name"], label_vi=rep.label_vi if rep else "chưa xác định",
                                     indication=rep.indication.value if rep else "", reasons=rep.reasons_vi if rep
                                     else [], report=rep))
        if rep is not None:
            view.reasons.extend(f"{f['name']}: {r}" for r in rep.reasons_vi)
    env = record.get("envelope")
    if env:
        view.reasons.extend(p["message_vi"] for p in env.get("problems", []))
    return view


def _load(ctx: UiContext, user: UserAccount, rid: str) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(_path(ctx, rid).read_text("utf-8"))
    except FileNotFoundError:
        raise NotFound("Không tìm thấy biên bản kiểm tra", "no such report") from None
    if record.get("owner") != user.username:
        raise NotFound("Không tìm thấy biên bản kiểm tra", "no such report")
    return record


def _mine(ctx: UiContext, user: UserAccount) -> list[dict[str, Any]]:
    folder = _reports_dir(ctx)
    if not folder.exists():
        return []
    out = []
    now = ctx.clock.now()
    for p in folder.glob("r*.json"):
        try:
            rec = json.loads(p.read_text("utf-8"))
            created = datetime.fromisoformat(rec["created_at"])
        except (ValueError, KeyError, OSError):
            continue
        if now - created > KEEP:
            p.unlink(missing_ok=True)
            continue
        if rec.get("owner") == user.username:
            rec["created"] = created
            out.append(rec)
    return sorted(out, key=lambda r: r["created"], reverse=True)[:20]


async def verify_page(request: web.Request) -> web.StreamResponse:
    user = require(request)
    ctx = ctx_of(request)
    recent = await asyncio.to_thread(_mine, ctx, user)
    return render(request, "verify.html", active="verify", recent=recent, error=None, policies=POLICIES)


async def verify(request: web.Request) -> web.StreamResponse:
    user = require(request)
    ctx = ctx_of(request)
    lang = lang_of(request)
    limit = max(ctx.settings.exchange.max_packet_mb, ctx.settings.signing.max_pdf_mb) * MiB
    form = await read_form(request, max_bytes=limit + MiB, max_files=1)
    upload = form.file("file")
    sender = form.get("sender")
    policy = form.get("policy") or "auto"
    error = None
    if upload is None:
        error = lang.t("Chọn tệp PDF hoặc gói tin edXML cần kiểm tra", "choose a PDF or edXML packet to check")
    elif sender and sender not in ctx.directory:
        error = lang.t(f"Không có cơ quan {sender} trong danh bạ", f"no agency {sender} in the directory")
    elif policy not in POLICIES:
        error = lang.t("Chính sách kiểm tra không hợp lệ", "invalid policy")
    if error is not None or upload is None:
        recent = await asyncio.to_thread(_mine, ctx, user)
        return render(request, "verify.html", status=400, active="verify", recent=recent, error=error,
                      policies=POLICIES)
    try:
        record = await verify_upload(ctx, upload.data, upload.filename[:200] or "tep", sender=sender or None,
                                     policy=policy)
    except VerificationError:
        raise
    except DocExchangeError as exc:
        recent = await asyncio.to_thread(_mine, ctx, user)
        return render(request, "verify.html", status=422, active="verify", recent=recent,
                      error=lang.t(f"Không đọc được tệp: {exc.message_vi}", f"cannot read the file: {exc.message_en}"),
                      policies=POLICIES)
    rid = "r" + secrets.token_hex(10)
    record.update({"id": rid, "owner": user.username, "created_at": ctx.clock.now().isoformat()})
    await asyncio.to_thread(write_atomic, _path(ctx, rid), json.dumps(record, ensure_ascii=False).encode(), 0o600)
    raise redirect(f"{PREFIX}/verify/{rid}")


async def report_page(request: web.Request) -> web.StreamResponse:
    user = require(request)
    ctx = ctx_of(request)
    rid = request.match_info["rid"]
    record = await asyncio.to_thread(_load, ctx, user, rid)
    return render(request, "verify_report.html", active="verify", record=record, view=_view(record),
                  created=datetime.fromisoformat(record["created_at"]))


async def report_download(request: web.Request) -> web.StreamResponse:
    user = require(request)
    ctx = ctx_of(request)
    rid, fmt = request.match_info["rid"], request.match_info["fmt"]
    record = await asyncio.to_thread(_load, ctx, user, rid)
    stem = "bien-ban-kiem-tra-" + re.sub(r"[^A-Za-z0-9._-]+", "_", record["name"]).strip("_")[:60]
    if fmt == "json":
        body = {k: v for k, v in record.items() if k != "owner"}
        return file_response(json.dumps(body, ensure_ascii=False, indent=2).encode(), stem + ".json",
                             "application/json")
    html = render(request, "report_standalone.html", title=record["name"], view=_view(record), single=record,
                  envelope=record.get("envelope")).text or ""
    return file_response(html.encode(), stem + ".html", "text/html")


def setup_audit_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/verify", verify_page)
    r.add_post("/verify", verify)
    r.add_get("/verify/{rid}.{fmt:json|html}", report_download)
    r.add_get("/verify/{rid}", report_page)
