"""Bytes from any sender to packets: safe first, tolerant second, and honest about what was unusual.

Safety: no entities, DTDs or network; any DOCTYPE refused; limits on size, depth, element and attribute counts
and text; attachments decoded while they stream (strict base64, refused by size before decoding), ZIPs opened
with caps on the decompressed size and the compression ratio, file names that could escape a folder refused.

Tolerance: stray bytes before ``<?xml``, ``cid:`` on one side only, zip-wrapped or raw attachments whose declared
content types cannot be trusted (the bytes are sniffed), ``dd/MM/yyyy`` dates, a gateway's attachment layout
without a manifest, a ``Signature`` outside the XML-DSig namespace, undeclared prefixes, agency codes that are
not QCVN codes, unknown elements (ignored). Each accepted quirk becomes a :class:`~.model.PacketWarning`.
"""

from __future__ import annotations

import io
import mimetypes
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from docexchange.clock import VN_TZ
from docexchange.directory import parse_code
from docexchange.edxml._xml import (
    DSIG_NS,
    QCVN_NS,
    Payload,
    ReadLimits,
    StreamTarget,
    local,
    namespace,
    prepare,
    stream_parse,
)
from docexchange.edxml.model import (
    Attachment,
    AttachmentSource,
    Bussiness,
    BussinessDocType,
    BussinessDocumentInfo,
    Code,
    DocumentPacket,
    DocumentType,
    ManifestReference,
    Organization,
    OtherInfo,
    Packet,
    PacketWarning,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignatureSummary,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPacket,
    TraceHeader,
    TraceHeaderList,
    WarningCode,
)
from docexchange.edxml.writer import is_safe_attachment_name
from docexchange.errors import AttachmentError, InvalidAgencyCode, InvalidPacket, PacketTooLarge

__all__ = ["ReadLimits", "read_document", "read_packet", "read_status", "sniff_content_type"]

_ACCEPTED_NS = (QCVN_NS, None)
_UNZIP_CHUNK = 256 * 1024


# --------------------------------------------------------------------------------------------- helpers


class _Warnings:
    def __init__(self) -> None:
        self.items: list[PacketWarning] = []
        self._seen: set[tuple[WarningCode, str]] = set()

    def add(self, code: WarningCode, vi: str, en: str, *, key: str | None = None) -> None:
        k = (code, key if key is not None else en)
        if k in self._seen:
            return
        self._seen.add(k)
        self.items.append(PacketWarning(code, vi, en))


class _Node:
    """Children of one element by local name, remembering which were looked at (the rest are unknown)."""

    def __init__(self, el: Any, path: str, w: _Warnings) -> None:
        self.el = el
        self.path = path
        self._w = w
        self._by: dict[str, list[Any]] = {}
        for child in el:
            if not isinstance(child.tag, str):
                continue
            ns = namespace(child)
            name = local(child)
            if ns not in _ACCEPTED_NS and not (name in ("Signature", "DigitalSignature") and ns == DSIG_NS):
                self._by.setdefault("{" + (ns or "") + "}" + name, []).append(child)
                continue
            self._by.setdefault(name, []).append(child)
        self._used: set[str] = set()

    def all(self, name: str) -> list[Any]:
        self._used.add(name)
        return self._by.get(name, [])

    def one(self, name: str) -> Any | None:
        found = self.all(name)
        return found[0] if found else None

    def node(self, name: str) -> _Node | None:
        el = self.one(name)
        return _Node(el, f"{self.path}/{name}", self._w) if el is not None else None

    def text(self, name: str) -> str | None:
        el = self.one(name)
        return _text(el) if el is not None else None

    def ident(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        stripped = value.strip()
        if stripped != value:
            self._w.add(
                WarningCode.WHITESPACE_TRIMMED,
                f"Đã bỏ khoảng trắng thừa quanh giá trị {self.path}/{name}",
                f"trimmed spaces around {self.path}/{name}",
            )
        return stripped

    def finish(self, *, ignore: tuple[str, ...] = ()) -> None:
        for name in self._by:
            if name in self._used or name in ignore:
                continue
            shown = name.split("}")[-1] if name.startswith("{") else name
            self._w.add(
                WarningCode.UNKNOWN_ELEMENT,
                f"Bỏ qua phần tử không biết {self.path}/{shown}",
                f"ignored unknown element {self.path}/{shown}",
            )


def _text(el: Any) -> str:
    return el.text or ""


_DATE_FORMATS: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"), "ymd", False),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"), "dmy", True),
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), "ymd", True),
    (re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$"), "dmy", True),
)


def _parse_date(value: str | None, where: str, w: _Warnings) -> date | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if "T" in text or " " in text:
        text = re.split(r"[T ]", text, maxsplit=1)[0]
    for pattern, order, quirk in _DATE_FORMATS:
        m = pattern.match(text)
        if not m:
            continue
        a, b, c = (int(x) for x in m.groups())
        y, mo, d = (a, b, c) if order == "ymd" else (c, b, a)
        try:
            result = date(y, mo, d)
        except ValueError:
            break
        if quirk or text != value.strip():
            w.add(
                WarningCode.DATE_FORMAT,
                f"{where}: ngày {value.strip()!r} không theo dạng yyyy/MM/dd",
                f"{where}: date {value.strip()!r} is not written yyyy/MM/dd",
            )
        return result
    w.add(
        WarningCode.INVALID_VALUE,
        f"{where}: ngày {value!r} không hợp lệ, bỏ qua",
        f"{where}: invalid date {value!r}, ignored",
    )
    return None


