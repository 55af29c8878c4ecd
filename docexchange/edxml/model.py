"""The edXML packet (QCVN 102:2016) as values: frozen dataclasses and the code tables.

Nothing here touches XML. :mod:`docexchange.edxml.writer` turns these values into bytes with the exact prefix
layout real receivers expect; :mod:`docexchange.edxml.reader` turns bytes from any sender back into them.

Agency codes (``OrganId``) are kept as plain strings: real packets carry codes such as ``28.22.H17`` or
``vxp.saas.03`` that are not QCVN codes at all. The reader keeps them (with a warning); the writer only emits
codes that :func:`docexchange.directory.parse_code` accepts.

Equality of packets compares what the packet *says* (the fields an author sets). What the reader learned about
*how* it was written (warnings, the manifest as written, how each attachment was wrapped, the signature element)
rides along in fields excluded from comparison, so ``read_packet(write_document(p)) == p``.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from docexchange.errors import InvalidPacket

__all__ = [
    "QCVN_NS",
    "Attachment",
    "AttachmentSource",
    "Bussiness",
    "BussinessDocType",
    "BussinessDocumentInfo",
    "Code",
    "DocumentPacket",
    "DocumentType",
    "ManifestReference",
    "Organization",
    "OtherInfo",
    "Packet",
    "PacketWarning",
    "Priority",
    "PromulgationInfo",
    "Receiver",
    "ReceiverType",
    "ReplacementInfo",
    "ResponseFor",
    "SignatureSummary",
    "SignerInfo",
    "StaffInfo",
    "StatusCode",
    "StatusPacket",
    "TraceHeader",
    "TraceHeaderList",
    "WarningCode",
    "make_document_id",
]

QCVN_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""The edXML namespace."""


class Priority(int, enum.Enum):
    """Độ khẩn (``OtherInfo/Priority``). Urgent documents are registered and forwarded at once (NĐ 30)."""

    NORMAL = 0
    URGENT = 1
    VERY_URGENT = 2
    FLASH = 3
    FLASH_TIMED = 4

    @property
    def label_vi(self) -> str:
        return ("Thường", "Khẩn", "Thượng khẩn", "Hỏa tốc", "Hỏa tốc hẹn giờ")[self.value]

    @property
    def label_en(self) -> str:
        return ("normal", "urgent", "very urgent", "flash", "flash, timed")[self.value]


class StatusCode(enum.StrEnum):
    """Business status codes of QĐ 28/2018/QĐ-TTg carried by status packets."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    ASSIGNED = "04"
    PROCESSING = "05"
    DONE = "06"
    RECALL = "13"
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"

    @property
    def label_vi(self) -> str:
        return _STATUS_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _STATUS_LABELS[self][1]

    @property
    def sent_by_sender(self) -> bool:
        """True for the statuses the *sender* of the document emits (13, recall)."""
        return self is StatusCode.RECALL


_STATUS_LABELS: dict[StatusCode, tuple[str, str]] = {
    StatusCode.ARRIVED: ("Đã đến", "arrived, not yet handled by the clerk"),
    StatusCode.REJECTED: ("Từ chối tiếp nhận", "rejected / returned"),
    StatusCode.ACCEPTED: ("Đã tiếp nhận", "accepted and registered"),
    StatusCode.ASSIGNED: ("Phân công", "assigned for handling"),
    StatusCode.PROCESSING: ("Đang xử lý", "being handled"),
    StatusCode.DONE: ("Hoàn thành", "done"),
    StatusCode.RECALL: ("Lấy lại", "sender recalls the document"),
    StatusCode.RECALL_AGREED: ("Đồng ý thu hồi/cập nhật", "receiver agrees to the recall/update"),
    StatusCode.RECALL_REFUSED: ("Từ chối thu hồi/cập nhật", "receiver refuses the recall/update"),
}


class BussinessDocType(int, enum.Enum):
    """``Bussiness/BussinessDocType`` (sic): what the packet does to a document."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3

    @property
    def label_vi(self) -> str:
        return ("Văn bản mới", "Thu hồi", "Cập nhật", "Thay thế")[self.value]

    @property
    def label_en(self) -> str:
        return ("new document", "revoke", "update", "replace")[self.value]


