"""``docexchange`` command line: a thin layer over the library."""

from __future__ import annotations

from pathlib import Path

import click

from docexchange import __version__
from docexchange.cli.runtime import CliContext, run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    envvar="DOCEXCHANGE_CONFIG",
    help="Tệp cấu hình (config file), mặc định config/docexchange.toml.",
)
@click.option("-v", "--verbose", is_flag=True, help="Hiện chi tiết lỗi (show tracebacks).")
@click.version_option(__version__, prog_name="docexchange")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """docexchange — ký số, trao đổi và kiểm tra văn bản điện tử giữa các cơ quan nhà nước.

    Sign, exchange and verify official electronic documents between Vietnamese agencies.
    """
    ctx.obj = CliContext(config_path=config_path, verbose=verbose)


def _register() -> None:
    # Each area owns one module under docexchange/cli/ exposing a click command or group.
    import importlib

    for module_name, attr in [
        ("docexchange.cli.pki", "pki"),
        ("docexchange.cli.serve", "serve"),
        ("docexchange.cli.db", "db"),
        ("docexchange.cli.exchange", "send"),
        ("docexchange.cli.exchange", "inbox"),
        ("docexchange.cli.exchange", "queue"),
        ("docexchange.cli.demo", "demo"),
        ("docexchange.cli.directory", "directory"),
        ("docexchange.cli.sign", "sign"),
        ("docexchange.cli.sign", "sample_letter"),
        ("docexchange.cli.edxml", "edxml"),
        ("docexchange.cli.verify", "verify"),
        ("docexchange.cli.axis", "axis"),
        ("docexchange.cli.agency", "agency"),
        ("docexchange.cli.users", "users"),
    ]:
        module = importlib.import_module(module_name)
        cli.add_command(getattr(module, attr))


_register()


def main() -> None:
    run_cli(cli)
