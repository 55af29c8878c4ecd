"""``docexchange axis``: the national-axis-style API (docs/national-axis-api.md) from the command line, for
agencies without document management software of their own. A thin layer over
:class:`docexchange.client.AxisClient`::

    export DOCEXCHANGE_SYSTEM_ID=qlvb-honggai DOCEXCHANGE_SECRET=…
    docexchange axis send packet.xml --from 000.01.11.H49 --to 000.00.01.H57
    docexchange axis list --from 000.00.01.H57 [--status] [--sent]
    docexchange axis get <docId> --from 000.00.01.H57 -o packet.xml
    docexchange axis ack <docId> --from 000.00.01.H57 [--status done|processing|fail]

The system id and secret are the same as for ``docexchange send`` / ``inbox``: ``$DOCEXCHANGE_SYSTEM_ID`` and
``$DOCEXCHANGE_SECRET`` (or ``--system-id`` and ``--secret-file``), else the secret is asked for without echo;
never on the command line, where other users of the host could read it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from docexchange.cli.runtime import CliContext, echo_ok, pass_ctx
from docexchange.client.axis import AxisClient
from docexchange.client.wire import TransportStatus
from docexchange.errors import ConfigError, EdxmlError, InvalidPacket

__all__ = ["axis"]

SYSTEM_ID_ENV = "DOCEXCHANGE_SYSTEM_ID"
SECRET_ENV = "DOCEXCHANGE_SECRET"  # noqa: S105 - the variable's name, not a secret

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _connection_options(fn: F) -> F:
    options = [
        click.option("--url", help="Địa chỉ trục (node URL), mặc định trục chủ quản của --from trong danh bạ."),
        click.option("--node", "node_id", help="Mã trục trong danh bạ (node id) thay cho --url."),
        click.option("--system-id", envvar=SYSTEM_ID_ENV,
                     help=f"Mã hệ thống (system id); biến môi trường {SYSTEM_ID_ENV}."),
        click.option("--secret-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     help=f"Tệp chứa bí mật dùng chung; mặc định biến môi trường {SECRET_ENV}."),
        click.option("--ca-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                     help="Chứng thư gốc để kiểm tra TLS của trục, mặc định keys/ca/root.crt."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _client(ctx: CliContext, url: str | None, node_id: str | None, system_id: str | None,
            secret_file: Path | None, ca_file: Path | None, agency: str | None) -> AxisClient:
    if not system_id:
        raise ConfigError(f"Thiếu mã hệ thống: dùng --system-id hoặc biến {SYSTEM_ID_ENV}",
                          f"no system id: give --system-id or set {SYSTEM_ID_ENV}")
    secret = secret_file.read_text("utf-8").strip() if secret_file else os.environ.get(SECRET_ENV)
    if not secret:
        if not sys.stdin.isatty():
            raise ConfigError(f"Thiếu bí mật dùng chung: đặt biến môi trường {SECRET_ENV} hoặc dùng --secret-file",
                              f"no shared secret: set {SECRET_ENV} or give --secret-file")
        secret = str(click.prompt("Bí mật dùng chung (shared secret)", hide_input=True, err=True))
    if url is None:
        directory = ctx.directory()
        if node_id is not None:
            url = directory.node(node_id).url
        elif agency is not None:
            url = directory.home_node(agency).url
        else:
            raise ConfigError("Cần --url, --node hoặc --from để biết gọi trục nào",
                              "give --url, --node or --from to choose the node")
    if ca_file is None:
        default = ctx.settings.keys_dir / "ca" / "root.crt"
        ca_file = default if default.is_file() else None
    return AxisClient(url, system_id, secret, ca_file=ca_file)


def _run(client: AxisClient, job: Callable[[AxisClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with client:
            return await job(client)

    return asyncio.run(main())


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group("axis")
def axis() -> None:
    """Gọi trục theo kiểu trục quốc gia (sendEdoc, getReceivedEdocList, getEdoc, updateStatus …).

    Talk to an axis node with the national-axis-style API.
    """


@axis.command("send")
@click.argument("packet", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--from", "agency", required=True, help="Mã cơ quan gửi (sending agency code).")
@click.option("--to", "to", multiple=True, help="Nơi nhận ngoài To của gói tin (extra recipient), lặp lại được.")
@click.option("--messagetype", type=click.Choice(["auto", "edoc", "status"]), default="auto", show_default=True,
              help="Loại gói tin; auto: đọc từ gói tin (packet kind; auto: read from the packet).")
@click.option("--json", "as_json", is_flag=True, help="In câu trả lời JSON (print the JSON answer).")
@_connection_options
@pass_ctx
def send(ctx: CliContext, packet: Path, agency: str, to: tuple[str, ...], messagetype: str, as_json: bool,
         url: str | None, node_id: str | None, system_id: str | None, secret_file: Path | None,
         ca_file: Path | None) -> None:
    """Gửi gói tin edXML (sendEdoc) — send an edXML packet as it is."""
    from docexchange.edxml import StatusPacket, read_packet
    from docexchange.edxml._xml import MiB, ReadLimits

    limit = ctx.settings.exchange.max_packet_mb * MiB
    if packet.stat().st_size > limit:
        raise InvalidPacket(f"Gói tin {packet} vượt {ctx.settings.exchange.max_packet_mb} MB",
                            f"{packet} exceeds {limit} bytes")
    data = packet.read_bytes()
    if messagetype == "auto":
        try:
            parsed = read_packet(data, limits=ReadLimits(max_packet_bytes=limit))
        except EdxmlError as exc:
            raise InvalidPacket(f"Không đọc được gói tin {packet}: {exc.message_vi}",
                                f"cannot read {packet}: {exc.message_en}") from exc
        is_status = isinstance(parsed, StatusPacket)
    else:
        is_status = messagetype == "status"
    client = _client(ctx, url, node_id, system_id, secret_file, ca_file, agency)
    answer = _run(client, lambda c: c.send_edoc(agency, data, to=to, status=is_status))
    if as_json:
        _print_json(answer)
        return
    kind = "trạng thái (status)" if is_status else "văn bản (edoc)"
    dup = " — đã gửi trước đó (duplicate)" if answer.get("duplicate") else ""
    echo_ok(f"Đã gửi gói tin {kind} {answer.get('documentId')}{dup} — sent, docId {answer.get('docId')}")
    for d in answer.get("deliveries", []):
        click.echo(f"  → {d['to']}: {d['state']}  docId {d['docId']}")


@axis.command("list")
@click.option("--from", "agency", required=True, help="Mã cơ quan (agency code).")
@click.option("--status", "statuses", is_flag=True, help="Gói tin trạng thái thay cho văn bản (status packets).")
@click.option("--sent", is_flag=True, help="Danh sách đã gửi (getSentEdocList) thay cho đang chờ nhận.")
@click.option("--limit", type=click.IntRange(1, 500), default=None, help="Số mục mỗi trang (items per page).")
@click.option("--all", "all_pages", is_flag=True, help="Đọc hết các trang (every page).")
@click.option("--json", "as_json", is_flag=True, help="In JSON (print JSON).")
@_connection_options
@pass_ctx
def list_(ctx: CliContext, agency: str, statuses: bool, sent: bool, limit: int | None, all_pages: bool,
          as_json: bool, url: str | None, node_id: str | None, system_id: str | None, secret_file: Path | None,
          ca_file: Path | None) -> None:
    """Liệt kê gói tin chờ nhận hoặc đã gửi — list waiting (or sent) packets."""
    client = _client(ctx, url, node_id, system_id, secret_file, ca_file, agency)

    async def job(c: AxisClient) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            if sent:
                page = await c.sent(agency, status=statuses, limit=limit, cursor=cursor)
            else:
                page = await c.received(agency, status=statuses, limit=limit, cursor=cursor)
            items.extend(page.items)
            cursor = page.next_cursor
            if not cursor or not all_pages:
                return items

    items = _run(client, job)
    if as_json:
        _print_json(items)
        return
    if not items:
        click.echo("Không có gói tin nào — nothing.")
        return
    for it in items:
        if sent:
            states = ", ".join(f"{r['to']} {r['state']}" + (f" [{r['statusCode']}]" if r.get("statusCode") else "")
                               for r in it.get("recipients", []))
            label = it.get("statusCode") or it.get("subject") or ""
            click.echo(f"{it['docId']}  {it['documentId']}  {label}  → {states}")
        elif it.get("messagetype") == "status":
            click.echo(f"{it['docId']}  {it['statusCode']} {it.get('statusName') or ''}  từ {it['from']}  "
                       f"về {it['documentId']}")
        else:
            click.echo(f"{it['docId']}  [{it.get('priorityName') or ''}] {it['documentId']}  từ {it['from']}  "
                       f"{it.get('subject') or ''}  ({it.get('verificationName') or ''})")


@axis.command("get")
@click.argument("doc_id")
@click.option("--from", "agency", required=True, help="Mã cơ quan nhận (receiving agency code).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Ghi gói tin ra tệp; mặc định ra stdout (write the edXML here; default stdout).")
@_connection_options
@pass_ctx
def get(ctx: CliContext, doc_id: str, agency: str, output: Path | None, url: str | None, node_id: str | None,
        system_id: str | None, secret_file: Path | None, ca_file: Path | None) -> None:
    """Tải một gói tin (getEdoc), đã kiểm tra SHA-256 — fetch one packet, SHA-256 checked."""
    client = _client(ctx, url, node_id, system_id, secret_file, ca_file, agency)
    data = _run(client, lambda c: c.get_edoc(agency, doc_id))
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    tmp = output.with_name(output.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(output)
    echo_ok(f"Đã lưu {output} ({len(data)} byte) — saved")


@axis.command("ack")
@click.argument("doc_id")
@click.option("--from", "agency", required=True, help="Mã cơ quan nhận (receiving agency code).")
@click.option("--status", "status", type=click.Choice([s.value for s in TransportStatus]), default="done",
              show_default=True, help="done: đã nhận xong; processing: đang nhận; fail: nhận lỗi, sẽ tải lại.")
@_connection_options
@pass_ctx
def ack(ctx: CliContext, doc_id: str, agency: str, status: str, url: str | None, node_id: str | None,
        system_id: str | None, secret_file: Path | None, ca_file: Path | None) -> None:
    """Xác nhận đã nhận gói tin (updateStatus) — acknowledge the transfer of a packet."""
    client = _client(ctx, url, node_id, system_id, secret_file, ca_file, agency)
    answer = _run(client, lambda c: c.update_status(agency, doc_id, status))
    echo_ok(f"Đã cập nhật {doc_id}: {answer.get('transportStatus')} ({answer.get('state')}) — updated")


@axis.command("count")
@click.option("--from", "agency", required=True, help="Mã cơ quan (agency code).")
@click.option("--status", "statuses", is_flag=True, help="Đếm gói tin trạng thái (count status packets).")
@_connection_options
@pass_ctx
def count(ctx: CliContext, agency: str, statuses: bool, url: str | None, node_id: str | None,
          system_id: str | None, secret_file: Path | None, ca_file: Path | None) -> None:
    """Đếm gói tin chờ nhận (countReceiveEdoc / countReceiveStatus) — count waiting packets."""
    client = _client(ctx, url, node_id, system_id, secret_file, ca_file, agency)
    click.echo(str(_run(client, lambda c: c.count(agency, status=statuses))))


@axis.command("agencies")
@click.option("--json", "as_json", is_flag=True, help="In JSON (print JSON).")
@_connection_options
@pass_ctx
def agencies(ctx: CliContext, as_json: bool, url: str | None, node_id: str | None, system_id: str | None,
             secret_file: Path | None, ca_file: Path | None) -> None:
    """Danh sách cơ quan liên thông (getAgencyList) — the agencies reachable through the axis."""
    client = _client(ctx, url, node_id, system_id, secret_file, ca_file, None)
    items = _run(client, lambda c: c.agencies())
    if as_json:
        _print_json(items)
        return
    for a in items:
        click.echo(f"{a['code']}  {a['name']}  ({a['node']})")
