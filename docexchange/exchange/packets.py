"""The bridge between edXML packets and the exchange: what a node needs to know about a packet, and the
packets a node writes itself (automatic statuses, documents built from a signed PDF and metadata).

:func:`describe` turns a parsed packet into :class:`PacketInfo`: routing facts (sender, recipients, priority,
kind, business action) and a small JSON-able ``meta`` that travels with the packet to the next nodes, so they
route, list and answer it without parsing it again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from docexchange.clock import to_vn
from docexchange.directory import Agency, Directory
from docexchange.edxml.model import (
    Attachment,
    Bussiness,
    BussinessDocType,
    Code,
    DocumentPacket,
    DocumentType,
    Organization,
    OtherInfo,
    Packet,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
    make_document_id,
)
from docexchange.edxml.writer import AttachmentEncoding, write_document, write_status
from docexchange.errors import InvalidPacket
from docexchange.exchange.model import MessageKind, message_id_for

__all__ = [
    "OutgoingDocument",
    "PacketInfo",
    "describe",
    "document_packet",
    "idempotency_key",
    "organization",
    "sha256",
    "status_packet",
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PacketInfo:
    kind: MessageKind
    sender: str
    recipients: tuple[str, ...]
    """Routing list: ``To`` OrganIds of a document; for a status, the agency it answers (``ResponseFor``)."""
    document_id: str
    """The document's DocumentId, or for a status the DocumentId it is about."""
    priority: int
    business_type: int = 0
    business_target: str | None = None
    status_code: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def message_id(self, received_digest: str) -> str:
        return message_id_for(self.kind.value, self.sender, self.document_id, received_digest)


def _iso(d: date | datetime | None) -> str | None:
    return None if d is None else d.isoformat()


def _org_meta(o: Organization) -> dict[str, Any]:
    return {"organ_id": o.organ_id, "name": o.organ_name}


def describe(packet: Packet) -> PacketInfo:
    """Routing facts and the travelling metadata of a parsed packet."""
    if isinstance(packet, StatusPacket):
        rf = packet.response_for
        if not rf.document_id:
            raise InvalidPacket(
                "Gói tin trạng thái thiếu ResponseFor/DocumentId", "the status packet lacks ResponseFor/DocumentId"
            )
        recipients = (rf.organ_id,) if rf.organ_id and rf.organ_id != packet.sender.organ_id else ()
        meta: dict[str, Any] = {
            "from": _org_meta(packet.sender),
            "status": {
                "code": packet.status_code.value,
                "label_vi": packet.status_code.label_vi,
                "description": packet.description,
                "timestamp": packet.timestamp.isoformat(),
                "staff": _staff_meta(packet.staff_info),
            },
            "response_for": {
                "organ_id": rf.organ_id,
                "code": rf.code,
                "promulgation_date": _iso(rf.promulgation_date),
                "document_id": rf.document_id,
            },
        }
        return PacketInfo(
            kind=MessageKind.STATUS,
            sender=packet.sender.organ_id,
            recipients=recipients,
            document_id=rf.document_id,
            priority=0,
            status_code=packet.status_code.value,
            meta=meta,
        )
    b = packet.bussiness
    business: dict[str, Any] | None = None
    if b is not None and b.doc_type != BussinessDocType.NEW:
        business = {
            "type": int(b.doc_type),
            "label_vi": b.doc_type.label_vi,
            "target": b.document_id,
            "reason": b.reason,
            "receivers": [
                {"organ_id": r.organ_id, "type": int(r.receiver_type)}
                for r in (b.document_info.receivers if b.document_info else ())
            ],
            "replacements": [{"document_id": r.document_id, "organ_ids": list(r.organ_ids)} for r in b.replacements],
        }
    doc_meta: dict[str, Any] = {
        "from": _org_meta(packet.sender),
        "to": [_org_meta(o) for o in packet.to],
        "subject": packet.subject,
        "code": str(packet.code) if packet.code else None,
        "promulgation_date": _iso(packet.promulgation.date) if packet.promulgation else None,
        "place": packet.promulgation.place if packet.promulgation else None,
        "type_name": packet.document_type.type_name if packet.document_type else None,
        "signer": {
            "full_name": packet.signer.full_name,
            "position": packet.signer.position,
            "competence": packet.signer.competence,
        } if packet.signer else None,
        "due_date": _iso(packet.due_date),
        "priority_label": packet.priority.label_vi,
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "size": a.size}
            for a in packet.attachments
        ],
        "business": business,
        "warnings": [w.to_dict() for w in packet.warnings][:20],
    }
    return PacketInfo(
        kind=MessageKind.DOCUMENT,
        sender=packet.sender.organ_id,
        recipients=tuple(dict.fromkeys(o.organ_id for o in packet.to)),
        document_id=packet.document_id,
        priority=int(packet.priority),
        business_type=int(b.doc_type) if b is not None else 0,
        business_target=b.document_id if b is not None and b.doc_type != BussinessDocType.NEW else None,
        meta=doc_meta,
    )


def _staff_meta(s: StaffInfo | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"department": s.department, "staff": s.staff, "email": s.email, "mobile": s.mobile}