_TS = re.compile(
    r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$"
)
_TS_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?$")


def _parse_timestamp(value: str | None, where: str, w: _Warnings) -> datetime | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    m = _TS.match(text)
    zone = None
    if m:
        y, mo, d, hh, mm = (int(x) for x in m.groups()[:5])
        ss = int(m.group(6) or 0)
        zone = m.group(7)
        quirk = not re.match(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}$", text)
    else:
        m2 = _TS_DMY.match(text)
        if not m2:
            w.add(
                WarningCode.INVALID_VALUE,
                f"{where}: thời điểm {value!r} không hợp lệ, bỏ qua",
                f"{where}: invalid timestamp {value!r}, ignored",
            )
            return None
        d, mo, y, hh, mm = (int(x) for x in m2.groups()[:5])
        ss = int(m2.group(6) or 0)
        quirk = True
    try:
        moment = datetime(y, mo, d, hh, mm, ss, tzinfo=VN_TZ)
        if zone:
            moment = datetime.fromisoformat(f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}{zone}")
            moment = moment.astimezone(VN_TZ)
    except ValueError:
        w.add(
            WarningCode.INVALID_VALUE,
            f"{where}: thời điểm {value!r} không hợp lệ, bỏ qua",
            f"{where}: invalid timestamp {value!r}, ignored",
        )
        return None
    if quirk:
        w.add(
            WarningCode.DATE_FORMAT,
            f"{where}: thời điểm {text!r} không theo dạng yyyy/MM/dd HH:mm:ss",
            f"{where}: timestamp {text!r} is not written yyyy/MM/dd HH:mm:ss",
        )
    return moment


def _int(value: str | None, where: str, w: _Warnings) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit() and text.isascii():
        return int(text)
    w.add(
        WarningCode.INVALID_VALUE,
        f"{where}: giá trị {value!r} không phải số, bỏ qua",
        f"{where}: {value!r} is not a number, ignored",
    )
    return None


def _bool(value: str | None, where: str, w: _Warnings) -> bool | None:
    if value is None or not value.strip():
        return None
    text = value.strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    w.add(
        WarningCode.INVALID_VALUE,
        f"{where}: giá trị {value!r} không phải true/false, bỏ qua",
        f"{where}: {value!r} is not true/false, ignored",
    )
    return None


def _check_code(value: str | None, where: str, w: _Warnings) -> None:
    if value is None:
        return
    try:
        parse_code(value)
    except InvalidAgencyCode:
        w.add(
            WarningCode.NONSTANDARD_AGENCY_CODE,
            f"{where}: mã {value!r} không theo dạng mã định danh QCVN 102 (giữ nguyên)",
            f"{where}: {value!r} is not a QCVN 102 agency code (kept as written)",
            key=value,
        )


# --------------------------------------------------------------------------------------------- header parts


def _organization(n: _Node, w: _Warnings, *, required: bool = True) -> Organization:
    organ_id = n.ident("OrganId")
    if not organ_id:
        if required:
            raise InvalidPacket(f"{n.path} không có mã cơ quan (OrganId)", f"{n.path} has no agency code (OrganId)")
        organ_id = ""
    _check_code(organ_id, f"{n.path}/OrganId", w)
    org = Organization(
        organ_id=organ_id,
        organ_name=n.text("OrganName"),
        organization_in_charge=n.text("OrganizationInCharge"),
        organ_add=n.text("OrganAdd"),
        email=n.text("Email"),
        telephone=n.text("Telephone"),
        fax=n.text("Fax"),
        website=n.text("Website"),
    )
    n.finish()
    return org


def _response_for(n: _Node, w: _Warnings) -> ResponseFor:
    rf = ResponseFor(
        organ_id=n.ident("OrganId") or None,
        code=n.ident("Code") or None,
        promulgation_date=_parse_date(n.text("PromulgationDate"), f"{n.path}/PromulgationDate", w),
        document_id=n.ident("DocumentId") or None,
    )
    _check_code(rf.organ_id, f"{n.path}/OrganId", w)
    n.finish()
    return rf


def _staff(n: _Node | None) -> StaffInfo | None:
    if n is None:
        return None
    s = StaffInfo(
        department=n.text("Department"), staff=n.text("Staff"), email=n.text("Email"), mobile=n.text("Mobile")
    )
    n.finish()
    return s


def _trace_list(n: _Node | None, w: _Warnings, *, document: bool) -> TraceHeaderList:
    if n is None:
        return TraceHeaderList()
    headers: list[TraceHeader] = []
    for i, el in enumerate(n.all("TraceHeader"), 1):
        th = _Node(el, f"{n.path}/TraceHeader[{i}]", w)
        organ_id = th.ident("OrganId")
        if not organ_id:
            organ_id = None
            w.add(
                WarningCode.TRACE_WITHOUT_ORGAN_ID,
                f"TraceHeader thứ {i} không có mã cơ quan",
                f"TraceHeader {i} has no OrganId",
            )
        else:
            _check_code(organ_id, f"{th.path}/OrganId", w)
        moment = _parse_timestamp(th.text("Timestamp"), f"{th.path}/Timestamp", w)
        th.finish()
        if moment is None:
            w.add(
                WarningCode.INVALID_VALUE,
                f"TraceHeader thứ {i} không có thời điểm hợp lệ, bỏ qua",
                f"TraceHeader {i} has no valid Timestamp, ignored",
            )
            continue
        headers.append(TraceHeader(organ_id, moment))
    bussiness = None
    b = n.node("Bussiness")
    if b is not None:
        bussiness = _bussiness(b, w)
    n.finish()
    return TraceHeaderList(tuple(headers), bussiness)


