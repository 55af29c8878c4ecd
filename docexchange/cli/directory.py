"""``docexchange directory …``: look at and check the agency directory."""

from __future__ import annotations

import click

from docexchange.cli.runtime import CliContext, echo_ok, pass_ctx


@click.group()
def directory() -> None:
    """Danh bạ cơ quan — the agency directory."""


@directory.command("check")
@pass_ctx
def check_cmd(ctx: CliContext) -> None:
    """Kiểm tra danh bạ — validate config/agencies.toml."""
    d = ctx.directory()
    echo_ok(f"Danh bạ hợp lệ: {len(d)} cơ quan, {len(d.nodes)} trục (directory valid: {len(d)} agencies)")


@directory.command("show")
@pass_ctx
def show_cmd(ctx: CliContext) -> None:
    """Cây trục và cơ quan — the axis tree and its agencies."""
    d = ctx.directory()

    def walk(node_id: str, depth: int) -> None:
        node = d.node(node_id)
        click.secho(f"{'  ' * depth}▸ {node.name} [{node.id}] {node.url}", bold=True)
        for a in d.agencies_of(node_id):
            mark = " (mẫu/sample)" if a.sample else ""
            click.echo(f"{'  ' * depth}    {a.code}  {a.name} — {a.level.label_vi}{mark}")
        for child in d.children(node_id):
            walk(child.id, depth + 1)

    walk(d.root.id, 0)


@directory.command("search")
@click.argument("text")
@pass_ctx
def search_cmd(ctx: CliContext, text: str) -> None:
    """Tìm cơ quan theo tên hoặc mã — search by name or code (dấu không bắt buộc)."""
    for a in ctx.directory().search(text):
        click.echo(f"{a.code}  {a.name}")


@directory.command("path")
@click.argument("sender")
@click.argument("recipient")
@pass_ctx
def path_cmd(ctx: CliContext, sender: str, recipient: str) -> None:
    """Đường đi giữa hai cơ quan qua các trục — the route between two agencies."""
    d = ctx.directory()
    click.echo(" → ".join(d.node(n).name for n in d.path(sender, recipient)))
