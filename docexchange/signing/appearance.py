"""The visible stamps NĐ 30/2020 prescribes, and where they go on the page.

- **Person**: the official's handwritten signature image (blue, transparent PNG), centred in the space between the
  position line and the full name. The widget is exactly the fitted image, so the widget rectangle *is* the
  signature image box (the seal is placed relative to it).
- **Organisation (seal)**: the seal image (red, transparent PNG) at real size, overlapping about one third of the
  person's signature image, on its left.
- **Appendix** (văn bản kèm theo) and **electronic copy** (bản sao điện tử): no image; text in a serif font, 10 pt,
  black, at the top right of page 1: the number/notation (or the copy form and copying organisation) and the
  signing time in ISO 8601 with the Vietnam offset.

Images are decoded and compressed once per signer (:class:`StampImage`) and only copied into each document;
text is shaped with HarfBuzz and the font subset embedded through pyHanko's OpenType support, so Vietnamese
diacritics render and extract correctly.
"""

from __future__ import annotations

import functools
import io
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fontTools import subset
from fontTools.ttLib import TTFont as FontToolsFont
from fontTools.ttLib.scaleUpem import scale_upem
from PIL import Image, ImageFont, UnidentifiedImageError
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp import BaseStamp, BaseStampStyle, TextStampStyle

from docexchange.errors import SignaturePlacementError, SigningError

__all__ = [
    "MM",
    "SEAL_OVERLAP",
    "ImageStampStyle",
    "Rect",
    "StampImage",
    "fit_rect",
    "seal_rect",
    "text_block_size",
    "text_stamp_style",
    "top_right_rect",
]

MM = 72 / 25.4
"""PDF points per millimetre."""

SEAL_OVERLAP = 1 / 3
"""Fraction of the signature image (from its left edge) the seal covers."""

MAX_STAMP_IMAGE_BYTES = 8 * 1024 * 1024
MAX_STAMP_IMAGE_PIXELS = 4000 * 4000

