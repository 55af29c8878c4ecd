"""``docexchange verify FILE|DIR…``: verify signed PDFs and print the report (a thin layer over
:class:`docexchange.verify.Verifier`).

Exit codes: 0 every document is valid; 1 some document is not valid (or indeterminate); 2 some document could
not be evaluated at all (not a PDF, no signature, a hostile file stopped at a limit).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import click

from docexchange.cli.runtime import CliContext, pass_ctx
from docexchange.clock import VN_TZ
from docexchange.errors import ConfigError, DirectoryError, VerificationError

__all__ = ["collect_files", "parse_at", "verify"]

MAX_FILES = 100_000


def parse_at(text: str) -> datetime:
    """``2020-11-01``, ``2020-11-01T08:30``, ``2020-11-01T08:30:00+07:00`` … (no zone: Vietnam time)."""
    t = text.strip()
    try:
        if len(t) == 10:
            moment = datetime.combine(date.fromisoformat(t), time(0, 0))
        else:
            moment = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"'{text}' không phải thời điểm ISO 8601 (ví dụ 2020-11-01T08:30:00+07:00) — not an ISO 8601 time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=VN_TZ)


def collect_files(paths: tuple[Path, ...]) -> list[tuple[Path, str]]:
    """The files named, and the PDFs under the folders named (recursively, in name order), each with the name
    to show (relative to the folder it was found in)."""
    out: list[tuple[Path, str]] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() == ".pdf")
            out.extend((f, str(f.relative_to(p))) for f in found)
        elif p.exists():
            out.append((p, str(p)))
        else:
            raise click.BadParameter(f"không tìm thấy '{p}' — '{p}' does not exist")
        if len(out) > MAX_FILES:
            raise click.BadParameter(f"quá nhiều tệp (> {MAX_FILES}) — too many files")
    return out


_HEADERS = {
    "vi": ("Tệp", "Kết luận", "Chỉ báo", "Chữ ký", "Lý do chính"),
    "en": ("File", "Conclusion", "Indication", "Signatures", "Main reason"),
}


def _summary_table(rows: list[tuple[str, Any]], lang: str, color: bool) -> str:
    headers = _HEADERS["en" if lang == "en" else "vi"]
    table: list[tuple[str, str, str, str, str]] = []
    for name, report in rows:
        reason = report.reasons[0].text(lang) if report.reasons else ""
        ind = report.indication.value + (f"/{report.sub_indication.value}" if report.sub_indication else "")
        table.append((name, report.label(lang), ind, str(len(report.signatures)), reason))
    widths = [min(max(len(r[i]) for r in [headers, *table]), cap) for i, cap in enumerate((48, 14, 44, 7, 90))]

    def cut(text: str, width: int, keep_end: bool = False) -> str:
        if len(text) <= width:
            return text
        return "…" + text[-(width - 1):] if keep_end else text[: width - 1] + "…"

    lines = ["  ".join(cut(h, w).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for (_name, report), row in zip(rows, table, strict=True):
        cells = [cut(c, w, keep_end=i == 0).ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        if color:
            fg = {"valid": "green", "invalid": "red"}.get(report.outcome.value, "yellow")
            cells[1] = click.style(cells[1], fg=fg, bold=True)
        lines.append("  ".join(cells).rstrip())
    counts: dict[str, int] = {}
    for _, report in rows:
        counts[report.label(lang)] = counts.get(report.label(lang), 0) + 1
    total = ", ".join(f"{k}: {v}" for k, v in counts.items())
    lines.append("")
    lines.append(("Total" if lang == "en" else "Tổng") + f" {len(rows)} — {total}")
    return "\n".join(lines) + "\n"


@click.command("verify")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True,
              help="Định dạng báo cáo (report format).")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True,
              help="Ngôn ngữ báo cáo (report language).")
@click.option("--sender", metavar="CODE", default=None,
              help="Mã cơ quan gửi; bật quy định NĐ 30 (sending agency code; implies --policy nd30).")
@click.option("--policy", type=click.Choice(["nd30", "nd30-appendix"]), default=None,
              help="Kiểm tra theo NĐ 30: nd30 (người ký + con dấu), nd30-appendix (phụ lục: con dấu).")
@click.option("--at", "at_text", metavar="TIME", default=None,
              help="Kiểm tra tại thời điểm này thay vì hiện tại (validate at this ISO 8601 time; default zone +07:00).")
@click.option("--offline", is_flag=True, help="Không tra cứu OCSP/CRL trực tuyến (use embedded data only).")
@click.option("--anchor", "anchors", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Thêm chứng thư gốc tin cậy (extra trust anchor, DER/PEM); có thể lặp lại.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Ghi báo cáo vào tệp (một tệp) hoặc thư mục (nhiều tệp HTML) — write to a file or folder.")
@pass_ctx
def verify(ctx: CliContext, paths: tuple[Path, ...], fmt: str, lang: str, sender: str | None, policy: str | None,
           at_text: str | None, offline: bool, anchors: tuple[Path, ...], output: Path | None) -> None:
    """Kiểm tra chữ ký số trên văn bản PDF — verify signed PDF documents.

    FILE|DIR: tệp PDF hoặc thư mục (kiểm tra mọi tệp .pdf bên trong). Mã thoát (exit code): 0 tất cả hợp lệ,
    1 có văn bản không hợp lệ/chưa xác định, 2 có văn bản không kiểm tra được.
    """
    from docexchange.verify.pdf import Verifier, _read_certs

    at = parse_at(at_text) if at_text else None
    if sender and policy is None:
        policy = "nd30"
    files = collect_files(paths)
    if not files:
        raise click.UsageError("không có tệp PDF nào để kiểm tra — no PDF to verify")
    settings = ctx.settings
    try:
        directory = ctx.directory()
    except (ConfigError, DirectoryError):
        if policy is not None:
            raise
        directory = None
    extra: list[bytes] = []
    for a in anchors:
        extra.extend(_read_certs(a))
    batch = len(files) > 1 or any(p.is_dir() for p in paths)
    if batch and fmt == "html" and output is None:
        raise click.UsageError("--format html cho nhiều tệp cần --output THƯ_MỤC — html for several files needs "
                               "--output DIR")
    color = sys.stdout.isatty() and output is None
    reports: list[tuple[str, Any]] = []
    with Verifier.from_settings(settings, directory, extra_anchors=extra) as verifier:
        def one(path: Path) -> Any:
            return verifier.verify_file(path, sender=sender, policy=policy, at=at, offline=offline)

        if batch:
            label = "Đang kiểm tra" if lang == "vi" else "Verifying"
            with click.progressbar(files, label=label, show_pos=True, file=sys.stderr,
                                   item_show_func=lambda f: f[1][-40:] if f else "") as bar:
                for path, shown in bar:
                    reports.append((shown, one(path)))
        else:
            reports.append((files[0][1], one(files[0][0])))
    _emit(reports, fmt, lang, output, batch, color)
    code = max(report.exit_code for _, report in reports)
    if code:
        raise SystemExit(code)


def _emit(reports: list[tuple[str, Any]], fmt: str, lang: str, output: Path | None, batch: bool,
          color: bool) -> None:
    if not batch:
        _name, report = reports[0]
        if fmt == "json":
            text = report.to_json() + "\n"
        elif fmt == "html":
            text = report.render_html(lang)
        else:
            text = report.render_text(lang, color=color)
        _write(text, output)
        return
    if fmt == "json":
        body = {"reports": [r.to_dict() for _, r in reports]}
        _write(json.dumps(body, ensure_ascii=False, indent=2) + "\n", output)
        click.echo(_summary_table(reports, lang, color=sys.stderr.isatty()), err=True, nl=False)
        return
    if fmt == "html":
        assert output is not None
        output.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for name, report in reports:
            stem = Path(name).stem
            candidate = stem
            n = 2
            while candidate in used:
                candidate = f"{stem}-{n}"
                n += 1
            used.add(candidate)
            (output / f"{candidate}.html").write_text(report.render_html(lang), encoding="utf-8")
        click.echo(_summary_table(reports, lang, color), nl=False)
        return
    parts: list[str] = []
    if output is not None:
        parts.extend(r.render_text(lang) + "\n" for _, r in reports)
    parts.append(_summary_table(reports, lang, color))
    _write("".join(parts), output)
    if output is not None:
        click.echo(_summary_table(reports, lang, color=sys.stdout.isatty()), nl=False)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise VerificationError(f"Không ghi được {output}", f"cannot write {output}: {exc}") from exc
