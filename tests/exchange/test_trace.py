"""TraceHeaders at every hop: the first node splices with the parser, the next ones at the learnt point, and
the result reads back with every TraceHeader, in order, and the attachments untouched."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import pytest

from docexchange.edxml.model import (
    Attachment,
    Bussiness,
    Code,
    DocumentPacket,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    StatusCode,
    StatusPacket,
    TraceHeaderList,
    make_document_id,
)
from docexchange.edxml.reader import read_packet
from docexchange.edxml.writer import AttachmentEncoding, write_document, write_status
from docexchange.exchange.trace import TraceSplice, append_fast, append_first

T0 = datetime(2025, 1, 5, 1, 0, tzinfo=UTC)
NODES = ["000.00.00.H49", "000.00.00.G22", "000.00.00.H57", "000.00.01.H57"]


def _document(encoding: AttachmentEncoding) -> tuple[bytes, bytes]:
    pdf = b"%PDF-1.7\n" + os.urandom(20_000)
    p = DocumentPacket(
        sender=Organization("000.01.11.H49", "UBND phường Hồng Gai"),
        to=(Organization("000.00.31.H57", "UBND phường Thuận Hóa"),),
        document_id=make_document_id("000.01.11.H49", date(2025, 1, 5), Code("05", "UBND-VP")),
        code=Code("05", "UBND-VP"),
        promulgation=PromulgationInfo(date(2025, 1, 5), "Hạ Long"),
        document_type=DocumentType("Công văn"),
        subject="Về việc thử nghiệm <liên thông> & \"trục\"",
        other_info=OtherInfo(priority=Priority.FLASH),
        trace=TraceHeaderList((), Bussiness.new()),
        attachments=(Attachment("cv.pdf", pdf),),
    )
    return write_document(p, encoding=encoding), pdf


@pytest.mark.parametrize("encoding", [AttachmentEncoding.ZIP, AttachmentEncoding.RAW])
def test_document_trace_through_four_nodes(encoding: AttachmentEncoding) -> None:
    data, pdf = _document(encoding)
    out, splice = append_first(data, NODES[0], T0)
    for i, organ in enumerate(NODES[1:], start=1):
        out, splice = append_fast(out, splice, organ, T0 + timedelta(seconds=i))
    packet = read_packet(out)
    assert isinstance(packet, DocumentPacket)
    assert [t.organ_id for t in packet.trace.headers] == NODES
    assert [t.timestamp for t in packet.trace.headers] == [T0 + timedelta(seconds=i) for i in range(4)]
    assert packet.trace.bussiness is not None
    assert packet.attachments[0].content == pdf


def test_status_packet_gets_a_trace_list() -> None:
    st = StatusPacket(
        sender=Organization("000.00.31.H57"),
        response_for=ResponseFor(
            "000.01.11.H49", "05/UBND-VP", date(2025, 1, 5), "000.01.11.H49,2025/01/05,05/UBND-VP"
        ),
        status_code=StatusCode.ARRIVED,
        timestamp=T0,
    )
    data = write_status(st)
    out, splice = append_first(data, NODES[2], T0)
    out, splice = append_fast(out, TraceSplice.from_json(splice.to_json()), NODES[1], T0)
    packet = read_packet(out)
    assert [t.organ_id for t in packet.trace.headers] == [NODES[2], NODES[1]]


def test_a_wrong_splice_point_falls_back_to_the_parser() -> None:
    data, _ = _document(AttachmentEncoding.RAW)
    out, splice = append_first(data, NODES[0], T0)
    lying = TraceSplice(splice.offset + 7, splice.open_tag)
    out2, _ = append_fast(out, lying, NODES[1], T0)
    assert [t.organ_id for t in read_packet(out2).trace.headers] == NODES[:2]
    assert TraceSplice.from_json({"offset": -1, "open_tag": "<x>"}) is None
    assert TraceSplice.from_json("junk") is None


@pytest.mark.parametrize("encoding", [AttachmentEncoding.ZIP, AttachmentEncoding.RAW])
def test_checked_splice_matches_the_parser_guided_one(encoding: AttachmentEncoding) -> None:
    data, _ = _document(encoding)
    fast, fast_splice = append_first(data, NODES[0], T0, checked=True)
    slow, slow_splice = append_first(data, NODES[0], T0)
    assert read_packet(fast).trace == read_packet(slow).trace
    assert [t.organ_id for t in read_packet(fast).trace.headers] == [NODES[0]]
    again, _ = append_first(fast, NODES[1], T0, checked=True)
    assert [t.organ_id for t in read_packet(again).trace.headers] == NODES[:2]
    assert fast_splice.open_tag == slow_splice.open_tag


@pytest.mark.parametrize(
    "mutation",
    [
        lambda d: d.replace(b"<edXML:Subject>", b"<edXML:Subject><![CDATA[</edXML:TraceHeaderList>]]>", 1),
        lambda d: d.replace(b"<edXML:Subject>", b"<!-- </edXML:TraceHeader> --><edXML:Subject>", 1),
    ],
)
def test_checked_splice_declines_what_it_cannot_read_safely(mutation: object) -> None:
    from docexchange.exchange.trace import splice_in_checked

    data, _ = _document(AttachmentEncoding.RAW)
    tricky = mutation(data)  # type: ignore[operator]
    assert splice_in_checked(tricky) is None
    out, _ = append_first(tricky, NODES[0], T0, checked=True)  # falls back to the parser
    assert [t.organ_id for t in read_packet(out).trace.headers] == [NODES[0]]
