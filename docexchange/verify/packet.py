"""edXML envelope checks: is this packet fit to enter the exchange?

The reader (:mod:`docexchange.edxml.reader`) already refuses what is not XML, not safe or not edXML. These
checks are about the exchange: the sender is a known agency and is who the caller says it is, every recipient
is in the directory, the DocumentId belongs to the sender, a new document carries its file, a revoke / update /
replace names its target, a status says which document it is about. The result is a report (never raised):
each problem with a stable code and a Vietnamese-first message; the caller decides what to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from docexchange.directory import Directory
from docexchange.edxml.model import BussinessDocType, DocumentPacket, Packet, StatusPacket, WarningCode
from docexchange.errors import InvalidPacket, UnknownAgency

__all__ = ["EnvelopeReport", "Problem", "check_envelope", "raise_for"]


@dataclass(frozen=True)
class Problem:
    code: str
    message_vi: str
    message_en: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message_vi": self.message_vi, "message_en": self.message_en}


@dataclass(frozen=True)
class EnvelopeReport:
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reasons_vi(self) -> list[str]:
        return [p.message_vi for p in self.problems]

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [w.to_dict() for w in self.warnings],
        }


def _known(directory: Directory, code: str | None) -> bool:
    if not code:
        return False
    try:
        directory.resolve(code)
    except UnknownAgency:
        return False
    return True


def check_envelope(
    packet: Packet,
    directory: Directory,
    *,
    acting_agency: str | None = None,
    extra_recipients: tuple[str, ...] = (),
) -> EnvelopeReport:
    """Check ``packet`` for the exchange. ``acting_agency``: the agency the authenticated caller acts for (the
    packet's sender must be it); ``extra_recipients``: recipients given outside the packet (status packets)."""
    problems: list[Problem] = []
    warnings = [Problem(w.code.value, w.message_vi, w.message_en) for w in packet.warnings]

    def add(code: str, vi: str, en: str) -> None:
        problems.append(Problem(code, vi, en))

    sender = packet.sender.organ_id
    if not _known(directory, sender):
        add("unknown_sender", f"Nơi gửi {sender!r} không có trong danh bạ",
            f"sender {sender!r} is not in the directory")
    elif acting_agency is not None and directory.resolve(sender) != directory.resolve(acting_agency):
        add(
            "sender_mismatch",
            f"Gói tin ghi nơi gửi {sender} nhưng người gửi thao tác thay cơ quan {acting_agency}",
            f"the packet says it is from {sender} but the caller acts for {acting_agency}",
        )
    if isinstance(packet, DocumentPacket):
        if not packet.to and not extra_recipients:
            add("no_recipient", "Văn bản không có nơi nhận (To)", "the document has no recipient (To)")
        unknown = [o.organ_id for o in packet.to if not _known(directory, o.organ_id)]
        unknown += [c for c in extra_recipients if not _known(directory, c)]
        if unknown:
            add(
                "unknown_recipient",
                f"Nơi nhận không có trong danh bạ: {', '.join(unknown)}",
                f"recipients not in the directory: {', '.join(unknown)}",
            )
        if any(w.code == WarningCode.DOCUMENT_ID_SENDER_MISMATCH for w in packet.warnings):
            add(
                "document_id_sender",
                f"Mã văn bản {packet.document_id!r} không bắt đầu bằng mã nơi gửi {sender}",
                f"DocumentId {packet.document_id!r} does not start with the sender's code {sender}",
            )
        b = packet.bussiness
        btype = b.doc_type if b is not None else BussinessDocType.NEW
        if btype != BussinessDocType.REVOKE and not packet.attachments:
            add("no_attachment", "Văn bản không có tệp đính kèm", "the document carries no file")
        if btype != BussinessDocType.NEW and (b is None or not b.document_id):
            add(
                "no_business_target",
                f"Gói tin {btype.label_vi.lower()} phải ghi mã văn bản bị tác động (Bussiness/DocumentId)",
                f"a {btype.label_en} packet must name its target document (Bussiness/DocumentId)",
            )
        if btype == BussinessDocType.REPLACE and b is not None and b.document_id == packet.document_id:
            add("replace_self", "Văn bản không thể thay thế chính nó", "a document cannot replace itself")
    elif isinstance(packet, StatusPacket):
        rf = packet.response_for
        if not rf.document_id:
            add("no_response_for", "Gói tin trạng thái không ghi văn bản liên quan", "the status names no document")
        target = extra_recipients or ((rf.organ_id,) if rf.organ_id else ())
        if not target:
            add("no_recipient", "Gói tin trạng thái không có nơi nhận", "the status packet has no recipient")
        unknown = [c for c in target if not _known(directory, c)]
        if unknown:
            add(
                "unknown_recipient",
                f"Nơi nhận không có trong danh bạ: {', '.join(unknown)}",
                f"recipients not in the directory: {', '.join(unknown)}",
            )
    return EnvelopeReport(tuple(problems), tuple(warnings))


def raise_for(report: EnvelopeReport) -> None:
    """Raise :class:`InvalidPacket` (or :class:`UnknownAgency` when that is all) listing every problem."""
    if report.ok:
        return
    vi = "; ".join(p.message_vi for p in report.problems)
    en = "; ".join(p.message_en for p in report.problems)
    if all(p.code == "unknown_recipient" for p in report.problems):
        raise UnknownAgency(vi, en)
    raise InvalidPacket(f"Gói tin không hợp lệ: {vi}", f"invalid packet: {en}")
