"""Packets for people and for JSON: a Vietnamese summary and a plain dict (no bytes, dates as written)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from docexchange.clock import vn_datetime
from docexchange.edxml.model import (
    Attachment,
    DocumentPacket,
    Organization,
    Packet,
    ResponseFor,
    StatusPacket,
    TraceHeader,
)
from docexchange.edxml.signature import SignatureCheck
from docexchange.edxml.writer import format_date, format_timestamp

__all__ = ["human_size", "packet_to_dict", "summary_vi", "vn_date"]


def vn_date(d: date) -> str:
    """``ngày 05 tháng 01 năm 2025``."""
    return f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"


def human_size(n: int) -> str:
    """Sizes the way a Vietnamese clerk reads them (decimal comma)."""
    if n < 1024:
        return f"{n} byte"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB".replace(".", ",")
    return f"{n / 1024 / 1024:.1f} MB".replace(".", ",")


def _org(o: Organization) -> dict[str, Any]:
    return {
        "organ_id": o.organ_id,
        "organ_name": o.organ_name,
        "organization_in_charge": o.organization_in_charge,
        "organ_add": o.organ_add,
        "email": o.email,
        "telephone": o.telephone,
        "fax": o.fax,
        "website": o.website,
    }


def _d(d: date | None) -> str | None:
    return format_date(d) if d is not None else None


def _ts(t: datetime | None) -> str | None:
    return format_timestamp(t) if t is not None else None


def _rf(r: ResponseFor) -> dict[str, Any]:
    return {
        "organ_id": r.organ_id,
        "code": r.code,
        "promulgation_date": _d(r.promulgation_date),
        "document_id": r.document_id,
    }


def _trace(t: TraceHeader) -> dict[str, Any]:
    return {"organ_id": t.organ_id, "timestamp": _ts(t.timestamp)}


def _attachment(a: Attachment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": a.name,
        "content_type": a.content_type,
        "size": a.size,
        "description": a.description,
        "content_id": a.content_id,
    }
    if a.source is not None:
        s = a.source
        out["source"] = {
            "container": s.container,
            "content_id": s.content_id_raw,
            "declared_content_type": s.declared_content_type,
            "manifest_content_type": s.manifest_content_type,
            "zip_wrapped": s.zip_wrapped,
            "zip_entry_name": s.zip_entry_name,
            "encoded_chars": s.encoded_chars,
            "transfer_size": s.transfer_size,
            "transfer_sha256": s.transfer_sha256,
        }
    return out


def packet_to_dict(packet: Packet, check: SignatureCheck | None = None) -> dict[str, Any]:
    """Everything a packet says, JSON-ready (attachments without their bytes)."""
    out: dict[str, Any] = {"kind": packet.kind, "from": _org(packet.sender)}
    if isinstance(packet, DocumentPacket):
        b = packet.bussiness
        oi = packet.other_info
        out.update(
            {
                "to": [_org(o) for o in packet.to],
                "document_id": packet.document_id,
                "code": (
                    {"number": packet.code.number, "notation": packet.code.notation} if packet.code else None
                ),
                "promulgation": (
                    {"date": _d(packet.promulgation.date), "place": packet.promulgation.place}
                    if packet.promulgation
                    else None
                ),
                "document_type": (
                    {
                        "type": packet.document_type.type,
                        "type_detail": packet.document_type.type_detail,
                        "type_name": packet.document_type.type_name,
                    }
                    if packet.document_type
                    else None
                ),
                "subject": packet.subject,
                "content": packet.content,
                "signer": (
                    {
                        "competence": packet.signer.competence,
                        "position": packet.signer.position,
                        "full_name": packet.signer.full_name,
                    }
                    if packet.signer
                    else None
                ),
                "due_date": _d(packet.due_date),
                "to_places": list(packet.to_places),
                "other_info": (
                    {
                        "priority": int(oi.priority) if oi.priority is not None else None,
                        "sphere_of_promulgation": oi.sphere_of_promulgation,
                        "typer_notation": oi.typer_notation,
                        "promulgation_amount": oi.promulgation_amount,
                        "page_amount": oi.page_amount,
                        "direction": oi.direction,
                        "appendixes": list(oi.appendixes),
                    }
                    if oi
                    else None
                ),
                "priority": {"code": int(packet.priority), "label_vi": packet.priority.label_vi},
                "response_for": [_rf(r) for r in packet.response_for],
                "steering_type": packet.steering_type,
                "trace": [_trace(t) for t in packet.trace.headers],
                "bussiness": (
                    {
                        "doc_type": int(b.doc_type),
                        "label_vi": b.doc_type.label_vi,
                        "document_id": b.document_id,
                        "reason": b.reason,
                        "paper": b.paper,
                        "receivers": [
                            {"organ_id": r.organ_id, "receiver_type": int(r.receiver_type)}
                            for r in (b.document_info.receivers if b.document_info else ())
                        ],
                        "replacements": [
                            {"document_id": r.document_id, "organ_ids": list(r.organ_ids)} for r in b.replacements
                        ],
                    }
                    if b
                    else None
                ),
                "attachments": [_attachment(a) for a in packet.attachments],
            }
        )
    else:
        out.update(
            {
                "response_for": _rf(packet.response_for),
                "status_code": packet.status_code.value,
                "status_label_vi": packet.status_code.label_vi,
                "description": packet.description,
                "timestamp": _ts(packet.timestamp),
                "staff_info": (
                    {
                        "department": packet.staff_info.department,
                        "staff": packet.staff_info.staff,
                        "email": packet.staff_info.email,
                        "mobile": packet.staff_info.mobile,
                    }
                    if packet.staff_info
                    else None
                ),
                "trace": [_trace(t) for t in packet.trace.headers],
            }
        )
    out["warnings"] = [w.to_dict() for w in packet.warnings]
    if check is not None:
        out["signature"] = check.to_dict()
    return out


def _who(o: Organization) -> str:
    return f"{o.organ_id} — {o.organ_name}" if o.organ_name else o.organ_id


def summary_vi(packet: Packet, check: SignatureCheck | None = None) -> str:
    """A summary a clerk can read (Vietnamese, dates as clerks write them, times in Vietnam time)."""
    lines: list[str] = []
    add = lines.append
    if isinstance(packet, DocumentPacket):
        add("GÓI TIN VĂN BẢN (edXML)")
        add(f"  Nơi gửi:         {_who(packet.sender)}")
        for i, o in enumerate(packet.to):
            add(f"  {'Nơi nhận:' if i == 0 else '':16} {_who(o)}")
        if packet.code is not None:
            add(f"  Số, ký hiệu:     {packet.code}")
        if packet.promulgation is not None and packet.promulgation.date is not None:
            place = f"{packet.promulgation.place}, " if packet.promulgation.place else ""
            add(f"  Ban hành:        {place}{vn_date(packet.promulgation.date)}")
        if packet.document_type is not None and packet.document_type.type_name:
            add(f"  Loại văn bản:    {packet.document_type.type_name}")
        if packet.subject:
            add(f"  Trích yếu:       {packet.subject}")
        add(f"  Độ khẩn:         {packet.priority.label_vi}")
        if packet.signer is not None:
            parts = [p for p in (packet.signer.competence, packet.signer.position, packet.signer.full_name) if p]
            if parts:
                add(f"  Người ký:        {' / '.join(parts)}")
        if packet.due_date is not None:
            add(f"  Hạn xử lý:       {vn_date(packet.due_date)}")
        b = packet.bussiness
        if b is not None:
            target = f" (văn bản {b.document_id})" if b.document_id and int(b.doc_type) else ""
            add(f"  Nghiệp vụ:       {b.doc_type.label_vi}{target}")
        add(f"  Mã văn bản:      {packet.document_id}")
        _trace_lines(add, packet.trace.headers)
        add(f"  Tệp đính kèm:    {len(packet.attachments)}")
        for a in packet.attachments:
            how = ""
            if a.source is not None:
                how = ", gói ZIP" if a.source.zip_wrapped else ", không nén"
            add(f"    - {a.name} ({a.content_type}, {human_size(a.size)}{how})")
    else:
        assert isinstance(packet, StatusPacket)
        add("GÓI TIN TRẠNG THÁI (edXML)")
        add(f"  Nơi gửi:         {_who(packet.sender)}")
        add(f"  Trạng thái:      {packet.status_code.value} — {packet.status_code.label_vi}")
        if packet.description:
            add(f"  Mô tả:           {packet.description}")
        add(f"  Thời điểm:       {vn_datetime(packet.timestamp)}")
        rf = packet.response_for
        add(f"  Về văn bản:      {rf.code or ''} {('— ' + rf.document_id) if rf.document_id else ''}".rstrip())
        if packet.staff_info is not None and packet.staff_info.staff:
            dept = f" ({packet.staff_info.department})" if packet.staff_info.department else ""
            add(f"  Cán bộ:          {packet.staff_info.staff}{dept}")
        _trace_lines(add, packet.trace.headers)
    if check is not None:
        who = ""
        if check.signer is not None:
            who = f" — {check.signer.subject.rfc4514_string()}"
        add(f"  Chữ ký gói tin:  {check.status.label_vi}{who}")
        for f in check.findings:
            add(f"    · {f.message_vi}")
    if packet.warnings:
        add(f"  Điểm bất thường ({len(packet.warnings)}):")
        for w in packet.warnings:
            add(f"    ! {w.message_vi}")
    return "\n".join(lines)


def _trace_lines(add: Any, headers: tuple[TraceHeader, ...]) -> None:
    if not headers:
        return
    add("  Hành trình:")
    for t in headers:
        add(f"    {t.organ_id or '(không rõ)'} lúc {vn_datetime(t.timestamp)}")