def _bussiness(n: _Node, w: _Warnings) -> Bussiness:
    raw_type = n.ident("BussinessDocType")
    try:
        doc_type = BussinessDocType(int(raw_type)) if raw_type else BussinessDocType.NEW
    except ValueError:
        raise InvalidPacket(
            f"BussinessDocType {raw_type!r} không thuộc danh mục (0 mới, 1 thu hồi, 2 cập nhật, 3 thay thế)",
            f"BussinessDocType {raw_type!r} is not one of 0 new, 1 revoke, 2 update, 3 replace",
        ) from None
    if not raw_type:
        w.add(
            WarningCode.INVALID_VALUE,
            "Bussiness không có BussinessDocType: coi là văn bản mới",
            "Bussiness has no BussinessDocType: taken as a new document",
        )
    info = None
    bi = n.node("BussinessDocumentInfo")
    if bi is not None:
        receivers: list[Receiver] = []
        rl = bi.node("ReceiverList")
        if rl is not None:
            for i, el in enumerate(rl.all("Receiver"), 1):
                r = _Node(el, f"{rl.path}/Receiver[{i}]", w)
                code = r.ident("OrganId")
                kind = r.ident("ReceiverType")
                r.finish()
                if not code or kind not in ("0", "1"):
                    w.add(
                        WarningCode.INVALID_VALUE,
                        f"Receiver thứ {i} thiếu OrganId hoặc ReceiverType (0/1), bỏ qua",
                        f"Receiver {i} lacks OrganId or ReceiverType (0/1), ignored",
                    )
                    continue
                _check_code(code, f"{r.path}/OrganId", w)
                receivers.append(Receiver(code, ReceiverType(int(kind))))
            rl.finish()
        info = BussinessDocumentInfo(
            document_info=bi.ident("DocumentInfo"),
            document_receiver=bi.ident("DocumentReceiver"),
            receivers=tuple(receivers),
        )
        bi.finish()
    replacements: list[ReplacementInfo] = []
    ril = n.node("ReplacementInfoList")
    if ril is not None:
        for i, el in enumerate(ril.all("ReplacementInfo"), 1):
            ri = _Node(el, f"{ril.path}/ReplacementInfo[{i}]", w)
            doc_id = ri.ident("DocumentId")
            codes: list[str] = []
            ol = ri.node("OrganIdList")
            if ol is not None:
                for oel in ol.all("OrganId"):
                    code = _text(oel).strip()
                    if code:
                        _check_code(code, f"{ol.path}/OrganId", w)
                        codes.append(code)
                ol.finish()
            ri.finish()
            if doc_id:
                replacements.append(ReplacementInfo(doc_id, tuple(codes)))
        ril.finish()
    b = Bussiness(
        doc_type=doc_type,
        document_id=n.ident("DocumentId") or None,
        reason=n.text("BussinessDocReason"),
        paper=n.ident("Paper"),
        staff_info=_staff(n.node("StaffInfo")),
        document_info=info,
        replacements=tuple(replacements),
    )
    n.finish()
    return b


def _document_header(mh: _Node, w: _Warnings) -> dict[str, Any]:
    from_node = mh.node("From")
    if from_node is None:
        raise InvalidPacket("Gói tin không có nơi gửi (From)", "the packet has no sender (From)")
    sender = _organization(from_node, w)
    to = tuple(
        _organization(_Node(el, f"{mh.path}/To[{i}]", w), w) for i, el in enumerate(mh.all("To"), 1)
    )
    if not to:
        raise InvalidPacket("Văn bản không có nơi nhận (To)", "the document has no recipient (To)")
    document_id = mh.ident("DocumentId")
    if not document_id:
        raise InvalidPacket("Văn bản không có DocumentId", "the document has no DocumentId")
    code = None
    cn = mh.node("Code")
    if cn is not None:
        code = Code(cn.ident("CodeNumber") or "", cn.ident("CodeNotation") or "")
        cn.finish()
    promulgation = None
    pn = mh.node("PromulgationInfo")
    if pn is not None:
        promulgation = PromulgationInfo(
            date=_parse_date(pn.text("PromulgationDate"), "PromulgationDate", w), place=pn.text("Place")
        )
        pn.finish()
    document_type = None
    dn = mh.node("DocumentType")
    if dn is not None:
        document_type = DocumentType(
            type_name=dn.text("TypeName"), type=dn.ident("Type"), type_detail=dn.ident("TypeDetail")
        )
        dn.finish()
    signer = None
    sn = mh.node("SignerInfo")
    if sn is not None:
        signer = SignerInfo(
            full_name=sn.text("FullName"), position=sn.text("Position"), competence=sn.text("Competence")
        )
        sn.finish()
    to_places: tuple[str, ...] = ()
    tp = mh.node("ToPlaces")
    if tp is not None:
        to_places = tuple(_text(el) for el in tp.all("Place"))
        tp.finish()
    other = None
    on = mh.node("OtherInfo")
    if on is not None:
        priority = None
        raw_priority = on.ident("Priority")
        if raw_priority:
            try:
                priority = Priority(int(raw_priority))
            except ValueError:
                w.add(
                    WarningCode.INVALID_VALUE,
                    f"Độ khẩn {raw_priority!r} không thuộc danh mục 0–4: coi là Thường",
                    f"priority {raw_priority!r} is not one of 0-4: taken as normal",
                )
        appendixes: tuple[str, ...] = ()
        an = on.node("Appendixes")
        if an is not None:
            appendixes = tuple(_text(el) for el in an.all("Appendix"))
            an.finish()
        other = OtherInfo(
            priority=priority,
            sphere_of_promulgation=on.text("SphereOfPromulgation"),
            typer_notation=on.text("TyperNotation"),
            promulgation_amount=_int(on.text("PromulgationAmount"), "OtherInfo/PromulgationAmount", w),
            page_amount=_int(on.text("PageAmount"), "OtherInfo/PageAmount", w),
            direction=_bool(on.text("Direction"), "OtherInfo/Direction", w),
            appendixes=appendixes,
        )
        on.finish()
    response_for = []
    for i, el in enumerate(mh.all("ResponseFor"), 1):
        rf = _response_for(_Node(el, f"{mh.path}/ResponseFor[{i}]", w), w)
        if any((rf.organ_id, rf.code, rf.promulgation_date, rf.document_id)):
            response_for.append(rf)
    _check_document_id(document_id, sender.organ_id, w)
    return {
        "sender": sender,
        "to": to,
        "document_id": document_id,
        "code": code,
        "promulgation": promulgation,
        "document_type": document_type,
        "subject": mh.text("Subject"),
        "content": mh.text("Content"),
        "signer": signer,
        "due_date": _parse_date(mh.text("DueDate"), "DueDate", w),
        "to_places": to_places,
        "other_info": other,
        "response_for": tuple(response_for),
        "steering_type": mh.ident("SteeringType"),
    }


