"""``docexchange pki …``: build the dev PKI, revoke certificates, serve TSA/OCSP/CRL."""

from __future__ import annotations

import asyncio

import click

from docexchange.cli.runtime import CliContext, echo_ok, pass_ctx
from docexchange.clock import vn_datetime
from docexchange.pki.devpki import REVOCATION_REASONS, DevPki


@click.group()
def pki() -> None:
    """Hạ tầng khóa thử nghiệm — the development PKI (keys/)."""


@pki.command("init")
@click.option("--force", is_flag=True, help="Tạo lại từ đầu (bản cũ chuyển vào keys/.old/) — rebuild from scratch.")
@pass_ctx
def init_cmd(ctx: CliContext, force: bool) -> None:
    """Tạo (hoặc bổ sung) khóa và chứng thư cho danh bạ — build or top up keys/ for the directory."""
    directory = ctx.directory()
    pki_ = DevPki.from_settings(ctx.settings)
    total = 3 + 3 + sum(1 + len(a.officials) for a in directory) + len(directory.nodes)
    with click.progressbar(length=total, label="Tạo khóa (generating keys)", show_pos=True) as bar:
        def step(msg: str) -> None:
            bar.label = msg[:60]
            bar.update(1)

        report = pki_.init(directory, force=force, progress=step)
        bar.update(total)
    if report.backup:
        click.echo(f"Bản cũ đã chuyển vào {report.backup} (old keys moved)")
    if report.created:
        echo_ok(f"Đã tạo {len(report.created)} mục trong {pki_.keys_dir} (created {len(report.created)} items)")
    else:
        echo_ok(f"Không có gì cần tạo: {report.kept} mục đã có (nothing to do; {report.kept} items present)")


@pki.command("revoke")
@click.argument("target")
@click.option(
    "--reason", type=click.Choice(sorted(REVOCATION_REASONS)), default="unspecified", show_default=True,
    help="Lý do thu hồi (revocation reason).",
)
@pass_ctx
def revoke_cmd(ctx: CliContext, target: str, reason: str) -> None:
    """Thu hồi chứng thư — revoke a certificate.

    TARGET: số hiệu (hex serial), mã cán bộ (official id), mã cơ quan (agency code, its seal), mã trục (node id)
    hoặc tệp chứng thư (certificate file).
    """
    pki_ = DevPki.open(ctx.settings)
    serial = pki_.find_serial(target)
    rev = pki_.revoke(serial, reason)
    echo_ok(f"Đã thu hồi chứng thư {serial:x} lúc {vn_datetime(rev.revoked_at)}, lý do {reason} (revoked)")


@pki.command("list")
@pass_ctx
def list_cmd(ctx: CliContext) -> None:
    """Liệt kê chứng thư đã cấp — list issued certificates."""
    pki_ = DevPki.open(ctx.settings)
    revs = pki_.revocations()
    for serial, entry in sorted(pki_.issued().items(), key=lambda kv: (kv[1].kind.value, kv[1].subject_id)):
        state = f"THU HỒI/REVOKED ({revs[serial].reason})" if serial in revs else "còn hiệu lực/valid"
        click.echo(
            f"{serial:040x}  {entry.kind.value:6}  {entry.subject_id:28}  hết hạn {entry.not_after[:10]}  {state}"
        )


@pki.command("serve")
@pass_ctx
def serve_cmd(ctx: CliContext) -> None:
    """Chạy TSA, OCSP và CRL — serve the trust services only."""
    from docexchange.cli.serve import run_forever

    asyncio.run(run_forever(ctx.settings, nodes=(), trust_services=True))
