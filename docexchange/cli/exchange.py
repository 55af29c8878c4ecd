"""Exchange commands: ``send`` and ``inbox`` (scripting against a node's API) and ``queue`` (operators, on the
node's store). Credentials are issued with ``docexchange agency credentials create``.

``send`` / ``inbox`` read the caller's system id and secret from ``$DOCEXCHANGE_SYSTEM_ID`` and
``$DOCEXCHANGE_SECRET`` (or ``--system-id`` and ``--secret-file``): secrets never go on a command line.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from docexchange.cli.runtime import CliContext, echo_ok, pass_ctx
from docexchange.clock import SystemClock, vn_datetime
from docexchange.config import Settings
from docexchange.errors import ConfigError

__all__ = ["inbox", "queue", "send"]

T = TypeVar("T")
SECRET_ENV = "DOCEXCHANGE_SECRET"  # noqa: S105 - the name of the variable, not a secret
SYSTEM_ENV = "DOCEXCHANGE_SYSTEM_ID"


def _run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def _show_time(iso: str | None) -> str:
    return vn_datetime(datetime.fromisoformat(iso)) if iso else "—"


# ------------------------------------------------------------------------------------------------ client side


def _client(ctx: CliContext, agency: str, node: str | None, url: str | None, system_id: str | None,
            secret_file: Path | None) -> Any:
    from docexchange.web.client import AgencyClient

    d = ctx.directory()
    code = d.resolve(agency)
    base = url or d.node(node or d.agency(code).node).url
    sid = system_id or os.environ.get(SYSTEM_ENV)
    secret = secret_file.read_text().strip() if secret_file else os.environ.get(SECRET_ENV)
    if not sid or not secret:
        raise ConfigError(
            f"Cần mã hệ thống và bí mật: đặt ${SYSTEM_ENV} và ${SECRET_ENV} (hoặc --system-id, --secret-file)",
            f"need a system id and secret: set ${SYSTEM_ENV} and ${SECRET_ENV} (or --system-id, --secret-file)",
        )
    return code, AgencyClient(base, sid, secret, ca_file=ctx.settings.keys_dir / "ca" / "root.crt")


def _client_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--secret-file", type=click.Path(path_type=Path, dir_okay=False),
                     help=f"Tệp chứa bí mật (file holding the secret); mặc định ${SECRET_ENV}.")(f)
    f = click.option("--system-id", help=f"Mã hệ thống (system id); mặc định ${SYSTEM_ENV}.")(f)
    f = click.option("--url", help="Địa chỉ trục (node URL), thay cho --node.")(f)
    f = click.option("--node", help="Mã trục (node id); mặc định trục của cơ quan (the agency's home node).")(f)
    f = click.option("--as", "agency", required=True, help="Mã cơ quan thao tác (the acting agency's code).")(f)
    return f


@click.command()
@_client_options
@click.option("--to", "to", multiple=True, help="Nơi nhận (recipient code); lặp lại được.")
@click.option("--subject", help="Trích yếu (subject).")
@click.option("--number", help="Số văn bản (CodeNumber).")
@click.option("--notation", help="Ký hiệu (CodeNotation), ví dụ UBND-VP.")
@click.option("--type-name", default="Công văn", show_default=True, help="Loại văn bản (TypeName).")
@click.option("--priority", type=click.IntRange(0, 4), default=0, show_default=True,
              help="Độ khẩn: 0 Thường, 1 Khẩn, 2 Thượng khẩn, 3 Hỏa tốc, 4 Hỏa tốc hẹn giờ.")
@click.option("--attach", "attachments", multiple=True, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Tệp đính kèm thêm (appendix); lặp lại được.")
@click.option("--packet", is_flag=True, help="FILE là gói tin edXML có sẵn (an edXML packet), không phải PDF.")
@click.option("--json", "as_json", is_flag=True, help="In kết quả dạng JSON.")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@pass_ctx
def send(ctx: CliContext, agency: str, node: str | None, url: str | None, system_id: str | None,
         secret_file: Path | None, to: tuple[str, ...], subject: str | None, number: str | None,
         notation: str | None, type_name: str, priority: int, attachments: tuple[Path, ...], packet: bool,
         as_json: bool, file: Path) -> None:
    """Gửi văn bản qua trục — send a signed PDF (the node builds the edXML) or an edXML packet."""
    code, client = _client(ctx, agency, node, url, system_id, secret_file)
    body = file.read_bytes()
    extra = [(p.name, "application/pdf" if p.suffix.lower() == ".pdf" else "application/octet-stream",
              p.read_bytes()) for p in attachments]
    if not packet:
        missing = [n for n, v in (("--to", to), ("--subject", subject), ("--number", number),
                                  ("--notation", notation)) if not v]
        if missing:
            raise click.UsageError(f"Thiếu {', '.join(missing)} (missing)")
    meta = {"to": list(to), "subject": subject, "code_number": number, "code_notation": notation,
            "type_name": type_name, "priority": priority}

    async def go() -> dict[str, Any]:
        async with client:
            if packet:
                return await client.submit_packet(code, body, to=to)
            return await client.submit_document(code, meta, body, name=file.name,
                                                attachments=extra)

    result = _run(go())
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
        return
    label = "đã có từ trước (duplicate — original receipts)" if result["duplicate"] else "đã nhận"
    echo_ok(f"Trục {label}: {result['document_id']} (message {result['message_id']})")
    for d in result["deliveries"]:
        click.echo(f"  → {d['recipient']}: {d['state']}  {d['delivery_id']}")


@click.command()
@_client_options
@click.option("--kind", type=click.Choice(["document", "status"]), help="Chỉ văn bản hoặc chỉ trạng thái.")
@click.option("--unacknowledged", is_flag=True, help="Chỉ thư chưa nhận (not yet acknowledged).")
@click.option("--wait", type=click.IntRange(0, 60), default=0, help="Chờ thư mới tối đa N giây (long poll).")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--fetch", "fetch_id", help="Tải gói tin và tệp đính kèm của lượt chuyển này vào --out.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("."), show_default=True)
@click.option("--ack", "ack_id", help="Xác nhận đã nhận (acknowledge) lượt chuyển này.")
@click.option("--status", "status", nargs=2, metavar="DELIVERY_ID CODE",
              help="Gửi trạng thái 02–06 cho lượt chuyển (send a status).")
@click.option("--description", help="Nội dung kèm trạng thái (required for 02).")
@click.option("--json", "as_json", is_flag=True, help="In kết quả dạng JSON.")
@pass_ctx
def inbox(ctx: CliContext, agency: str, node: str | None, url: str | None, system_id: str | None,
          secret_file: Path | None, kind: str | None, unacknowledged: bool, wait: int, limit: int,
          fetch_id: str | None, out: Path, ack_id: str | None, status: tuple[str, str] | None,
          description: str | None, as_json: bool) -> None:
    """Hộp thư đến — list, fetch, acknowledge, answer the mail of an agency."""
    code, client = _client(ctx, agency, node, url, system_id, secret_file)

    async def go() -> Any:
        async with client:
            if fetch_id:
                files = [(f"{fetch_id}.xml", await client.packet(code, fetch_id))]
                for att in await client.attachments(code, fetch_id):
                    name = Path(att["name"]).name or f"tep-{att['index']}"
                    files.append((name, await client.attachment(code, fetch_id, att["index"])))
                return files
            if ack_id:
                return await client.ack(code, ack_id)
            if status:
                return await client.status(code, status[0], status[1], description)
            return await client.inbox(code, kind=kind, unacknowledged=unacknowledged or None, wait=wait or None,
                                      limit=limit)

    result = _run(go())
    if fetch_id:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in result:
            (out / name).write_bytes(data)
        result = {"saved": [str(out / name) for name, _ in result]}
    if as_json or fetch_id or ack_id or status:
        click.echo(json.dumps(result, ensure_ascii=False, indent=1))
        return
    items = result["items"]
    if not items:
        click.echo("Hộp thư trống (no mail).")
    for i in items:
        meta = i.get("message", {}).get("meta", {})
        what = meta.get("subject") or (meta.get("status") or {}).get("label_vi") or i["document_id"]
        flag = "‼ " if i["priority"] >= 3 else "  "
        click.echo(f"{flag}{i['priority_label_vi']:<12} {_show_time(i['delivered_at'])}  từ {i['sender']}  "
                   f"[{i['state_label_vi']}; {i['verification_label_vi']}]  {what}\n      {i['delivery_id']}")
    if result.get("next_cursor"):
        click.echo(f"… còn nữa (more): --cursor {result['next_cursor']}")


# ------------------------------------------------------------------------------------------------ host side


async def _open_store(settings: Settings, node_id: str) -> Any:
    from docexchange.exchange.backends import open_store

    store = open_store(settings, node_id, clock=SystemClock().now)
    await store.open()
    return store


def _node_arg(ctx: CliContext, node: str | None) -> str:
    d = ctx.directory()
    if node:
        d.node(node)
        return node
    if len(d.nodes) == 1:
        return str(d.nodes[0].id)
    raise click.UsageError("Chọn trục bằng --node (choose a node with --node): "
                           + ", ".join(n.id for n in d.nodes))


@click.group()
def queue() -> None:
    """Hàng đợi của trục (operators) — dead letters and queues, on the node's store."""


