"""The pyHanko adapters: the fast hex-string reader gives exactly stock pyHanko's results; dangling references
are read as null; page-tree loops are named."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic, misc
from verify_support import CHAIRMAN, CORPUS, raw_sign

from docexchange.pki.devpki import DevPki
from docexchange.verify import Verifier, _pdfcompat
from docexchange.verify._pdfcompat import PageTreeError, TolerantReader, check_page_tree
from docexchange.verify.report import Outcome


def _stock(data: bytes) -> tuple[object, int]:
    stream = io.BytesIO(data)
    try:
        value: object = _pdfcompat._stock_read_hex(stream)
    except misc.PdfError as exc:
        value = ("error", type(exc).__name__, str(exc))
    return value, stream.tell()


def _fast(data: bytes) -> tuple[object, int]:
    stream = io.BytesIO(data)
    try:
        value: object = _pdfcompat.fast_read_hex_string_from_stream(stream)
    except misc.PdfError as exc:
        value = ("error", type(exc).__name__, str(exc))
    return value, stream.tell()


def _same(a: tuple[object, int], b: tuple[object, int]) -> bool:
    (va, pa), (vb, pb) = a, b
    if pa != pb or type(va) is not type(vb):
        return False
    if isinstance(va, (generic.ByteStringObject, generic.TextStringObject)):
        return va.original_bytes == vb.original_bytes and str(va) == str(vb)  # type: ignore[union-attr]
    return va == vb


_ALPHABET = st.sampled_from(list(b"0123456789abcdefABCDEF \n\r\t\f\x00%>gz<()"))


@settings(max_examples=400, deadline=None)
@given(body=st.lists(_ALPHABET, max_size=80).map(bytes), tail=st.binary(max_size=10))
def test_fast_hex_reader_is_stock_pyhanko(body: bytes, tail: bytes) -> None:
    data = b"<" + body + tail
    assert _same(_fast(data), _stock(data)), data


@pytest.mark.parametrize("data", [b"<>", b"<0>", b"<FEFF0041>rest", b"<41 42\n43>", b"<41%comment>\n42>",
                                  b"<4G>", b"<414243", b"<" + b"ab" * 100_000 + b"> trailer"])
def test_fast_hex_reader_cases(data: bytes) -> None:
    assert _same(_fast(data), _stock(data))


def _run(fn: object, data: bytes, *args: object) -> tuple[object, int]:
    stream = io.BytesIO(data)
    try:
        value: object = fn(stream, *args)  # type: ignore[operator]
    except Exception as exc:  # the same error, or none, from both
        value = ("error", type(exc).__name__, str(exc))
    return value, stream.tell()


def _deep(value: object) -> object:
    """Comparable form of a parsed object: type, value, container reference."""
    if isinstance(value, list):
        return [type(value).__name__, [_deep(v) for v in value]]
    if isinstance(value, (generic.NumberObject, generic.FloatObject)):
        return [type(value).__name__, str(value), repr(getattr(value, "container_ref", None))]
    return [type(value).__name__, repr(value)]


_ARRAY_ALPHABET = st.sampled_from([b"0", b"7", b"12", b"-", b"+", b".", b"5.", b".5", b" ", b"\n", b"\x00", b"\x0b",
                                   b"/N", b" R", b"[", b"]", b"%c\n", b"(s)", b"<41>", b"e", b"1 0 R"])


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(_ARRAY_ALPHABET, max_size=14), tail=st.sampled_from([b"]", b"] 1 0 R", b"", b"]x"]))
def test_fast_array_reader_is_stock_pyhanko(parts: list[bytes], tail: bytes) -> None:
    data = b"[" + b"".join(parts) + tail
    ref = generic.Reference(5, 0)
    fast = _run(_pdfcompat.fast_read_array_from_stream, data, ref)
    stock = _run(_pdfcompat._stock_read_array, data, ref)
    assert fast[1] == stock[1], data
    assert _deep(fast[0]) == _deep(stock[0]), data


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=40), size=st.sampled_from([0, 1, 300, 1200]))
def test_fast_delimiter_reader_is_stock_pyhanko(body: bytes, size: int) -> None:
    data = body + b"a" * size + body
    assert _run(_pdfcompat.fast_read_until_delimiter, data) == _run(
        _pdfcompat._stock_read_until_delimiter, data)


def test_install_is_idempotent() -> None:
    assert _pdfcompat.install_fast_hex_strings()
    assert _pdfcompat.install_fast_hex_strings()
    assert generic.read_hex_string_from_stream is _pdfcompat.fast_read_hex_string_from_stream


def test_dangling_trailer_references_do_not_crash_the_diff() -> None:
    """dss__pades-ltv.pdf: stock pyHanko raises KeyError(Reference(60, 0)) in the difference analysis."""
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult

    data = (CORPUS / "valid/dss__pades-ltv.pdf").read_bytes()
    reader = TolerantReader(io.BytesIO(data), strict=False)
    result = DEFAULT_DIFF_POLICY.review_file(reader, 1)
    assert isinstance(result, DiffResult)


def test_dangling_reference_from_the_page_still_counts(verifier: Verifier, dev_pki: DevPki) -> None:
    """Defining, after signing, an object the signed page referred to while it did not exist is a change
    (the tolerance above is for trailer keys nobody displays, not for the document)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.writer import PdfFileWriter

    w = PdfFileWriter()
    page = generic.DictionaryObject({
        generic.pdf_name("/Type"): generic.pdf_name("/Page"),
        generic.pdf_name("/MediaBox"): generic.ArrayObject([generic.NumberObject(x) for x in (0, 0, 595, 842)]),
        generic.pdf_name("/Contents"): generic.ArrayObject([generic.IndirectObject(90, 0, w)]),
    })
    w.insert_page(page)
    buf = io.BytesIO()
    w.write(buf)
    signed = raw_sign(buf.getvalue(), dev_pki.person(CHAIRMAN))
    inc = IncrementalPdfFileWriter(io.BytesIO(signed))
    inc.objects[(0, 90)] = generic.StreamObject(stream_data=b"BT /F1 12 Tf (changed) Tj ET")
    inc.mark_update(generic.IndirectObject(90, 0, inc))
    out = io.BytesIO()
    inc.write(out)
    report = verifier.verify_pdf(out.getvalue(), offline=True)
    assert report.outcome == Outcome.INVALID
    sig = report.signatures[0]
    assert sig.modifications is not None and sig.modifications.permitted is False


@pytest.mark.parametrize("name", ["malformed/pyhanko__circular-page-tree.pdf",
                                  "malformed/rubnds-pdf101__A4-pages-tree-loop-complex.pdf"])
def test_page_tree_loops_are_named(name: str) -> None:
    reader = TolerantReader(io.BytesIO((CORPUS / name).read_bytes()), strict=False)
    with pytest.raises(PageTreeError) as err:
        check_page_tree(reader)
    assert "vòng lặp" in err.value.vi


def test_page_count() -> None:
    reader = TolerantReader(io.BytesIO((CORPUS / "valid/dss__pdf-signed-original.pdf").read_bytes()), strict=False)
    assert check_page_tree(reader) >= 1
