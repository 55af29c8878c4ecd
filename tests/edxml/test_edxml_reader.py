"""The reader against the real corpus (table-driven from expected.json) and against each quirk it tolerates."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from typing import Any

import pytest
from edxml_samples import CORPUS, PDF, corpus_entries, sample_document, sample_status

from docexchange.edxml import read_packet, write_document, write_status
from docexchange.edxml.model import (
    QCVN_NS,
    DocumentPacket,
    Priority,
    StatusCode,
    StatusPacket,
    WarningCode,
)
from docexchange.edxml.reader import read_document, read_status, sniff_content_type
from docexchange.edxml.writer import AttachmentEncoding, format_date, format_timestamp
from docexchange.errors import InvalidPacket, MalformedXml

ENTRIES = corpus_entries()

# Quirks each corpus packet has, as warning codes the reader must report (from the "quirks" of expected.json).
EXPECTED_WARNINGS: dict[str, set[WarningCode]] = {
    "pvn_edoc_new_junk1212.edxml": {
        WarningCode.LEADING_JUNK,
        WarningCode.SIGNATURE_NOT_XMLDSIG,
        WarningCode.SIGNATURE_SHA1,
        WarningCode.NONSTANDARD_AGENCY_CODE,
        WarningCode.DOCUMENT_ID_SENDER_MISMATCH,
    },
    "vxp_edoc_new.edxml": {
        WarningCode.SIGNATURE_NOT_XMLDSIG,
        WarningCode.SIGNATURE_SHA1,
        WarningCode.NONSTANDARD_AGENCY_CODE,
        WarningCode.DOCUMENT_ID_SENDER_MISMATCH,
    },
    "tltv_edoc_new.edxml": {
        WarningCode.SIGNATURE_NOT_XMLDSIG,
        WarningCode.SIGNATURE_SHA1,
        WarningCode.DOCUMENT_ID_SENDER_MISMATCH,
    },
    "vxp_edoc_update.edxml": {WarningCode.SIGNATURE_NOT_XMLDSIG, WarningCode.SIGNATURE_SHA1},
    "pvn_gw_b_txt.edxml": {
        WarningCode.NONSTANDARD_ATTACHMENT_LAYOUT,
        WarningCode.NO_MANIFEST,
        WarningCode.CONTENT_ID_MISSING,
        WarningCode.NONSTANDARD_DOCUMENT_ID,
        WarningCode.NONSTANDARD_AGENCY_CODE,
        WarningCode.BUSSINESS_MISSING,
        WarningCode.UNKNOWN_ELEMENT,
    },
    "pvn_upload_1f881896.edxml": {
        WarningCode.TRACE_WITHOUT_ORGAN_ID,
        WarningCode.NONSTANDARD_DOCUMENT_ID,
        WarningCode.BUSSINESS_MISSING,
        WarningCode.NONSTANDARD_AGENCY_CODE,
    },
    "pvn_upload_bb5d2f68.edxml": {
        WarningCode.CONTENT_TYPE_MISMATCH,
        WarningCode.NONSTANDARD_DOCUMENT_ID,
        WarningCode.NONSTANDARD_AGENCY_CODE,
    },
    "pvn_xml_2025_874e0f18.edxml": {
        WarningCode.CONTENT_TYPE_MISMATCH,
        WarningCode.TRACE_WITHOUT_ORGAN_ID,
        WarningCode.NONSTANDARD_AGENCY_CODE,
        WarningCode.NONSTANDARD_DOCUMENT_ID,
        WarningCode.BUSSINESS_MISSING,
    },
}

_IGNORED_KEYS = {
    "file", "sha256", "size", "source", "xml", "expected_outcome", "quirks", "status_meaning", "subject_60",
    "text_level_values",
}  # fmt: skip


def _d(value: Any) -> str | None:
    return format_date(value) if value is not None else None


def observed(packet: DocumentPacket | StatusPacket) -> dict[str, Any]:
    """The packet in the vocabulary of expected.json."""
    out: dict[str, Any] = {"kind": packet.kind, "from_organ_id": packet.sender.organ_id}
    sig = packet.signature
    out["signature_present"] = sig is not None
    out["signatures"] = (
        [
            {
                "namespace": sig.namespace,
                "parent": sig.parent,
                "x509_certificate_chars": sig.certificate_chars,
                "x509_subject_name": sig.subject_name,
            }
        ]
        if sig is not None
        else []
    )
    out["trace_headers"] = [
        {"OrganId": t.organ_id, "Timestamp": format_timestamp(t.timestamp)} for t in packet.trace.headers
    ]
    if isinstance(packet, StatusPacket):
        rf = packet.response_for
        staff = packet.staff_info
        out.update(
            {
                "to_organ_ids": [],
                "document_id": rf.document_id,
                "code_number": None,
                "code_notation": None,
                "code": rf.code,
                "promulgation_date": _d(rf.promulgation_date),
                "subject": None,
                "priority": None,
                "bussiness_doc_type": None,
                "bussiness_doc_reason": None,
                "business_kind": "status",
                "status_code": packet.status_code.value,
                "status_description": packet.description,
                "status_timestamp": format_timestamp(packet.timestamp),
                "staff": {
                    "Department": staff.department,
                    "Staff": staff.staff,
                    "Mobile": staff.mobile,
                    "Email": staff.email,
                }
                if staff
                else None,
                "response_for": {
                    "OrganId": rf.organ_id,
                    "Code": rf.code,
                    "PromulgationDate": _d(rf.promulgation_date),
                    "DocumentId": rf.document_id,
                },
                "document_type": None,
                "manifest_references": [],
                "attachment_count": 0,
                "attachments": [],
            }
        )
        return out
    b = packet.trace.bussiness
    oi = packet.other_info
    out.update(
        {
            "to_organ_ids": [o.organ_id for o in packet.to],
            "document_id": packet.document_id,
            "code_number": packet.code.number if packet.code else None,
            "code_notation": packet.code.notation if packet.code else None,
            "promulgation_date": _d(packet.promulgation.date) if packet.promulgation else None,
            "subject": packet.subject,
            "priority": str(int(oi.priority)) if oi is not None and oi.priority is not None else None,
            "bussiness_doc_type": str(int(b.doc_type)) if b else None,
            "bussiness_doc_reason": b.reason if b else None,
            "business_kind": b.doc_type.label_en.split()[0] if b else "new (no Bussiness element)",
            "status_code": None,
            "document_type": {
                "Type": packet.document_type.type,
                "TypeDetail": packet.document_type.type_detail,
                "TypeName": packet.document_type.type_name,
            }
            if packet.document_type
            else None,
            "manifest_references": [
                {"content_id": r.content_id, "name": r.name, "content_type": r.content_type} for r in packet.manifest
            ],
            "attachment_count": len(packet.attachments),
        }
    )
    if b is not None:
        entry: dict[str, Any] = {
            "parent": "TraceHeaderList",
            "DocumentId": b.document_id,
            "BussinessDocType": str(int(b.doc_type)),
            "BussinessDocReason": b.reason,
            "Paper": b.paper,
        }
        if b.document_info is not None:
            entry["BussinessDocumentInfo"] = {
                "DocumentInfo": b.document_info.document_info,
                "DocumentReceiver": b.document_info.document_receiver,
                "ReceiverList": [
                    {"OrganId": r.organ_id, "ReceiverType": str(int(r.receiver_type))}
                    for r in b.document_info.receivers
                ],
            }
        out["bussiness"] = [entry]
    attachments = []
    for a in packet.attachments:
        s = a.source
        item: dict[str, Any] = {
            "container": s.container,
            "content_id": s.content_id_raw,
            "name": a.name,
            "content_type": s.declared_content_type,
            "payload_element": "ContentTransferEncoded" if s.container == "AttachmentEncoded" else "AttachmentData",
            "payload_chars": s.encoded_chars,
            "base64_valid": True,
            "zip_wrapped": s.zip_wrapped,
            "decoded_size": s.transfer_size,
            "decoded_sha256": s.transfer_sha256,
        }
        if s.zip_wrapped:
            item["zip_entries"] = [
                {"name": s.zip_entry_name, "size": a.size, "sha256": hashlib.sha256(a.content).hexdigest()}
            ]
        else:
            assert s.transfer_sha256 == hashlib.sha256(a.content).hexdigest()
        if s.attachment_type is not None:
            item["attachment_type"] = s.attachment_type
        attachments.append(item)
    out["attachments"] = attachments
    return out


def _strip(expected: Any, got: Any) -> Any:
    """Drop keys of ``expected`` that describe the annotator's classification, not packet values."""
    if isinstance(expected, dict):
        return {k: _strip(v, got) for k, v in expected.items() if k not in ("magic", "decoded_magic")}
    if isinstance(expected, list):
        return [_strip(v, got) for v in expected]
    return expected


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_corpus_packet_gives_exactly_the_expected_values(entry: dict[str, Any]) -> None:
    data = (CORPUS / entry["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    if entry["expected_outcome"].startswith("reject (not well-formed)"):
        with pytest.raises(MalformedXml) as err:
            read_packet(data)
        # "Opening and ending tag mismatch: From line 7 and MessageHeader, line 74, column 29"
        assert "dòng 74, cột 29" in err.value.message_vi and "line 74, column 29" in err.value.message_en
        return
    packet = read_packet(data)
    got = observed(packet)
    expected = {k: v for k, v in entry.items() if k not in _IGNORED_KEYS}
    for key, value in expected.items():
        assert key in got, f"{entry['file']}: no observation for {key}"
        assert got[key] == _strip(value, got[key]), f"{entry['file']}: {key}"
    wanted = EXPECTED_WARNINGS.get(entry["file"], set())
    codes = {w.code for w in packet.warnings}
    assert wanted <= codes, f"{entry['file']}: missing warnings {wanted - codes}"
    if not wanted:
        assert codes == set(), f"{entry['file']}: unexpected warnings {codes}"
    for w in packet.warnings:
        assert w.message_vi and w.message_en and w.message_vi != w.message_en


def test_the_corpus_covers_every_kind_we_claim_to_read() -> None:
    kinds = {(e["kind"], e["expected_outcome"].split(" ")[0]) for e in ENTRIES}
    assert ("document", "parse") in kinds and ("status", "parse") in kinds and ("document", "reject") in kinds
    assert len(ENTRIES) == len(list(CORPUS.glob("*.edxml")))


def test_crlf_and_lf_copies_read_the_same() -> None:
    crlf = read_packet((CORPUS / "vxp_status_05_processing.edxml").read_bytes())
    lf = read_packet((CORPUS / "bkav_status_05_processing.edxml").read_bytes())
    assert crlf == lf
    assert isinstance(crlf, StatusPacket) and crlf.status_code is StatusCode.PROCESSING


def test_corpus_update_exposes_receiver_changes() -> None:
    packet = read_document((CORPUS / "vxp_edoc_update.edxml").read_bytes())
    info = packet.bussiness.document_info
    changes = [(r.organ_id, int(r.receiver_type)) for r in info.receivers]
    assert changes == [("000.00.00.H41", 0), ("000.00.00.H14", 1)]
    assert packet.priority is Priority.NORMAL
    assert packet.attachments[0].content.startswith(b"<?xml")  # the zip held a nested edXML packet
    assert packet.attachments[0].content_type == "application/xml"


# --------------------------------------------------------------------------------------------- quirks, one by one


def codes(packet: Any) -> set[WarningCode]:
    return {w.code for w in packet.warnings}


def test_own_output_reads_back_without_warnings() -> None:
    assert codes(read_packet(write_document(sample_document()))) == set()
    assert codes(read_packet(write_status(sample_status()))) == set()


def test_stray_bytes_before_the_declaration() -> None:
    data = write_document(sample_document())
    for junk in (b"1212", b"\r\n  ", b"\xef\xbb\xbfxx"):
        packet = read_packet(junk + data)
        assert packet == sample_document()
        assert WarningCode.LEADING_JUNK in codes(packet)
    with pytest.raises(MalformedXml):
        read_packet(b"x" * 5000 + data)


def test_cid_on_one_side_only() -> None:
    data = write_document(sample_document())
    data = data.replace(b"<ContentId>cid:att-1</ContentId>", b"<ContentId>att-1</ContentId>")
    packet = read_document(data)
    assert packet.attachments[0].content == PDF and packet.attachments[0].content_id == "att-1"
    assert WarningCode.CID_ONE_SIDE in codes(packet)


def test_raw_attachment_with_unreliable_content_type_is_sniffed() -> None:
    data = write_document(sample_document(), encoding=AttachmentEncoding.RAW)
    data = data.replace(b"<ContentType>application/pdf</ContentType>", b"<ContentType>text/plain</ContentType>")
    data = data.replace(
        b"<edXML:ContentType>application/pdf</edXML:ContentType>",
        b"<edXML:ContentType>application/octet-stream</edXML:ContentType>",
    )
    packet = read_document(data)
    assert packet.attachments[0].content_type == "application/pdf"
    assert WarningCode.CONTENT_TYPE_MISMATCH in codes(packet)


def test_zip_wrapped_attachment_declared_as_its_content() -> None:
    data = write_document(sample_document())
    data = data.replace(b"<ContentType>application/zip</ContentType>", b"<ContentType>application/pdf</ContentType>")
    packet = read_document(data)
    assert packet.attachments[0].content == PDF and packet.attachments[0].source.zip_wrapped
    assert WarningCode.CONTENT_TYPE_MISMATCH in codes(packet)


def test_multi_file_zip_is_kept_as_it_is() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.pdf", PDF)
        zf.writestr("b.pdf", PDF)
    data = write_document(sample_document(), encoding=AttachmentEncoding.RAW)
    data = data.replace(base64.b64encode(PDF), base64.b64encode(buf.getvalue()))
    packet = read_document(data)
    assert packet.attachments[0].content == buf.getvalue()
    assert WarningCode.ZIP_KEPT in codes(packet)


@pytest.mark.parametrize(
    ("written", "quirk"),
    [(b"2025/01/05", False), (b"05/01/2025", True), (b"2025-01-05", True), (b"5/1/2025", True)],
)
def test_date_formats(written: bytes, quirk: bool) -> None:
    data = write_document(sample_document()).replace(
        b"<edXML:PromulgationDate>2025/01/05</edXML:PromulgationDate>",
        b"<edXML:PromulgationDate>" + written + b"</edXML:PromulgationDate>",
    )
    packet = read_document(data)
    assert format_date(packet.promulgation.date) == "2025/01/05"
    assert (WarningCode.DATE_FORMAT in codes(packet)) is quirk


def test_impossible_date_is_dropped_with_a_warning() -> None:
    data = write_document(sample_document()).replace(b"<edXML:DueDate>2025/01/20", b"<edXML:DueDate>2014/02/30")
    packet = read_document(data)
    assert packet.due_date is None and WarningCode.INVALID_VALUE in codes(packet)


def test_gateway_layout_without_manifest() -> None:
    packet = read_document((CORPUS / "pvn_gw_b_txt.edxml").read_bytes())
    (a,) = packet.attachments
    assert (a.name, a.content, a.content_type) == ("1760427207626_b.txt", b"b", "text/plain")
    assert a.source.attachment_type == "TXT"
    assert {WarningCode.NO_MANIFEST, WarningCode.NONSTANDARD_ATTACHMENT_LAYOUT} <= codes(packet)


def test_signature_outside_xmldsig_namespace() -> None:
    packet = read_document((CORPUS / "vxp_edoc_update.edxml").read_bytes())
    assert packet.signature.namespace == QCVN_NS and packet.signature.uses_sha1
    assert WarningCode.SIGNATURE_NOT_XMLDSIG in codes(packet)


def test_empty_digital_signature_element() -> None:
    data = write_document(sample_document()).replace(
        b"</edXML:TraceHeaderList>", b"</edXML:TraceHeaderList><edXML:DigitalSignature/>", 1
    )
    packet = read_document(data)
    assert packet == sample_document()
    assert codes(packet) == {WarningCode.EMPTY_DIGITAL_SIGNATURE}


def test_unknown_elements_are_ignored() -> None:
    data = write_document(sample_document()).replace(
        b"<edXML:Subject>", b"<edXML:Urgency>x</edXML:Urgency><other:Thing xmlns:other='urn:x'/><edXML:Subject>", 1
    )
    packet = read_document(data)
    assert packet == sample_document()
    assert codes(packet) == {WarningCode.UNKNOWN_ELEMENT}
    assert len(packet.warnings) == 2


def test_undeclared_prefix_is_read_by_name() -> None:
    # edXML: used outside the element that declares it (as in a real malformed sample), plus xlink:href.
    data = write_document(sample_document())
    data = data.replace(b"<AttachmentEncoded>", b"<edXML:AttachmentEncoded>").replace(
        b"</AttachmentEncoded>", b"</edXML:AttachmentEncoded>"
    )
    data = data.replace(b"<edXML:Reference>", b'<edXML:Reference xlink:href="">', 1)
    packet = read_document(data)
    assert packet.attachments[0].content == PDF
    assert WarningCode.UNDECLARED_PREFIX in codes(packet)


def test_no_namespace_at_all() -> None:
    data = write_status(sample_status()).replace(b' xmlns="' + QCVN_NS.encode() + b'"', b"")
    data = data.replace(b"edXML:", b"").replace(b" xmlns:edXML=", b" xmlns:unused=")
    packet = read_status(data)
    assert packet == sample_status()
    assert WarningCode.NO_NAMESPACE in codes(packet)


def test_whitespace_around_identifiers_is_trimmed() -> None:
    data = write_status(sample_status()).replace(
        b"<edXML:StatusCode>03</edXML:StatusCode>", b"<edXML:StatusCode>\n  03\n</edXML:StatusCode>"
    )
    packet = read_status(data)
    assert packet.status_code is StatusCode.ACCEPTED
    assert WarningCode.WHITESPACE_TRIMMED in codes(packet)


def test_unknown_status_code_and_business_type_are_refused() -> None:
    data = write_status(sample_status()).replace(b">03</edXML:StatusCode>", b">07</edXML:StatusCode>")
    with pytest.raises(InvalidPacket):
        read_packet(data)
    doc = write_document(sample_document()).replace(b">0</edXML:BussinessDocType>", b">9</edXML:BussinessDocType>")
    with pytest.raises(InvalidPacket):
        read_packet(doc)


def test_unknown_priority_is_a_warning() -> None:
    data = write_document(sample_document()).replace(b"<edXML:Priority>1<", b"<edXML:Priority>9<")
    packet = read_document(data)
    assert packet.other_info.priority is None and packet.priority is Priority.NORMAL
    assert WarningCode.INVALID_VALUE in codes(packet)


def test_not_a_packet() -> None:
    with pytest.raises(InvalidPacket):
        read_packet(b"<?xml version='1.0'?><html><body/></html>")
    with pytest.raises(InvalidPacket):
        read_packet(b"<edXML xmlns='" + QCVN_NS.encode() + b"'/>")
    with pytest.raises(InvalidPacket):
        read_document(write_status(sample_status()))
    with pytest.raises(InvalidPacket):
        read_status(write_document(sample_document()))


def test_malformed_xml_names_line_and_column() -> None:
    data = write_document(sample_document()).replace(b"</edXML:Subject>", b"</edXML:Subjekt>", 1)
    line = data[: data.index(b"</edXML:Subjekt>")].count(b"\n") + 1
    with pytest.raises(MalformedXml) as err:
        read_packet(data)
    assert f"dòng {line}," in err.value.message_vi and f"line {line}," in err.value.message_en
    with pytest.raises(MalformedXml) as err:
        read_packet(b"junk\n" + data)
    assert f"line {line + 1}," in err.value.message_en


@pytest.mark.parametrize(
    ("content", "name", "declared", "expected"),
    [
        (PDF, "x.bin", ("application/octet-stream",), "application/pdf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "cv.doc", (None,), "application/msword"),
        (b"PK\x03\x04docx", "cv.docx", ("application/zip",), (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        )),
        (b"plain text", "a.txt", ("text/plain",), "text/plain"),
        (b"plain text", "a.txt", (), "text/plain"),
        (b"\x00\x01", "noext", (), "application/octet-stream"),
        (PDF, "x.pdf", ("image/png",), "application/pdf"),
    ],
)
def test_sniffing(content: bytes, name: str, declared: tuple[str | None, ...], expected: str) -> None:
    assert sniff_content_type(content, name, declared) == expected


def test_status_of_every_code_reads_back() -> None:
    for code in StatusCode:
        packet = sample_status(status_code=code)
        assert read_packet(write_status(packet)) == packet
        assert code.label_vi and code.label_en