@queue.command("list")
@click.option("--node", help="Mã trục (node id).")
@click.option("--state", "states", multiple=True, default=("dead",), show_default=True,
              type=click.Choice(["queued", "in_flight", "retry_wait", "forwarded", "delivered", "acknowledged",
                                 "dead", "recalled"]))
@click.option("--destination", help="Chỉ lượt chuyển tới trục này.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def queue_list(ctx: CliContext, node: str | None, states: tuple[str, ...], destination: str | None, limit: int,
               as_json: bool) -> None:
    """Liệt kê lượt chuyển theo trạng thái (mặc định: thư không chuyển được) — list deliveries."""
    from docexchange.exchange.model import DeliveryState
    from docexchange.exchange.store import QueueQuery

    node_id = _node_arg(ctx, node)

    async def go() -> Any:
        store = await _open_store(ctx.settings, node_id)
        try:
            counts = await store.counts()
            page = await store.queue(QueueQuery(tuple(DeliveryState(s) for s in states), destination, limit))
            return counts, page
        finally:
            await store.close()

    counts, page = _run(go())
    if as_json:
        from docexchange.web.api import delivery_json

        click.echo(json.dumps({"counts": counts, "items": [delivery_json(d) for d in page.items]},
                              ensure_ascii=False, indent=1))
        return
    click.secho(f"Trục {node_id}: " + "; ".join(
        f"{dest}: " + ", ".join(f"{s} {n}" for s, n in sorted(by.items())) for dest, by in sorted(counts.items())
    ) if counts else f"Trục {node_id}: trống (empty)", bold=True)
    for d in page.items:
        click.echo(f"{d.delivery_id}  {d.state.value:<11} → {d.next_hop or 'hộp thư'}  lần {d.attempts}  "
                   f"{vn_datetime(d.updated_at)}  {d.last_error[:100]}")