class ReceiverType(int, enum.Enum):
    """``Receiver/ReceiverType`` in an update: the recipient is removed (0) or added (1)."""

    REMOVED = 0
    ADDED = 1

    @property
    def label_vi(self) -> str:
        return ("Bỏ nơi nhận", "Thêm nơi nhận")[self.value]


class WarningCode(enum.StrEnum):
    """Stable codes of the quirks the reader accepts (one :class:`PacketWarning` per occurrence)."""

    LEADING_JUNK = "leading_junk"
    NO_NAMESPACE = "no_namespace"
    UNDECLARED_PREFIX = "undeclared_prefix"
    UNKNOWN_ELEMENT = "unknown_element"
    SIGNATURE_NOT_XMLDSIG = "signature_not_xmldsig_namespace"
    SIGNATURE_SHA1 = "signature_sha1"
    EMPTY_DIGITAL_SIGNATURE = "empty_digital_signature"
    CID_ONE_SIDE = "cid_one_side"
    CONTENT_ID_MISSING = "content_id_missing"
    CONTENT_TYPE_MISMATCH = "content_type_mismatch"
    NO_MANIFEST = "no_manifest"
    NONSTANDARD_ATTACHMENT_LAYOUT = "nonstandard_attachment_layout"
    MANIFEST_UNMATCHED = "manifest_unmatched"
    ATTACHMENT_NOT_IN_MANIFEST = "attachment_not_in_manifest"
    ATTACHMENT_NAME_MISSING = "attachment_name_missing"
    DUPLICATE_ATTACHMENT_NAME = "duplicate_attachment_name"
    ATTACHMENT_SIZE_MISMATCH = "attachment_size_mismatch"
    ZIP_KEPT = "zip_kept"
    DATE_FORMAT = "date_format"
    INVALID_VALUE = "invalid_value"
    WHITESPACE_TRIMMED = "whitespace_trimmed"
    NONSTANDARD_AGENCY_CODE = "nonstandard_agency_code"
    TRACE_WITHOUT_ORGAN_ID = "trace_without_organ_id"
    NONSTANDARD_DOCUMENT_ID = "nonstandard_document_id"
    DOCUMENT_ID_SENDER_MISMATCH = "document_id_sender_mismatch"
    BUSSINESS_MISSING = "bussiness_missing"


@dataclass(frozen=True)
class PacketWarning:
    """Something unusual the reader accepted. ``code`` is stable; the messages are for people."""

    code: WarningCode
    message_vi: str
    message_en: str

    def __str__(self) -> str:
        return f"[{self.code.value}] {self.message_vi} — {self.message_en}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message_vi": self.message_vi, "message_en": self.message_en}


@dataclass(frozen=True)
class Organization:
    """``From`` / ``To``: an agency as the packet describes it."""

    organ_id: str
    """QCVN 102 code (``OrganId``), kept as written."""
    organ_name: str | None = None
    organization_in_charge: str | None = None
    organ_add: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class Code:
    """Số và ký hiệu: ``CodeNumber`` (số) and ``CodeNotation`` (ký hiệu), shown ``7816/VPCP-TTĐT``."""

    number: str
    notation: str

    def __str__(self) -> str:
        return f"{self.number}/{self.notation}"


@dataclass(frozen=True)
class PromulgationInfo:
    """Nơi và ngày ban hành."""

    date: date | None
    place: str | None = None


@dataclass(frozen=True)
class DocumentType:
    """Loại văn bản. ``type_name`` is the reliable part; the numeric ``type`` differs between senders."""

    type_name: str | None
    type: str | None = None
    type_detail: str | None = None


@dataclass(frozen=True)
class SignerInfo:
    """Who signed: ``Competence`` (e.g. ``TL. BỘ TRƯỞNG``), ``Position``, ``FullName``."""

    full_name: str | None = None
    position: str | None = None
    competence: str | None = None


