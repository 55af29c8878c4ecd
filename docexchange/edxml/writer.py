"""Packets to bytes, in the exact prefix layout real receivers expect (standards §3).

::

    <edXML xmlns="QCVN">                                  default namespace on the root
      <edXML:edXMLEnvelope xmlns:edXML="QCVN">            the prefix re-declared on the envelope
        <edXML:edXMLHeader> MessageHeader, TraceHeaderList, Signature? </edXML:edXMLHeader>
        <edXML:edXMLBody><edXML:edXMLManifest version="1.0"> Reference* </edXML:edXMLManifest></edXML:edXMLBody>
      </edXML:edXMLEnvelope>
      <AttachmentEncoded> Attachment* </AttachmentEncoded>   outside the envelope, default namespace
    </edXML>

Dates are written ``yyyy/MM/dd``, timestamps ``yyyy/MM/dd HH:mm:ss`` in Vietnam time without a zone, content
ids ``cid:…`` on both sides, and each attachment as base64 of a ZIP holding the one file (the VPCP SDK's way;
``AttachmentEncoding.RAW`` writes the file itself). Base64 is produced while the ZIP is being compressed, straight
into the output buffer: building a packet needs about 1.4× the attachment size on top of the model.

:func:`append_trace` adds a node's TraceHeader to existing packet bytes with a byte-level splice at a position
the XML parser itself reports: the attachments are not touched, and an envelope signature stays valid.
"""

from __future__ import annotations

import binascii
import enum
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import IO, TYPE_CHECKING, Any, cast

from lxml import etree

from docexchange.clock import to_vn
from docexchange.directory import parse_code
from docexchange.edxml._locate import Mark, locate, scan, tag_bounds
from docexchange.edxml._xml import MiB, ReadLimits, prepare
from docexchange.edxml.model import (
    QCVN_NS,
    Attachment,
    Bussiness,
    BussinessDocType,
    DocumentPacket,
    Organization,
    Packet,
    ResponseFor,
    StaffInfo,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
)
from docexchange.errors import EdxmlError, InvalidAgencyCode, InvalidPacket, SigningError

if TYPE_CHECKING:
    from docexchange.edxml.signature import PacketSigner

__all__ = [
    "FIELD_LIMITS",
    "AttachmentEncoding",
    "append_trace",
    "check_packet",
    "format_date",
    "format_timestamp",
    "is_safe_attachment_name",
    "write_document",
    "write_packet",
    "write_status",
]


class AttachmentEncoding(enum.StrEnum):
    ZIP = "zip"
    """Base64 of a ZIP holding the one file (what the VPCP SDK and most senders do). The default."""
    RAW = "raw"
    """Base64 of the file itself."""


FIELD_LIMITS: dict[str, int] = {
    "OrganId": 13,
    "CodeNumber": 11,
    "CodeNotation": 30,
    "TypeName": 100,
    "OrganName": 200,
    "Subject": 500,
    "FullName": 50,
    "Position": 100,
}
"""Longest values (characters) allowed by NĐ 30/2020 annex VI; PageAmount has at most 3 digits."""

_FIELD_VI = {
    "OrganId": "mã định danh cơ quan",
    "CodeNumber": "số văn bản",
    "CodeNotation": "ký hiệu văn bản",
    "TypeName": "tên loại văn bản",
    "OrganName": "tên cơ quan",
    "Subject": "trích yếu",
    "FullName": "họ tên người ký",
    "Position": "chức vụ người ký",
}

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
"""Fixed ZIP timestamp: the same packet model always gives the same bytes."""
_ZIP_LEVEL = 6
_SAMPLE = 64 * 1024
_RAW_SLICE = 3 * 64 * 1024
_CHUNK = 256 * 1024
_XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_Q = "{" + QCVN_NS + "}"

_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")
_CONTENT_ID = re.compile(r"^[^\s<>\"'&]+$")


def format_date(d: date) -> str:
    """``yyyy/MM/dd``."""
    return f"{d.year:04d}/{d.month:02d}/{d.day:02d}"


def format_timestamp(moment: datetime) -> str:
    """``yyyy/MM/dd HH:mm:ss`` in Vietnam time (no zone written: receivers read it as UTC+07:00)."""
    t = to_vn(moment)
    return f"{format_date(t.date())} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def is_safe_attachment_name(name: str) -> bool:
    """A plain file name: no folders, no drive, no control characters, at most 255 bytes in UTF-8."""
    if not isinstance(name, str) or not name or name in (".", ".."):
        return False
    if "/" in name or "\\" in name or "\x00" in name:
        return False
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return False
    if re.match(r"^[A-Za-z]:", name):
        return False
    if name != name.strip() or name.endswith("."):
        return False
    return len(name.encode("utf-8", "surrogatepass")) <= 255 and not _BAD_XML_CHARS.search(name)


