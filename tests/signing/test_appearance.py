"""What the stamps look like: geometry, the rendered page (pdftoppm) and the extracted text (pdftotext)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from conftest import CHAIRMAN, HALONG
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from docexchange.errors import SignaturePlacementError, SigningError
from docexchange.signing import AppendixMark, CopyKind, CopyMark, SigningService
from docexchange.signing.appearance import (
    MM,
    StampImage,
    fit_rect,
    prepared_font,
    seal_rect,
    text_block_size,
    top_right_rect,
)

DPI = 100


# -- geometry (pure) ------------------------------------------------------------------------------------------
def test_fit_rect_keeps_aspect_and_centres() -> None:
    assert fit_rect((0, 0, 200, 100), 4.0) == (0, 25, 200, 75)
    assert fit_rect((0, 0, 200, 100), 1.0) == (50, 0, 150, 100)
    with pytest.raises(SignaturePlacementError):
        fit_rect((10, 10, 10, 50), 2.0)


def test_seal_rect_overlaps_one_third_on_the_left() -> None:
    sig = (300.0, 100.0, 450.0, 160.0)
    x1, y1, x2, y2 = seal_rect(sig, 113.4, (0, 0, 595, 842))
    assert x2 == pytest.approx(350.0)
    assert x2 - x1 == pytest.approx(113.4) and y2 - y1 == pytest.approx(113.4)
    assert (y1 + y2) / 2 == pytest.approx(130.0)


def test_seal_rect_stays_on_the_page() -> None:
    x1, y1, x2, _y2 = seal_rect((20.0, 5.0, 170.0, 60.0), 113.4, (0, 0, 595, 842))
    assert x1 == 0 and y1 == 0  # slid right/up: the overlap only grows
    assert x2 >= 20 + 150 / 3
    with pytest.raises(SignaturePlacementError):
        seal_rect((0, 0, 10, 10), 1000.0, (0, 0, 595, 842))


def test_top_right_rect() -> None:
    x1, y1, x2, y2 = top_right_rect((0, 0, 595.28, 841.89), (120, 30))
    assert x2 == pytest.approx(595.28 - 15 * MM) and y2 == pytest.approx(841.89 - 6 * MM)
    assert x2 - x1 == pytest.approx(120) and y2 - y1 == pytest.approx(30)


def test_stamp_image_real_size_from_png_resolution(dev_pki: object) -> None:
    seal = StampImage.from_file(dev_pki.seal_image(HALONG))  # type: ignore[attr-defined]
    w, h = seal.natural_size
    assert w == pytest.approx(40 * MM, abs=0.3) and h == pytest.approx(w)
    assert seal.alpha is not None  # transparent background kept as a soft mask


def test_stamp_image_refuses_garbage() -> None:
    with pytest.raises(SigningError):
        StampImage.from_png(b"not a png")


def test_prepared_font_is_rescaled_and_keeps_vietnamese(tmp_path: Path) -> None:
    from fontTools.ttLib import TTFont

    from docexchange.fonts import VIETNAMESE_SAMPLE, find_font

    font = TTFont(io.BytesIO(prepared_font(str(find_font("serif")), units_per_em=1000)))
    assert font["head"].unitsPerEm == 1000
    cmap = font.getBestCmap()
    assert all(ord(c) in cmap for c in VIETNAMESE_SAMPLE + "ÃĨúàáảãạ")
    w, _h = text_block_size(["Ủy ban nhân dân thành phố Hạ Long"], find_font("serif"))
    assert 140 < w < 180  # ~10 pt Times-metric text


# -- rendered checks ---------------------------------------------------------------------------------------------
def _render(pdf: bytes, tmp: Path, page: int = 1) -> Image.Image:
    src = tmp / "render.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", "-f", str(page), "-l", str(page), "-singlefile", str(src),
                    str(tmp / "render")], check=True, timeout=120)
    return Image.open(tmp / "render.png").convert("RGB")


def _widget(pdf: bytes, field: str) -> tuple[float, float, float, float]:
    for sig in PdfFileReader(io.BytesIO(pdf)).embedded_signatures:
        if sig.field_name == field:
            x1, y1, x2, y2 = (float(v) for v in sig.sig_field["/Rect"])
            return x1, y1, x2, y2
    raise AssertionError(field)


def _to_px(rect: tuple[float, float, float, float], page_height: float) -> tuple[int, int, int, int]:
    s = DPI / 72
    x1, y1, x2, y2 = rect
    return round(x1 * s), round((page_height - y2) * s), round(x2 * s), round((page_height - y1) * s)


def _pixels(img: Image.Image) -> list[tuple[int, int, int]]:
    raw = img.convert("RGB").tobytes()
    return [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]


def _count(img: Image.Image, box: tuple[int, int, int, int], pred: object) -> int:
    return sum(1 for px in _pixels(img.crop(box)) if pred(px))  # type: ignore[operator]


def is_red(px: tuple[int, int, int]) -> bool:
    r, g, b = px
    return r > 170 and g < 110 and b < 110


def is_blue(px: tuple[int, int, int]) -> bool:
    r, _g, b = px
    return b > 110 and r < 110 and b - r > 60


@pytest.fixture(scope="module")
def sealed(service: SigningService, letter: bytes) -> bytes:
    signed = service.sign(letter, service.person(CHAIRMAN), level="B-B")
    return service.sign(signed, service.seal(HALONG), level="B-B")


def test_rendered_seal_overlaps_left_part_of_signature(sealed: bytes, service: SigningService, letter: bytes,
                                                       tmp_path: Path) -> None:
    page_h = float(PdfFileReader(io.BytesIO(sealed)).root["/Pages"]["/Kids"][0]["/MediaBox"][3])
    sx1, sy1, sx2, sy2 = _to_px(_widget(sealed, "nd30_person"), page_h)
    width = sx2 - sx1
    left_third = (sx1, sy1, sx1 + width // 3, sy2)
    right_part = (sx1 + width // 3 + 4, sy1, sx2, sy2)
    img = _render(sealed, tmp_path)
    # the blue signature is drawn in its box, the red seal covers its left third and nothing right of it
    assert _count(img, (sx1, sy1, sx2, sy2), is_blue) > 150
    assert _count(img, left_third, is_red) > 100
    assert _count(img, right_part, is_red) == 0
    # and before sealing there was no red there at all (the check can fail)
    person_only = service.sign(letter, service.person(CHAIRMAN), level="B-B")
    assert _count(_render(person_only, tmp_path), left_third, is_red) == 0


def test_rendered_seal_is_round_and_real_size(sealed: bytes, tmp_path: Path) -> None:
    page_h = float(PdfFileReader(io.BytesIO(sealed)).root["/Pages"]["/Kids"][0]["/MediaBox"][3])
    x1, y1, x2, y2 = _to_px(_widget(sealed, "nd30_seal"), page_h)
    img = _render(sealed, tmp_path)
    region = img.crop((x1 - 5, y1 - 5, x2 + 5, y2 + 5))
    reds = [(i % region.width, i // region.width) for i, px in enumerate(_pixels(region)) if is_red(px)]
    xs = [p[0] for p in reds]
    ys = [p[1] for p in reds]
    diameter_px = 40 / 25.4 * DPI
    assert max(xs) - min(xs) == pytest.approx(diameter_px, rel=0.06)
    assert max(ys) - min(ys) == pytest.approx(diameter_px, rel=0.06)


def _pdftotext(pdf: bytes, tmp: Path) -> str:
    src = tmp / "text.pdf"
    src.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(src), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_appendix_stamp_text_top_right(service: SigningService, letter: bytes, tmp_path: Path) -> None:
    out = service.sign(letter, service.seal(HALONG), level="B-B", appendix=AppendixMark("05/QĐ-UBND"))
    text = _pdftotext(out, tmp_path)
    assert "Số: 05/QĐ-UBND" in text
    sig = PdfFileReader(io.BytesIO(out)).embedded_signatures[0]
    when = sig.self_reported_timestamp
    assert when is not None
    from docexchange.clock import iso_vn

    assert iso_vn(when) in text and iso_vn(when).endswith("+07:00")
    x1, y1, x2, y2 = _widget(out, "nd30_appendix")
    assert x2 > 595.28 * 0.75 and y2 > 841.89 * 0.9  # top right of page 1
    # black text, no image
    img = _render(out, tmp_path)
    box = _to_px((x1, y1, x2, y2), 841.89)
    assert _count(img, box, lambda px: px[0] < 80 and px[1] < 80 and px[2] < 80) > 50
    assert _count(img, box, is_red) == 0 and _count(img, box, is_blue) == 0


def test_copy_stamp_text_keeps_diacritics(service: SigningService, letter: bytes, tmp_path: Path) -> None:
    out = service.sign(letter, service.seal(HALONG), level="B-B",
                       copy=CopyMark(CopyKind.SAO_LUC, organisation="Văn phòng Ủy ban nhân dân tỉnh Quảng Ninh"))
    text = _pdftotext(out, tmp_path)
    assert "SAO LỤC" in text
    assert "Văn phòng Ủy ban nhân dân tỉnh Quảng Ninh" in text
    assert "+07:00" in text


def test_copy_kind_parsing() -> None:
    assert CopyKind.parse("sao y") is CopyKind.SAO_Y
    assert CopyKind.parse("SAO LUC") is CopyKind.SAO_LUC
    assert CopyKind.parse(" trích  sao ") is CopyKind.TRICH_SAO
    with pytest.raises(SigningError):
        CopyKind.parse("BẢN CHỤP")
