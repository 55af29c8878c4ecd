"""``docexchange db status|migrate``: the schema versions of this host's node stores (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from docexchange.cli.runtime import CliContext, echo_ok, echo_warn, pass_ctx
from docexchange.exchange.schema_admin import NodeSchema, SchemaState, migrate_node, schema_status

__all__ = ["db"]


def _nodes(ctx: CliContext, nodes: tuple[str, ...]) -> tuple[str, ...]:
    directory = ctx.directory()
    chosen = nodes or ctx.settings.serve.nodes or tuple(n.id for n in directory.nodes)
    for n in chosen:
        directory.node(n)  # unknown node: a clear error
    return tuple(chosen)


def _show(s: NodeSchema) -> None:
    for p in s.parts:
        line = (f"{s.node_id:<16} {s.backend:<10} phiên bản {p.found}/{p.known}  "
                f"{p.state.label_vi} ({p.state.value})  {p.name}")
        if p.state == SchemaState.TOO_NEW:
            echo_warn(line)
        else:
            click.echo(line)


def _as_json(s: NodeSchema) -> dict[str, object]:
    return {"node": s.node_id, "backend": s.backend, "state": s.state.value,
            "parts": [{"name": p.name, "version": p.found, "known": p.known, "state": p.state.value} for p in s.parts]}


@click.group()
def db() -> None:
    """Cơ sở dữ liệu của các trục — node stores: schema versions and migrations."""


@db.command("status")
@click.option("--node", "nodes", multiple=True, help="Chỉ trục này (only this node); lặp lại được.")
@click.option("--json", "as_json", is_flag=True, help="In JSON (machine-readable).")
@pass_ctx
def status_cmd(ctx: CliContext, nodes: tuple[str, ...], as_json: bool) -> None:
    """Phiên bản lược đồ của từng trục — schema version of each node's store (changes nothing).

    Mã thoát 0: mọi trục đúng phiên bản; 1: có trục cần nâng cấp hoặc chưa tạo; 78: có trục mới hơn chương trình.
    """
    settings = ctx.settings

    async def run() -> list[NodeSchema]:
        return [await schema_status(settings, n) for n in _nodes(ctx, nodes)]

    result = asyncio.run(run())
    if as_json:
        click.echo(json.dumps([_as_json(s) for s in result], ensure_ascii=False, indent=2))
    else:
        for s in result:
            _show(s)
    states = {s.state for s in result}
    if SchemaState.TOO_NEW in states:
        sys.exit(78)
    if states - {SchemaState.CURRENT}:
        sys.exit(1)


@db.command("migrate")
@click.option("--node", "nodes", multiple=True, help="Chỉ trục này (only this node); lặp lại được.")
@pass_ctx
def migrate_cmd(ctx: CliContext, nodes: tuple[str, ...]) -> None:
    """Nâng cấp lược đồ lên phiên bản mới nhất — apply the missing migrations (safe while workers run; refuses
    a schema newer than this program)."""
    settings = ctx.settings

    async def run() -> None:
        for n in _nodes(ctx, nodes):
            before, after = await migrate_node(settings, n)
            for b, a in zip(before.parts, after.parts, strict=True):
                if b.found == a.found:
                    click.echo(f"{n}: đã ở phiên bản {a.found} (already at version {a.found}) — {a.name}")
                else:
                    echo_ok(f"{n}: nâng cấp {b.found} → {a.found} (migrated) — {a.name}")

    asyncio.run(run())