@dataclass(frozen=True)
class OtherInfo:
    priority: Priority | None = None
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool | None = None
    appendixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResponseFor:
    """The document a reply or a status refers to."""

    organ_id: str | None = None
    code: str | None = None
    promulgation_date: date | None = None
    document_id: str | None = None


@dataclass(frozen=True)
class StaffInfo:
    department: str | None = None
    staff: str | None = None
    email: str | None = None
    mobile: str | None = None


def _require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidPacket(
            f"{what}: thời điểm phải có múi giờ (datetime aware)",
            f"{what}: the timestamp must be timezone-aware",
        )


@dataclass(frozen=True)
class TraceHeader:
    """One node the packet passed: who and when (written in Vietnam time)."""

    organ_id: str | None
    timestamp: datetime

    def __post_init__(self) -> None:
        _require_aware(self.timestamp, "TraceHeader/Timestamp")


@dataclass(frozen=True)
class Receiver:
    organ_id: str
    receiver_type: ReceiverType


@dataclass(frozen=True)
class BussinessDocumentInfo:
    """What an update changes: ``DocumentInfo``/``DocumentReceiver`` flags and the recipients added/removed."""

    document_info: str | None = None
    document_receiver: str | None = None
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True)
class ReplacementInfo:
    """A document replaced by this one, and for whom."""

    document_id: str
    organ_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bussiness:
    """``Bussiness`` (sic): new / revoke / update / replace."""

    doc_type: BussinessDocType = BussinessDocType.NEW
    document_id: str | None = None
    """The target document (for revoke, update, replace)."""
    reason: str | None = None
    paper: str | None = None
    staff_info: StaffInfo | None = None
    document_info: BussinessDocumentInfo | None = None
    """Update only."""
    replacements: tuple[ReplacementInfo, ...] = ()
    """Replace only."""

    @classmethod
    def new(
        cls,
        reason: str | None = "Văn bản điện tử mới",
        *,
        staff_info: StaffInfo | None = None,
        paper: str | None = None,
    ) -> Bussiness:
        return cls(BussinessDocType.NEW, reason=reason, staff_info=staff_info, paper=paper)

    @classmethod
    def revoke(
        cls, document_id: str, reason: str | None = None, *, staff_info: StaffInfo | None = None
    ) -> Bussiness:
        return cls(BussinessDocType.REVOKE, document_id=document_id, reason=reason, staff_info=staff_info)

    @classmethod
    def update(
        cls,
        document_id: str,
        receivers: tuple[Receiver, ...] = (),
        reason: str | None = None,
        *,
        staff_info: StaffInfo | None = None,
    ) -> Bussiness:
        info = BussinessDocumentInfo(
            document_info="1", document_receiver="1" if receivers else "0", receivers=tuple(receivers)
        )
        return cls(
            BussinessDocType.UPDATE, document_id=document_id, reason=reason, document_info=info, staff_info=staff_info
        )

    @classmethod
    def replace(
        cls,
        document_id: str,
        replacements: tuple[ReplacementInfo, ...],
        reason: str | None = None,
        *,
        staff_info: StaffInfo | None = None,
    ) -> Bussiness:
        return cls(
            BussinessDocType.REPLACE,
            document_id=document_id,
            reason=reason,
            replacements=tuple(replacements),
            staff_info=staff_info,
        )


@dataclass(frozen=True)
class TraceHeaderList:
    headers: tuple[TraceHeader, ...] = ()
    bussiness: Bussiness | None = None


@dataclass(frozen=True)
class AttachmentSource:
    """How an attachment arrived (reader only): the transfer form, before unwrapping."""

    container: str
    """``AttachmentEncoded`` (standard) or ``edXMLAttachments`` (a gateway's non-standard layout)."""
    content_id_raw: str | None
    """``ContentId`` as written (``cid:…`` or bare), ``None`` if absent."""
    declared_content_type: str | None
    """``Attachment/ContentType`` as written."""
    manifest_content_type: str | None
    """``Reference/ContentType`` of the matching manifest entry, as written."""
    encoded_chars: int
    """Base64 characters (whitespace excluded)."""
    transfer_size: int
    """Bytes after base64 decoding (the ZIP, when wrapped)."""
    transfer_sha256: str
    zip_wrapped: bool
    zip_entry_name: str | None = None
    declared_size: int | None = None
    """``AttachmentSize`` (gateway layout)."""
    attachment_type: str | None = None
    """``AttachmentType`` (gateway layout)."""


