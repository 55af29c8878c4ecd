"""Safe XML input for edXML: limits, the prolog check, and a streaming parser that never holds payloads as text.

Every packet is parsed by lxml with entities, DTDs and network access off. Any DOCTYPE is refused before the
parser sees it (and again by the parser target, for encodings the byte scan cannot read). Our own limits on
depth, element count, attribute count and text size apply to every parse; the base64 payloads of attachments
stream through a strict decoder in chunks, so a 20 MB attachment is never a 27 MB Python string.
"""

from __future__ import annotations

import binascii
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from lxml import etree

from docexchange.edxml.model import QCVN_NS, PacketWarning, WarningCode
from docexchange.errors import AttachmentError, EdxmlError, MalformedXml, PacketTooLarge, UnsafeXml

__all__ = [
    "DSIG_NS",
    "FILTER2_NS",
    "QCVN_NS",
    "MiB",
    "Payload",
    "ReadLimits",
    "StreamTarget",
    "local",
    "malformed",
    "namespace",
    "parse_native",
    "prepare",
    "stream_parse",
]

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
FILTER2_NS = "http://www.w3.org/2002/06/xmldsig-filter2"
MiB = 1024 * 1024

PAYLOAD_ELEMENTS = frozenset({"ContentTransferEncoded", "AttachmentData"})
"""Elements whose text is an attachment in base64 (standard layout, gateway layout)."""

_FEED_CHUNK = 256 * 1024
_HUGE_THRESHOLD = 8 * MiB
"""Above this size a full (native) parse needs libxml2's huge mode: one text node may exceed its 10 MB cap."""


@dataclass(frozen=True)
class ReadLimits:
    """Limits applied to every packet read. Defaults fit the national axis' 50 MB packets."""

    max_packet_bytes: int = 50 * MiB
    """Largest packet accepted at all (``[exchange] max_packet_mb``)."""
    max_depth: int = 48
    """Deepest element nesting (real packets are about 8 deep)."""
    max_elements: int = 100_000
    max_attributes: int = 32
    """Attributes on one element."""
    max_text_bytes: int = 4 * MiB
    """Text outside attachment payloads (header, manifest, names), in characters."""
    max_prolog_bytes: int = 64 * 1024
    max_leading_junk: int = 1024
    """Stray bytes tolerated before ``<?xml`` (some senders write a few)."""
    max_attachments: int = 100
    max_attachment_bytes: int = 100 * MiB
    """One attachment, decoded and unzipped."""
    max_total_attachment_bytes: int = 200 * MiB
    max_zip_ratio: int = 100
    """Largest decompressed/compressed ratio of a wrapped attachment (above ``zip_ratio_floor``)."""
    zip_ratio_floor: int = MiB
    """Small files may compress better than the ratio allows (a page of zeros): the ratio applies above this."""

    @classmethod
    def for_packet_size(cls, max_packet_mb: int) -> ReadLimits:
        """Limits for a node configured with ``[exchange] max_packet_mb``."""
        size = max_packet_mb * MiB
        return cls(max_packet_bytes=size, max_attachment_bytes=2 * size, max_total_attachment_bytes=4 * size)


def local(el: Any) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def namespace(el: Any) -> str | None:
    tag = el.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].split("}", 1)[0]
    return None


def _warn(code: WarningCode, vi: str, en: str) -> PacketWarning:
    return PacketWarning(code, vi, en)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_WS = b" \t\r\n"


