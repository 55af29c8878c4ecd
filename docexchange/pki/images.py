"""Signature and seal images for the dev PKI, drawn by code (no external assets).

- a handwritten-style signature per official: blue ink, transparent PNG, 300 dpi;
- a round red seal per agency, real size (40 mm at 300 dpi), its name on the ring and a star in the centre.
"""

from __future__ import annotations

import hashlib
import io
import math
import random

from PIL import Image, ImageDraw, ImageFont

from docexchange.fonts import find_font

__all__ = ["DPI", "INK_BLUE", "SEAL_DIAMETER_MM", "SEAL_RED", "draw_seal", "draw_signature"]

DPI = 300
SEAL_DIAMETER_MM = 40.0
INK_BLUE = (18, 44, 170)
SEAL_RED = (214, 24, 32)
_SS = 3  # supersampling factor for smooth edges


def _rng(seed: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def _catmull_rom(points: list[tuple[float, float]], steps: int = 16) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    pts = [points[0], *points, points[-1]]
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        for s in range(steps):
            t = s / steps
            t2, t3 = t * t, t * t * t
            out.append(
                (
                    0.5 * (2 * p1[0] + (-p0[0] + p2[0]) * t + (2 * p0[0] - 5 * p1[0] + 4 * p2[0] - p3[0]) * t2
                           + (-p0[0] + 3 * p1[0] - 3 * p2[0] + p3[0]) * t3),
                    0.5 * (2 * p1[1] + (-p0[1] + p2[1]) * t + (2 * p0[1] - 5 * p1[1] + 4 * p2[1] - p3[1]) * t2
                           + (-p0[1] + 3 * p1[1] - 3 * p2[1] + p3[1]) * t3),
                )
            )
    out.append(points[-1])
    return out


def _stroke(draw: ImageDraw.ImageDraw, path: list[tuple[float, float]], width: float, colour: tuple[int, ...]) -> None:
    n = len(path)
    for i in range(n - 1):
        # pen pressure: thin at the ends, fuller in the middle
        w = max(1.0, width * (0.45 + 0.55 * math.sin(math.pi * (i + 0.5) / n)))
        draw.line([path[i], path[i + 1]], fill=colour, width=round(w))
        r = w / 2
        draw.ellipse([path[i + 1][0] - r, path[i + 1][1] - r, path[i + 1][0] + r, path[i + 1][1] + r], fill=colour)


def draw_signature(full_name: str, seed: str, width_mm: float = 50.0, height_mm: float = 22.0) -> bytes:
    """A handwritten-style signature for ``full_name`` (stable for a given ``seed``), as PNG bytes."""
    rng = _rng(seed)
    w = round(width_mm / 25.4 * DPI)
    h = round(height_mm / 25.4 * DPI)
    W, H = w * _SS, h * _SS
    img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    colour = (*INK_BLUE, 255)
    pen = 7.0 * _SS
    # One looping stroke per word of the name (initial-heavy, as many officials sign), then a flourish.
    words = [x for x in full_name.split() if x] or ["x"]
    x = W * 0.08
    span = W * 0.78 / len(words)
    baseline = H * 0.58
    for word in words:
        pts: list[tuple[float, float]] = [(x, baseline + rng.uniform(-0.05, 0.05) * H)]
        loops = 1 + min(len(word), 6) // 3
        for k in range(loops):
            fx = x + span * (k + 1) / (loops + 1)
            pts.append((fx + rng.uniform(0.1, 0.5) * span / loops, baseline - rng.uniform(0.25, 0.5) * H))
            pts.append((fx - rng.uniform(0.1, 0.4) * span / loops, baseline - rng.uniform(0.0, 0.15) * H))
            pts.append((fx + rng.uniform(0.3, 0.6) * span / loops, baseline + rng.uniform(0.05, 0.2) * H))
        pts.append((x + span * 0.95, baseline - rng.uniform(0.0, 0.1) * H))
        _stroke(draw, _catmull_rom(pts), pen, colour)
        x += span
    flourish = [
        (W * 0.12, H * 0.82),
        (W * 0.45, H * rng.uniform(0.72, 0.8)),
        (W * 0.75, H * rng.uniform(0.7, 0.78)),
        (W * 0.92, H * rng.uniform(0.55, 0.65)),
    ]
    _stroke(draw, _catmull_rom(flourish), pen * 0.8, colour)
    img = img.resize((w, h), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(DPI, DPI))
    return buf.getvalue()


def _text_on_ring(
    img: Image.Image, text: str, centre: float, radius: float, font: ImageFont.FreeTypeFont,
    colour: tuple[int, ...], start_deg: float, end_deg: float, outward: bool = True,
) -> None:
    """Write ``text`` along an arc from ``start_deg`` to ``end_deg`` (0° = top, clockwise)."""
    widths = [font.getlength(ch) for ch in text]
    total = sum(widths)
    arc = math.radians(end_deg - start_deg) * radius
    gap = max(0.0, (arc - total) / max(1, len(text) - 1))
    pos = 0.0
    for ch, cw in zip(text, widths, strict=True):
        angle = start_deg + math.degrees((pos + cw / 2) / radius)
        pos += cw + gap
        if ch == " ":
            continue
        size = int(font.size * 2.2)
        glyph = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((size / 2, size / 2), ch, font=font, fill=colour, anchor="mm")
        rot = glyph.rotate(-angle if outward else 180 - angle, resample=Image.Resampling.BICUBIC)
        a = math.radians(angle)
        cx = centre + radius * math.sin(a)
        cy = centre - radius * math.cos(a)
        img.alpha_composite(rot, (round(cx - size / 2), round(cy - size / 2)))


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, colour: tuple[int, ...]) -> None:
    pts = []
    for i in range(10):
        rr = r if i % 2 == 0 else r * 0.4
        a = math.radians(i * 36)
        pts.append((cx + rr * math.sin(a), cy - rr * math.cos(a)))
    draw.polygon(pts, fill=colour)


def draw_seal(agency_name: str, place: str = "", diameter_mm: float = SEAL_DIAMETER_MM) -> bytes:
    """A round red seal at real size: the agency's name on the ring, a star and the place in the centre."""
    d = round(diameter_mm / 25.4 * DPI)
    D = d * _SS
    img = Image.new("RGBA", (D, D), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    colour = (*SEAL_RED, 255)
    c = D / 2
    outer = D / 2 - 2 * _SS
    draw.ellipse([c - outer, c - outer, c + outer, c + outer], outline=colour, width=round(D * 0.028))
    inner = outer * 0.66
    draw.ellipse([c - inner, c - inner, c + inner, c + inner], outline=colour, width=round(D * 0.012))
    ring_text = agency_name.upper()
    font_size = round(D * 0.085 if len(ring_text) <= 32 else D * 0.085 * 32 / len(ring_text))
    font = ImageFont.truetype(str(find_font("sans", bold=True)), max(font_size, round(D * 0.05)))
    text_r = (outer + inner) / 2
    _text_on_ring(img, ring_text, c, text_r, font, colour, -150, 150)
    _star(draw, c, c - inner * 0.22, inner * 0.42, colour)
    if place:
        small = ImageFont.truetype(str(find_font("sans", bold=True)), round(D * 0.06))
        draw.text((c, c + inner * 0.45), place.upper(), font=small, fill=colour, anchor="mm")
    img = img.resize((d, d), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(DPI, DPI))
    return buf.getvalue()
