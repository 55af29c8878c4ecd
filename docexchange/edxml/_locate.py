"""Byte-exact positions of tags in a packet, found by the XML parser itself (never by searching for text).

Splicing a TraceHeader or a Signature into a packet must not re-encode megabytes of attachments, so we edit
bytes. To know *where*, the header is fed to lxml's pull parser: first in chunks to learn which events exist,
then one byte at a time over the chunk where a wanted event fired. libxml2 reports a start or end event as soon
as it has read the tag's closing ``>``, so the number of bytes fed at that moment is the exact end of the tag,
whatever comments, CDATA or odd spacing surround it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from docexchange.edxml._xml import namespace
from docexchange.errors import EdxmlError, MalformedXml

__all__ = ["Mark", "Scan", "locate", "scan", "tag_bounds"]

_CHUNK = 4096


@dataclass(frozen=True)
class Mark:
    """One parser event: a start or end tag, where it sits in the element tree."""

    seq: int
    event: str
    """``start`` or ``end``."""
    path: tuple[str, ...]
    """Local names from the root down to this element."""
    namespace: str | None
    prefix: str | None
    nsmap: dict[str | None, str] = field(hash=False, compare=False)
    chunk: int = 0


@dataclass(frozen=True)
class Scan:
    marks: tuple[Mark, ...]
    complete: bool
    """True when ``until`` matched (the scan did not stop at the byte limit or the end of the data)."""


def _parser() -> Any:
    return etree.XMLPullParser(
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        collect_ids=False,
        huge_tree=False,
    )


def scan(
    data: bytes,
    start: int,
    *,
    until: Callable[[Mark], bool],
    limit: int,
) -> Scan:
    """Parse from ``start`` in chunks, recording every event until ``until(mark)`` or ``limit`` bytes."""
    parser = _parser()
    marks: list[Mark] = []
    path: list[str] = []
    seq = 0
    end = min(len(data), start + limit)
    chunk = 0
    offset = start
    try:
        while offset < end:
            parser.feed(data[offset : min(offset + _CHUNK, end)])
            offset += _CHUNK
            for event, el in parser.read_events():
                name = etree.QName(el).localname
                if event == "start":
                    path.append(name)
                mark = Mark(seq, event, tuple(path), namespace(el), el.prefix, dict(el.nsmap), chunk)
                if event == "end":
                    path.pop()
                marks.append(mark)
                seq += 1
                if until(mark):
                    return Scan(tuple(marks), True)
            chunk += 1
    except etree.XMLSyntaxError as exc:
        raise MalformedXml(
            f"Gói tin không phải XML hợp lệ: {exc}", f"the packet is not well-formed XML: {exc}"
        ) from None
    return Scan(tuple(marks), False)


def locate(data: bytes, start: int, mark: Mark) -> int:
    """The byte offset just after the ``>`` of the tag that produced ``mark`` (found by a second parse)."""
    chunk = mark.chunk
    while True:
        begin = start + chunk * _CHUNK
        parser = _parser()
        seen = 0
        try:
            if begin > start:
                parser.feed(data[start:begin])
                seen = sum(1 for _ in parser.read_events())
            if seen > mark.seq:
                if chunk == 0:
                    break
                chunk -= 1
                continue
            for pos in range(begin, min(len(data), begin + 2 * _CHUNK)):
                parser.feed(data[pos : pos + 1])
                seen += sum(1 for _ in parser.read_events())
                if seen > mark.seq:
                    if data[pos : pos + 1] != b">":
                        break
                    return pos + 1
        except etree.XMLSyntaxError as exc:
            raise MalformedXml(
                f"Gói tin không phải XML hợp lệ: {exc}", f"the packet is not well-formed XML: {exc}"
            ) from None
        break
    raise EdxmlError(
        "Không xác định được vị trí thẻ trong gói tin", "could not find the exact position of a tag in the packet"
    )


def tag_bounds(data: bytes, after: int) -> tuple[int, int]:
    """``(begin, end)`` of the tag whose ``>`` is at ``after - 1``: ``<`` never occurs inside a tag."""
    begin = data.rfind(b"<", 0, after)
    if begin < 0:
        raise EdxmlError("Không tìm thấy thẻ trong gói tin", "tag not found in the packet")
    return begin, after
