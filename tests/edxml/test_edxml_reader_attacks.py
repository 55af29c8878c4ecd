"""The XML-attack corpus: every input is refused with a clear error, in bounded memory, writing nothing."""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from edxml_samples import PDF, sample_document

from docexchange.cli.edxml import extract_attachments
from docexchange.edxml import ReadLimits, append_trace, read_packet, validate, verify_packet, write_document
from docexchange.edxml.model import QCVN_NS, Attachment, TraceHeader
from docexchange.edxml.writer import AttachmentEncoding
from docexchange.errors import AttachmentError, EdxmlError, MalformedXml, PacketTooLarge, UnsafeXml

pytestmark = pytest.mark.timeout(120)

MiB = 1024 * 1024
NS = QCVN_NS.encode()
HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak Python allocation while ``fn`` runs (it is expected to raise)."""
    tracemalloc.start()
    try:
        fn()
    except EdxmlError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / MiB


def raw_packet_with_payload(payload_b64: bytes, name: str = "cv.pdf") -> bytes:
    data = write_document(
        sample_document(attachments=(Attachment(name, PDF, content_id="a1"),)), encoding=AttachmentEncoding.RAW
    )
    return data.replace(base64.b64encode(PDF), payload_b64)


# --------------------------------------------------------------------------------------------- entity attacks

def _laughs() -> bytes:
    entities = [b'<!ENTITY lol0 "lol">']
    for i in range(1, 10):
        entities.append(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10))
    return HEAD + b"<!DOCTYPE edXML [\n" + b"\n".join(entities) + b'\n]>\n<edXML xmlns="' + NS + b'">&lol9;</edXML>\n'


LAUGHS = _laughs()

ATTACKS: dict[str, bytes] = {
    "billion-laughs": LAUGHS,
    "external-entity": HEAD
    + b'<!DOCTYPE edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<edXML xmlns="' + NS + b'">&xxe;</edXML>',
    "external-dtd": HEAD + b'<!DOCTYPE edXML SYSTEM "http://127.0.0.1:9/evil.dtd">\n<edXML xmlns="' + NS + b'"/>',
    "parameter-entity": HEAD
    + b'<!DOCTYPE edXML [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>\n<edXML xmlns="' + NS + b'"/>',
    "quadratic-blowup": HEAD
    + b'<!DOCTYPE edXML [<!ENTITY a "'
    + b"a" * 50_000
    + b'">]>\n<edXML xmlns="' + NS + b'">'
    + b"&a;" * 20_000
    + b"</edXML>",
    "doctype-after-comment": HEAD + b"<!-- hello -->\n<?pi x?>\n<!doctype edXML>\n<edXML/>",
    "doctype-utf16": ('<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE edXML [<!ENTITY x "y">]>\n<edXML>&x;</edXML>')
    .encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
@pytest.mark.parametrize("entry", ["read_packet", "validate", "verify_packet", "append_trace"])
def test_doctype_attacks_are_refused_everywhere(name: str, entry: str) -> None:
    data = ATTACKS[name]
    call: dict[str, Callable[[], Any]] = {
        "read_packet": lambda: read_packet(data),
        "validate": lambda: validate(data),
        "verify_packet": lambda: verify_packet(data),
        "append_trace": lambda: append_trace(data, TraceHeader("000.00.00.G22", dt.datetime.now(dt.UTC))),
    }
    if entry == "append_trace" and name == "doctype-utf16":
        with pytest.raises(EdxmlError) as splice_err:  # refused even earlier: splicing needs UTF-8
            call[entry]()
        assert "UTF-8" in splice_err.value.message_en
        return
    with pytest.raises(UnsafeXml) as err:
        call[entry]()
    assert "DOCTYPE" in err.value.message_vi and "DOCTYPE" in err.value.message_en
    assert peak_mib(call[entry]) < 16


def test_undefined_entity_without_dtd_is_malformed() -> None:
    with pytest.raises(MalformedXml) as err:
        read_packet(HEAD + b'<edXML xmlns="' + NS + b'">&xxe;</edXML>')
    assert "line 2" in err.value.message_en


# --------------------------------------------------------------------------------------------- structure limits


def test_ten_thousand_deep_nesting() -> None:
    data = HEAD + b'<edXML xmlns="' + NS + b'">' + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</edXML>"
    with pytest.raises(UnsafeXml) as err:
        read_packet(data)
    assert "sâu" in err.value.message_vi and "deeper" in err.value.message_en
    with pytest.raises(UnsafeXml):
        validate(data)
    assert peak_mib(lambda: read_packet(data)) < 16


def test_attribute_flood() -> None:
    attrs = b" ".join(b'a%d="x"' % i for i in range(5000))
    with pytest.raises(UnsafeXml):
        read_packet(HEAD + b'<edXML xmlns="' + NS + b'" ' + attrs + b"/>")


def test_element_flood() -> None:
    data = HEAD + b'<edXML xmlns="' + NS + b'">' + b"<x/>" * 150_000 + b"</edXML>"
    with pytest.raises(UnsafeXml):
        read_packet(data)


def test_huge_text_outside_attachments() -> None:
    data = write_document(sample_document()).replace(b"<edXML:Content>", b"<edXML:Content>" + b"x" * (5 * MiB), 1)
    with pytest.raises(UnsafeXml):
        read_packet(data)


def test_packet_over_the_size_limit_is_refused_before_parsing() -> None:
    data = write_document(sample_document())
    with pytest.raises(PacketTooLarge):
        read_packet(data, limits=ReadLimits(max_packet_bytes=len(data) - 1))


# --------------------------------------------------------------------------------------------- attachments: size


def test_two_gigabyte_declared_attachment_is_refused_before_decoding() -> None:
    gateway = (
        HEAD
        + b'<edXML xmlns="' + NS + b'"><edXML:edXMLEnvelope xmlns:edXML="' + NS + b'">'
        + b"<edXML:edXMLHeader><edXML:MessageHeader><edXML:From><edXML:OrganId>000.00.00.H49</edXML:OrganId>"
        + b"</edXML:From><edXML:To><edXML:OrganId>000.00.00.G22</edXML:OrganId></edXML:To>"
        + b"<edXML:DocumentId>x</edXML:DocumentId></edXML:MessageHeader></edXML:edXMLHeader>"
        + b"<edXML:edXMLAttachments><edXML:Attachment><edXML:AttachmentName>big.pdf</edXML:AttachmentName>"
        + b"<edXML:AttachmentSize>2147483648</edXML:AttachmentSize>"
        + b"<edXML:AttachmentData>" + b"!!not even base64!!" + b"</edXML:AttachmentData>"
        + b"</edXML:Attachment></edXML:edXMLAttachments></edXML:edXMLEnvelope></edXML>"
    )
    with pytest.raises(PacketTooLarge) as err:
        read_packet(gateway)
    assert "2147483648" in err.value.message_en  # refused on the declaration, not on the bad payload


def test_encoded_size_over_the_limit_is_refused_while_streaming() -> None:
    data = raw_packet_with_payload(b"QUFB" * (3 * MiB // 4))  # 3 MiB of base64 for a 1 MiB limit
    limits = ReadLimits(max_attachment_bytes=MiB)
    with pytest.raises(PacketTooLarge) as err:
        read_packet(data, limits=limits)
    assert "base64" in err.value.message_en
    assert peak_mib(lambda: read_packet(data, limits=limits)) < 8


@pytest.mark.parametrize(
    "payload",
    [b"JVBERi0*LjcK", b"QQ==QUJD", b"QUJDQ", b"QUJD\xc3\xa9QUJD", b"====", b"QUJD=QUJ"],
    ids=["bad-char", "padding-in-middle", "truncated", "non-ascii", "only-padding", "padding-then-data"],
)
def test_invalid_base64(payload: bytes) -> None:
    with pytest.raises(AttachmentError) as err:
        read_packet(raw_packet_with_payload(payload))
    assert "base64" in err.value.message_en


def test_base64_with_line_breaks_is_fine() -> None:
    wrapped = base64.encodebytes(PDF)  # MIME style, 76 columns
    assert read_packet(raw_packet_with_payload(wrapped)).attachments[0].content == PDF


# --------------------------------------------------------------------------------------------- attachments: zip


def _zip_of_zeros(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        info = zipfile.ZipInfo("bomb.pdf")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            chunk = bytes(MiB)
            for _ in range(size // MiB):
                fh.write(chunk)
    return buf.getvalue()


def test_zip_bomb_is_refused_in_bounded_memory() -> None:
    bomb = _zip_of_zeros(300 * MiB)
    assert len(bomb) < 2 * MiB
    data = raw_packet_with_payload(base64.b64encode(bomb))
    with pytest.raises((AttachmentError, PacketTooLarge)) as err:
        read_packet(data)
    assert "ZIP" in err.value.message_vi
    assert peak_mib(lambda: read_packet(data)) < 64


def _patch_sizes(zip_bytes: bytes, file_size: int) -> bytes:
    """Rewrite the uncompressed size in the local header and central directory (a lying ZIP)."""
    out = bytearray(zip_bytes)
    local = out.find(b"PK\x03\x04")
    struct.pack_into("<I", out, local + 22, file_size)
    central = out.find(b"PK\x01\x02")
    struct.pack_into("<I", out, central + 24, file_size)
    return bytes(out)


def _small_zip_of_zeros(size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("x.pdf", bytes(size))
    return buf.getvalue()


def test_zip_declaring_two_gigabytes_is_refused_before_inflating() -> None:
    lying = _patch_sizes(_small_zip_of_zeros(1000), 0x7FFFFFFF)
    with pytest.raises(PacketTooLarge) as err:
        read_packet(raw_packet_with_payload(base64.b64encode(lying)))
    assert str(0x7FFFFFFF) in err.value.message_en


def test_zip_understating_its_size_is_caught_while_inflating() -> None:
    lying = _patch_sizes(_small_zip_of_zeros(40 * MiB), 10)
    data = raw_packet_with_payload(base64.b64encode(lying))
    with pytest.raises((AttachmentError, PacketTooLarge)):
        read_packet(data)
    with pytest.raises((AttachmentError, PacketTooLarge)):
        read_packet(data, limits=ReadLimits(max_zip_ratio=10_000, max_attachment_bytes=8 * MiB))


def test_corrupt_zip_data_is_an_attachment_error() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.pdf", PDF)
    good = buf.getvalue()
    start = good.index(b"x.pdf") + 5  # compressed data follows the name in the local header
    corrupt = good[:start] + bytes(a ^ 0x55 for a in good[start : start + 64]) + good[start + 64 :]
    with pytest.raises(AttachmentError) as err:
        read_packet(raw_packet_with_payload(base64.b64encode(corrupt)))
    assert "hỏng" in err.value.message_vi and "damaged" in err.value.message_en


def test_bytes_that_only_start_like_a_zip_are_kept_with_a_warning() -> None:
    fake = b"PK\x03\x04" + bytes(200)
    packet = read_packet(raw_packet_with_payload(base64.b64encode(fake)))
    assert packet.attachments[0].content == fake
    assert "zip_kept" in {w.code.value for w in packet.warnings}


# --------------------------------------------------------------------------------------------- names and extraction

UNSAFE_NAMES = ["../../x", "../x.pdf", "/etc/passwd", "..\\..\\x", "C:\\Windows\\x.pdf", "a/b.pdf", "..", "."]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_path_traversal_names_are_refused_by_the_reader(name: str, tmp_path: Path) -> None:
    data = write_document(sample_document()).replace(b"05-UBND-VX.pdf", name.encode())
    with pytest.raises(AttachmentError) as err:
        read_packet(data)
    assert "không an toàn" in err.value.message_vi and "unsafe" in err.value.message_en


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_extract_never_writes_outside_the_folder(name: str, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(AttachmentError):
        extract_attachments((Attachment(name, b"evil", content_id="x"),), target)
    after = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert after == [p for p in before if p.is_file()] == []


def test_extract_does_not_follow_symlinks_out_of_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside.pdf"
    outside.write_bytes(b"original")
    folder = tmp_path / "out"
    folder.mkdir()
    os.symlink(outside, folder / "cv.pdf")
    with pytest.raises(AttachmentError):
        extract_attachments((Attachment("cv.pdf", b"new", content_id="x"),), folder)
    extract_attachments((Attachment("cv.pdf", b"new", content_id="x"),), folder, overwrite=True)
    assert outside.read_bytes() == b"original"
    assert not (folder / "cv.pdf").is_symlink() and (folder / "cv.pdf").read_bytes() == b"new"


def test_extract_keeps_duplicate_names_apart(tmp_path: Path) -> None:
    written = extract_attachments(
        (Attachment("cv.pdf", b"1", content_id="a"), Attachment("CV.pdf", b"2", content_id="b")), tmp_path
    )
    assert [p.name for p in written] == ["cv.pdf", "CV (2).pdf"]
    assert [p.read_bytes() for p in written] == [b"1", b"2"]
