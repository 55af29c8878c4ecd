"""Adapters around pyHanko's PDF reader for verification: speed, tolerance of real-world quirks, and guards.

Three things live here, each small and tested on its own:

* :func:`install_fast_hex_strings` — pyHanko reads hex strings, names and arrays one byte or one token at a
  time: ~25 ms for the 28 000 hex digits of a single B-LT signature's ``/Contents`` (read again by every pass
  over the signature dictionary), and most of the time of the difference analysis goes to names and number
  arrays (glyph widths). The replacements read blocks and convert the common, simple forms in one go; anything
  else (a comment, a stray byte, a reference, a missing delimiter) is handed to pyHanko's own function from
  the same position, so results — values, positions *and* errors — are exactly those of stock pyHanko
  (property-tested). Installed only in the process that runs the verifier core (the sandbox worker).
* :class:`TolerantReader` — a :class:`PdfFileReader` whose historical views follow the PDF rule that a
  reference to an object that does not exist is a reference to ``null`` (ISO 32000-1 §7.3.10). Stock pyHanko
  raises ``KeyError`` on such a reference during difference analysis (``dss__pades-ltv.pdf``, written by
  PDFBox, whose incremental updates copy a LibreOffice ``/AdditionalStreams`` trailer entry pointing at object
  numbers that do not exist yet). It also does not count a *dangling* reference made from a trailer key other
  than ``/Root``, ``/Info`` and ``/Encrypt`` as a use of the object later defined under that number: such keys
  are not part of the document anyone sees. Dangling references reachable from the catalog keep counting, so
  "define a previously dangling object after signing" is still caught.
* :func:`check_page_tree` — a bounded walk of the page tree that names loops and absurd depths (the
  ``circular-page-tree`` and PDF101 loop files) instead of looping.
"""

from __future__ import annotations

import binascii
import os
import re
from collections.abc import Iterator
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader

__all__ = ["PageTreeError", "TolerantReader", "check_page_tree", "install_fast_hex_strings"]

_HEX_AND_WS = b"0123456789abcdefABCDEF \n\r\t\f\x00"
_WS = b" \n\r\t\f\x00"
_stock_read_hex = generic.read_hex_string_from_stream


def fast_read_hex_string_from_stream(stream: Any) -> generic.ByteStringObject | generic.TextStringObject:
    """Drop-in replacement for :func:`pyhanko.pdf_utils.generic.read_hex_string_from_stream`."""
    start = stream.tell()
    stream.read(1)  # the '<'
    chunks: list[bytes] = []
    size = 8192
    while True:
        block = stream.read(size)
        if not block:
            break
        end = block.find(b">")
        if end < 0:
            chunks.append(block)
            size = min(size * 4, 1 << 22)
            continue
        chunks.append(block[:end])
        raw = b"".join(chunks)
        if raw.translate(None, _HEX_AND_WS):
            break  # anything unusual (a comment, a bad byte): let pyHanko decide, from the start
        stream.seek(end + 1 - len(block), os.SEEK_CUR)
        digits = raw.translate(None, _WS)
        if len(digits) % 2:
            digits += b"0"
        return generic.pdf_string(binascii.unhexlify(digits))
    stream.seek(start)
    return _stock_read_hex(stream)