_DOC_ID = re.compile(r"^([^,]+),(\d{4}/\d{2}/\d{2}),(.+)$")


def _check_document_id(document_id: str, sender: str, w: _Warnings) -> None:
    m = _DOC_ID.match(document_id)
    if not m:
        w.add(
            WarningCode.NONSTANDARD_DOCUMENT_ID,
            f"DocumentId {document_id!r} không theo dạng <mã cơ quan>,<yyyy/MM/dd>,<số/ký hiệu>",
            f"DocumentId {document_id!r} is not of the form <OrganId>,<yyyy/MM/dd>,<number/notation>",
        )
    elif m.group(1) != sender:
        w.add(
            WarningCode.DOCUMENT_ID_SENDER_MISMATCH,
            f"DocumentId mang mã cơ quan {m.group(1)} khác nơi gửi {sender}",
            f"DocumentId names agency {m.group(1)}, not the sender {sender}",
        )


# --------------------------------------------------------------------------------------------- signature


def _signature_summary(header: _Node, w: _Warnings) -> SignatureSummary | None:
    summary = None
    for el in header.all("Signature"):
        ns = namespace(el)
        if ns != DSIG_NS:
            w.add(
                WarningCode.SIGNATURE_NOT_XMLDSIG,
                "Phần tử Signature không thuộc không gian tên XML-DSig (chấp nhận khi đọc)",
                f"the Signature element is in namespace {ns or '(none)'}, not XML-DSig (accepted when reading)",
            )
        sig_method = None
        digests: list[str] = []
        cert_chars = 0
        subject = None
        for d in el.iter():
            if not isinstance(d.tag, str):
                continue
            name = local(d)
            if name == "SignatureMethod":
                sig_method = d.get("Algorithm")
            elif name == "DigestMethod" and d.get("Algorithm"):
                digests.append(d.get("Algorithm"))
            elif name == "X509Certificate" and not cert_chars:
                cert_chars = len(re.sub(r"\s", "", d.text or ""))
            elif name == "X509SubjectName" and subject is None and (d.text or "").strip():
                subject = (d.text or "").strip()
        current = SignatureSummary(
            namespace=ns,
            parent=local(header.el),
            signature_method=sig_method,
            digest_methods=tuple(digests),
            certificate_chars=cert_chars,
            subject_name=subject,
        )
        if current.uses_sha1:
            w.add(
                WarningCode.SIGNATURE_SHA1,
                "Chữ ký gói tin dùng SHA-1: thuật toán yếu, không được tin cậy",
                "the packet signature uses SHA-1: weak, not to be trusted",
            )
        summary = summary or current
    for el in header.all("DigitalSignature"):
        if len(el) == 0 and not (el.text or "").strip():
            w.add(
                WarningCode.EMPTY_DIGITAL_SIGNATURE,
                "Phần tử DigitalSignature rỗng (bỏ qua)",
                "empty DigitalSignature element (ignored)",
            )
        else:
            w.add(
                WarningCode.UNKNOWN_ELEMENT,
                "Bỏ qua phần tử DigitalSignature không rõ định dạng",
                "ignored a DigitalSignature element of unknown form",
            )
    return summary


# --------------------------------------------------------------------------------------------- attachments

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"Rar!\x1a\x07", "application/vnd.rar"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"{\\rtf", "application/rtf"),
)

_EXTENSIONS = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".txt": "text/plain",
    ".xml": "application/xml",
    ".edxml": "application/xml",
    ".zip": "application/zip",
    ".rar": "application/vnd.rar",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
