"""The report: its JSON schema (stable, versioned), its renderings (text, HTML in a real browser), vi/en."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from fontTools.ttLib import TTFont
from verify_support import CORPUS, HALONG, Signed

from docexchange.fonts import VIETNAMESE_SAMPLE
from docexchange.verify import Verifier
from docexchange.verify.report import (
    SCHEMA_VERSION,
    Outcome,
    VerificationReport,
    build_json_schema,
    json_schema,
    label,
)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def reports(verifier: Verifier, signed: Signed) -> dict[str, VerificationReport]:
    return {
        "valid": verifier.verify_pdf(signed.lt, name="Quyết định 05.pdf", offline=True, sender=HALONG,
                                     policy="nd30"),
        "unchecked": verifier.verify_pdf(signed.bb, name="b-b.pdf", offline=True),
        "foreign": verifier.verify_pdf(signed.foreign_seal, offline=True, sender=HALONG, policy="nd30"),
        "tampered": verifier.verify_pdf((CORPUS / "tampered/dss__pdf-signed-added-page.pdf").read_bytes(),
                                        offline=True),
        "malformed": verifier.verify_pdf(b"not a pdf", name="rác.bin", offline=True),
        "lta": verifier.verify_pdf(signed.lta, offline=True),
    }


def test_shipped_schema_is_the_model(tmp_path: Path) -> None:
    assert json_schema() == build_json_schema(), "regenerate docexchange/verify/report.schema.json"
    assert json_schema()["$id"].endswith(SCHEMA_VERSION)


def test_reports_validate_against_the_schema(reports: dict[str, VerificationReport]) -> None:
    schema = json_schema()
    for name, report in reports.items():
        data = json.loads(report.to_json())
        jsonschema.validate(data, schema, format_checker=jsonschema.FormatChecker())
        assert data["schema_version"] == SCHEMA_VERSION, name
        assert data["label"]["vi"] == report.label_vi


def test_schema_rejects_what_is_not_a_report(reports: dict[str, VerificationReport]) -> None:
    data = reports["valid"].to_dict()
    data["outcome"] = "probably fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, json_schema())


def test_json_round_trip(reports: dict[str, VerificationReport]) -> None:
    for report in reports.values():
        assert VerificationReport.from_json(report.to_json()) == report
    with pytest.raises(ValueError):
        VerificationReport.from_dict({"schema": "something else"})


def test_times_are_vietnam_time(reports: dict[str, VerificationReport]) -> None:
    data = reports["valid"].to_dict()
    assert data["validation_time"].endswith("+07:00")
    assert data["signatures"][0]["signing_time"].endswith("+07:00")
    assert "(UTC+07:00)" in reports["valid"].render_text("vi")


def test_labels() -> None:
    assert [label(o, "vi") for o in Outcome] == ["hợp lệ", "không hợp lệ", "chưa xác định", "chưa xác định"]
    assert [label(o, "en") for o in Outcome] == ["valid", "not valid", "indeterminate", "indeterminate"]


def test_text_report_vietnamese_and_english(reports: dict[str, VerificationReport]) -> None:
    vi = reports["tampered"].render_text("vi")
    en = reports["tampered"].render_text("en")
    assert "KHÔNG HỢP LỆ" in vi and "TOTAL-FAILED / FORMAT_FAILURE" in vi and "sửa đổi sau khi ký" in vi
    assert "NOT VALID" in en and "modified after signing" in en
    assert "Không kiểm tra được" in reports["malformed"].render_text("vi")
    foreign = reports["foreign"].render_text("vi")
    assert "Quy định NĐ 30/2020: KHÔNG ĐẠT" in foreign and "✘ chữ ký số của cơ quan không phải" in foreign


def _html_fonts(html: str) -> list[TTFont]:
    fonts = []
    for data in re.findall(r"base64,([A-Za-z0-9+/=]+)", html):
        fonts.append(TTFont(io.BytesIO(base64.b64decode(data))))
    return fonts


def test_html_embeds_every_glyph_it_needs(reports: dict[str, VerificationReport]) -> None:
    html = reports["valid"].render_html("vi")
    assert "<html lang=\"vi\">" in html and "HỢP LỆ" in html.upper()
    fonts = _html_fonts(html)
    assert len(fonts) == 2
    text = re.sub(r"<[^>]+>", " ", html.split("</style>", 1)[1])
    needed = {c for c in text if ord(c) > 127 and not c.isspace()}
    assert needed & set(VIETNAMESE_SAMPLE), "the page has Vietnamese text"
    for font in fonts:
        cmap = font.getBestCmap()
        missing = sorted(c for c in needed if ord(c) not in cmap)
        assert not missing, f"glyphs missing from the embedded font: {missing}"
    en = reports["valid"].render_html("en")
    assert "<html lang=\"en\">" in en and "Signature 1" in en


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


# JavaScript: for every distinct character of the page, its width in the embedded font with two different
# fallbacks. A glyph the embedded font lacks falls through to the fallback, and the widths differ.
_MISSING_GLYPHS_JS = """
() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const chars = [...new Set(document.body.innerText)].filter(c => c.trim() && c.charCodeAt(0) > 127);
  const missing = [];
  for (const weight of ['400', '700']) {
    for (const c of chars) {
      ctx.font = `${weight} 40px "DX Serif", monospace`;
      const a = ctx.measureText(c.repeat(8)).width;
      ctx.font = `${weight} 40px "DX Serif", cursive`;
      const b = ctx.measureText(c.repeat(8)).width;
      if (Math.abs(a - b) > 0.01) missing.push(weight + ':' + c);
    }
  }
  return {chars: chars.join(''), missing};
}
"""


@pytest.mark.parametrize("name", ["valid", "foreign", "tampered", "malformed", "lta"])
def test_html_renders_in_chromium(name: str, reports: dict[str, VerificationReport], browser: object,
                                  tmp_path: Path) -> None:
    html_path = tmp_path / f"{name}.html"
    html_path.write_text(reports[name].render_html("vi"), encoding="utf-8")
    page = browser.new_page(viewport={"width": 900, "height": 1200})  # type: ignore[attr-defined]
    try:
        page.goto(html_path.as_uri())
        page.wait_for_load_state("load")
        page.evaluate("document.fonts.ready")
        families = page.evaluate(
            "Array.from(document.fonts).filter(f => f.status === 'loaded').map(f => f.family + ':' + f.weight)")
        assert sorted(families) == ['"DX Serif":400', '"DX Serif":700'] or sorted(families) == [
            "DX Serif:400", "DX Serif:700"]
        result = page.evaluate(_MISSING_GLYPHS_JS)
        assert result["missing"] == [], result
        assert any(c in result["chars"] for c in "ờữệ")
        verdict = page.inner_text("#verdict-label")
        assert verdict.upper() == reports[name].label_vi.upper()
        shot = tmp_path / f"{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        pdf = page.pdf(format="A4")  # printable
        assert pdf.startswith(b"%PDF")
    finally:
        page.close()
