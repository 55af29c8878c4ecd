"""Appending a node's TraceHeader to a packet, cheaply, at every hop.

The first node a packet enters (where the packet is fully parsed and checked anyway) appends its TraceHeader
with the parser-guided splice of :func:`docexchange.edxml.writer.append_trace` and learns from the result *where*
TraceHeaders go in this packet and how they are spelled (prefix, namespace declaration). That splice point
travels with the packet to the next nodes (in the transfer metadata, from an authenticated peer), and each of
them inserts its own TraceHeader there with a plain byte splice: no re-parse of a packet the previous hop
already checked. Before splicing, a node checks that the bytes right before the point close a TraceHeader; if
they do not, it falls back to the parser-guided splice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docexchange.directory import parse_code
from docexchange.edxml.model import TraceHeader
from docexchange.edxml.writer import append_trace, format_timestamp
from docexchange.errors import InvalidPacket

__all__ = ["TraceSplice", "append_fast", "append_first", "append_known", "splice_from_diff"]


@dataclass(frozen=True)
class TraceSplice:
    offset: int
    """Byte offset right after the last ``</…TraceHeader>``."""
    open_tag: str
    """The opening tag to write, e.g. ``<edXML:TraceHeader>`` (with a namespace declaration if one is needed)."""

    @property
    def prefix(self) -> str:
        name = self.open_tag[1:].split(">", 1)[0].split(" ", 1)[0]
        return name[: -len("TraceHeader")]

    @property
    def close_tag(self) -> bytes:
        return f"</{self.prefix}TraceHeader>".encode()

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "open_tag": self.open_tag}

    @classmethod
    def from_json(cls, data: Any) -> TraceSplice | None:
        if not isinstance(data, dict):
            return None
        try:
            offset, tag = int(data["offset"]), str(data["open_tag"])
        except (KeyError, TypeError, ValueError):
            return None
        if offset < 0 or not tag.startswith("<") or not tag.endswith(">") or "TraceHeader" not in tag:
            return None
        return cls(offset, tag)


def _block(splice: TraceSplice, organ_id: str, at: datetime) -> bytes:
    p = splice.prefix
    return (
        f"{splice.open_tag}<{p}OrganId>{organ_id}</{p}OrganId>"
        f"<{p}Timestamp>{format_timestamp(at)}</{p}Timestamp></{p}TraceHeader>"
    ).encode()


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:  # binary search on slice equality: memcmp speed
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    lo, hi = 0, min(len(a), len(b), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def splice_from_diff(before: bytes, after: bytes) -> TraceSplice:
    """Where the next TraceHeader goes, learnt from a packet before and after one was inserted."""
    inserted = len(after) - len(before)
    if inserted <= 0:
        raise InvalidPacket("Không thấy TraceHeader vừa chèn", "no inserted TraceHeader found")
    i = _common_prefix(before, after)
    s = _common_suffix(before, after, len(before) - 0)
    lo = max(0, len(before) - s)
    for pos in range(min(i, len(before)), lo - 1, -1):
        block = after[pos : pos + inserted]
        if block[:1] != b"<" or after[:pos] != before[:pos] or after[pos + inserted :] != before[pos:]:
            continue
        text = block.decode("utf-8", errors="replace")
        start = _find_open(text)
        if start is None:
            continue
        open_tag = text[start : text.index(">", start) + 1]
        splice = TraceSplice(0, open_tag)
        close = splice.close_tag
        end = block.rfind(close)
        if end < 0:
            continue
        return TraceSplice(pos + end + len(close), open_tag)
    raise InvalidPacket("Không xác định được vị trí TraceHeader", "cannot locate the inserted TraceHeader")


_OPEN = re.compile(r"<(?:[A-Za-z_][A-Za-z0-9_.-]*:)?TraceHeader[\s>]")


def _find_open(text: str) -> int | None:
    m = _OPEN.search(text)
    return m.start() if m else None


_HEADER_END = re.compile(rb"</(?:[A-Za-z_][A-Za-z0-9_.-]*:)?edXMLHeader\s*>")
_TH_CLOSE = re.compile(rb"</((?:[A-Za-z_][A-Za-z0-9_.-]*:)?)TraceHeader\s*>")
_TH_OPEN = re.compile(rb"<((?:[A-Za-z_][A-Za-z0-9_.-]*:)?)TraceHeader(\s[^>]*)?>")
_LIST_OPEN = re.compile(rb"<((?:[A-Za-z_][A-Za-z0-9_.-]*:)?)TraceHeaderList(\s[^>]*)?>")
_HEADER_SCAN = 256 * 1024


def splice_in_checked(data: bytes) -> TraceSplice | None:
    """Where the next TraceHeader goes in a packet that was **just parsed and validated** by the reader (so it has
    no DOCTYPE or entities), found from the header's markup alone: after the last ``TraceHeader``, or first in
    an existing ``TraceHeaderList``. None when the header holds CDATA, comments or processing instructions
    (where ``<`` need not open a tag), declares namespaces on TraceHeader elements, or has no list: the
    parser-guided splice handles those."""
    m = _HEADER_END.search(data, 0, min(len(data), _HEADER_SCAN))
    if m is None:
        return None
    header = data[: m.start()]
    head_start = header.find(b"edXMLHeader")
    if head_start < 0 or any(tok in header[head_start:] for tok in (b"<![CDATA[", b"<!--", b"<?")):
        return None
    closes = list(_TH_CLOSE.finditer(header, head_start))
    if closes:
        last = closes[-1]
        opens = [o for o in _TH_OPEN.finditer(header, head_start, last.start())]
        if not opens or opens[-1].group(1) != last.group(1) or (opens[-1].group(2) or b"").strip():
            return None
        prefix = last.group(1).decode()
        return TraceSplice(last.end(), f"<{prefix}TraceHeader>")
    lists = list(_LIST_OPEN.finditer(header, head_start))
    if len(lists) != 1 or (lists[0].group(2) or b"").strip():
        return None
    if header[lists[0].end() - 2 : lists[0].end()] == b"/>":
        return None
    prefix = lists[0].group(1).decode()
    return TraceSplice(lists[0].end(), f"<{prefix}TraceHeader>")


def append_first(data: bytes, organ_id: str, at: datetime, *, checked: bool = False) -> tuple[bytes, TraceSplice]:
    """The first node's append, returning the splice point for the next ones. ``checked``: ``data`` has just
    been parsed and validated by the reader, so the header's markup can be read directly; otherwise (or when
    that is not conclusive) the parser-guided splice of :func:`~docexchange.edxml.writer.append_trace`."""
    if checked:
        point = splice_in_checked(data)
        if point is not None:
            return append_at(data, point, organ_id, at)
    out = append_trace(data, TraceHeader(organ_id, at))
    return out, splice_from_diff(data, out)


def append_at(data: bytes, point: TraceSplice, organ_id: str, at: datetime) -> tuple[bytes, TraceSplice]:
    """Insert a TraceHeader at ``point`` found by :func:`splice_in_checked` on these very bytes."""
    parse_code(organ_id)
    block = _block(point, organ_id, at)
    out = data[: point.offset] + block + data[point.offset :]
    return out, TraceSplice(point.offset + len(block), point.open_tag)


def append_fast(data: bytes, splice: TraceSplice | None, organ_id: str, at: datetime) -> tuple[bytes, TraceSplice]:
    """Byte splice at ``splice`` when the bytes there close a TraceHeader; else the parser-guided append."""
    parse_code(organ_id)  # codes are [0-9A-Z.]: nothing to escape
    if splice is not None and 0 < splice.offset <= len(data):
        close = splice.close_tag
        if data[splice.offset - len(close) : splice.offset] == close:
            block = _block(splice, organ_id, at)
            out = data[: splice.offset] + block + data[splice.offset :]
            return out, TraceSplice(splice.offset + len(block), splice.open_tag)
    return append_first(data, organ_id, at)


def append_known(data: bytes, organ_id: str, at: datetime, prefix: str = "edXML:") -> tuple[bytes, TraceSplice]:
    """For packets this node just wrote with its own TraceHeader already inside: find that header exactly."""
    p = re.escape(prefix.encode())
    ts = re.escape(format_timestamp(at).encode())
    pattern = re.compile(
        rb"<" + p + rb"TraceHeader>\s*<" + p + rb"OrganId>" + re.escape(organ_id.encode()) + rb"</" + p
        + rb"OrganId>\s*<" + p + rb"Timestamp>" + ts + rb"</" + p + rb"Timestamp>\s*</" + p + rb"TraceHeader>"
    )
    m = pattern.search(data, 0, min(len(data), 2 * 1024 * 1024))
    if m is None:
        raise InvalidPacket("Không thấy TraceHeader của trục trong gói tin vừa tạo",
                            "the node's own TraceHeader is not in the packet it just wrote")
    return data, TraceSplice(m.end(), f"<{prefix}TraceHeader>")
