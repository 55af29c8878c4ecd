"""``docexchange agency credentials``: the system ids and shared secrets that let agencies' software (or a
vendor's, serving several agencies), auditors and operators call a node — the agency JSON API and the
national-axis-style API alike. A thin layer over :class:`docexchange.web.auth.Credentials`::

    docexchange agency credentials create --system-id qlvb-honggai --agency 000.01.11.H49
    docexchange agency credentials create --node lgsp-h57 --system-id qlvb-hue-vendor \\
        --agency 000.00.01.H57 --agency 000.00.31.H57 --secret-file hue-vendor.secret
    docexchange agency credentials rotate --node lgsp-h49 --system-id qlvb-honggai
    docexchange agency credentials revoke --node lgsp-h49 --system-id qlvb-honggai
    docexchange agency credentials list --node lgsp-h49

Secrets are generated here, shown once (or written to a file readable only by its owner) and stored encrypted
in the node's store; they are never logged and never listed.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from docexchange.cli.runtime import CliContext, echo_ok, echo_warn, pass_ctx
from docexchange.clock import iso_vn
from docexchange.errors import ConfigError

if TYPE_CHECKING:
    from docexchange.web.auth import Credentials

__all__ = ["agency"]

T = TypeVar("T")


def _node_for(ctx: CliContext, node_id: str | None, agencies: tuple[str, ...]) -> str:
    directory = ctx.directory()
    if node_id is not None:
        directory.node(node_id)
        return node_id
    homes = {directory.agency(a).node for a in agencies}
    if len(homes) == 1:
        return homes.pop()
    if not homes:
        raise ConfigError("Cần --node (mã trục)", "give --node (the node id)")
    raise ConfigError(
        f"Các cơ quan thuộc nhiều trục ({', '.join(sorted(homes))}): cấp thông tin xác thực riêng cho từng trục "
        "với --node",
        f"the agencies belong to several nodes ({', '.join(sorted(homes))}): issue credentials per node with --node",
    )


def _with_credentials(ctx: CliContext, node_id: str, job: Callable[[Credentials], Awaitable[T]]) -> T:
    from docexchange.clock import SystemClock
    from docexchange.exchange.backends import open_store
    from docexchange.web.app import credentials_box
    from docexchange.web.auth import Credentials

    settings = ctx.settings

    async def main() -> T:
        store = open_store(settings, node_id)
        await store.open()
        try:
            return await job(Credentials(store, credentials_box(settings, node_id), SystemClock()))
        finally:
            await store.close()

    return asyncio.run(main())


def _emit_secret(secret: str, secret_file: Path | None) -> None:
    if secret_file is None:
        echo_warn("Bí mật chỉ hiển thị một lần: lưu ngay vào phần mềm QLVB — the secret is shown once, store it now.")
        click.echo(secret)
        return
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    echo_ok(f"Đã ghi bí mật vào {secret_file} (chỉ chủ tệp đọc được) — secret written, mode 600")


@click.group("agency")
def agency() -> None:
    """Cơ quan và hệ thống gọi trục — agencies and the systems calling a node."""


@agency.group("credentials")
def credentials() -> None:
    """Mã hệ thống và bí mật dùng chung (system ids and shared secrets) của một trục."""


@credentials.command("create")
@click.option("--system-id", required=True, help="Mã hệ thống (2–64 ký tự chữ, số, . _ -).")
@click.option("--agency", "agencies", multiple=True,
              help="Mã cơ quan mà hệ thống được thao tác thay (lặp lại cho nhà cung cấp phục vụ nhiều cơ quan).")
@click.option("--role", type=click.Choice(["agency", "auditor", "operator"]), default="agency", show_default=True,
              help="agency: hộp thư của các cơ quan trên; auditor: đọc vết; operator: quản trị.")
@click.option("--node", "node_id", help="Mã trục; mặc định trục chủ quản của các cơ quan.")
@click.option("--label", default="", help="Ghi chú (vd tên phần mềm, nhà cung cấp).")
@click.option("--secret-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Ghi bí mật vào tệp (quyền 600) thay vì in ra màn hình.")
@pass_ctx
def create(ctx: CliContext, system_id: str, agencies: tuple[str, ...], role: str, node_id: str | None, label: str,
           secret_file: Path | None) -> None:
    """Cấp mã hệ thống và bí mật mới — issue a system id and its shared secret."""
    from docexchange.web.auth import Role

    directory = ctx.directory()
    codes = tuple(directory.resolve(a) for a in agencies)
    node = _node_for(ctx, node_id, codes)
    elsewhere = [c for c in codes if directory.agency(c).node != node]
    if elsewhere:
        raise ConfigError(
            f"Các cơ quan sau không thuộc trục {node}: {', '.join(elsewhere)}",
            f"these agencies are not served by node {node}: {', '.join(elsewhere)}",
        )
    record, secret = _with_credentials(ctx, node, lambda c: c.create(system_id, Role(role), codes, label))
    echo_ok(f"Đã cấp mã hệ thống {record.system_id} tại trục {node} ({directory.node(node).url}), vai trò {role}"
            + (f", cơ quan {', '.join(record.agencies)}" if record.agencies else ""))
    _emit_secret(secret, secret_file)


@credentials.command("rotate")
@click.option("--system-id", required=True)
@click.option("--node", "node_id", required=True, help="Mã trục (node id).")
@click.option("--secret-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Ghi bí mật vào tệp (quyền 600) thay vì in ra màn hình.")
@pass_ctx
def rotate(ctx: CliContext, system_id: str, node_id: str, secret_file: Path | None) -> None:
    """Cấp bí mật mới (bí mật cũ hết hiệu lực) — issue a new secret; the old one stops working."""
    node = _node_for(ctx, node_id, ())
    secret = _with_credentials(ctx, node, lambda c: c.rotate(system_id))
    echo_ok(f"Đã cấp bí mật mới cho {system_id} tại trục {node}; bí mật cũ hết hiệu lực trong vài giây")
    _emit_secret(secret, secret_file)


@credentials.command("revoke")
@click.option("--system-id", required=True)
@click.option("--node", "node_id", required=True, help="Mã trục (node id).")
@pass_ctx
def revoke(ctx: CliContext, system_id: str, node_id: str) -> None:
    """Thu hồi mã hệ thống — revoke a system id (``rotate`` gives it a new secret and re-enables it)."""
    node = _node_for(ctx, node_id, ())
    _with_credentials(ctx, node, lambda c: c.revoke(system_id))
    echo_ok(f"Đã thu hồi mã hệ thống {system_id} tại trục {node} — revoked")


@credentials.command("list")
@click.option("--node", "node_id", required=True, help="Mã trục (node id).")
@click.option("--json", "as_json", is_flag=True, help="In JSON (print JSON).")
@pass_ctx
def list_(ctx: CliContext, node_id: str, as_json: bool) -> None:
    """Liệt kê các mã hệ thống (không bao giờ hiện bí mật) — list system ids, never secrets."""
    node = _node_for(ctx, node_id, ())

    async def job(c: Credentials) -> list[dict[str, Any]]:
        return [
            {
                "system_id": r.system_id,
                "role": r.role,
                "agencies": list(r.agencies),
                "label": r.label,
                "created_at": iso_vn(r.created_at),
                "rotated_at": iso_vn(r.rotated_at) if r.rotated_at else None,
                "revoked_at": iso_vn(r.revoked_at) if r.revoked_at else None,
            }
            for r in await c.store.credentials()
        ]

    rows = _with_credentials(ctx, node, job)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"Trục {node} chưa cấp mã hệ thống nào — no system ids yet.")
        return
    for r in rows:
        state = f"đã thu hồi {r['revoked_at']}" if r["revoked_at"] else "đang dùng"
        click.echo(f"{r['system_id']}  [{r['role']}]  {', '.join(r['agencies']) or '-'}  {state}  "
                   f"cấp {r['created_at']}" + (f"  {r['label']}" if r["label"] else ""))