_stock_read_array = generic.ArrayObject.read_from_stream
_PDF_WS = re.compile(rb"[ \n\r\t\f\x00]+")
_NUMBER = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def fast_read_array_from_stream(stream: Any, container_ref: Any,
                                in_content_stream: Any = generic.ContentOpReading.NO) -> generic.ArrayObject:
    """Drop-in replacement for :meth:`pyhanko.pdf_utils.generic.ArrayObject.read_from_stream`.

    Arrays of plain numbers (glyph widths, boxes, matrices: most of the objects the difference analysis reads)
    are converted in one go; anything else — a name, a reference, a nested array, a comment, an odd number —
    goes to pyHanko's own reader from the start.
    """
    if in_content_stream != generic.ContentOpReading.NO:
        return _stock_read_array(stream, container_ref, in_content_stream=in_content_stream)
    start = stream.tell()
    block = stream.read(1 << 16)
    end = block.find(b"]")
    if block[:1] == b"[" and end > 0:
        tokens = [t for t in _PDF_WS.split(block[1:end]) if t]
        if all(_NUMBER.fullmatch(t) for t in tokens):
            arr = generic.ArrayObject()
            for t in tokens:
                text = t.decode("ascii")
                value: generic.PdfObject = generic.FloatObject(text) if "." in text else generic.NumberObject(text)
                value.container_ref = container_ref
                arr.append(value)
            stream.seek(start + end + 1)
            return arr
    stream.seek(start)
    return _stock_read_array(stream, container_ref, in_content_stream=in_content_stream)


_stock_read_until_delimiter = generic.read_until_delimiter
_DELIMITER = re.compile(rb"[ \n\r\t\f\x00()<>\[\]{}/%]")


def fast_read_until_delimiter(stream: Any) -> bytes:
    """Drop-in replacement for pyHanko's ``read_until_delimiter`` (names, operators): the same bytes, the same
    final position (on the delimiter, or at the end of the data), found with one search instead of a generator
    reading one byte at a time."""
    start = stream.tell()
    chunks: list[bytes] = []
    size = 256
    while True:
        block = stream.read(size)
        m = _DELIMITER.search(block)
        if m is not None:
            chunks.append(block[: m.start()])
            consumed = sum(len(c) for c in chunks)
            stream.seek(start + consumed)
            return b"".join(chunks)
        chunks.append(block)
        if len(block) < size:  # end of the data: stock pyHanko stays there
            return b"".join(chunks)
        size = min(size * 4, 1 << 20)


def install_fast_hex_strings() -> bool:
    """Install :func:`fast_read_hex_string_from_stream` and :func:`fast_read_array_from_stream` into pyHanko's
    parser (idempotent).

    Returns False (and changes nothing) when pyHanko's parser no longer looks the way this was written for.
    """
    if generic.read_hex_string_from_stream is fast_read_hex_string_from_stream:
        return True
    if (generic.read_hex_string_from_stream is not _stock_read_hex or not hasattr(generic, "read_object")
            or not hasattr(generic, "ContentOpReading")
            or generic.read_until_delimiter is not _stock_read_until_delimiter):
        return False
    generic.read_hex_string_from_stream = fast_read_hex_string_from_stream
    generic.ArrayObject.read_from_stream = staticmethod(fast_read_array_from_stream)  # type: ignore[method-assign]
    generic.read_until_delimiter = fast_read_until_delimiter
    return True


# --------------------------------------------------------------------------------------------- reader
_VISIBLE_TRAILER_KEYS = frozenset({"/Root", "/Info", "/Encrypt"})


_CONTAINERS = (generic.DecryptedObjectProxy, generic.IndirectObject, generic.StreamObject, generic.DictionaryObject,
               generic.ArrayObject)


class _TolerantResolver(HistoricalResolver):
    def _subsume_object(self, obj: Any) -> Any:
        # pyHanko returns primitives (numbers, names, strings…) unchanged, after building a Reference it discards;
        # skipping that for the thousands of numbers in glyph-width arrays changes nothing else
        if not isinstance(obj, _CONTAINERS) and getattr(obj, "container_ref", None) is not None:
            return obj
        return super()._subsume_object(obj)

    def _collect_indirect_references(self, obj: Any, seen: Any, since_revision: Any = None) -> None:
        if isinstance(obj, generic.IndirectObject):
            try:
                self.reader.xrefs.get_introducing_revision(obj.reference)
            except KeyError:
                return  # never defined anywhere: a reference to null, nothing to collect
        super()._collect_indirect_references(obj, seen, since_revision)

    def _get_usages_of_ref(self, ref: generic.Reference) -> Any:
        usages = super()._get_usages_of_ref(ref)
        if not usages or self._defined_here(ref):
            return usages
        kept = {p for p in usages if _first_key(p) in _VISIBLE_TRAILER_KEYS}
        return kept

    def _defined_here(self, ref: generic.Reference) -> bool:
        try:
            return self.reader.xrefs.get_historical_ref(ref, self.revision) is not None
        except (KeyError, IndexError):
            return False