_OLE_TYPES = {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}
_ZIP_BASED = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/zip",
    "application/x-zip-compressed",
}
_GENERIC = {"application/octet-stream", "binary/octet-stream", "application/zip", "application/x-zip-compressed"}


def _by_extension(name: str) -> str | None:
    dot = name.rfind(".")
    if dot < 0:
        return None
    ext = name[dot:].lower()
    return _EXTENSIONS.get(ext) or mimetypes.guess_type("x" + ext, strict=False)[0]


def _magic(content: bytes) -> str | None:
    head = bytes(content[:16])
    for prefix, kind in _MAGIC:
        if head.startswith(prefix):
            return kind
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<?xml"):
        return "application/xml"
    return None


def sniff_content_type(content: bytes, name: str = "", declared: tuple[str | None, ...] = ()) -> str:
    """The content type to trust for ``content``: the bytes first, then the declared types, then the name."""
    magic = _magic(content)
    ext = _by_extension(name)
    for d in declared:
        if not d:
            continue
        d = d.strip().split(";")[0].strip().lower()
        if not d or d in _GENERIC:
            continue
        if magic is None or d == magic:
            return d
        if magic == "application/x-ole-storage" and d in _OLE_TYPES:
            return d
        if magic == "application/zip" and d in _ZIP_BASED:
            return d
        if magic == "application/xml" and (d.endswith("+xml") or d.endswith("/xml")):
            return d
    if magic == "application/x-ole-storage":
        return ext if ext in _OLE_TYPES else "application/x-ole-storage"
    if magic == "application/zip":
        return ext if ext in _ZIP_BASED else "application/zip"
    if magic is not None:
        return magic
    if ext is not None:
        return ext
    return "application/octet-stream"


def _norm_cid(value: str | None) -> tuple[str, bool]:
    """``(bare id, had cid: prefix)``."""
    if value is None:
        return "", False
    text = value.strip().strip("<>").strip()
    if text[:4].lower() == "cid:":
        return text[4:].strip(), True
    return text, False


@dataclass
class _RawAttachment:
    container: str
    node: _Node
    payload: Payload | None
    name: str | None
    content_id_raw: str | None
    content_type: str | None
    description: str | None
    declared_size: int | None = None
    attachment_type: str | None = None