# --------------------------------------------------------------------------------------------- validation


class _Problems:
    def __init__(self, code_check: Callable[[str], object]) -> None:
        self.items: list[tuple[str, str]] = []
        self.code_check = code_check

    def add(self, vi: str, en: str) -> None:
        self.items.append((vi, en))

    def text(self, where: str, value: str | None, *, required: bool = False, limit: str | None = None) -> None:
        if value is None:
            if required:
                self.add(f"Thiếu trường bắt buộc {where}", f"required field {where} is missing")
            return
        if not isinstance(value, str):
            self.add(f"{where} phải là chuỗi ký tự", f"{where} must be a string")
            return
        if required and not value.strip():
            self.add(f"Trường bắt buộc {where} đang để trống", f"required field {where} is empty")
        bad = _BAD_XML_CHARS.search(value)
        if bad:
            self.add(
                f"{where} chứa ký tự điều khiển U+{ord(bad.group()):04X} không được phép trong XML",
                f"{where} contains U+{ord(bad.group()):04X}, which XML does not allow",
            )
        if limit is not None and len(value) > FIELD_LIMITS[limit]:
            n = FIELD_LIMITS[limit]
            self.add(
                f"{where} ({_FIELD_VI[limit]}) dài {len(value)} ký tự, tối đa {n} theo NĐ 30/2020 phụ lục VI",
                f"{where} is {len(value)} characters long; NĐ 30/2020 annex VI allows at most {n}",
            )

    def ident(self, where: str, value: str | None, *, required: bool = False, limit: str | None = None) -> None:
        self.text(where, value, required=required, limit=limit)
        if isinstance(value, str) and value != value.strip():
            self.add(f"{where} có khoảng trắng ở đầu hoặc cuối", f"{where} has leading or trailing spaces")

    def organ_id(self, where: str, value: str | None, *, required: bool = True) -> None:
        if value is None:
            if required:
                self.add(f"Thiếu mã định danh cơ quan {where}", f"agency code {where} is missing")
            return
        self.text(where, value, limit="OrganId")
        try:
            self.code_check(value)
        except InvalidAgencyCode as exc:
            self.add(f"{where}: {exc.message_vi}", f"{where}: {exc.message_en}")

    def date(self, where: str, value: date | None, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.add(f"Thiếu ngày {where}", f"date {where} is missing")
        elif not isinstance(value, date) or isinstance(value, datetime):
            self.add(f"{where} phải là ngày (date)", f"{where} must be a date")

    def count(self, where: str, value: int | None, *, digits: int | None = None) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.add(f"{where} phải là số nguyên không âm", f"{where} must be a non-negative integer")
        elif digits is not None and value >= 10**digits:
            self.add(
                f"{where} có nhiều hơn {digits} chữ số (NĐ 30/2020 phụ lục VI)",
                f"{where} has more than {digits} digits (NĐ 30/2020 annex VI)",
            )

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidPacket("; ".join(vi for vi, _ in self.items), "; ".join(en for _, en in self.items))


def _check_org(p: _Problems, where: str, org: Organization) -> None:
    if not isinstance(org, Organization):
        p.add(f"{where} phải là Organization", f"{where} must be an Organization")
        return
    p.organ_id(f"{where}/OrganId", org.organ_id)
    p.text(f"{where}/OrganName", org.organ_name, limit="OrganName")
    for attr, tag in (
        ("organization_in_charge", "OrganizationInCharge"),
        ("organ_add", "OrganAdd"),
        ("email", "Email"),
        ("telephone", "Telephone"),
        ("fax", "Fax"),
        ("website", "Website"),
    ):
        p.text(f"{where}/{tag}", getattr(org, attr))


def _check_response_for(p: _Problems, where: str, rf: ResponseFor, *, required: bool) -> None:
    if not isinstance(rf, ResponseFor):
        p.add(f"{where} phải là ResponseFor", f"{where} must be a ResponseFor")
        return
    if all(v is None for v in (rf.organ_id, rf.code, rf.promulgation_date, rf.document_id)):
        p.add(f"{where} không có nội dung", f"{where} is empty")
        return
    p.organ_id(f"{where}/OrganId", rf.organ_id, required=required)
    p.ident(f"{where}/Code", rf.code, required=required)
    p.date(f"{where}/PromulgationDate", rf.promulgation_date, required=required)
    p.ident(f"{where}/DocumentId", rf.document_id, required=required)
    _not_empty(p, f"{where}/Code", rf.code)
    _not_empty(p, f"{where}/DocumentId", rf.document_id)


def _not_empty(p: _Problems, where: str, value: str | None) -> None:
    """An optional identifier is absent (None) or has a value: an empty element means nothing to receivers."""
    if value is not None and not value.strip():
        p.add(f"{where} để trống (bỏ hẳn trường nếu không dùng)", f"{where} is empty (leave it out instead)")


def _check_staff(p: _Problems, where: str, s: StaffInfo | None) -> None:
    if s is None:
        return
    for attr, tag in (("department", "Department"), ("staff", "Staff"), ("email", "Email"), ("mobile", "Mobile")):
        p.text(f"{where}/{tag}", getattr(s, attr))


def _check_trace(p: _Problems, trace: TraceHeaderList, *, document: bool) -> None:
    for i, th in enumerate(trace.headers, 1):
        p.organ_id(f"TraceHeader[{i}]/OrganId", th.organ_id)
    b = trace.bussiness
    if b is None:
        return
    if not document:
        p.add("Gói tin trạng thái không mang Bussiness", "a status packet carries no Bussiness")
        return
    if not isinstance(b.doc_type, BussinessDocType):
        p.add("BussinessDocType không hợp lệ", "invalid BussinessDocType")
        return
    p.ident("Bussiness/DocumentId", b.document_id, required=b.doc_type is not BussinessDocType.NEW)
    _not_empty(p, "Bussiness/DocumentId", b.document_id)
    p.text("Bussiness/BussinessDocReason", b.reason)
    p.ident("Bussiness/Paper", b.paper)
    _check_staff(p, "Bussiness/StaffInfo", b.staff_info)
    if b.document_info is not None and b.doc_type is not BussinessDocType.UPDATE:
        p.add(
            "BussinessDocumentInfo chỉ dùng cho văn bản cập nhật (BussinessDocType 2)",
            "BussinessDocumentInfo is only for updates (BussinessDocType 2)",
        )
    if b.replacements and b.doc_type is not BussinessDocType.REPLACE:
        p.add(
            "ReplacementInfoList chỉ dùng cho văn bản thay thế (BussinessDocType 3)",
            "ReplacementInfoList is only for replacements (BussinessDocType 3)",
        )
    if b.doc_type is BussinessDocType.REPLACE and not b.replacements:
        p.add(
            "Văn bản thay thế cần ít nhất một ReplacementInfo", "a replacement needs at least one ReplacementInfo"
        )
    if b.document_info is not None:
        p.ident("BussinessDocumentInfo/DocumentInfo", b.document_info.document_info)
        p.ident("BussinessDocumentInfo/DocumentReceiver", b.document_info.document_receiver)
        for i, r in enumerate(b.document_info.receivers, 1):
            p.organ_id(f"Receiver[{i}]/OrganId", r.organ_id)
    for i, rep in enumerate(b.replacements, 1):
        p.ident(f"ReplacementInfo[{i}]/DocumentId", rep.document_id, required=True)
        for j, code in enumerate(rep.organ_ids, 1):
            p.organ_id(f"ReplacementInfo[{i}]/OrganId[{j}]", code)


def _check_attachments(p: _Problems, attachments: Iterable[Attachment]) -> None:
    seen: set[str] = set()
    for i, a in enumerate(attachments, 1):
        where = f"Attachment[{i}]"
        if not isinstance(a.content, (bytes, bytearray)):
            p.add(f"{where}: nội dung phải là bytes", f"{where}: content must be bytes")
        if not is_safe_attachment_name(a.name):
            p.add(
                f"{where}: tên tệp {a.name!r} không an toàn (không được có thư mục, '/', '\\', '..' hay ký tự điều "
                "khiển; tối đa 255 byte)",
                f"{where}: file name {a.name!r} is unsafe (no folders, '/', '\\', '..' or control characters; "
                "at most 255 bytes)",
            )
        if not isinstance(a.content_type, str) or not _CONTENT_TYPE.match(a.content_type):
            p.add(
                f"{where}: kiểu nội dung {a.content_type!r} không đúng dạng type/subtype",
                f"{where}: content type {a.content_type!r} is not of the form type/subtype",
            )
        cid = a.content_id
        if not isinstance(cid, str) or not _CONTENT_ID.match(cid) or cid.lower().startswith("cid:"):
            p.add(
                f"{where}: ContentId {cid!r} không hợp lệ (không khoảng trắng, không tiền tố cid:)",
                f"{where}: ContentId {cid!r} is invalid (no spaces, no cid: prefix: the writer adds it)",
            )
        elif cid in seen:
            p.add(f"{where}: ContentId {cid!r} bị trùng", f"{where}: duplicate ContentId {cid!r}")
        else:
            seen.add(cid)
        p.text(f"{where}/Description", a.description)


def check_packet(packet: Packet, *, code_check: Callable[[str], object] = parse_code) -> None:
    """Refuse, with every problem listed in Vietnamese and English, a packet the writer must not emit."""
    p = _Problems(code_check)
    if isinstance(packet, DocumentPacket):
        _check_org(p, "From", packet.sender)
        if not packet.to:
            p.add("Văn bản phải có ít nhất một nơi nhận (To)", "a document needs at least one recipient (To)")
        for i, org in enumerate(packet.to, 1):
            _check_org(p, f"To[{i}]", org)
        p.ident("DocumentId", packet.document_id, required=True)
        if packet.code is None:
            p.add("Thiếu số và ký hiệu văn bản (Code)", "the document number and notation (Code) are missing")
        else:
            p.ident("CodeNumber", packet.code.number, required=True, limit="CodeNumber")
            p.ident("CodeNotation", packet.code.notation, required=True, limit="CodeNotation")
        if packet.promulgation is None:
            p.add("Thiếu ngày ban hành (PromulgationInfo)", "the promulgation date (PromulgationInfo) is missing")
        else:
            p.date("PromulgationDate", packet.promulgation.date, required=True)
            p.text("PromulgationInfo/Place", packet.promulgation.place)
        if packet.document_type is None:
            p.add("Thiếu loại văn bản (DocumentType)", "the document type (DocumentType) is missing")
        else:
            p.text("TypeName", packet.document_type.type_name, required=True, limit="TypeName")
            p.ident("DocumentType/Type", packet.document_type.type)
            p.ident("DocumentType/TypeDetail", packet.document_type.type_detail)
        p.text("Subject", packet.subject, required=True, limit="Subject")
        p.text("Content", packet.content)
        if packet.signer is not None:
            p.text("SignerInfo/Competence", packet.signer.competence)
            p.text("SignerInfo/Position", packet.signer.position, limit="Position")
            p.text("SignerInfo/FullName", packet.signer.full_name, limit="FullName")
        p.date("DueDate", packet.due_date)
        for i, place in enumerate(packet.to_places, 1):
            p.text(f"ToPlaces/Place[{i}]", place, required=True)
        oi = packet.other_info
        if oi is not None:
            p.text("OtherInfo/SphereOfPromulgation", oi.sphere_of_promulgation)
            p.text("OtherInfo/TyperNotation", oi.typer_notation)
            p.count("OtherInfo/PromulgationAmount", oi.promulgation_amount)
            p.count("OtherInfo/PageAmount", oi.page_amount, digits=3)
            for i, ap in enumerate(oi.appendixes, 1):
                p.text(f"OtherInfo/Appendix[{i}]", ap, required=True)
        for i, rf in enumerate(packet.response_for, 1):
            _check_response_for(p, f"ResponseFor[{i}]", rf, required=False)
        p.ident("SteeringType", packet.steering_type)
        _check_trace(p, packet.trace, document=True)
        _check_attachments(p, packet.attachments)
    elif isinstance(packet, StatusPacket):
        _check_org(p, "From", packet.sender)
        _check_response_for(p, "ResponseFor", packet.response_for, required=True)
        _check_staff(p, "StaffInfo", packet.staff_info)
        p.text("Description", packet.description)
        _check_trace(p, packet.trace, document=False)
    else:
        raise InvalidPacket("Không phải gói tin edXML", f"not an edXML packet model: {type(packet).__name__}")
    p.raise_if_any()


# --------------------------------------------------------------------------------------------- tree building


def _sub(parent: Any, name: str, text: str | None = None) -> Any:
    el = etree.SubElement(parent, _Q + name)
    if text is not None:
        el.text = text
    return el


def _opt(parent: Any, name: str, text: str | None) -> None:
    if text is not None:
        _sub(parent, name, text)


def _organization(parent: Any, name: str, org: Organization) -> None:
    el = _sub(parent, name)
    _sub(el, "OrganId", org.organ_id)
    _opt(el, "OrganizationInCharge", org.organization_in_charge)
    _opt(el, "OrganName", org.organ_name)
    _opt(el, "OrganAdd", org.organ_add)
    _opt(el, "Email", org.email)
    _opt(el, "Telephone", org.telephone)
    _opt(el, "Fax", org.fax)
    _opt(el, "Website", org.website)


def _response_for(parent: Any, rf: ResponseFor) -> None:
    el = _sub(parent, "ResponseFor")
    _opt(el, "OrganId", rf.organ_id)
    _opt(el, "Code", rf.code)
    _opt(el, "PromulgationDate", format_date(rf.promulgation_date) if rf.promulgation_date else None)
    _opt(el, "DocumentId", rf.document_id)


def _staff(parent: Any, s: StaffInfo | None) -> None:
    if s is None:
        return
    el = _sub(parent, "StaffInfo")
    _opt(el, "Department", s.department)
    _opt(el, "Staff", s.staff)
    _opt(el, "Email", s.email)
    _opt(el, "Mobile", s.mobile)


def _trace_list(parent: Any, trace: TraceHeaderList) -> None:
    el = _sub(parent, "TraceHeaderList")
    for th in trace.headers:
        t = _sub(el, "TraceHeader")
        _opt(t, "OrganId", th.organ_id)
        _sub(t, "Timestamp", format_timestamp(th.timestamp))
    if trace.bussiness is not None:
        _bussiness(el, trace.bussiness)


def _bussiness(parent: Any, b: Bussiness) -> None:
    el = _sub(parent, "Bussiness")
    _opt(el, "DocumentId", b.document_id)
    _sub(el, "BussinessDocType", str(int(b.doc_type)))
    _opt(el, "BussinessDocReason", b.reason)
    _opt(el, "Paper", b.paper)
    if b.document_info is not None:
        info = _sub(el, "BussinessDocumentInfo")
        _opt(info, "DocumentInfo", b.document_info.document_info)
        _opt(info, "DocumentReceiver", b.document_info.document_receiver)
        if b.document_info.receivers:
            rl = _sub(info, "ReceiverList")
            for r in b.document_info.receivers:
                rel = _sub(rl, "Receiver")
                _sub(rel, "OrganId", r.organ_id)
                _sub(rel, "ReceiverType", str(int(r.receiver_type)))
    if b.replacements:
        rl = _sub(el, "ReplacementInfoList")
        for rep in b.replacements:
            rel = _sub(rl, "ReplacementInfo")
            _sub(rel, "DocumentId", rep.document_id)
            ol = _sub(rel, "OrganIdList")
            for code in rep.organ_ids:
                _sub(ol, "OrganId", code)
    _staff(el, b.staff_info)


def _document_header(header: Any, packet: DocumentPacket) -> None:
    mh = _sub(header, "MessageHeader")
    _organization(mh, "From", packet.sender)
    for org in packet.to:
        _organization(mh, "To", org)
    _sub(mh, "DocumentId", packet.document_id)
    assert packet.code is not None and packet.promulgation is not None and packet.document_type is not None
    code = _sub(mh, "Code")
    _sub(code, "CodeNumber", packet.code.number)
    _sub(code, "CodeNotation", packet.code.notation)
    prom = _sub(mh, "PromulgationInfo")
    _opt(prom, "Place", packet.promulgation.place)
    assert packet.promulgation.date is not None
    _sub(prom, "PromulgationDate", format_date(packet.promulgation.date))
    dt = _sub(mh, "DocumentType")
    _opt(dt, "Type", packet.document_type.type)
    _opt(dt, "TypeDetail", packet.document_type.type_detail)
    _sub(dt, "TypeName", packet.document_type.type_name)
    _sub(mh, "Subject", packet.subject)
    _opt(mh, "Content", packet.content)
    if packet.signer is not None:
        si = _sub(mh, "SignerInfo")
        _opt(si, "Competence", packet.signer.competence)
        _opt(si, "Position", packet.signer.position)
        _opt(si, "FullName", packet.signer.full_name)
    _opt(mh, "DueDate", format_date(packet.due_date) if packet.due_date else None)
    if packet.to_places:
        tp = _sub(mh, "ToPlaces")
        for place in packet.to_places:
            _sub(tp, "Place", place)
    oi = packet.other_info
    if oi is not None:
        o = _sub(mh, "OtherInfo")
        _opt(o, "Priority", str(int(oi.priority)) if oi.priority is not None else None)
        _opt(o, "SphereOfPromulgation", oi.sphere_of_promulgation)
        _opt(o, "TyperNotation", oi.typer_notation)
        _opt(o, "PromulgationAmount", str(oi.promulgation_amount) if oi.promulgation_amount is not None else None)
        _opt(o, "PageAmount", str(oi.page_amount) if oi.page_amount is not None else None)
        _opt(o, "Direction", ("true" if oi.direction else "false") if oi.direction is not None else None)
        if oi.appendixes:
            aps = _sub(o, "Appendixes")
            for ap in oi.appendixes:
                _sub(aps, "Appendix", ap)
    for rf in packet.response_for:
        _response_for(mh, rf)
    _opt(mh, "SteeringType", packet.steering_type)
    _trace_list(header, packet.trace)


def _status_header(header: Any, packet: StatusPacket) -> None:
    mh = _sub(header, "MessageHeader")
    _organization(mh, "From", packet.sender)
    _response_for(mh, packet.response_for)
    _staff(mh, packet.staff_info)
    _sub(mh, "StatusCode", packet.status_code.value)
    _opt(mh, "Description", packet.description)
    _sub(mh, "Timestamp", format_timestamp(packet.timestamp))
    if packet.trace.headers:
        _trace_list(header, packet.trace)


def _zip_wrapped(a: Attachment, encoding: AttachmentEncoding) -> bool:
    if encoding is AttachmentEncoding.RAW:
        return False
    # A file that is already a ZIP (or named .zip) travels as it is: unwrapping on the other side must give it back.
    return not (a.name.lower().endswith(".zip") or bytes(a.content[:4]) == b"PK\x03\x04")


def _envelope_tree(packet: Packet, encoding: AttachmentEncoding) -> Any:
    root = etree.Element(_Q + "edXML", nsmap={None: QCVN_NS})
    env = etree.SubElement(root, _Q + "edXMLEnvelope", nsmap={"edXML": QCVN_NS})
    header = _sub(env, "edXMLHeader")
    if isinstance(packet, DocumentPacket):
        _document_header(header, packet)
        body = _sub(env, "edXMLBody")
        manifest = _sub(body, "edXMLManifest")
        manifest.set("version", "1.0")
        for a in packet.attachments:
            ref = _sub(manifest, "Reference")
            _sub(ref, "ContentId", "cid:" + a.content_id)
            _sub(ref, "ContentType", a.content_type)
            _opt(ref, "Description", a.description)
            _sub(ref, "AttachmentName", a.name)
    else:
        _status_header(header, packet)
    etree.indent(root, space="  ")
    return root


# --------------------------------------------------------------------------------------------- serialization


def _esc(text: str) -> bytes:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;").encode("utf-8")
    )