Rect = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in PDF user space (points, origin bottom-left)."""


@dataclass(frozen=True)
class StampImage:
    """A PNG decoded and Flate-compressed once, ready to be copied into any number of documents."""

    width_px: int
    height_px: int
    rgb: bytes
    """Flate-compressed 8-bit RGB samples."""
    alpha: bytes | None
    """Flate-compressed 8-bit alpha samples (the soft mask), or None for an opaque image."""
    dpi: float
    """Resolution the image was drawn at (from the PNG pHYs chunk; 300 when absent)."""

    @property
    def aspect(self) -> float:
        return self.width_px / self.height_px

    @property
    def natural_size(self) -> tuple[float, float]:
        """Real-world size in points (pixels / dpi): a 472 px seal at 300 dpi is 40 mm across."""
        return self.width_px / self.dpi * 72, self.height_px / self.dpi * 72

    @classmethod
    def from_png(cls, data: bytes, *, what: str = "ảnh") -> StampImage:
        if len(data) > MAX_STAMP_IMAGE_BYTES:
            raise SigningError(f"Tệp {what} quá lớn", f"the {what} image file is too large")
        try:
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_STAMP_IMAGE_PIXELS:
                    raise SigningError(f"Ảnh {what} quá lớn", f"the {what} image is too large")
                dpi_info = img.info.get("dpi")
                rgba = img.convert("RGBA")
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise SigningError(
                f"Không đọc được ảnh {what} (cần PNG trong suốt)", f"cannot read the {what} image (PNG expected)"
            ) from exc
        dpi = float(dpi_info[0]) if dpi_info and dpi_info[0] and float(dpi_info[0]) > 1 else 300.0
        r, g, b, a = rgba.split()
        rgb = Image.merge("RGB", (r, g, b)).tobytes()
        alpha_raw = a.tobytes()
        opaque = a.getextrema() == (255, 255)
        return cls(
            rgba.width,
            rgba.height,
            zlib.compress(rgb, 6),
            None if opaque else zlib.compress(alpha_raw, 6),
            dpi,
        )

    @classmethod
    def from_file(cls, path: Path, *, what: str = "ảnh") -> StampImage:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SigningError(f"Không đọc được tệp ảnh {path}", f"cannot read image file {path}") from exc
        return cls.from_png(data, what=what)

    def add_to(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        """Add the image XObject (and its soft mask) to ``writer``; the samples are copied, not re-encoded."""
        common = {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Image"),
            pdf_name("/Width"): generic.NumberObject(self.width_px),
            pdf_name("/Height"): generic.NumberObject(self.height_px),
            pdf_name("/BitsPerComponent"): generic.NumberObject(8),
            pdf_name("/Filter"): pdf_name("/FlateDecode"),
        }
        image = generic.DictionaryObject({**common, pdf_name("/ColorSpace"): pdf_name("/DeviceRGB")})
        if self.alpha is not None:
            smask = generic.StreamObject(
                generic.DictionaryObject({**common, pdf_name("/ColorSpace"): pdf_name("/DeviceGray")}),
                encoded_data=self.alpha,
            )
            image[pdf_name("/SMask")] = writer.add_object(smask)
        return writer.add_object(generic.StreamObject(image, encoded_data=self.rgb))


@dataclass(frozen=True)
class ImageStampStyle(BaseStampStyle):
    """A stamp that is just an image filling the widget (the widget has the image's aspect ratio)."""

    image: StampImage | None = None
    border_width: int = 0

    def create_stamp(self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict) -> ImageStamp:
        return ImageStamp(writer=writer, style=self, box=box)


class ImageStamp(BaseStamp):
    def __init__(self, writer: BasePdfFileWriter, style: ImageStampStyle, box: layout.BoxConstraints) -> None:
        super().__init__(writer=writer, style=style, box=box)
        self._image = style.image

    def _render_inner_content(self) -> list[bytes]:
        if self._image is None:
            return []
        assert self.writer is not None and self.box is not None
        ref = self._image.add_to(self.writer)
        self.set_resource(ResourceType.XOBJECT, pdf_name("/Im0"), ref)
        return [b"q %.4f 0 0 %.4f 0 0 cm /Im0 Do Q" % (self.box.width, self.box.height)]


# -- fonts -----------------------------------------------------------------------------------------------------
def _charset() -> str:
    ranges = [(0x20, 0x7E), (0xA0, 0x17F), (0x1A0, 0x1B0), (0x300, 0x323), (0x1EA0, 0x1EF9), (0x2010, 0x2026)]
    return "".join(chr(c) for lo, hi in ranges for c in range(lo, hi + 1)) + "№€"


VIETNAMESE_CHARSET = _charset()
"""Every character a Vietnamese official text needs (ASCII, Latin-1, Latin Extended-A, ơ/ư, the precomposed
Vietnamese letters, combining tone marks, dashes and quotes)."""


@functools.lru_cache(maxsize=16)
def prepared_font(path: str, extra: str = "", units_per_em: int | None = None) -> bytes:
    """``path`` cut down to :data:`VIETNAMESE_CHARSET` (+ ``extra``) without TrueType hinting, optionally rescaled
    to ``units_per_em``. Hinting programs triple the size of embedded subsets and do nothing for a PDF; the
    rescaling works around pyHanko writing CID widths in font units (a 2048-unit font like Liberation Serif
    would otherwise be spaced twice too wide)."""
    font = FontToolsFont(path)
    options = subset.Options()
    options.hinting = False
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.drop_tables += ["FFTM", "DSIG"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=VIETNAMESE_CHARSET + extra)
    subsetter.subset(font)
    if units_per_em is not None and font["head"].unitsPerEm != units_per_em:
        scale_upem(font, units_per_em)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class VietnameseFontFactory(FontEngineFactory):
    """pyHanko font engine factory over :func:`prepared_font` (HarfBuzz shaping, subset embedded, lang ``vi``)."""

    font_path: str
    font_size: int = 10

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream: Any = None) -> GlyphAccumulator:
        data = prepared_font(self.font_path, units_per_em=1000)
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(writer, io.BytesIO(data), self.font_size, bcp47_lang_code="vi",
                                obj_stream=obj_stream)