@queue.command("show")
@click.option("--node", help="Mã trục (node id).")
@click.argument("delivery_id")
@pass_ctx
def queue_show(ctx: CliContext, node: str | None, delivery_id: str) -> None:
    """Chi tiết một lượt chuyển và hành trình — one delivery and its trail."""
    from docexchange.web.api import delivery_json, trail_json

    node_id = _node_arg(ctx, node)

    async def go() -> Any:
        store = await _open_store(ctx.settings, node_id)
        try:
            d = await store.delivery(delivery_id)
            if d is None:
                from docexchange.errors import NotFound

                raise NotFound(f"Không có lượt chuyển {delivery_id}", f"no delivery {delivery_id}")
            return d, await store.trail(delivery_id)
        finally:
            await store.close()

    d, trail = _run(go())
    click.echo(json.dumps({**delivery_json(d), "trail": trail_json(trail)}, ensure_ascii=False, indent=1))


@queue.command("resend")
@click.option("--node", help="Mã trục (node id).")
@click.option("--all-dead", is_flag=True, help="Gửi lại mọi thư không chuyển được (every dead letter).")
@click.argument("delivery_ids", nargs=-1)
@pass_ctx
def queue_resend(ctx: CliContext, node: str | None, all_dead: bool, delivery_ids: tuple[str, ...]) -> None:
    """Gửi lại thư không chuyển được — put dead letters back in the queue (the running node picks them up)."""
    from docexchange.exchange.model import DeliveryState
    from docexchange.exchange.store import QueueQuery

    node_id = _node_arg(ctx, node)

    async def go() -> list[str]:
        store = await _open_store(ctx.settings, node_id)
        try:
            ids = list(delivery_ids)
            if all_dead:
                page = await store.queue(QueueQuery((DeliveryState.DEAD,), None, 1000))
                ids += [d.delivery_id for d in page.items]
            done = []
            for did in dict.fromkeys(ids):
                await store.resend(did, SystemClock().now())
                done.append(did)
            return done
        finally:
            await store.close()

    done = _run(go())
    echo_ok(f"Đã đưa lại {len(done)} lượt chuyển vào hàng đợi (requeued {len(done)})")


@queue.command("purge")
@click.option("--node", help="Mã trục (node id).")
@click.option("--yes", is_flag=True, help="Không hỏi lại (do not ask).")
@click.argument("delivery_ids", nargs=-1, required=True)
@pass_ctx
def queue_purge(ctx: CliContext, node: str | None, yes: bool, delivery_ids: tuple[str, ...]) -> None:
    """Xóa hẳn thư không chuyển được — delete dead letters and their payloads (the trail keeps a record)."""
    node_id = _node_arg(ctx, node)
    if not yes:
        click.confirm(f"Xóa {len(delivery_ids)} thư không chuyển được trên trục {node_id}?", abort=True)

    async def go() -> None:
        store = await _open_store(ctx.settings, node_id)
        try:
            for did in delivery_ids:
                await store.purge(did, SystemClock().now())
        finally:
            await store.close()

    _run(go())
    echo_ok(f"Đã xóa {len(delivery_ids)} lượt chuyển (purged)")