@dataclass(frozen=True)
class Attachment:
    """A file carried by the packet: the real file (already unzipped), its name and type."""

    name: str
    content: bytes = field(repr=False)
    content_type: str = "application/pdf"
    description: str | None = None
    content_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    """Without the ``cid:`` prefix (the writer adds it on both sides)."""
    source: AttachmentSource | None = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class ManifestReference:
    """An ``edXMLManifest/Reference`` as written (reader only)."""

    content_id: str | None
    content_type: str | None
    name: str | None
    description: str | None = None


@dataclass(frozen=True)
class SignatureSummary:
    """What the reader saw of a ``Signature`` element (verification is :mod:`~docexchange.edxml.signature`)."""

    namespace: str | None
    parent: str
    signature_method: str | None
    digest_methods: tuple[str, ...]
    certificate_chars: int
    subject_name: str | None

    @property
    def uses_sha1(self) -> bool:
        algs = [self.signature_method or "", *self.digest_methods]
        return any(a.endswith(("sha1", "#sha1")) or "-sha1" in a for a in algs)


@dataclass(frozen=True)
class DocumentPacket:
    """A document packet (gói tin văn bản)."""

    sender: Organization
    """``From``."""
    to: tuple[Organization, ...]
    document_id: str
    code: Code | None
    promulgation: PromulgationInfo | None
    document_type: DocumentType | None
    subject: str | None
    """Trích yếu."""
    content: str | None = None
    signer: SignerInfo | None = None
    due_date: date | None = None
    to_places: tuple[str, ...] = ()
    """Nơi nhận as printed on the letter (not the routing list)."""
    other_info: OtherInfo | None = None
    response_for: tuple[ResponseFor, ...] = ()
    steering_type: str | None = None
    trace: TraceHeaderList = field(default_factory=TraceHeaderList)
    attachments: tuple[Attachment, ...] = ()
    warnings: tuple[PacketWarning, ...] = field(default=(), compare=False)
    manifest: tuple[ManifestReference, ...] = field(default=(), compare=False)
    signature: SignatureSummary | None = field(default=None, compare=False)

    kind = "document"

    @property
    def priority(self) -> Priority:
        """The priority, ``NORMAL`` when the packet does not say."""
        if self.other_info is not None and self.other_info.priority is not None:
            return self.other_info.priority
        return Priority.NORMAL

    @property
    def bussiness(self) -> Bussiness | None:
        return self.trace.bussiness

    @property
    def trace_headers(self) -> tuple[TraceHeader, ...]:
        return self.trace.headers


@dataclass(frozen=True)
class StatusPacket:
    """A status packet (gói tin trạng thái): 01 arrived … 16 recall refused."""

    sender: Organization
    response_for: ResponseFor
    status_code: StatusCode
    timestamp: datetime
    staff_info: StaffInfo | None = None
    description: str | None = None
    trace: TraceHeaderList = field(default_factory=TraceHeaderList)
    """Nodes append TraceHeaders to status packets as well."""
    warnings: tuple[PacketWarning, ...] = field(default=(), compare=False)
    signature: SignatureSummary | None = field(default=None, compare=False)

    kind = "status"

    def __post_init__(self) -> None:
        _require_aware(self.timestamp, "Timestamp")

    @property
    def trace_headers(self) -> tuple[TraceHeader, ...]:
        return self.trace.headers


Packet = DocumentPacket | StatusPacket
"""Either kind of packet (what :func:`~docexchange.edxml.reader.read_packet` returns)."""


def make_document_id(organ_id: str, promulgation_date: date, code: Code) -> str:
    """``<sender OrganId>,<yyyy/MM/dd>,<number>/<notation>``, e.g. ``000.00.00.G22,2015/09/30,7816/VPCP-TTĐT``."""
    d = promulgation_date
    return f"{organ_id},{d.year:04d}/{d.month:02d}/{d.day:02d},{code}"