class _Base64Out:
    """A write-only stream that base64-encodes into ``out`` as data arrives (what ``zipfile`` writes into)."""

    def __init__(self, out: io.BytesIO) -> None:
        self._out = out
        self._rest = b""

    def write(self, chunk: Any) -> int:
        data = bytes(chunk)
        n = len(data)
        if self._rest:
            data = self._rest + data
        cut = len(data) - len(data) % 3
        if cut:
            self._out.write(binascii.b2a_base64(data[:cut] if cut != len(data) else data, newline=False))
        self._rest = data[cut:]
        return n

    def flush(self) -> None:
        return None

    def finish(self) -> None:
        if self._rest:
            self._out.write(binascii.b2a_base64(self._rest, newline=False))
            self._rest = b""


def _deflate_level(content: memoryview) -> int:
    """6 for data that compresses; 0 (deflate's stored blocks) for PDFs and other already-compressed files.

    Decided from samples at the start, middle and end, so the same file always gives the same bytes. Level 0
    keeps the ZIP in the DEFLATE method with a data descriptor, exactly what Java senders produce and
    ``java.util.zip.ZipInputStream`` reads, at memory-copy speed.
    """
    n = len(content)
    if n <= 3 * _SAMPLE:
        samples = [bytes(content)]
    else:
        mid = n // 2
        samples = [bytes(content[:_SAMPLE]), bytes(content[mid : mid + _SAMPLE]), bytes(content[-_SAMPLE:])]
    raw = sum(len(s) for s in samples)
    packed = sum(len(zlib.compress(s, 1)) for s in samples)
    return 0 if raw and packed > 0.9 * raw else _ZIP_LEVEL


