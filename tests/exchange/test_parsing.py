"""The entry node's packet check in worker processes: the same verdicts as in process, errors crossing the
process boundary as the same classes with both messages."""

from __future__ import annotations

from datetime import date

import pytest
from exchange_harness import HONG_GAI, THUAN_HOA

from docexchange.config import Settings
from docexchange.directory import load_directory
from docexchange.edxml.model import (
    Attachment,
    Bussiness,
    Code,
    DocumentPacket,
    DocumentType,
    Organization,
    PromulgationInfo,
    TraceHeaderList,
    make_document_id,
)
from docexchange.edxml.writer import write_document
from docexchange.errors import InvalidPacket, MalformedXml, UnknownAgency
from docexchange.exchange.parsing import inspect_packet, make_parse_pool, run_inspection


def packet(to: str, sender: str = HONG_GAI) -> bytes:
    code = Code("9", "UBND")
    return write_document(DocumentPacket(
        sender=Organization(sender, "UBND"), to=(Organization(to, "UBND"),),
        document_id=make_document_id(sender, date(2025, 1, 5), code), code=code,
        promulgation=PromulgationInfo(date(2025, 1, 5), "Hạ Long"), document_type=DocumentType("Công văn"),
        subject="Thử", trace=TraceHeaderList((), Bussiness.new()),
        attachments=(Attachment("a.pdf", b"%PDF-1.7\n" + bytes(5000)),),
    ))


async def test_pool_and_inline_agree(fed_settings: Settings) -> None:
    directory = load_directory(fed_settings.directory_file)
    pool = make_parse_pool(fed_settings.directory_file, 1)
    try:
        good = packet(THUAN_HOA)
        inline = inspect_packet(good, HONG_GAI, (), 50 << 20, directory)
        pooled = await run_inspection(pool, good, HONG_GAI, (), 50 << 20)
        assert pooled == inline and pooled.recipients == (THUAN_HOA,) and pooled.splice is not None
        cases = [
            (packet("000.99.99.H57"), UnknownAgency),  # unknown recipient
            (b"<edXML><unclosed>", MalformedXml),
            (packet(THUAN_HOA), InvalidPacket),  # acting for another agency than the sender
        ]
        for i, (data, cls) in enumerate(cases):
            acting = "000.02.12.H49" if i == 2 else HONG_GAI
            with pytest.raises(cls) as pooled_exc:
                await run_inspection(pool, data, acting, (), 50 << 20)
            with pytest.raises(cls) as inline_exc:
                inspect_packet(data, acting, (), 50 << 20, directory)
            assert pooled_exc.value.message_vi == inline_exc.value.message_vi
            assert pooled_exc.value.message_en == inline_exc.value.message_en
    finally:
        pool.shutdown()
