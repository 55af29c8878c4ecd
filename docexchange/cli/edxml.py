"""``docexchange edxml …``: build, inspect, validate and unpack edXML packets (a thin layer over the library)."""

from __future__ import annotations

import json
import os
import re
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from docexchange.cli.runtime import CliContext, echo_ok, echo_warn, pass_ctx
from docexchange.clock import SystemClock, to_vn
from docexchange.edxml import (
    AttachmentEncoding,
    ReadLimits,
    read_packet,
    validate,
    verify_packet,
    write_document,
)
from docexchange.edxml.model import (
    Attachment,
    Bussiness,
    Code,
    DocumentPacket,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    SignerInfo,
    TraceHeader,
    TraceHeaderList,
    make_document_id,
)
from docexchange.edxml.reader import sniff_content_type
from docexchange.edxml.signature import PacketSigner, SignatureStatus
from docexchange.edxml.summary import human_size, packet_to_dict, summary_vi
from docexchange.edxml.writer import is_safe_attachment_name
from docexchange.errors import AttachmentError, ConfigError, EdxmlError, PacketTooLarge, UnknownAgency

__all__ = ["edxml"]

_PRIORITY_NAMES = {
    "thuong": Priority.NORMAL,
    "normal": Priority.NORMAL,
    "khan": Priority.URGENT,
    "urgent": Priority.URGENT,
    "thuong-khan": Priority.VERY_URGENT,
    "very-urgent": Priority.VERY_URGENT,
    "hoa-toc": Priority.FLASH,
    "flash": Priority.FLASH,
    "hoa-toc-hen-gio": Priority.FLASH_TIMED,
    "flash-timed": Priority.FLASH_TIMED,
}

_METADATA_KEYS = {
    "from", "to", "number", "notation", "date", "place", "type", "type_detail", "type_name", "subject", "content",
    "signer_name", "signer_position", "competence", "priority", "due_date", "to_places", "appendixes",
    "page_amount", "promulgation_amount", "sphere", "typer_notation", "steering_type", "business", "target",
    "reason", "add_receivers", "remove_receivers", "attachments",
}  # fmt: skip


def _limits(ctx: CliContext) -> ReadLimits:
    return ReadLimits.for_packet_size(ctx.settings.exchange.max_packet_mb)