def _unwrap(raw: bytes, name: str, limits: ReadLimits, w: _Warnings) -> tuple[bytes, bool, str | None]:
    """``(content, zip_wrapped, inner name)``: the single file of a wrapper ZIP, or ``raw`` as it came."""
    if not raw.startswith(b"PK\x03\x04") or name.lower().endswith(".zip"):
        return raw, False, None
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        w.add(
            WarningCode.ZIP_KEPT,
            f"Tệp {name}: dữ liệu bắt đầu như ZIP nhưng không đọc được ({exc}); giữ nguyên",
            f"{name}: payload starts like a ZIP but cannot be read ({exc}); kept as it is",
        )
        return raw, False, None
    with zf:
        files = [i for i in zf.infolist() if not i.is_dir()]
        if len(files) != 1:
            w.add(
                WarningCode.ZIP_KEPT,
                f"Tệp {name}: ZIP chứa {len(files)} tệp, không phải gói một tệp; giữ nguyên",
                f"{name}: the ZIP holds {len(files)} files, not one wrapped file; kept as it is",
            )
            return raw, False, None
        info = files[0]
        if info.flag_bits & 0x1:
            w.add(
                WarningCode.ZIP_KEPT,
                f"Tệp {name}: ZIP có mật khẩu; giữ nguyên",
                f"{name}: the ZIP is encrypted; kept as it is",
            )
            return raw, False, None
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            w.add(
                WarningCode.ZIP_KEPT,
                f"Tệp {name}: ZIP nén theo kiểu {info.compress_type} không hỗ trợ; giữ nguyên",
                f"{name}: ZIP compression method {info.compress_type} is not supported; kept as it is",
            )
            return raw, False, None
        cap = limits.max_attachment_bytes
        ratio_cap = max(info.compress_size, 1) * limits.max_zip_ratio
        if info.file_size > cap:
            raise PacketTooLarge(
                f"Tệp {name}: ZIP khai báo {info.file_size} byte sau giải nén, vượt giới hạn {cap} byte",
                f"{name}: the ZIP declares {info.file_size} bytes uncompressed, over the limit of {cap} bytes",
            )
        if info.file_size > limits.zip_ratio_floor and info.file_size > ratio_cap:
            raise AttachmentError(
                f"Tệp {name}: tỷ lệ nén bất thường (nghi bom ZIP), từ chối",
                f"{name}: abnormal compression ratio (suspected ZIP bomb), refused",
            )
        out = io.BytesIO()
        total = 0
        try:
            with zf.open(info) as entry:
                while True:
                    chunk = entry.read(_UNZIP_CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > cap:
                        raise PacketTooLarge(
                            f"Tệp {name}: giải nén vượt giới hạn {cap} byte, từ chối",
                            f"{name}: decompression exceeds the limit of {cap} bytes, refused",
                        )
                    if total > limits.zip_ratio_floor and total > ratio_cap:
                        raise AttachmentError(
                            f"Tệp {name}: tỷ lệ nén bất thường (nghi bom ZIP), từ chối",
                            f"{name}: abnormal compression ratio (suspected ZIP bomb), refused",
                        )
                    out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise AttachmentError(
                f"Tệp {name}: ZIP bị hỏng ({exc})", f"{name}: the ZIP is damaged ({exc})"
            ) from None
        return out.getvalue(), True, info.filename


def _raw_attachments(root: _Node, envelope: _Node, w: _Warnings) -> list[_RawAttachment]:
    found: list[_RawAttachment] = []
    for host, container in ((root, "AttachmentEncoded"), (envelope, "AttachmentEncoded")):
        for i, ae in enumerate(host.all("AttachmentEncoded"), 1):
            if host is envelope:
                w.add(
                    WarningCode.NONSTANDARD_ATTACHMENT_LAYOUT,
                    "AttachmentEncoded nằm trong edXMLEnvelope thay vì ngay dưới edXML",
                    "AttachmentEncoded sits inside edXMLEnvelope instead of directly under edXML",
                )
            aen = _Node(ae, f"{host.path}/AttachmentEncoded[{i}]", w)
            for j, el in enumerate(aen.all("Attachment"), 1):
                a = _Node(el, f"{aen.path}/Attachment[{j}]", w)
                found.append(
                    _RawAttachment(
                        container=container,
                        node=a,
                        payload=None,
                        name=a.text("AttachmentName"),
                        content_id_raw=a.ident("ContentId"),
                        content_type=a.ident("ContentType"),
                        description=a.text("Description"),
                    )
                )
                a.all("ContentTransferEncoded")
                a.finish()
            aen.finish()
    for i, ea in enumerate(envelope.all("edXMLAttachments"), 1):
        w.add(
            WarningCode.NONSTANDARD_ATTACHMENT_LAYOUT,
            "Tệp đính kèm theo bố cục không chuẩn edXMLEnvelope/edXMLAttachments (không có AttachmentEncoded)",
            "attachments use the non-standard edXMLEnvelope/edXMLAttachments layout (no AttachmentEncoded)",
        )
        ean = _Node(ea, f"{envelope.path}/edXMLAttachments[{i}]", w)
        for j, el in enumerate(ean.all("Attachment"), 1):
            a = _Node(el, f"{ean.path}/Attachment[{j}]", w)
            size_text = a.ident("AttachmentSize")
            found.append(
                _RawAttachment(
                    container="edXMLAttachments",
                    node=a,
                    payload=None,
                    name=a.text("AttachmentName"),
                    content_id_raw=a.ident("ContentId"),
                    content_type=a.ident("ContentType"),
                    description=a.text("Description"),
                    declared_size=_int(size_text, f"{a.path}/AttachmentSize", w),
                    attachment_type=a.ident("AttachmentType"),
                )
            )
            a.all("AttachmentData")
            a.finish()
        ean.finish()
    return found


def _manifest(envelope: _Node, w: _Warnings) -> tuple[list[ManifestReference], bool]:
    body = envelope.node("edXMLBody")
    if body is None:
        return [], False
    refs: list[ManifestReference] = []
    found = False
    for mi, m in enumerate(body.all("edXMLManifest"), 1):
        found = True
        mn = _Node(m, f"{body.path}/edXMLManifest[{mi}]", w)
        for i, el in enumerate(mn.all("Reference"), 1):
            r = _Node(el, f"{mn.path}/Reference[{i}]", w)
            refs.append(
                ManifestReference(
                    content_id=r.ident("ContentId"),
                    content_type=r.ident("ContentType"),
                    name=r.text("AttachmentName"),
                    description=r.text("Description"),
                )
            )
            r.finish()
        mn.finish()
    body.finish()
    return refs, found


def _attachments(
    raws: list[_RawAttachment],
    manifest: list[ManifestReference],
    has_manifest: bool,
    limits: ReadLimits,
    w: _Warnings,
) -> tuple[Attachment, ...]:
    by_cid: dict[str, tuple[int, ManifestReference, bool]] = {}
    for i, entry in enumerate(manifest):
        cid, prefixed = _norm_cid(entry.content_id)
        if cid:
            by_cid.setdefault(cid, (i, entry, prefixed))
    used: set[int] = set()
    result: list[Attachment] = []
    names: set[str] = set()
    total = 0
    for index, raw in enumerate(raws, 1):
        cid, prefixed = _norm_cid(raw.content_id_raw)
        ref: ManifestReference | None = None
        if cid and cid in by_cid:
            ref_index, ref, ref_prefixed = by_cid[cid]
            used.add(ref_index)
            if prefixed != ref_prefixed:
                w.add(
                    WarningCode.CID_ONE_SIDE,
                    f"ContentId {cid!r}: tiền tố cid: chỉ có ở một phía (manifest/tệp đính kèm)",
                    f"ContentId {cid!r}: the cid: prefix is on one side only (manifest/attachment)",
                )
        elif has_manifest:
            for i, candidate in enumerate(manifest):
                if i not in used and candidate.name and candidate.name == raw.name:
                    ref, used_index = candidate, i
                    used.add(used_index)
                    break
        if not cid:
            w.add(
                WarningCode.CONTENT_ID_MISSING,
                f"Tệp đính kèm thứ {index} không có ContentId",
                f"attachment {index} has no ContentId",
            )
        if has_manifest and ref is None:
            w.add(
                WarningCode.ATTACHMENT_NOT_IN_MANIFEST,
                f"Tệp đính kèm thứ {index} không có trong danh mục (edXMLManifest)",
                f"attachment {index} is not listed in the manifest (edXMLManifest)",
            )
        payload = raw.payload
        if payload is None:
            raise AttachmentError(
                f"Tệp đính kèm thứ {index} không có dữ liệu (ContentTransferEncoded)",
                f"attachment {index} has no data (ContentTransferEncoded)",
            )
        name = raw.name or (ref.name if ref is not None else None)
        transfer = payload.data
        if not name:
            w.add(
                WarningCode.ATTACHMENT_NAME_MISSING,
                f"Tệp đính kèm thứ {index} không có tên (AttachmentName)",
                f"attachment {index} has no AttachmentName",
            )
        if name and not is_safe_attachment_name(name):
            raise AttachmentError(
                f"Tên tệp đính kèm {name!r} không an toàn (có thư mục, '/', '\\', '..', ổ đĩa hoặc ký tự điều "
                "khiển): từ chối gói tin",
                f"attachment name {name!r} is unsafe (folders, '/', '\\', '..', a drive or control characters): "
                "packet refused",
            )
        content, wrapped, inner = _unwrap(transfer, name or "", limits, w)
        del transfer
        payload.data = b""
        if not name:
            inner_base = (inner or "").replace("\\", "/").rsplit("/", 1)[-1]
            name = inner_base if is_safe_attachment_name(inner_base) else f"attachment-{index}"
        if name in names:
            w.add(
                WarningCode.DUPLICATE_ATTACHMENT_NAME,
                f"Hai tệp đính kèm cùng tên {name!r}",
                f"two attachments share the name {name!r}",
                key=name,
            )
        names.add(name)
        total += len(content)
        if total > limits.max_total_attachment_bytes:
            raise PacketTooLarge(
                f"Tổng dung lượng tệp đính kèm vượt {limits.max_total_attachment_bytes} byte",
                f"attachments exceed {limits.max_total_attachment_bytes} bytes in total",
            )
        manifest_type = ref.content_type if ref is not None else None
        declared = raw.content_type
        if wrapped and declared and declared.lower() not in _GENERIC:
            w.add(
                WarningCode.CONTENT_TYPE_MISMATCH,
                f"Tệp {name}: khai báo {declared} nhưng dữ liệu là ZIP bọc một tệp",
                f"{name}: declared {declared} but the payload is a ZIP wrapping one file",
            )
        if raw.declared_size is not None and raw.declared_size != len(content):
            w.add(
                WarningCode.ATTACHMENT_SIZE_MISMATCH,
                f"Tệp {name}: khai báo {raw.declared_size} byte, thực tế {len(content)} byte",
                f"{name}: declares {raw.declared_size} bytes, carries {len(content)}",
            )
        declared_types: tuple[str | None, ...] = (manifest_type, declared if not wrapped else None)
        if raw.attachment_type and not declared:
            declared_types = (*declared_types, _by_extension("x." + raw.attachment_type))
        content_type = sniff_content_type(content, name, declared_types)
        magic = _magic(content)
        for d in (manifest_type, None if wrapped else declared):
            if d and magic and d.lower() not in _GENERIC and content_type != d.strip().lower():
                w.add(
                    WarningCode.CONTENT_TYPE_MISMATCH,
                    f"Tệp {name}: khai báo {d} nhưng nội dung là {content_type}",
                    f"{name}: declared {d} but the content is {content_type}",
                )
                break
        result.append(
            Attachment(
                name=name,
                content=content,
                content_type=content_type,
                description=raw.description if raw.description is not None else (ref.description if ref else None),
                content_id=cid,
                source=AttachmentSource(
                    container=raw.container,
                    content_id_raw=raw.content_id_raw,
                    declared_content_type=raw.content_type,
                    manifest_content_type=manifest_type,
                    encoded_chars=payload.encoded_chars,
                    transfer_size=payload.size,
                    transfer_sha256=payload.sha256,
                    zip_wrapped=wrapped,
                    zip_entry_name=inner,
                    declared_size=raw.declared_size,
                    attachment_type=raw.attachment_type,
                ),
            )
        )
    for i, entry in enumerate(manifest):
        if i not in used:
            shown = entry.name or entry.content_id
            w.add(
                WarningCode.MANIFEST_UNMATCHED,
                f"Danh mục liệt kê {shown!r} nhưng không có tệp đính kèm tương ứng",
                f"the manifest lists {shown!r} but no attachment carries it",
            )
    if raws and not has_manifest:
        w.add(
            WarningCode.NO_MANIFEST,
            "Gói tin có tệp đính kèm nhưng không có danh mục edXMLManifest",
            "the packet carries attachments but no edXMLManifest",
        )
    return tuple(result)


# --------------------------------------------------------------------------------------------- entry points


def _iter_payload_owners(target: StreamTarget) -> Iterator[tuple[Any, Payload]]:
    for element, payload in target.payloads:
        if element is not None:
            yield element.getparent(), payload


def read_packet(data: bytes, *, limits: ReadLimits | None = None) -> Packet:
    """Parse a packet from any sender: a :class:`~.model.DocumentPacket` or a :class:`~.model.StatusPacket`.

    Raises :class:`~docexchange.errors.MalformedXml` (with line and column) for XML that is not well-formed,
    :class:`~docexchange.errors.UnsafeXml` for DOCTYPEs and limits, :class:`~docexchange.errors.PacketTooLarge`,
    :class:`~docexchange.errors.AttachmentError` (bad base64, ZIP bombs, unsafe names) and
    :class:`~docexchange.errors.InvalidPacket` for XML that is not an edXML packet.
    """
    limits = limits or ReadLimits()
    start, early = prepare(data, limits)
    w = _Warnings()
    for item in early:
        w.add(item.code, item.message_vi, item.message_en)
    target = StreamTarget(limits)
    root_el = stream_parse(data, start, target)
    if root_el is None:
        raise InvalidPacket("Gói tin rỗng", "empty packet")
    if target.undeclared:
        names = ", ".join(sorted(set(target.undeclared))[:5])
        w.add(
            WarningCode.UNDECLARED_PREFIX,
            f"Có tiền tố không gian tên chưa khai báo (phần tử {names}); đọc theo tên phần tử",
            f"undeclared namespace prefixes (elements {names}); read by element name",
        )
    if target.no_namespace:
        w.add(
            WarningCode.NO_NAMESPACE,
            "Có phần tử không thuộc không gian tên edXML; đọc theo tên phần tử",
            "some elements are outside the edXML namespace; read by element name",
        )
    if local(root_el) != "edXML":
        raise InvalidPacket(
            f"Không phải gói tin edXML (phần tử gốc là {local(root_el)!r})",
            f"not an edXML packet (the root element is {local(root_el)!r})",
        )
    owners = dict(_iter_payload_owners(target))
    root = _Node(root_el, "edXML", w)
    env_el = root.one("edXMLEnvelope")
    if env_el is None:
        raise InvalidPacket("Gói tin không có edXMLEnvelope", "the packet has no edXMLEnvelope")
    envelope = _Node(env_el, "edXMLEnvelope", w)
    header = envelope.node("edXMLHeader")
    if header is None:
        raise InvalidPacket("Gói tin không có edXMLHeader", "the packet has no edXMLHeader")
    mh = header.node("MessageHeader")
    if mh is None:
        raise InvalidPacket("Gói tin không có MessageHeader", "the packet has no MessageHeader")
    signature = _signature_summary(header, w)
    is_status = mh.one("StatusCode") is not None
    trace = _trace_list(header.node("TraceHeaderList"), w, document=not is_status)
    header.finish()
    if is_status:
        envelope.all("edXMLBody")
        envelope.finish()
        root.finish()
        return _status(mh, trace, signature, w)
    fields = _document_header(mh, w)
    mh.finish()
    raws = _raw_attachments(root, envelope, w)
    for raw in raws:
        raw.payload = owners.get(raw.node.el)
    manifest, has_manifest = _manifest(envelope, w)
    envelope.finish()
    root.finish()
    attachments = _attachments(raws, manifest, has_manifest, limits, w)
    if trace.bussiness is None:
        w.add(
            WarningCode.BUSSINESS_MISSING,
            "Không có phần tử Bussiness: coi là văn bản mới",
            "no Bussiness element: taken as a new document",
        )
    return DocumentPacket(
        **fields,
        trace=trace,
        attachments=attachments,
        warnings=tuple(w.items),
        manifest=tuple(manifest),
        signature=signature,
    )


def _status(mh: _Node, trace: TraceHeaderList, signature: SignatureSummary | None, w: _Warnings) -> StatusPacket:
    from_node = mh.node("From")
    if from_node is None:
        raise InvalidPacket("Gói tin trạng thái không có nơi gửi (From)", "the status packet has no sender (From)")
    sender = _organization(from_node, w)
    rf_node = mh.node("ResponseFor")
    if rf_node is None:
        raise InvalidPacket(
            "Gói tin trạng thái không có ResponseFor", "the status packet does not say which document (ResponseFor)"
        )
    response_for = _response_for(rf_node, w)
    raw_code = mh.ident("StatusCode") or ""
    try:
        status_code = StatusCode(raw_code.zfill(2) if raw_code.isdigit() else raw_code)
    except ValueError:
        raise InvalidPacket(
            f"Mã trạng thái {raw_code!r} không thuộc danh mục (01–06, 13, 15, 16)",
            f"status code {raw_code!r} is not one of 01-06, 13, 15, 16",
        ) from None
    timestamp = _parse_timestamp(mh.text("Timestamp"), "Timestamp", w)
    if timestamp is None:
        raise InvalidPacket("Gói tin trạng thái không có thời điểm (Timestamp)", "the status packet has no Timestamp")
    staff_info = _staff(mh.node("StaffInfo"))
    description = mh.text("Description")
    mh.finish()
    return StatusPacket(
        sender=sender,
        response_for=response_for,
        status_code=status_code,
        timestamp=timestamp,
        staff_info=staff_info,
        description=description,
        trace=trace,
        warnings=tuple(w.items),
        signature=signature,
    )


def read_document(data: bytes, *, limits: ReadLimits | None = None) -> DocumentPacket:
    """Like :func:`read_packet`, refusing a status packet."""
    packet = read_packet(data, limits=limits)
    if not isinstance(packet, DocumentPacket):
        raise InvalidPacket("Đây là gói tin trạng thái, không phải văn bản", "this is a status packet, not a document")
    return packet


def read_status(data: bytes, *, limits: ReadLimits | None = None) -> StatusPacket:
    """Like :func:`read_packet`, refusing a document packet."""
    packet = read_packet(data, limits=limits)
    if not isinstance(packet, StatusPacket):
        raise InvalidPacket("Đây là gói tin văn bản, không phải trạng thái", "this is a document, not a status packet")
    return packet
