"""The writer: exact prefix layout, formats, attachment encodings, NĐ 30 field lengths, the TraceHeader splice."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import zipfile
from dataclasses import replace

import pytest
from edxml_samples import PDF, sample_document
from lxml import etree

from docexchange.clock import VN_TZ
from docexchange.directory import parse_code
from docexchange.edxml import read_packet, validate
from docexchange.edxml.model import (
    QCVN_NS,
    Attachment,
    Bussiness,
    BussinessDocType,
    Code,
    DocumentType,
    Organization,
    OtherInfo,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    TraceHeader,
    TraceHeaderList,
)
from docexchange.edxml.writer import (
    AttachmentEncoding,
    append_trace,
    check_packet,
    format_timestamp,
    write_document,
    write_status,
)
from docexchange.errors import InvalidPacket


def payloads(data: bytes) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(rb"<edXML:ContentTransferEncoded[^>]*>([^<]*)<", data)]


# --------------------------------------------------------------------------------------------- layout


def test_exact_prefix_layout_of_a_document(document):
    data = write_document(document)
    text = data.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<edXML xmlns="' + QCVN_NS + '">\n')
    assert '  <edXML:edXMLEnvelope xmlns:edXML="' + QCVN_NS + '">\n    <edXML:edXMLHeader>\n' in text
    assert "<edXML:MessageHeader>" in text and "<edXML:TraceHeaderList>" in text
    assert '<edXML:edXMLBody>\n      <edXML:edXMLManifest version="1.0">' in text
    # Attachments: outside the envelope, default namespace, ContentTransferEncoded with edXML re-declared.
    env_end = text.index("</edXML:edXMLEnvelope>")
    att = text.index("<AttachmentEncoded>")
    assert att > env_end
    assert '<edXML:ContentTransferEncoded xmlns:edXML="' + QCVN_NS + '">' in text[att:]
    assert text.endswith("</AttachmentEncoded>\n</edXML>\n")
    # Every element inside the envelope carries the literal edXML: prefix (receivers check the text).
    envelope = text[text.index("<edXML:edXMLEnvelope") : env_end]
    tags = re.findall(r"<(/?)([A-Za-z_][\w.:-]*)", envelope)
    assert tags and all(name.startswith("edXML:") for _, name in tags)
    # The order of MessageHeader children is the standard's.
    root = etree.fromstring(data)
    mh = root.find(f"{{{QCVN_NS}}}edXMLEnvelope/{{{QCVN_NS}}}edXMLHeader/{{{QCVN_NS}}}MessageHeader")
    order = [etree.QName(c).localname for c in mh]
    assert order == [
        "From", "To", "To", "DocumentId", "Code", "PromulgationInfo", "DocumentType", "Subject", "Content",
        "SignerInfo", "DueDate", "ToPlaces", "OtherInfo", "SteeringType",
    ]  # fmt: skip
    assert root.nsmap == {None: QCVN_NS}
    assert root[0].prefix == "edXML"


def test_status_packet_layout_has_no_body(status):
    text = write_status(status).decode()
    assert "<edXML:edXMLBody" not in text and "<AttachmentEncoded" not in text
    mh = re.search(r"<edXML:MessageHeader>(.*)</edXML:MessageHeader>", text, re.S).group(1)
    names = re.findall(r"<edXML:(\w+)>", mh)
    top = [n for n in names if n in ("From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp")]
    assert top == ["From", "ResponseFor", "StaffInfo", "StatusCode", "Description", "Timestamp"]
    assert "<edXML:StatusCode>03</edXML:StatusCode>" in text
    assert "<edXML:Timestamp>2025/01/05 09:15:02</edXML:Timestamp>" in text


def test_dates_and_vietnam_time_without_zone():
    utc_evening = dt.datetime(2025, 1, 4, 20, 30, 5, tzinfo=dt.UTC)  # 03:30:05 next day in Vietnam
    packet = sample_document(
        trace=TraceHeaderList((TraceHeader("000.00.00.H49", utc_evening),), Bussiness.new()),
        due_date=dt.date(2025, 2, 3),
    )
    text = write_document(packet).decode()
    assert "<edXML:Timestamp>2025/01/05 03:30:05</edXML:Timestamp>" in text
    assert "<edXML:PromulgationDate>2025/01/05</edXML:PromulgationDate>" in text
    assert "<edXML:DueDate>2025/02/03</edXML:DueDate>" in text
    assert format_timestamp(dt.datetime(2024, 10, 10, 4, 40, tzinfo=dt.UTC)) == "2024/10/10 11:40:00"


def test_utf8_and_escaping_survive():
    subject = "Về việc <thử> & \"kiểm tra\" — dòng 1\r\ndòng 2\tTab"
    data = write_document(sample_document(subject=subject))
    assert "Về việc".encode() in data  # UTF-8, not character references
    assert read_packet(data).subject == subject


# --------------------------------------------------------------------------------------------- attachments


def test_attachment_default_is_base64_of_a_one_file_zip_with_cid_on_both_sides(document):
    data = write_document(document)
    text = data.decode()
    assert text.count("cid:att-1") == 2
    assert "<edXML:ContentType>application/pdf</edXML:ContentType>" in text  # manifest: the real type
    assert "<ContentType>application/zip</ContentType>" in text  # transfer: the wrapper
    (payload,) = payloads(data)
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        (info,) = zf.infolist()
        assert info.filename == "05-UBND-VX.pdf"
        assert zf.read(info) == PDF
    back = read_packet(data).attachments[0]
    assert back.content == PDF and back.source.zip_wrapped and back.name == "05-UBND-VX.pdf"


def test_raw_attachment_option(document):
    data = write_document(document, encoding=AttachmentEncoding.RAW)
    (payload,) = payloads(data)
    assert payload == PDF
    assert "<ContentType>application/pdf</ContentType>" in data.decode()
    back = read_packet(data).attachments[0]
    assert back.content == PDF and not back.source.zip_wrapped


def test_a_zip_file_is_never_wrapped_twice():
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("a.txt", "a")
        zf.writestr("b.txt", "b")
    zipped = Attachment("hoso.zip", inner.getvalue(), "application/zip", content_id="z")
    data = write_document(sample_document(attachments=(zipped,)))
    assert payloads(data) == [inner.getvalue()]
    assert read_packet(data).attachments[0].content == inner.getvalue()


def test_output_is_deterministic(document):
    assert write_document(document) == write_document(document)


def test_large_attachment_streams_into_valid_base64():
    big = PDF + bytes(range(256)) * 8192  # ~2 MB, poorly compressible
    packet = sample_document(attachments=(Attachment("lon.pdf", big, content_id="big"),))
    data = write_document(packet)
    (payload,) = payloads(data)
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        assert zf.read("lon.pdf") == big
    assert validate(data).valid


# --------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("change", "vi", "en"),
    [
        ({"subject": "x" * 501}, "trích yếu", "at most 500"),
        ({"code": Code("123456789012", "UBND")}, "số văn bản", "at most 11"),
        ({"code": Code("1", "N" * 31)}, "ký hiệu văn bản", "at most 30"),
        ({"document_type": DocumentType("L" * 101)}, "tên loại văn bản", "at most 100"),
        ({"sender": Organization("000.00.00.H49", organ_name="T" * 201)}, "tên cơ quan", "at most 200"),
        ({"signer": SignerInfo(full_name="N" * 51)}, "họ tên người ký", "at most 50"),
        ({"signer": SignerInfo(position="P" * 101)}, "chức vụ người ký", "at most 100"),
        ({"other_info": OtherInfo(page_amount=1000)}, "3 chữ số", "more than 3 digits"),
    ],
)
def test_nd30_annex_vi_lengths_are_enforced_with_bilingual_messages(change, vi, en):
    with pytest.raises(InvalidPacket) as err:
        write_document(sample_document(**change))
    assert vi in err.value.message_vi and "NĐ 30" in err.value.message_vi
    assert en in err.value.message_en


def test_limits_are_exact():
    write_document(
        sample_document(
            subject="x" * 500,
            code=Code("1" * 11, "N" * 30),
            signer=SignerInfo("N" * 50, "P" * 100),
            other_info=OtherInfo(page_amount=999),
        )
    )


@pytest.mark.parametrize(
    "change",
    [
        {"sender": Organization("28.22.H17")},
        {"to": (Organization("vxp.saas.03"),)},
        {"to": ()},
        {"document_id": " "},
        {"subject": "   "},
        {"code": None},
        {"response_for": (ResponseFor(organ_id="000.00.00.G22", code=""),)},
        {"attachments": (Attachment("../../x.pdf", PDF, content_id="a"),)},
        {"attachments": (Attachment("C:\\x.pdf", PDF, content_id="a"),)},
        {"attachments": (Attachment("a.pdf", PDF, content_id="cid:a"),)},
        {"attachments": (Attachment("a.pdf", PDF, content_id="a"), Attachment("b.pdf", PDF, content_id="a"))},
        {"attachments": (Attachment("a.pdf", PDF, content_type="pdf", content_id="a"),)},
        {"subject": "bell \x07"},
        {"trace": TraceHeaderList((), Bussiness(BussinessDocType.REVOKE))},
        {"trace": TraceHeaderList((), Bussiness(BussinessDocType.REPLACE, document_id="X"))},
        {"trace": TraceHeaderList((), Bussiness(BussinessDocType.NEW, replacements=(ReplacementInfo("X"),)))},
        {"trace": TraceHeaderList((TraceHeader(None, dt.datetime(2025, 1, 1, tzinfo=VN_TZ)),))},
    ],
)
def test_writer_refuses_what_receivers_would_reject(change):
    with pytest.raises(InvalidPacket):
        write_document(sample_document(**change))


def test_every_problem_is_listed_at_once():
    with pytest.raises(InvalidPacket) as err:
        check_packet(sample_document(subject="x" * 501, code=Code("1" * 12, "N")))
    assert "Subject" in err.value.message_en and "CodeNumber" in err.value.message_en


def test_strict_code_check_can_be_injected():
    packet = sample_document(to=(Organization("000.0A.01.H49"),))
    write_document(packet)  # loose shape (letters in middle groups) is fine by default

    def strict(code: str) -> object:
        return parse_code(code, strict=True)

    with pytest.raises(InvalidPacket):
        write_document(packet, code_check=strict)


def test_naive_timestamps_are_refused_at_construction():
    with pytest.raises(InvalidPacket):
        TraceHeader("000.00.00.H49", dt.datetime(2025, 1, 1, 8, 0))


# --------------------------------------------------------------------------------------------- append_trace

NODE_TIME = dt.datetime(2025, 1, 5, 10, 0, 7, tzinfo=VN_TZ)


def test_append_trace_after_the_last_trace_header_before_bussiness(document):
    data = write_document(document)
    out = append_trace(data, TraceHeader("000.00.00.G22", NODE_TIME))
    # Only the inserted bytes differ.
    inserted = (
        b"<edXML:TraceHeader><edXML:OrganId>000.00.00.G22</edXML:OrganId>"
        b"<edXML:Timestamp>2025/01/05 10:00:07</edXML:Timestamp></edXML:TraceHeader>"
    )
    assert len(out) == len(data) + len(inserted)
    pos = out.index(inserted)
    assert out[:pos] + out[pos + len(inserted) :] == data
    assert out[:pos].endswith(b"</edXML:TraceHeader>")
    back = read_packet(out)
    assert [t.organ_id for t in back.trace.headers] == ["000.00.00.H49", "000.00.00.G22"]
    assert back.trace.headers[-1].timestamp == NODE_TIME
    assert back.trace.bussiness == document.trace.bussiness
    assert back.attachments == document.attachments
    assert validate(out).valid


def test_append_trace_repeatedly_keeps_order_and_validity(document):
    data = write_document(document)
    codes = ["000.00.00.G22", "000.00.00.H57", "000.00.01.H57"]
    for i, code in enumerate(codes):
        data = append_trace(data, TraceHeader(code, NODE_TIME + dt.timedelta(minutes=i)))
    back = read_packet(data)
    assert [t.organ_id for t in back.trace.headers] == ["000.00.00.H49", *codes]
    assert validate(data).valid


def test_append_trace_to_an_empty_trace_list(document):
    data = write_document(replace(document, trace=TraceHeaderList((), Bussiness.new())))
    out = append_trace(data, TraceHeader("000.00.00.G22", NODE_TIME))
    assert [t.organ_id for t in read_packet(out).trace.headers] == ["000.00.00.G22"]
    assert validate(out).valid


def test_append_trace_to_a_self_closing_trace_list(document):
    data = write_document(replace(document, trace=TraceHeaderList()))
    assert b"<edXML:TraceHeaderList/>" in data
    out = append_trace(data, TraceHeader("000.00.00.G22", NODE_TIME))
    assert b"<edXML:TraceHeaderList><edXML:TraceHeader>" in out
    assert [t.organ_id for t in read_packet(out).trace.headers] == ["000.00.00.G22"]
    assert validate(out).valid


def test_append_trace_to_a_status_packet_opens_a_trace_list(status):
    data = write_status(status)
    out = append_trace(data, TraceHeader("000.00.00.G22", NODE_TIME))
    assert b"</edXML:MessageHeader><edXML:TraceHeaderList><edXML:TraceHeader>" in out
    back = read_packet(out)
    assert [t.organ_id for t in back.trace.headers] == ["000.00.00.G22"]
    assert validate(out).valid
    out2 = append_trace(out, TraceHeader("000.00.00.H57", NODE_TIME))
    assert [t.organ_id for t in read_packet(out2).trace.headers] == ["000.00.00.G22", "000.00.00.H57"]


def test_append_trace_is_not_fooled_by_comments_and_cdata(document):
    data = write_document(document)
    decoy = b"<!-- </edXML:TraceHeader></edXML:TraceHeaderList> --><![CDATA[</edXML:TraceHeader>]]>"
    tampered = data.replace(b"<edXML:Content>", b"<edXML:Content>" + decoy, 1)
    tampered = tampered.replace(
        b"<edXML:TraceHeaderList>", b"<edXML:TraceHeaderList><!-- <edXML:TraceHeader> -->", 1
    )
    out = append_trace(tampered, TraceHeader("000.00.00.G22", NODE_TIME))
    back = read_packet(out)
    assert [t.organ_id for t in back.trace.headers] == ["000.00.00.H49", "000.00.00.G22"]
    assert back.content.startswith("</edXML:TraceHeader>")  # CDATA text unchanged


def test_append_trace_uses_the_prefix_of_the_packet():
    # A packet from a sender using another prefix (namespace-equivalent): the splice follows it.
    data = write_document(sample_document()).replace(b"edXML:", b"q:").replace(b"xmlns:edXML=", b"xmlns:q=")
    out = append_trace(data, TraceHeader("000.00.00.G22", NODE_TIME))
    assert b"<q:TraceHeader><q:OrganId>000.00.00.G22</q:OrganId>" in out
    assert [t.organ_id for t in read_packet(out).trace.headers][-1] == "000.00.00.G22"


def test_append_trace_keeps_stray_leading_bytes_and_refuses_bad_codes(document):
    data = b"1212" + write_document(document)
    out = append_trace(data, TraceHeader("000.00.00.G22", NODE_TIME))
    assert out.startswith(b"1212<?xml")
    with pytest.raises(InvalidPacket):
        append_trace(data, TraceHeader("not a code", NODE_TIME))


def test_append_trace_refuses_what_is_not_a_packet():
    with pytest.raises(InvalidPacket):
        append_trace(b'<?xml version="1.0"?><other><x/></other>', TraceHeader("000.00.00.G22", NODE_TIME))
