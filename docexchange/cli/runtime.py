"""The one place where errors become CLI output and exit codes (tracebacks only with ``--verbose``)."""

from __future__ import annotations

import logging
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from docexchange.config import Settings, load_settings
from docexchange.errors import DocExchangeError

__all__ = ["CliContext", "echo_ok", "echo_warn", "pass_ctx", "run_cli"]

@dataclass
class CliContext:
    config_path: Path | None
    verbose: bool
    lang: str = "vi"
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def directory(self) -> Any:
        from docexchange.directory import load_directory

        return load_directory(self.settings.directory_file)


pass_ctx = click.make_pass_decorator(CliContext)


def echo_ok(message: str) -> None:
    click.secho(message, fg="green")


def echo_warn(message: str) -> None:
    click.secho(message, fg="yellow", err=True)


def run_cli(main: click.Group) -> None:
    """Run the click group, mapping our errors to a message and an exit code."""
    verbose = "--verbose" in sys.argv or "-v" in sys.argv[1:2]
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.secho("Đã hủy — aborted", fg="red", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DocExchangeError as exc:
        if verbose:
            traceback.print_exc()
        click.secho(f"Lỗi [{exc.code}]: {exc.message_vi}", fg="red", err=True)
        if exc.message_en != exc.message_vi:
            click.secho(f"Error: {exc.message_en}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if verbose:
            traceback.print_exc()
        click.secho(f"Lỗi không mong đợi (internal error): {type(exc).__name__}: {exc}", fg="red", err=True)
        click.secho("Chạy lại với --verbose để xem chi tiết (run again with --verbose).", err=True)
        sys.exit(70)