@functools.cache
def _measuring_font(font_path: str, size: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(io.BytesIO(prepared_font(font_path, units_per_em=1000)), size=size)


TEXT_SIZE = 10
TEXT_LEADING = 12
TEXT_PADDING = 2.0


def text_block_size(lines: Sequence[str], font_path: Path, size: int = TEXT_SIZE,
                    leading: int = TEXT_LEADING) -> tuple[float, float]:
    """Width and height in points of ``lines`` set in ``font_path`` at ``size`` pt (plus a small padding)."""
    font = _measuring_font(str(font_path), size * 10)
    width = max(font.getlength(line) for line in lines) / 10
    height = leading * (len(lines) - 1) + size * 1.25
    return width + 2 * TEXT_PADDING + 2, height + 2 * TEXT_PADDING


def text_stamp_style(lines: Sequence[str], font_path: Path, size: int = TEXT_SIZE,
                     leading: int = TEXT_LEADING) -> TextStampStyle:
    """Black serif text, no border, no image: the appendix and electronic-copy stamps (never scaled down: the
    widget is sized for the text by :func:`text_block_size`)."""
    text = "\n".join(lines).replace("%", "%%")
    top_left = layout.SimpleBoxLayoutRule(
        x_align=layout.AxisAlignment.ALIGN_MIN,
        y_align=layout.AxisAlignment.ALIGN_MAX,
        margins=layout.Margins.uniform(0),
        inner_content_scaling=layout.InnerScaling.NO_SCALING,
    )
    return TextStampStyle(
        border_width=0,
        background=None,
        stamp_text=text,
        text_box_style=TextBoxStyle(
            font=VietnameseFontFactory(str(font_path), font_size=size),
            font_size=size,
            leading=leading,
            border_width=0,
            text_color=(0.0, 0.0, 0.0),
            box_layout_rule=top_left,
        ),
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MIN,
            y_align=layout.AxisAlignment.ALIGN_MAX,
            margins=layout.Margins.uniform(TEXT_PADDING),
            inner_content_scaling=layout.InnerScaling.NO_SCALING,
        ),
    )


# -- geometry --------------------------------------------------------------------------------------------------
def fit_rect(box: Rect, aspect: float) -> Rect:
    """The largest rectangle of ``aspect`` (width/height) centred in ``box``."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        raise SignaturePlacementError("Ô chữ ký rỗng", "the signature box is empty")
    if w / h > aspect:
        fw, fh = h * aspect, h
    else:
        fw, fh = w, w / aspect
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2


def seal_rect(signature: Rect, diameter: float, page: Rect, overlap: float = SEAL_OVERLAP) -> Rect:
    """Where the seal goes: ``diameter`` across, its right edge ``overlap`` of the way into the signature image
    from the left, vertically centred on the image; nudged inside the page if needed (never reducing the overlap
    below the requested fraction)."""
    sx1, sy1, sx2, sy2 = signature
    px1, py1, px2, py2 = page
    if diameter > px2 - px1 or diameter > py2 - py1:
        raise SignaturePlacementError("Ảnh con dấu lớn hơn trang", "the seal image is larger than the page")
    right = sx1 + (sx2 - sx1) * overlap
    left = right - diameter
    if left < px1:  # keep it on the page: sliding right only increases the overlap
        left, right = px1, px1 + diameter
    cy = (sy1 + sy2) / 2
    bottom = min(max(cy - diameter / 2, py1), py2 - diameter)
    return left, bottom, right, bottom + diameter


def top_right_rect(page: Rect, size: tuple[float, float], *, right_margin: float = 15 * MM,
                   top_margin: float = 6 * MM) -> Rect:
    """A box of ``size`` at the top right corner of ``page`` (inside the usual margins)."""
    px1, py1, px2, py2 = page
    w, h = size
    x2 = px2 - right_margin
    y2 = py2 - top_margin
    x1 = max(px1, x2 - w)
    y1 = max(py1, y2 - h)
    return x1, y1, x2, y2