def _first_key(path: Any) -> str | None:
    try:
        first = next(iter(path.path))
    except (AttributeError, StopIteration, TypeError):
        return None
    return first if isinstance(first, str) else None


class TolerantReader(PdfFileReader):
    """:class:`PdfFileReader` with the dangling-reference rules above."""

    def get_historical_resolver(self, revision: int) -> HistoricalResolver:
        cache = self._historical_resolver_cache
        try:
            return cache[revision]
        except KeyError:
            res = _TolerantResolver(self, revision)
            cache[revision] = res
            return res


# --------------------------------------------------------------------------------------------- guards
class PageTreeError(ValueError):
    def __init__(self, vi: str, en: str) -> None:
        super().__init__(en)
        self.vi = vi
        self.en = en


MAX_PAGES = 100_000
MAX_DEPTH = 64


def check_page_tree(reader: PdfFileReader) -> int:
    """Walk ``/Root /Pages`` without trusting it; return the number of pages or raise :class:`PageTreeError`."""
    try:
        root = reader.root
        pages = root.raw_get("/Pages")
    except KeyError:
        raise PageTreeError("tệp PDF không có cây trang (/Pages)", "the PDF has no page tree (/Pages)") from None
    count = 0
    for _node in _walk(pages, ()):
        count += 1
        if count > MAX_PAGES:
            raise PageTreeError(
                f"tệp PDF có hơn {MAX_PAGES} trang", f"the PDF has more than {MAX_PAGES} pages (refused)"
            )
    if count == 0:
        raise PageTreeError("tệp PDF không có trang nào", "the PDF has no pages")
    return count


def _walk(node: Any, path: tuple[Any, ...]) -> Iterator[Any]:
    stack: list[tuple[Any, tuple[Any, ...]]] = [(node, path)]
    seen_nodes = 0
    while stack:
        node, path = stack.pop()
        ref = node.reference if isinstance(node, generic.IndirectObject) else None
        if ref is not None:
            key = (ref.idnum, ref.generation)
            if key in path:
                raise PageTreeError(
                    f"cây trang có vòng lặp (đối tượng {ref.idnum} {ref.generation} R)",
                    f"the page tree loops (object {ref.idnum} {ref.generation} R)",
                )
            path = (*path, key)
        if len(path) > MAX_DEPTH:
            raise PageTreeError("cây trang lồng quá sâu", "the page tree is nested too deeply")
        seen_nodes += 1
        if seen_nodes > 4 * MAX_PAGES:
            raise PageTreeError("cây trang quá lớn", "the page tree is too large")
        obj = node.get_object() if isinstance(node, generic.IndirectObject) else node
        if not isinstance(obj, generic.DictionaryObject):
            raise PageTreeError("nút cây trang không phải từ điển", "a page tree node is not a dictionary")
        kids = obj.get("/Kids") if "/Kids" in obj else None
        node_type = obj.get("/Type")
        if kids is None or node_type == "/Page":
            yield obj
            continue
        kids_obj = kids.get_object() if isinstance(kids, generic.IndirectObject) else kids
        if not isinstance(kids_obj, generic.ArrayObject):
            raise PageTreeError("/Kids không phải mảng", "/Kids is not an array")
        for kid in reversed(list(kids_obj.raw_get(i) for i in range(len(kids_obj)))):
            stack.append((kid, path))