def idempotency_key(info: PacketInfo, recipient: str, received_digest: str) -> str:
    """The submit idempotency key of one delivery: (sender, DocumentId, recipient) for a new document; revoke,
    update and replace packets also by their content (each is its own act); statuses by code and time."""
    if info.kind == MessageKind.STATUS:
        ts = str(info.meta.get("status", {}).get("timestamp", ""))
        parts = ["status", info.sender, info.document_id, info.status_code, ts, recipient]
    elif info.business_type:
        parts = ["document", info.sender, info.document_id, str(info.business_type), received_digest, recipient]
    else:
        parts = ["document", info.sender, info.document_id, recipient]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def organization(agency: Agency) -> Organization:
    return Organization(
        organ_id=agency.code,
        organ_name=agency.name[:200],
        organ_add=agency.address or None,
        email=agency.email or None,
        telephone=agency.telephone or None,
        website=agency.website or None,
    )


def status_packet(
    *,
    directory: Directory,
    sender: str,
    about_sender: str,
    document_id: str,
    code: StatusCode,
    at: datetime,
    meta: Mapping[str, Any],
    description: str | None = None,
    staff: StaffInfo | None = None,
    trace_organ: str | None = None,
) -> bytes:
    """A status packet from ``sender`` about document ``document_id`` of ``about_sender`` (its ResponseFor taken
    from the document's travelling metadata). With ``trace_organ``, the writing node's TraceHeader is included."""
    promulgation = meta.get("promulgation_date")
    rf = ResponseFor(
        organ_id=about_sender,
        code=meta.get("code"),
        promulgation_date=date.fromisoformat(promulgation) if promulgation else None,
        document_id=document_id,
    )
    packet = StatusPacket(
        sender=organization(directory.agency(sender)) if sender in directory else Organization(sender),
        response_for=rf,
        status_code=code,
        timestamp=to_vn(at).replace(microsecond=0),
        staff_info=staff,
        description=description,
        trace=TraceHeaderList((TraceHeader(trace_organ, to_vn(at).replace(microsecond=0)),) if trace_organ else ()),
    )
    return write_status(packet)


@dataclass(frozen=True)
class OutgoingDocument:
    """What a clerk fills in when the node builds the edXML around a signed PDF."""

    to: tuple[str, ...]
    subject: str
    code_number: str
    code_notation: str
    type_name: str = "Công văn"
    promulgation_date: date | None = None
    place: str | None = None
    content: str | None = None
    signer_full_name: str | None = None
    signer_position: str | None = None
    signer_competence: str | None = None
    priority: int = 0
    due_date: date | None = None
    to_places: tuple[str, ...] = ()
    steering_type: str | None = None
    business_type: int = 0
    business_target: str | None = None
    business_reason: str | None = None
    added_receivers: tuple[str, ...] = ()
    removed_receivers: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    document_name: str = "van-ban.pdf"


def document_packet(
    directory: Directory,
    sender: str,
    doc: OutgoingDocument,
    pdf: bytes,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    *,
    at: datetime,
    trace_organ: str | None = None,
) -> tuple[DocumentPacket, bytes]:
    """Build the edXML packet (ZIP-wrapped attachments, as the VPCP SDK does) for a signed PDF and metadata:
    the model (already checked by the writer) and its bytes."""
    agency = directory.agency(sender)
    day = doc.promulgation_date or to_vn(at).date()
    code = Code(doc.code_number, doc.code_notation)
    document_id = make_document_id(agency.code, day, code)
    try:
        priority = Priority(doc.priority)
    except ValueError:
        raise InvalidPacket(f"Độ khẩn {doc.priority} không hợp lệ (0–4)", f"invalid priority {doc.priority} (0-4)") \
            from None
    btype = BussinessDocType(doc.business_type)
    if btype == BussinessDocType.NEW:
        bussiness = Bussiness.new()
    else:
        if not doc.business_target:
            raise InvalidPacket("Thiếu văn bản bị thu hồi/cập nhật/thay thế", "the target document is missing")
        if btype == BussinessDocType.REVOKE:
            bussiness = Bussiness.revoke(doc.business_target, doc.business_reason)
        elif btype == BussinessDocType.UPDATE:
            receivers = tuple(Receiver(c, ReceiverType.ADDED) for c in doc.added_receivers) + tuple(
                Receiver(c, ReceiverType.REMOVED) for c in doc.removed_receivers
            )
            bussiness = Bussiness.update(doc.business_target, receivers, doc.business_reason)
        else:
            targets = doc.replaces or (doc.business_target,)
            bussiness = Bussiness.replace(
                doc.business_target,
                tuple(ReplacementInfo(t, tuple(doc.to)) for t in targets),
                doc.business_reason,
            )
    moment = to_vn(at).replace(microsecond=0)
    packet = DocumentPacket(
        sender=organization(agency),
        to=tuple(organization(directory.agency(c)) for c in doc.to),
        document_id=document_id,
        code=code,
        promulgation=PromulgationInfo(day, doc.place or agency.place or None),
        document_type=DocumentType(doc.type_name),
        subject=doc.subject,
        content=doc.content,
        signer=SignerInfo(doc.signer_full_name, doc.signer_position, doc.signer_competence)
        if doc.signer_full_name else None,
        due_date=doc.due_date,
        to_places=doc.to_places,
        other_info=OtherInfo(priority=priority),
        steering_type=doc.steering_type,
        trace=TraceHeaderList((TraceHeader(trace_organ, moment),) if trace_organ else (), bussiness),
        attachments=(
            Attachment(doc.document_name, pdf, "application/pdf"),
            *(Attachment(name, content, ctype) for name, ctype, content in attachments),
        ),
    )
    return packet, write_document(packet, encoding=AttachmentEncoding.ZIP)