def prepare(data: bytes, limits: ReadLimits) -> tuple[int, list[PacketWarning]]:
    """Check size, skip stray leading bytes, refuse a DOCTYPE. Returns where the XML starts, and warnings."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EdxmlError("Gói tin phải là dữ liệu nhị phân (bytes)", "a packet must be bytes")
    size = len(data)
    if size > limits.max_packet_bytes:
        raise PacketTooLarge(
            f"Gói tin dài {size} byte, vượt giới hạn {limits.max_packet_bytes} byte",
            f"packet is {size} bytes, over the limit of {limits.max_packet_bytes} bytes",
        )
    if size == 0:
        raise MalformedXml("Gói tin rỗng (dòng 1, cột 1)", "empty packet (line 1, column 1)")
    warnings: list[PacketWarning] = []
    head = bytes(data[: limits.max_leading_junk + 8])
    if head.startswith(_UTF16_BOMS):
        return 0, warnings  # the parser target refuses a DOCTYPE in encodings this scan cannot read
    start = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    if head[start : start + 1] != b"<":
        lt = head.find(b"<", start)
        if lt < 0 or lt - start > limits.max_leading_junk:
            raise MalformedXml(
                "Không phải tài liệu XML: không thấy thẻ mở '<' ở đầu tệp (dòng 1, cột 1)",
                "not an XML document: no '<' at the start (line 1, column 1)",
            )
        junk = head[start:lt]
        shown = junk[:40].decode("utf-8", "replace")
        warnings.append(
            _warn(
                WarningCode.LEADING_JUNK,
                f"Bỏ qua {len(junk)} byte lạ trước phần khai báo XML: {shown!r}",
                f"skipped {len(junk)} stray bytes before the XML declaration: {shown!r}",
            )
        )
        start = lt
    _check_prolog(data, start, limits)
    return start, warnings


def _check_prolog(data: bytes, start: int, limits: ReadLimits) -> None:
    """Walk the prolog (declaration, comments, PIs) up to the root start tag; refuse any ``<!DOCTYPE``."""
    end = min(len(data), start + limits.max_prolog_bytes)
    view = bytes(data[start:end])
    pos = 0
    while True:
        while pos < len(view) and view[pos] in _WS:
            pos += 1
        if pos >= len(view):
            if end < len(data):
                raise UnsafeXml(
                    f"Phần mở đầu XML dài hơn {limits.max_prolog_bytes} byte",
                    f"the XML prolog is longer than {limits.max_prolog_bytes} bytes",
                )
            return
        if view.startswith(b"<?", pos):
            close = view.find(b"?>", pos)
            if close < 0:
                pos = len(view)
                continue
            pos = close + 2
        elif view.startswith(b"<!--", pos):
            close = view.find(b"-->", pos + 4)
            if close < 0:
                pos = len(view)
                continue
            pos = close + 3
        elif view.startswith(b"<!", pos):
            if view[pos : pos + 9].upper() == b"<!DOCTYPE":
                raise UnsafeXml(
                    "Gói tin có khai báo DOCTYPE: không được phép (chống tấn công thực thể XML)",
                    "the packet has a DOCTYPE declaration, which is refused (XML entity attacks)",
                )
            return  # anything else is not well-formed; the parser says where
        else:
            return


def malformed(exc: etree.XMLSyntaxError, data: bytes, start: int) -> MalformedXml:
    """Turn an lxml syntax error into MalformedXml naming the line and column of the first real error."""
    line, column, message = None, None, str(exc)
    log = getattr(exc, "error_log", None)
    entries = list(log) if log is not None else []
    chosen = None
    for entry in entries:
        if entry.level_name in ("FATAL", "ERROR") and entry.domain_name == "PARSER":
            chosen = entry
            break
    if chosen is None:
        for entry in entries:
            if entry.level_name in ("FATAL", "ERROR"):
                chosen = entry
                break
    if chosen is not None:
        line, column, message = chosen.line, chosen.column, chosen.message
    elif getattr(exc, "position", None):
        line, column = exc.position
    line_offset = bytes(data[:start]).count(b"\n")
    line = (line or 1) + line_offset
    column = column or 1
    message = (message or "").strip()
    return MalformedXml(
        f"Gói tin không phải XML hợp lệ (dòng {line}, cột {column}): {message}",
        f"the packet is not well-formed XML (line {line}, column {column}): {message}",
    )


class Payload:
    """A base64 payload decoded while it streams: strict alphabet, padding only at the end, bounded size."""

    def __init__(self, limit: int, *, keep: bool = True) -> None:
        self._limit = limit
        self._keep = keep
        self._buf = io.BytesIO()
        self._rest = b""
        self._padded = False
        self._sha = hashlib.sha256()
        self.encoded_chars = 0
        self.size = 0
        self.data = b""
        self.sha256 = ""

    def feed(self, text: str) -> None:
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise AttachmentError(
                "Tệp đính kèm có ký tự không thuộc bảng mã base64",
                "attachment payload contains characters outside the base64 alphabet",
            ) from None
        if b"\n" in raw or b"\r" in raw or b" " in raw or b"\t" in raw:
            raw = raw.translate(None, _WS)
        if not raw:
            return
        if self._padded:
            raise AttachmentError(
                "Dữ liệu base64 của tệp đính kèm còn tiếp sau ký tự đệm '='",
                "attachment base64 continues after its '=' padding",
            )
        self.encoded_chars += len(raw)
        if self.encoded_chars // 4 * 3 > self._limit:
            raise PacketTooLarge(
                f"Tệp đính kèm vượt giới hạn {self._limit} byte (tính theo độ dài base64, chưa giải mã)",
                f"attachment exceeds the limit of {self._limit} bytes (judged by its base64 length, before decoding)",
            )
        if self._rest:
            raw = self._rest + raw
        cut = len(raw) - len(raw) % 4
        block, self._rest = raw[:cut], raw[cut:]
        if not block:
            return
        # Strict base64, checked at C speed: only the alphabet, '=' only as the final padding.
        if block.translate(None, _B64_ALPHABET):
            raise AttachmentError(
                "Dữ liệu base64 của tệp đính kèm có ký tự không hợp lệ",
                "attachment payload is not valid base64 (characters outside the alphabet)",
            )
        eq = block.find(b"=")
        if eq != -1:
            if eq < len(block) - 2 or block[eq:] not in (b"=", b"=="):
                raise AttachmentError(
                    "Dữ liệu base64 của tệp đính kèm có ký tự đệm '=' sai chỗ",
                    "attachment base64 has '=' padding in the wrong place",
                )
            self._padded = True
        decoded = binascii.a2b_base64(block)
        self.size += len(decoded)
        self._sha.update(decoded)
        if self._keep:
            self._buf.write(decoded)

    def finish(self) -> None:
        if self._rest:
            raise AttachmentError(
                "Dữ liệu base64 của tệp đính kèm bị cắt cụt (độ dài không chia hết cho 4)",
                "attachment base64 is truncated (its length is not a multiple of 4)",
            )
        self.sha256 = self._sha.hexdigest()
        if self._keep:
            self.data = self._buf.getvalue()
        self._buf = io.BytesIO()


class StreamTarget:
    """lxml parser target: builds a tree of everything but the attachment payloads, within :class:`ReadLimits`.

    ``decode`` decides what happens to a payload: ``True`` decodes it (reader), ``False`` only checks its size.
    With ``build=False`` no tree is built (a pure safety scan).
    """

    def __init__(self, limits: ReadLimits, *, build: bool = True, decode: bool = True) -> None:
        self._limits = limits
        self._tb = etree.TreeBuilder() if build else None
        self._decode = decode
        self._stack: list[str] = []
        self._default_ns: list[str | None] = [None]
        self._elements = 0
        self._text = 0
        self._payload: Payload | None = None
        self._payload_depth = -1
        self.payloads: list[tuple[Any, Payload]] = []
        self.undeclared: list[str] = []
        self.no_namespace = False
        self.error: BaseException | None = None

    # -- helpers
    def _fail(self, exc: BaseException) -> BaseException:
        self.error = exc
        return exc

    def _count_text(self, n: int) -> None:
        self._text += n
        if self._text > self._limits.max_text_bytes:
            raise self._fail(
                UnsafeXml(
                    f"Phần văn bản ngoài tệp đính kèm vượt {self._limits.max_text_bytes} ký tự",
                    f"text outside attachments exceeds {self._limits.max_text_bytes} characters",
                )
            )

    # -- SAX target interface
    def start(self, tag: str, attrib: Any, nsmap: Any = None) -> None:
        if self.error is not None:
            raise self.error
        depth = len(self._stack) + 1
        if depth > self._limits.max_depth:
            raise self._fail(
                UnsafeXml(
                    f"Gói tin lồng sâu quá {self._limits.max_depth} cấp",
                    f"the packet nests elements deeper than {self._limits.max_depth} levels",
                )
            )
        self._elements += 1
        if self._elements > self._limits.max_elements:
            raise self._fail(
                UnsafeXml(
                    f"Gói tin có quá {self._limits.max_elements} phần tử",
                    f"the packet has more than {self._limits.max_elements} elements",
                )
            )
        if attrib is not None and len(attrib) > self._limits.max_attributes:
            raise self._fail(
                UnsafeXml(
                    f"Một phần tử có quá {self._limits.max_attributes} thuộc tính",
                    f"an element has more than {self._limits.max_attributes} attributes",
                )
            )
        if self._payload is not None:
            raise self._fail(
                EdxmlError(
                    "Dữ liệu tệp đính kèm chứa phần tử con", "an attachment payload contains child elements"
                )
            )
        nsmap = dict(nsmap or {})
        default = self._default_ns[-1]
        if "" in nsmap:
            default = nsmap[""] or None
        self._default_ns.append(default)
        name = tag.rsplit("}", 1)[-1]
        if not tag.startswith("{"):
            if default is not None:
                # An unprefixed element would have taken the default namespace: this one had a prefix nobody
                # declared (libxml2 reports it and carries on).
                self.undeclared.append(name)
            else:
                self.no_namespace = True
        if attrib is not None:
            self._count_text(sum(len(k) + len(v) for k, v in attrib.items()))
        parent = self._stack[-1] if self._stack else ""
        self._stack.append(name)
        if name in PAYLOAD_ELEMENTS and parent == "Attachment":
            self._payload = Payload(self._limits.max_attachment_bytes, keep=self._decode)
            self._payload_depth = depth
            if len(self.payloads) >= self._limits.max_attachments:
                raise self._fail(
                    UnsafeXml(
                        f"Gói tin có quá {self._limits.max_attachments} tệp đính kèm",
                        f"the packet has more than {self._limits.max_attachments} attachments",
                    )
                )
        if self._tb is not None:
            self._tb.start(tag, dict(attrib or {}), {(k or None): v for k, v in nsmap.items()})

    def end(self, tag: str) -> None:
        if self.error is not None:
            raise self.error
        element = None
        payload = None
        if self._payload is not None and len(self._stack) == self._payload_depth:
            payload, self._payload = self._payload, None
            try:
                payload.finish()
            except EdxmlError as exc:
                raise self._fail(exc) from None
        if self._tb is not None:
            element = self._tb.end(tag)
        if payload is not None:
            self.payloads.append((element, payload))
        name = self._stack.pop()
        self._default_ns.pop()
        if name == "AttachmentSize" and self._stack and self._stack[-1] == "Attachment" and element is not None:
            self._check_declared_size(element.text or "")

    def _check_declared_size(self, text: str) -> None:
        text = text.strip()
        if text.isdigit() and int(text) > self._limits.max_attachment_bytes:
            raise self._fail(
                PacketTooLarge(
                    f"Tệp đính kèm khai báo kích thước {int(text)} byte, vượt giới hạn "
                    f"{self._limits.max_attachment_bytes} byte",
                    f"an attachment declares {int(text)} bytes, over the limit of "
                    f"{self._limits.max_attachment_bytes} bytes",
                )
            )

    def data(self, text: str) -> None:
        if self.error is not None:
            raise self.error
        if self._payload is not None:
            try:
                self._payload.feed(text)
            except EdxmlError as exc:
                raise self._fail(exc) from None
            return
        self._count_text(len(text))
        if self._tb is not None:
            self._tb.data(text)

    def comment(self, text: str) -> None:
        self._count_text(len(text))

    def pi(self, target: str, data: str | None = None) -> None:
        self._count_text(len(target) + len(data or ""))

    def doctype(self, *args: Any) -> None:
        raise self._fail(
            UnsafeXml(
                "Gói tin có khai báo DOCTYPE: không được phép (chống tấn công thực thể XML)",
                "the packet has a DOCTYPE declaration, which is refused (XML entity attacks)",
            )
        )

    def close(self) -> Any:
        if self.error is not None or self._tb is None:
            return None
        return self._tb.close()


def _parser_options() -> dict[str, Any]:
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "dtd_validation": False,
        "attribute_defaults": False,
        "collect_ids": False,
    }


def stream_parse(data: bytes, start: int, target: StreamTarget) -> Any:
    """Feed ``data[start:]`` to a parser driving ``target``; returns the root element (or None)."""
    parser = etree.XMLParser(target=target, huge_tree=False, **_parser_options())
    etree.clear_error_log()  # the error log is per thread: only this parse's errors may name the line
    view = memoryview(data)
    try:
        for offset in range(start, len(data), _FEED_CHUNK):
            parser.feed(bytes(view[offset : offset + _FEED_CHUNK]))
        return parser.close()
    except etree.XMLSyntaxError as exc:
        if target.error is not None:
            raise target.error from None
        raise malformed(exc, data, start) from None
    except EdxmlError:
        raise
    except Exception as exc:
        if target.error is not None:
            raise target.error from None
        raise MalformedXml(
            f"Không đọc được gói tin XML: {exc}", f"the packet could not be parsed as XML: {exc}"
        ) from exc


def parse_native(data: bytes, limits: ReadLimits) -> tuple[Any, int]:
    """A full lxml tree (for schema validation and legacy signatures), after the same safety checks.

    Returns ``(tree, start)``. The streaming scan runs first so our limits and the DOCTYPE refusal apply;
    libxml2's huge mode is switched on only for packets large enough to need it.
    """
    start, _ = prepare(data, limits)
    stream_parse(data, start, StreamTarget(limits, build=False, decode=False))
    huge = len(data) - start > _HUGE_THRESHOLD
    parser = etree.XMLParser(huge_tree=huge, remove_blank_text=False, **_parser_options())
    etree.clear_error_log()
    try:
        body = data if start == 0 else bytes(memoryview(data)[start:])
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise malformed(exc, data, start) from None
    return root.getroottree(), start

