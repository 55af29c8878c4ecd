"""A realistic Vietnamese official letter (thể thức văn bản per NĐ 30/2020, Phụ lục I) for demos, tests and
benchmarks, laid out with reportlab and the Liberation Serif font embedded.

Layout (A4, margins top/bottom 20 mm, left 30 mm, right 15 mm): the issuing agency (and its parent) with
"Số: 05/QĐ-UBND" on the left, the Quốc hiệu "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" and tiêu ngữ "Độc lập - Tự do -
Hạnh phúc" with "Hạ Long, ngày 05 tháng 01 năm 2025" on the right; the document type and trích yếu; the body;
then "Nơi nhận:" on the left and the signature block on the right (TM./KT. line, position, an empty space for the
signature, full name).

The empty space is an **empty signature field** named :data:`PERSON_FIELD`: ``docexchange sign --person`` finds it
without being told where to sign. ``target_bytes`` pads the letter with scanned-annex pages (incompressible
greyscale images) to a chosen size for benchmarks.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, cast

from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import copy_into_new_writer
from pyhanko.sign.fields import SigFieldSpec, append_signature_field
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from docexchange.directory import Agency, Directory
from docexchange.errors import ConfigError
from docexchange.fonts import covers_vietnamese, find_font
from docexchange.signing.appearance import VIETNAMESE_CHARSET, prepared_font

__all__ = ["PERSON_FIELD", "LetterSpec", "default_notation", "make_letter", "organ_abbreviation", "parse_size"]

PERSON_FIELD = "nd30_person"
"""Name of the empty signature field our template leaves in the signature block."""

PAGE_W, PAGE_H = A4
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 30 * mm, 15 * mm, 20 * mm, 20 * mm
SIGNATURE_SPACE = (62 * mm, 27 * mm)
"""Width and height of the space between the position line and the full name."""

MAX_TARGET_BYTES = 200 * 1024 * 1024


def parse_size(text: str) -> int:
    """``50KB``, ``1MB``, ``10MB``, ``1.5MB`` or a byte count → bytes (binary units)."""
    t = text.strip().upper().replace(" ", "").replace("IB", "B")
    units = {"KB": 1024, "MB": 1024 * 1024, "GB": 1024**3, "B": 1, "K": 1024, "M": 1024 * 1024}
    for suffix in ("KB", "MB", "GB", "K", "M", "B"):
        if t.endswith(suffix):
            number, factor = t[: -len(suffix)], units[suffix]
            break
    else:
        number, factor = t, 1
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise ConfigError(f"Kích thước '{text}' không hợp lệ (ví dụ 50KB, 1MB)", f"invalid size '{text}' "
                          "(e.g. 50KB, 1MB)") from None
    if value <= 0 or value > MAX_TARGET_BYTES:
        raise ConfigError(f"Kích thước '{text}' ngoài giới hạn", f"size '{text}' out of range (1 B – 200 MB)")
    return value


_DEFAULT_BODY = (
    "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015; Luật sửa đổi, bổ sung một số điều "
    "của Luật Tổ chức Chính phủ và Luật Tổ chức chính quyền địa phương ngày 22 tháng 11 năm 2019;",
    "Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác văn thư;",
    "Căn cứ Quyết định số 28/2018/QĐ-TTg ngày 12 tháng 7 năm 2018 của Thủ tướng Chính phủ về việc gửi, nhận "
    "văn bản điện tử giữa các cơ quan trong hệ thống hành chính nhà nước;",
    "Theo đề nghị của Chánh Văn phòng Hội đồng nhân dân và Ủy ban nhân dân.",
    "@QUYẾT ĐỊNH:",
    "<b>Điều 1.</b> Ban hành kèm theo Quyết định này Quy chế tiếp nhận, xử lý, phát hành và quản lý văn bản điện "
    "tử trên hệ thống quản lý văn bản và điều hành; văn bản điện tử được ký số bởi người có thẩm quyền và ký số "
    "của cơ quan, tổ chức theo quy định có giá trị pháp lý như bản gốc văn bản giấy.",
    "<b>Điều 2.</b> Quyết định này có hiệu lực kể từ ngày ký. Văn thư cơ quan có trách nhiệm kiểm tra tính xác "
    "thực và toàn vẹn của văn bản điện tử đến, trả lại văn bản không hợp lệ qua hệ thống và thông báo cho cơ "
    "quan gửi trong ngày.",
    "<b>Điều 3.</b> Chánh Văn phòng Hội đồng nhân dân và Ủy ban nhân dân, Thủ trưởng các phòng, ban, đơn vị "
    "trực thuộc và các tổ chức, cá nhân có liên quan chịu trách nhiệm thi hành Quyết định này./.",
)


_LETTER_BODY = (
    "Thực hiện Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác văn thư và Quyết "
    "định số 28/2018/QĐ-TTg ngày 12 tháng 7 năm 2018 của Thủ tướng Chính phủ về việc gửi, nhận văn bản điện tử "
    "giữa các cơ quan trong hệ thống hành chính nhà nước, đề nghị các cơ quan, đơn vị thực hiện như sau:",
    "1. Gửi, nhận văn bản điện tử qua trục liên thông văn bản; văn bản điện tử gửi đi phải được người có thẩm "
    "quyền ký số và văn thư ký số của cơ quan theo đúng thể thức quy định.",
    "2. Văn thư kiểm tra tính xác thực, toàn vẹn của văn bản điện tử đến; trả lại văn bản không hợp lệ hoặc gửi "
    "sai địa chỉ qua hệ thống và xác nhận đã nhận văn bản trong ngày.",
    "3. Trong quá trình thực hiện, nếu có vướng mắc, đề nghị phản ánh về Văn phòng để được hướng dẫn.",
    "Trân trọng./.",
)

_TYPE_ABBREVIATIONS = {
    "QUYẾT ĐỊNH": "QĐ", "CHỈ THỊ": "CT", "THÔNG BÁO": "TB", "KẾ HOẠCH": "KH", "BÁO CÁO": "BC", "TỜ TRÌNH": "TTr",
    "GIẤY MỜI": "GM", "HƯỚNG DẪN": "HD", "CHƯƠNG TRÌNH": "CTr", "BIÊN BẢN": "BB", "CÔNG ĐIỆN": "CĐ",
}


def organ_abbreviation(name: str, short_name: str = "") -> str:
    """``UBND`` for a people's committee, the directory's acronym (``VPCP``, ``BNV``), else the initials of
    the name before the place (``Sở Nội vụ tỉnh Quảng Ninh`` → ``SNV``)."""
    if short_name and " " not in short_name and short_name.isupper():
        return short_name
    if name.lower().startswith("ủy ban nhân dân"):
        return "UBND"
    words = []
    for word in name.split():
        if word.lower() in ("tỉnh", "thành", "huyện", "quận", "xã", "phường", "thị"):
            break
        words.append(word)
    return "".join(w[0] for w in words).upper() or "CQ"


def default_notation(doc_type: str, organ: str) -> str:
    """Ký hiệu per NĐ 30 Phụ lục VI: ``QĐ-UBND`` for a decision, ``UBND-VP`` for a công văn."""
    kind = doc_type.strip().upper()
    if kind == "CÔNG VĂN":
        return f"{organ}-VP"
    return f"{_TYPE_ABBREVIATIONS.get(kind, 'VB')}-{organ}"


@dataclass(frozen=True)
class LetterSpec:
    """What the letter says. Defaults give Quyết định số 05/QĐ-UBND of UBND thành phố Hạ Long."""

    agency_name: str = "Ủy ban nhân dân thành phố Hạ Long"
    parent_name: str = ""
    """Cơ quan chủ quản printed above the agency (empty for a people's committee, which prints its own name)."""
    number: str = "05"
    notation: str = ""
    """Ký hiệu; empty: from the document type and the agency (``QĐ-UBND``, ``UBND-VP`` for a công văn)."""
    place: str = "Hạ Long"
    issued: date = date(2025, 1, 5)
    doc_type: str = "QUYẾT ĐỊNH"
    subject: str = "Ban hành Quy chế tiếp nhận, xử lý và phát hành văn bản điện tử"
    body: tuple[str, ...] = ()
    """Paragraphs (reportlab mini-markup allowed); a paragraph starting with ``@`` is a centred bold heading.
    Empty: a sample text for the document type."""
    recipients: tuple[str, ...] = ()
    """Nơi nhận lines; empty: the usual ones for the document type."""
    addressee: str = "Các cơ quan chuyên môn, đơn vị trực thuộc."
    """``Kính gửi`` line of a công văn."""
    report_to: str = "UBND tỉnh Quảng Ninh"
    """Superior body that receives the document for information (``(b/c)``) in the default nơi nhận."""
    organ_abbreviation: str = "UBND"
    competence: str = "TM. ỦY BAN NHÂN DÂN"
    position: str = "CHỦ TỊCH"
    signer_name: str = "Trần Quang Hưng"
    target_bytes: int | None = None
    """Pad with annex pages up to about this size (for benchmarks); None: no padding."""

    @property
    def is_cong_van(self) -> bool:
        return self.doc_type.strip().upper() == "CÔNG VĂN"

    @property
    def reference(self) -> str:
        """The number and notation as printed: ``05/QĐ-UBND``."""
        return f"{self.number}/{self.notation or default_notation(self.doc_type, self.organ_abbreviation)}"

    @property
    def paragraphs(self) -> tuple[str, ...]:
        if self.body:
            return self.body
        return _DEFAULT_BODY if self.doc_type.strip().upper() == "QUYẾT ĐỊNH" else _LETTER_BODY

    @property
    def recipient_lines(self) -> tuple[str, ...]:
        if self.recipients:
            return self.recipients
        first = "Như Điều 3;" if self.doc_type.strip().upper() == "QUYẾT ĐỊNH" else "Như trên;"
        superior = (f"{self.report_to} (b/c);",) if self.report_to else ()
        return (first, *superior, "Lãnh đạo cơ quan;", "Lưu: VT, VP.")

    @classmethod
    def for_official(cls, directory: Directory, official_id: str, **overrides: Any) -> LetterSpec:
        """A letter signed by ``official_id`` of the directory (their agency, place, position and name)."""
        agency, official = directory.find_official(official_id)
        parent = directory.parent_agency(agency.code)
        spec = cls(
            agency_name=agency.name,
            parent_name=_parent_line(agency, parent),
            place=agency.place or "Hà Nội",
            competence=official.competence,
            position=official.position,
            signer_name=official.full_name,
            report_to=(parent.short_name or parent.name) if parent else "",
            organ_abbreviation=organ_abbreviation(agency.name, agency.short_name),
        )
        return replace(spec, **overrides)


def _parent_line(agency: Agency, parent: Agency | None) -> str:
    if parent is None or agency.name.lower().startswith("ủy ban nhân dân"):
        return ""
    return parent.short_name or parent.name


# -- fonts -----------------------------------------------------------------------------------------------------
def _variant(regular: Path, style: str) -> Path:
    for folder in (regular.parent, Path("/usr/share/fonts/truetype/liberation2")):
        candidate = folder / regular.name.replace("Regular", style)
        if candidate != regular and candidate.is_file() and covers_vietnamese(candidate):
            return candidate
    return find_font("serif", bold="Bold" in style)


def _fonts(configured: str, text: str) -> dict[str, str]:
    regular = find_font("serif", configured=configured)
    bold = find_font("serif", bold=True) if not configured else _variant(regular, "Bold")
    files = {
        "regular": regular,
        "bold": bold,
        "italic": _variant(regular, "Italic"),
        "bolditalic": _variant(regular, "BoldItalic"),
    }
    extra = "".join(sorted(set(text) - set(VIETNAMESE_CHARSET)))
    names = {}
    for role, path in files.items():
        data = prepared_font(str(path), extra)
        name = f"DX-{path.stem}-{hashlib.sha256(data).hexdigest()[:10]}"
        if name not in _REGISTERED:
            pdfmetrics.registerFont(TTFont(name, io.BytesIO(data)))
            _REGISTERED.add(name)
        names[role] = name
    pdfmetrics.registerFontFamily(
        names["regular"], normal=names["regular"], bold=names["bold"], italic=names["italic"],
        boldItalic=names["bolditalic"],
    )
    return names


_REGISTERED: set[str] = set()
_BUILD_LOCK = threading.Lock()


# -- flowables -------------------------------------------------------------------------------------------------
class _Rule(Flowable):
    """A centred horizontal line (the short rules under the agency name, the motto and the trích yếu)."""

    def __init__(self, width: float, avail: float, thickness: float = 0.6) -> None:
        super().__init__()
        self.rule_width = width
        self.avail = avail
        self.thickness = thickness

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.avail = avail_width
        return avail_width, 5

    def draw(self) -> None:
        x = (self.avail - self.rule_width) / 2
        self.canv.setLineWidth(self.thickness)
        self.canv.line(x, 1, x + self.rule_width, 1)


class _SignatureSpace(Flowable):
    """Empty space in the signature block; remembers where it was drawn (page, box in page coordinates)."""

    def __init__(self, width: float, height: float, sink: dict[str, Any]) -> None:
        super().__init__()
        self.space_width = width
        self.space_height = height
        self.sink = sink

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.avail = avail_width
        return avail_width, self.space_height

    def draw(self) -> None:
        x0 = (self.avail - self.space_width) / 2
        ax, ay = self.canv.absolutePosition(x0, 0)
        self.sink["page"] = self.canv.getPageNumber()
        self.sink["box"] = (ax, ay, ax + self.space_width, ay + self.space_height)


def _styles(f: dict[str, str]) -> dict[str, ParagraphStyle]:
    def ps(name: str, font: str, size: float, align: int = TA_CENTER, leading: float | None = None,
           **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=f[font], fontSize=size, leading=leading or size * 1.22,
                              alignment=align, **kw)

    return {
        "head": ps("head", "regular", 12.5),
        "head_bold": ps("head_bold", "bold", 12.5),
        "national": ps("national", "bold", 12),
        "motto": ps("motto", "bold", 13),
        "number": ps("number", "regular", 13),
        "vv": ps("vv", "regular", 12, spaceBefore=2),
        "date": ps("date", "italic", 13),
        "type": ps("type", "bold", 14),
        "subject": ps("subject", "bold", 14),
        "authority": ps("authority", "bold", 13, spaceBefore=8, spaceAfter=6),
        "body": ps("body", "regular", 13, TA_JUSTIFY, leading=16.5, firstLineIndent=10 * mm, spaceAfter=4),
        "heading": ps("heading", "bold", 13, spaceBefore=4, spaceAfter=6),
        "to_head": ps("to_head", "bolditalic", 12, TA_LEFT),
        "to": ps("to", "regular", 11, TA_LEFT, leading=13),
        "sign": ps("sign", "bold", 13),
        "sign_name": ps("sign_name", "bold", 13.5),
        "annex": ps("annex", "bold", 13),
        "annex_note": ps("annex_note", "italic", 12),
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _font_regular(st: dict[str, ParagraphStyle]) -> str:
    """Table cells set a font even when they only hold flowables: make it ours, not reportlab's Helvetica."""
    return str(st["number"].fontName)


def _header(spec: LetterSpec, st: dict[str, ParagraphStyle], f: dict[str, str]) -> Table:
    left: list[Flowable] = []
    name = spec.agency_name.upper()
    if spec.parent_name:
        left.append(Paragraph(_escape(spec.parent_name.upper()), st["head"]))
        left.append(Paragraph(_escape(name), st["head_bold"]))
    elif name.startswith("ỦY BAN NHÂN DÂN "):
        left.append(Paragraph("ỦY BAN NHÂN DÂN", st["head_bold"]))
        left.append(Paragraph(_escape(name[len("ỦY BAN NHÂN DÂN "):]), st["head_bold"]))
    else:
        left.append(Paragraph(_escape(name), st["head_bold"]))
    left.append(_Rule(22 * mm, 80 * mm))
    left.append(Spacer(1, 4))
    left.append(Paragraph(f"Số: {_escape(spec.reference)}", st["number"]))
    if spec.is_cong_van:
        subject = spec.subject.strip()
        for lead in ("Về việc ", "về việc ", "V/v ", "v/v "):
            subject = subject.removeprefix(lead)
        left.append(Paragraph(f"V/v {_escape(subject)}", st["vv"]))
    motto = "Độc lập - Tự do - Hạnh phúc"
    right: list[Flowable] = [
        Paragraph("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", st["national"]),
        Paragraph(motto, st["motto"]),
        _Rule(pdfmetrics.stringWidth(motto, f["bold"], 13), 95 * mm),
        Spacer(1, 4),
        Paragraph(
            f"{_escape(spec.place)}, ngày {spec.issued.day:02d} tháng {spec.issued.month:02d} "
            f"năm {spec.issued.year}",
            st["date"],
        ),
    ]
    table = Table([[left, right]], colWidths=[72 * mm, 93 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("FONTNAME", (0, 0), (-1, -1), _font_regular(st)),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _signature_block(spec: LetterSpec, st: dict[str, ParagraphStyle], sink: dict[str, Any]) -> Table:
    to: list[Flowable] = [Paragraph("Nơi nhận:", st["to_head"])]
    to += [Paragraph(f"- {_escape(r)}", st["to"]) for r in spec.recipient_lines]
    sign: list[Flowable] = []
    if spec.competence:
        sign.append(Paragraph(_escape(spec.competence.upper()), st["sign"]))
    sign.append(Paragraph(_escape(spec.position.upper()), st["sign"]))
    sign.append(_SignatureSpace(*SIGNATURE_SPACE, sink))
    sign.append(Paragraph(_escape(spec.signer_name), st["sign_name"]))
    table = Table([[to, sign]], colWidths=[80 * mm, 85 * mm])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("FONTNAME", (0, 0), (-1, -1), _font_regular(st)),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def _annex_scans(nbytes: int, seed: str) -> list[tuple[bytes, int, int]]:
    """JPEG 'scans' (greyscale noise, which JPEG cannot shrink much) totalling about ``nbytes``: (data, w, h)."""
    rng = random.Random(seed)
    out: list[tuple[bytes, int, int]] = []
    ratio = 0.85  # JPEG bytes per pixel for this noise at quality 92, corrected as we go
    width = 1600
    while nbytes > 2048:
        pixels = min(int(nbytes / ratio), width * 2200)
        w = width if pixels >= width * 32 else max(32, int(pixels**0.5))
        h = max(8, pixels // w)
        buf = io.BytesIO()
        Image.frombytes("L", (w, h), rng.randbytes(w * h)).save(buf, format="JPEG", quality=92)
        data = buf.getvalue()
        ratio = len(data) / (w * h)
        out.append((data, w, h))
        nbytes -= len(data)
    return out


def _spec_text(spec: LetterSpec) -> str:
    parts = [spec.agency_name, spec.parent_name, spec.number, spec.notation, spec.place, spec.doc_type,
             spec.subject, *spec.paragraphs, *spec.recipient_lines, spec.competence, spec.position, spec.signer_name,
             spec.addressee, spec.reference]
    text = "".join(parts)
    return text + text.upper() + text.lower()


def _build(spec: LetterSpec, font: str, pad_bytes: int) -> tuple[bytes, dict[str, Any]]:
    f = _fonts(font, _spec_text(spec))
    st = _styles(f)
    sink: dict[str, Any] = {}
    buf = io.BytesIO()
    title = f"{spec.doc_type.capitalize()} số {spec.reference}: {spec.subject}"
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=MARGIN_LEFT, rightMargin=MARGIN_RIGHT, topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM, initialFontName=f["regular"], title=title,
        author=spec.agency_name, subject=spec.subject, creator="docexchange sample-letter", lang="vi",
    )
    story: list[Flowable] = [_header(spec, st, f), Spacer(1, 9 * mm)]
    if spec.is_cong_van:  # a công văn: no title, trích yếu under the number, then "Kính gửi"
        story.append(Paragraph(f"Kính gửi: {_escape(spec.addressee)}", st["authority"]))
        story.append(Spacer(1, 3 * mm))
    else:
        story.append(Paragraph(_escape(spec.doc_type.upper()), st["type"]))
        story.append(Paragraph(_escape(spec.subject), st["subject"]))
        story.append(_Rule(40 * mm, 165 * mm))
        if spec.doc_type.strip().upper() == "QUYẾT ĐỊNH":
            story.append(Paragraph(f"{_escape(spec.position.upper())} {_escape(spec.agency_name.upper())}",
                                   st["authority"]))
        else:
            story.append(Spacer(1, 6 * mm))
    for para in spec.paragraphs:
        if para.startswith("@"):
            story.append(Paragraph(para[1:], st["heading"]))
        else:
            story.append(Paragraph(para, st["body"]))
    story.append(Spacer(1, 4 * mm))
    story.append(KeepTogether([_signature_block(spec, st, sink)]))
    if pad_bytes > 0:
        for i, scan in enumerate(_annex_scans(pad_bytes, spec.reference)):
            story.append(PageBreak())
            story.append(Paragraph(f"PHỤ LỤC {i + 1}", st["annex"]))
            story.append(Paragraph(f"(Kèm theo {spec.doc_type.capitalize()} số {_escape(spec.reference)} — "
                                   "bản chụp hồ sơ)", st["annex_note"]))
            story.append(Spacer(1, 4 * mm))
            story.append(_ScanFlowable(*scan, 165 * mm, 215 * mm))
    with _BUILD_LOCK:
        # reportlab's global switch: ASCII85 inflates binary streams by 25 % and is slow in pure Python.
        saved, rl_config.useA85 = rl_config.useA85, 0
        try:
            doc.build(story)
        finally:
            rl_config.useA85 = saved
    return buf.getvalue(), sink


class _ScanFlowable(Flowable):
    """A JPEG placed as is (reportlab passes DCT data through untouched)."""

    def __init__(self, data: bytes, width_px: int, height_px: int, max_w: float, max_h: float) -> None:
        super().__init__()
        scale = min(max_w / width_px, max_h / height_px)
        self.data = data
        self.w, self.h = width_px * scale, height_px * scale

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.w, self.h

    def draw(self) -> None:
        self.canv.setStrokeColor(colors.grey)
        self.canv.drawImage(ImageReader(io.BytesIO(self.data)), 0, 0, self.w, self.h)
        self.canv.rect(0, 0, self.w, self.h)


def make_letter(spec: LetterSpec | None = None, *, font: str = "") -> bytes:
    """Render the letter to PDF bytes, with an empty signature field :data:`PERSON_FIELD` over the signature
    space; ``spec.target_bytes`` pads it with annex pages to about that size."""
    spec = spec or LetterSpec()
    pdf, sink = _build(spec, font, 0)
    if spec.target_bytes and spec.target_bytes > len(pdf) + 4096:
        # A scan costs its JPEG bytes plus ~1.5 KB per page: one correction pass lands within ~1 %.
        pad = spec.target_bytes - len(pdf)
        padded, sink = _build(spec, font, pad)
        if abs(len(padded) - spec.target_bytes) > spec.target_bytes // 100:
            padded, sink = _build(spec, font, max(0, pad - (len(padded) - spec.target_bytes)))
        pdf = padded
    if "box" not in sink:  # pragma: no cover - the block is always drawn
        raise RuntimeError("signature block was not laid out")
    return _add_person_field(pdf, sink["page"] - 1, sink["box"])


def _add_person_field(pdf: bytes, page_index: int, box: Sequence[float]) -> bytes:
    reader = PdfFileReader(io.BytesIO(pdf))
    writer = copy_into_new_writer(reader)
    rect = cast(tuple[int, int, int, int], tuple(round(v, 2) for v in box))  # pyHanko writes floats as given
    append_signature_field(writer, SigFieldSpec(PERSON_FIELD, on_page=page_index, box=rect))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()