def _read_file(path: Path, limits: ReadLimits) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(limits.max_packet_bytes + 1)
    except OSError as exc:
        raise EdxmlError(f"Không đọc được tệp {path}: {exc.strerror}", f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > limits.max_packet_bytes:
        raise PacketTooLarge(
            f"Tệp {path} vượt giới hạn {limits.max_packet_bytes} byte",
            f"{path} exceeds the limit of {limits.max_packet_bytes} bytes",
        )
    return data


def _load_metadata(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"Không đọc được tệp {path}", f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: sai cú pháp ({exc})", f"{path}: syntax error ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: phải là một bảng khóa/giá trị", f"{path}: must be a key/value table")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - _METADATA_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: khóa không được hỗ trợ {', '.join(unknown)} (hợp lệ: {', '.join(sorted(_METADATA_KEYS))})",
            f"{path}: unknown keys {', '.join(unknown)} (valid: {', '.join(sorted(_METADATA_KEYS))})",
        )
    return data


def _parse_date(text: Any, what: str) -> date:
    if isinstance(text, date) and not isinstance(text, datetime):
        return text
    s = str(text).strip()
    for pattern, order in ((r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$", "ymd"), (r"^(\d{1,2})/(\d{1,2})/(\d{4})$", "dmy")):
        m = re.match(pattern, s)
        if m:
            a, b, c = (int(x) for x in m.groups())
            try:
                return date(a, b, c) if order == "ymd" else date(c, b, a)
            except ValueError:
                break
    raise click.BadParameter(f"ngày {s!r} không hợp lệ (yyyy-mm-dd hoặc dd/mm/yyyy) — invalid date", param_hint=what)


def _priority(value: Any) -> Priority:
    text = str(value).strip().lower()
    if text.isdigit() and 0 <= int(text) <= 4:
        return Priority(int(text))
    if text in _PRIORITY_NAMES:
        return _PRIORITY_NAMES[text]
    raise click.BadParameter(
        f"{value!r}: 0–4 hoặc {', '.join(sorted(_PRIORITY_NAMES))} — invalid priority", param_hint="--priority"
    )


def _organization(ctx: CliContext, code: str) -> Organization:
    try:
        directory = ctx.directory()
        agency = directory.agency(code)
    except (UnknownAgency, ConfigError):
        echo_warn(f"Mã {code} không có trong danh bạ: chỉ ghi mã (agency not in the directory)")
        return Organization(code)
    parent = directory.parent_agency(agency.code)
    return Organization(
        organ_id=agency.code,
        organ_name=agency.name,
        organization_in_charge=parent.name if parent is not None else agency.name,
        organ_add=agency.address or None,
        email=agency.email or None,
        telephone=agency.telephone or None,
        website=agency.website or None,
    )


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


@click.group()
def edxml() -> None:
    """Gói tin edXML (QCVN 102:2016) — build, inspect, validate and unpack packets."""


@edxml.command("build")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-m", "--metadata", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Tệp TOML/JSON chứa các trường dưới đây (tham số dòng lệnh được ưu tiên) — metadata file.")
@click.option("--from", "from_", help="Mã cơ quan gửi — sender agency code.")
@click.option("--to", "to", multiple=True, help="Mã cơ quan nhận (lặp lại được) — recipient code (repeatable).")
@click.option("--number", help="Số văn bản (CodeNumber), ví dụ 05.")
@click.option("--notation", help="Ký hiệu (CodeNotation), ví dụ UBND-VX.")
@click.option("--date", "date_", help="Ngày ban hành (yyyy-mm-dd hoặc dd/mm/yyyy); mặc định hôm nay.")
@click.option("--place", help="Nơi ban hành, ví dụ Hạ Long.")
@click.option("--type-name", help="Tên loại văn bản, ví dụ 'Công văn'.")
@click.option("--type", "type_", help="Mã loại văn bản (Type).")
@click.option("--subject", help="Trích yếu.")
@click.option("--content", help="Nội dung tóm tắt (Content).")
@click.option("--signer-name", help="Họ tên người ký.")
@click.option("--signer-position", help="Chức vụ người ký.")
@click.option("--competence", help="Thẩm quyền ký, ví dụ 'KT. CHỦ TỊCH'.")
@click.option("--priority", help="Độ khẩn: 0 thường … 4 hỏa tốc hẹn giờ (or thuong, khan, thuong-khan, hoa-toc…).")
@click.option("--due-date", help="Hạn xử lý.")
@click.option("--to-place", "to_places", multiple=True, help="Nơi nhận in trên văn bản (lặp lại được).")
@click.option("--business", type=click.Choice(["new", "revoke", "update", "replace"]),
              help="Nghiệp vụ: mới, thu hồi, cập nhật, thay thế (default new).")
@click.option("--target", help="DocumentId của văn bản bị thu hồi/cập nhật/thay thế.")
@click.option("--reason", help="Lý do (BussinessDocReason).")
@click.option("--raw", is_flag=True, help="Không gói ZIP tệp đính kèm — base64 of the file itself.")
@click.option("--sign", "sign", is_flag=True, help="Ký phong bì bằng khóa con dấu của cơ quan gửi (keys/).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="Tệp kết quả (.edxml).")
@pass_ctx
def build_cmd(ctx: CliContext, files: tuple[Path, ...], metadata: Path | None, **opts: Any) -> None:
    """Đóng gói văn bản (PDF đã ký) thành gói tin edXML — build a packet from signed PDF(s) and metadata.

    FILES: the main document first, then appendices. They may also be listed under ``attachments`` in the
    metadata file (paths relative to that file).
    """
    meta: dict[str, Any] = _load_metadata(metadata) if metadata else {}
    flags = {
        "from": opts["from_"], "to": list(opts["to"]) or None, "number": opts["number"],
        "notation": opts["notation"], "date": opts["date_"], "place": opts["place"],
        "type_name": opts["type_name"], "type": opts["type_"], "subject": opts["subject"],
        "content": opts["content"], "signer_name": opts["signer_name"], "signer_position": opts["signer_position"],
        "competence": opts["competence"], "priority": opts["priority"], "due_date": opts["due_date"],
        "to_places": list(opts["to_places"]) or None, "business": opts["business"], "target": opts["target"],
        "reason": opts["reason"],
    }  # fmt: skip
    values = {**meta, **{k: v for k, v in flags.items() if v is not None}}
    paths = list(files)
    if not paths and metadata is not None:
        paths = [(metadata.parent / p) for p in _as_list(meta.get("attachments"))]
    missing = [k for k in ("from", "to", "number", "notation", "subject") if not values.get(k)]
    if missing:
        raise click.UsageError(
            f"Thiếu: {', '.join('--' + m.replace('_', '-') for m in missing)} — missing required metadata"
        )
    if not paths:
        raise click.UsageError("Cần ít nhất một tệp văn bản (PDF) — at least one file is required")
    clock = SystemClock()
    now = clock.now()
    sender = _organization(ctx, str(values["from"]))
    recipients = tuple(_organization(ctx, code) for code in _as_list(values["to"]))
    promulgation_date = _parse_date(values["date"], "--date") if values.get("date") else to_vn(now).date()
    code = Code(str(values["number"]), str(values["notation"]))
    attachments = []
    limits = _limits(ctx)
    for path in paths:
        if not is_safe_attachment_name(path.name):
            raise AttachmentError(f"Tên tệp {path.name!r} không dùng được", f"file name {path.name!r} is unusable")
        if path.stat().st_size > limits.max_packet_bytes:
            raise PacketTooLarge(
                f"Tệp {path} lớn hơn giới hạn gói tin {limits.max_packet_bytes} byte",
                f"{path} is larger than the packet limit of {limits.max_packet_bytes} bytes",
            )
        content = path.read_bytes()
        attachments.append(Attachment(path.name, content, sniff_content_type(content, path.name)))
    kind = values.get("business") or "new"
    reason = values.get("reason")
    target = values.get("target")
    if kind != "new" and not target:
        raise click.UsageError("--target (DocumentId của văn bản gốc) là bắt buộc với --business " + kind)
    if kind == "new":
        bussiness = Bussiness.new(reason or "Văn bản điện tử mới")
    elif kind == "revoke":
        bussiness = Bussiness.revoke(str(target), reason or "Thu hồi văn bản điện tử")
    elif kind == "update":
        receivers = tuple(Receiver(c, ReceiverType.ADDED) for c in _as_list(values.get("add_receivers"))) + tuple(
            Receiver(c, ReceiverType.REMOVED) for c in _as_list(values.get("remove_receivers"))
        )
        bussiness = Bussiness.update(str(target), receivers, reason or "Cập nhật văn bản điện tử")
    else:
        bussiness = Bussiness.replace(
            str(target),
            (ReplacementInfo(str(target), tuple(o.organ_id for o in recipients)),),
            reason or "Thay thế văn bản điện tử",
        )
    packet = DocumentPacket(
        sender=sender,
        to=recipients,
        document_id=make_document_id(sender.organ_id, promulgation_date, code),
        code=code,
        promulgation=PromulgationInfo(promulgation_date, values.get("place")),
        document_type=DocumentType(str(values.get("type_name") or "Công văn"), values.get("type"),
                                   values.get("type_detail")),
        subject=str(values["subject"]),
        content=values.get("content"),
        signer=(
            SignerInfo(values.get("signer_name"), values.get("signer_position"), values.get("competence"))
            if any(values.get(k) for k in ("signer_name", "signer_position", "competence"))
            else None
        ),
        due_date=_parse_date(values["due_date"], "--due-date") if values.get("due_date") else None,
        to_places=tuple(_as_list(values.get("to_places"))),
        other_info=OtherInfo(
            priority=_priority(values["priority"]) if values.get("priority") is not None else Priority.NORMAL,
            sphere_of_promulgation=values.get("sphere"),
            typer_notation=values.get("typer_notation"),
            promulgation_amount=values.get("promulgation_amount"),
            page_amount=values.get("page_amount"),
            appendixes=tuple(_as_list(values.get("appendixes"))),
        ),
        steering_type=values.get("steering_type"),
        trace=TraceHeaderList((TraceHeader(sender.organ_id, now),), bussiness),
        attachments=tuple(attachments),
    )
    signer = None
    if opts["sign"]:
        from docexchange.pki.devpki import DevPki

        material = DevPki.open(ctx.settings).seal(sender.organ_id)
        signer = PacketSigner.from_key_material(material, pss=ctx.settings.signing.rsa_pss, at=now)
    encoding = AttachmentEncoding.RAW if opts["raw"] else AttachmentEncoding.ZIP
    data = write_document(packet, encoding=encoding, signer=signer)
    out = opts["out"] or Path(re.sub(r"[^\w.-]+", "_", f"{code.number}_{code.notation}") + ".edxml")
    _write_new(out, data)
    signed = " (có ký phong bì — envelope signed)" if signer else ""
    echo_ok(f"Đã tạo gói tin {out} ({human_size(len(data))}, {len(attachments)} tệp){signed} — packet written")


def _write_new(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EdxmlError(f"Không ghi được {path}: {exc.strerror}", f"cannot write {path}: {exc.strerror}") from exc


@edxml.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="In dạng JSON — JSON output.")
@pass_ctx
def inspect_cmd(ctx: CliContext, file: Path, as_json: bool) -> None:
    """Xem nội dung gói tin (tiếng Việt) — summary of a packet, its signature and anything unusual."""
    limits = _limits(ctx)
    data = _read_file(file, limits)
    packet = read_packet(data, limits=limits)
    check = verify_packet(data, limits=limits)
    if as_json:
        click.echo(json.dumps(packet_to_dict(packet, check), ensure_ascii=False, indent=2))
    else:
        click.echo(summary_vi(packet, check))


@edxml.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
def validate_cmd(ctx: CliContext, file: Path) -> None:
    """Kiểm tra gói tin theo lược đồ XSD của docexchange — check a packet against our schema.

    Exit code 0 when valid, 1 when not.
    """
    limits = _limits(ctx)
    data = _read_file(file, limits)
    report = validate(data, limits=limits)
    if report.valid:
        echo_ok(f"{report.message_vi} — {report.message_en}")
    else:
        click.secho(f"{report.message_vi} — {report.message_en}", fg="red", err=True)
        for problem in report.problems:
            click.echo(f"  {problem}", err=True)
    packet = read_packet(data, limits=limits)
    check = verify_packet(data, limits=limits)
    if check.status is not SignatureStatus.ABSENT:
        click.echo(f"{check.message_vi} — {check.message_en}")
    for w in packet.warnings:
        echo_warn(f"  ! {w.message_vi} — {w.message_en}")
    if not report.valid:
        raise click.exceptions.Exit(1)


@edxml.command("extract")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Ghi đè tệp đã có — overwrite existing files.")
@pass_ctx
def extract_cmd(ctx: CliContext, file: Path, folder: Path, overwrite: bool) -> None:
    """Lấy tệp đính kèm ra thư mục, đúng tên thật — write the attachments into FOLDER under their real names.

    Nothing is ever written outside FOLDER: unsafe names are refused, symbolic links are not followed.
    """
    limits = _limits(ctx)
    data = _read_file(file, limits)
    packet = read_packet(data, limits=limits)
    attachments = packet.attachments if isinstance(packet, DocumentPacket) else ()
    if not attachments:
        echo_warn("Gói tin không có tệp đính kèm — no attachments")
        return
    written = extract_attachments(attachments, folder, overwrite=overwrite)
    for path, a in zip(written, attachments, strict=True):
        click.echo(f"  {path} ({human_size(a.size)}, {a.content_type})")
    echo_ok(f"Đã lấy {len(written)} tệp vào {folder} — extracted")


def extract_attachments(attachments: tuple[Attachment, ...], folder: Path, *, overwrite: bool = False) -> list[Path]:
    """Write each attachment as ``folder/<name>``; a name used twice gets `` (2)``. Never leaves ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve(strict=True)
    taken: set[str] = set()
    plan: list[tuple[Path, Attachment]] = []
    for a in attachments:
        name = a.name
        if not is_safe_attachment_name(name):
            raise AttachmentError(
                f"Tên tệp đính kèm {name!r} không an toàn: không ghi",
                f"attachment name {name!r} is unsafe: not written",
            )
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        n = 2
        while name.casefold() in taken:
            name = f"{stem} ({n}){'.' + ext if dot else ''}"
            n += 1
        taken.add(name.casefold())
        target = base / name
        if target.parent != base:
            raise AttachmentError(f"Tên tệp {name!r} ra ngoài thư mục đích", f"{name!r} escapes the target folder")
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise AttachmentError(
                f"Tệp {target} đã có (dùng --overwrite để ghi đè)", f"{target} already exists (use --overwrite)"
            )
        plan.append((target, a))
    written: list[Path] = []
    for target, a in plan:
        tmp = base / f".{target.name}.{os.getpid()}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(a.content)
            if target.is_symlink():
                target.unlink()
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written.append(target)
    return written