def _write_payload(out: io.BytesIO, a: Attachment, wrapped: bool) -> None:
    content = memoryview(a.content)
    if wrapped:
        sink = _Base64Out(out)
        info = zipfile.ZipInfo(a.name, date_time=_ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = len(content)
        info.external_attr = 0o644 << 16
        level = _deflate_level(content)
        # An explicit ZipInfo keeps its own level (the ZipFile's is ignored): compress_level since Python 3.13.
        setattr(info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", level)
        stream = cast(IO[bytes], sink)
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
            with zf.open(info, "w") as entry:
                for offset in range(0, len(content), _CHUNK):
                    entry.write(content[offset : offset + _CHUNK])
        sink.finish()
    else:
        for offset in range(0, len(content), _RAW_SLICE):
            out.write(binascii.b2a_base64(content[offset : offset + _RAW_SLICE], newline=False))


def _serialize(root: Any, attachments: tuple[Attachment, ...], encoding: AttachmentEncoding) -> bytes:
    head = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    closing = b"</edXML>"
    if not head.endswith(closing):  # pragma: no cover - lxml always writes the end tag of a non-empty root
        raise EdxmlError("Lỗi nội bộ khi ghi gói tin", "internal error while writing the packet")
    out = io.BytesIO()
    out.write(_XML_DECL)
    out.write(head[: -len(closing)])
    if attachments:
        out.write(b"  <AttachmentEncoded>\n")
        for a in attachments:
            wrapped = _zip_wrapped(a, encoding)
            out.write(b"    <Attachment>\n")
            out.write(b"      <ContentId>" + _esc("cid:" + a.content_id) + b"</ContentId>\n")
            out.write(b"      <AttachmentName>" + _esc(a.name) + b"</AttachmentName>\n")
            if a.description is not None:
                out.write(b"      <Description>" + _esc(a.description) + b"</Description>\n")
            declared = "application/zip" if wrapped else a.content_type
            out.write(b"      <ContentType>" + _esc(declared) + b"</ContentType>\n")
            out.write(b'      <edXML:ContentTransferEncoded xmlns:edXML="' + QCVN_NS.encode() + b'">')
            _write_payload(out, a, wrapped)
            out.write(b"</edXML:ContentTransferEncoded>\n")
            out.write(b"    </Attachment>\n")
        out.write(b"  </AttachmentEncoded>\n")
    out.write(closing + b"\n")
    return out.getvalue()


def write_document(
    packet: DocumentPacket,
    *,
    encoding: AttachmentEncoding = AttachmentEncoding.ZIP,
    signer: PacketSigner | None = None,
    code_check: Callable[[str], object] = parse_code,
) -> bytes:
    """A document packet as UTF-8 bytes; with ``signer``, the envelope carries an XML-DSig by the sender's seal.

    ``code_check`` validates every agency code (default: :func:`~docexchange.directory.parse_code`, loose shape;
    pass a strict one when the directory says so).
    """
    if not isinstance(packet, DocumentPacket):
        raise InvalidPacket("write_document cần một DocumentPacket", "write_document needs a DocumentPacket")
    return write_packet(packet, encoding=encoding, signer=signer, code_check=code_check)


def write_status(
    packet: StatusPacket,
    *,
    signer: PacketSigner | None = None,
    code_check: Callable[[str], object] = parse_code,
) -> bytes:
    """A status packet (01 … 16) as UTF-8 bytes."""
    if not isinstance(packet, StatusPacket):
        raise InvalidPacket("write_status cần một StatusPacket", "write_status needs a StatusPacket")
    return write_packet(packet, signer=signer, code_check=code_check)


def write_packet(
    packet: Packet,
    *,
    encoding: AttachmentEncoding = AttachmentEncoding.ZIP,
    signer: PacketSigner | None = None,
    code_check: Callable[[str], object] = parse_code,
) -> bytes:
    """Either kind of packet as bytes (see :func:`write_document`)."""
    check_packet(packet, code_check=code_check)
    encoding = AttachmentEncoding(encoding)
    root = _envelope_tree(packet, encoding)
    attachments = packet.attachments if isinstance(packet, DocumentPacket) else ()
    if signer is None:
        return _serialize(root, attachments, encoding)
    from docexchange.edxml.signature import SignatureStatus, sign_tree, verify_packet

    sign_tree(root, signer)
    data = _serialize(root, attachments, encoding)
    check = verify_packet(data)  # cheap: reads the envelope only
    if check.status is not SignatureStatus.VALID:  # pragma: no cover - defensive self-check
        raise SigningError("Chữ ký vừa tạo không tự kiểm tra được", f"self-check failed: {check.message_en}")
    return data


# --------------------------------------------------------------------------------------------- trace splice

_HEADER_SCAN_LIMIT = 2 * MiB


def _ascii_compatible(data: bytes, start: int) -> None:
    head = bytes(data[start : start + 200])
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        raise EdxmlError(
            "Chỉ ghép được vào gói tin mã hóa UTF-8 (hoặc tương thích ASCII)",
            "only UTF-8 (or ASCII-compatible) packets can be spliced",
        )
    m = re.match(rb'<\?xml[^>]*encoding\s*=\s*["\']([A-Za-z0-9._-]+)["\']', head)
    if m and m.group(1).lower().startswith((b"utf-16", b"utf-32", b"ucs", b"ebcdic", b"cp037")):
        raise EdxmlError(
            f"Không ghép được vào gói tin mã hóa {m.group(1).decode()}",
            f"cannot splice into a packet encoded in {m.group(1).decode()}",
        )


def _prefix_for(mark: Mark) -> tuple[str, bytes]:
    """How to write a child element of ``mark``'s element: ``(prefix + ':' or '', extra declaration)``."""
    ns = mark.namespace
    candidates = [mark.prefix, "edXML", *mark.nsmap.keys()]
    for p in candidates:
        if p is not None and mark.nsmap.get(p) == ns and ns is not None:
            return p + ":", b""
    if ns is None:
        if mark.nsmap.get(None) in (None, ""):
            return "", b""
        return "", b' xmlns=""'
    if mark.nsmap.get(None) == ns:
        return "", b""
    return "edXML:", b' xmlns:edXML="' + _esc(ns) + b'"'


def _trace_bytes(p: str, decl: bytes, th: TraceHeader) -> bytes:
    parts = [b"<" + p.encode() + b"TraceHeader" + decl + b">"]
    if th.organ_id is not None:
        parts.append(b"<" + p.encode() + b"OrganId>" + _esc(th.organ_id) + b"</" + p.encode() + b"OrganId>")
    ts = format_timestamp(th.timestamp).encode()
    parts.append(b"<" + p.encode() + b"Timestamp>" + ts + b"</" + p.encode() + b"Timestamp>")
    parts.append(b"</" + p.encode() + b"TraceHeader>")
    return b"".join(parts)


def _splice(data: bytes, begin: int, end: int, insert: bytes) -> bytes:
    """``data[:begin] + insert + data[end:]`` with a single copy of the (large) packet."""
    view = memoryview(data)
    return b"".join((view[:begin], insert, view[end:]))


def _is_header(mark: Mark) -> bool:
    return len(mark.path) == 3 and mark.path[1:] == ("edXMLEnvelope", "edXMLHeader")


def append_trace(
    data: bytes,
    trace: TraceHeader,
    *,
    limits: ReadLimits | None = None,
    code_check: Callable[[str], object] = parse_code,
) -> bytes:
    """``data`` with one more TraceHeader, spliced into the header without touching anything else.

    The new TraceHeader goes after the last one (before ``Bussiness``), or opens a ``TraceHeaderList`` right
    after ``MessageHeader`` when the packet has none (status packets). It is inserted without surrounding
    whitespace, so an envelope signature made by :mod:`~docexchange.edxml.signature` (which leaves TraceHeaders
    out) stays valid. The position comes from the XML parser, bounded to the first 2 MB of the packet.
    """
    limits = limits or ReadLimits()
    p = _Problems(code_check)
    p.organ_id("TraceHeader/OrganId", trace.organ_id)
    p.raise_if_any()
    start, _ = prepare(data, limits)
    _ascii_compatible(data, start)
    result = scan(data, start, until=lambda m: m.event == "end" and _is_header(m), limit=_HEADER_SCAN_LIMIT)
    if not result.complete:
        raise InvalidPacket(
            "Không tìm thấy phần đầu gói tin (edXMLHeader) trong 2 MB đầu tiên",
            "no complete edXMLHeader within the first 2 MB of the packet",
        )
    marks = result.marks
    if not marks or marks[0].path[0] != "edXML":
        raise InvalidPacket("Không phải gói tin edXML", "not an edXML packet")
    header_path = ("edXML", "edXMLEnvelope", "edXMLHeader")
    list_path = (*header_path, "TraceHeaderList")
    last_th = [m for m in marks if m.event == "end" and m.path == (*list_path, "TraceHeader")]
    list_start = [m for m in marks if m.event == "start" and m.path == list_path]
    mh_end = [m for m in marks if m.event == "end" and m.path == (*header_path, "MessageHeader")]
    if last_th:
        anchor = next(m for m in marks if m.event == "start" and m.path == list_path and m.seq < last_th[-1].seq)
        prefix, decl = _prefix_for(anchor)
        pos = locate(data, start, last_th[-1])
        out = _splice(data, pos, pos, _trace_bytes(prefix, decl, trace))
    elif list_start:
        anchor = list_start[0]
        prefix, decl = _prefix_for(anchor)
        pos = locate(data, start, anchor)
        insert = _trace_bytes(prefix, decl, trace)
        if data[pos - 2 : pos] == b"/>":  # <edXML:TraceHeaderList/>: open it
            begin, _ = tag_bounds(data, pos)
            qname = re.match(rb"<([^\s/>]+)", data[begin:pos])
            assert qname is not None
            opening = bytes(data[begin : pos - 2]).rstrip() + b">"
            out = _splice(data, begin, pos, opening + insert + b"</" + qname.group(1) + b">")
        else:
            out = _splice(data, pos, pos, insert)
    elif mh_end:
        header_start = next(m for m in marks if m.event == "start" and m.path == header_path)
        prefix, decl = _prefix_for(header_start)
        pos = locate(data, start, mh_end[0])
        p_ = prefix.encode()
        insert = (
            b"<" + p_ + b"TraceHeaderList" + decl + b">" + _trace_bytes(prefix, b"", trace) + b"</" + p_
            + b"TraceHeaderList>"
        )
        out = _splice(data, pos, pos, insert)
    else:
        raise InvalidPacket("Gói tin không có MessageHeader", "the packet has no MessageHeader")
    before = len(last_th)
    check = scan(out, start, until=lambda m: m.event == "end" and _is_header(m), limit=_HEADER_SCAN_LIMIT)
    after = [m for m in check.marks if m.event == "end" and m.path == (*list_path, "TraceHeader")]
    if not check.complete or len(after) != before + 1:  # pragma: no cover - defensive: never emit a broken splice
        raise EdxmlError("Ghép TraceHeader thất bại", "TraceHeader splice failed its own check")
    return out
