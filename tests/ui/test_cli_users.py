"""``docexchange users init|add|passwd|disable|list``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from docexchange.cli.main import cli
from docexchange.web.users import DEV_PASSWORD, UserFile, UserRole
from helpers import make_settings


def _run(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "users", *args], env=env or {},
                                catch_exceptions=False, standalone_mode=False)
    return (result.exit_code or 0), result.output


def test_users_cli(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    config = tmp_path / "config" / "docexchange.toml"
    code, out = _run(config, "init")
    assert code == 0, out
    assert "h49-honggai-van-thu" in out and "kiem-tra" in out and "van-hanh" in out
    assert "docexchange-dev" in out  # the dev password is named, with the advice to change it
    uf = UserFile.for_settings(settings)
    n = len(uf.all())
    assert uf.authenticate("h49-van-thu", DEV_PASSWORD).role == UserRole.CLERK

    code, out = _run(config, "init")  # idempotent: nothing is overwritten
    assert code == 0 and "giữ nguyên" in out and len(uf.all()) == n

    code, out = _run(config, "passwd", "h49-van-thu", "--password", "mat-khau-that-1")
    assert code == 0
    assert uf.authenticate("h49-van-thu", "mat-khau-that-1")
    assert not uf.get("h49-van-thu").dev_password  # type: ignore[union-attr]

    code, out = _run(config, "add", "nguyen-van-a", "--role", "official", "--name", "Nguyễn Văn A",
                     "--official", "h57-chu-tich", env={"DOCEXCHANGE_USER_PASSWORD": "mat-khau-that-2"})
    assert code == 0, out
    added = uf.get("nguyen-van-a")
    assert added is not None and added.agency == "000.00.00.H57" and added.position == "CHỦ TỊCH"

    code, out = _run(config, "disable", "nguyen-van-a")
    assert code == 0 and uf.get("nguyen-van-a").disabled  # type: ignore[union-attr]

    code, out = _run(config, "list", "--json")
    rows = json.loads(out)
    assert len(rows) == n + 1 and all("password_hash" not in r for r in rows)
    code, out = _run(config, "list", "--agency", "000.00.00.H49")
    assert "h49-van-thu" in out and "h57" not in out


def test_users_cli_refuses_bad_input(tmp_path: Path) -> None:
    make_settings(tmp_path)
    config = tmp_path / "config" / "docexchange.toml"
    for args in (
        ["add", "x1", "--role", "clerk", "--name", "X", "--password", "mat-khau-dai-du"],  # no agency
        ["add", "x2", "--role", "official", "--name", "X", "--agency", "000.00.00.H49",
         "--official", "h57-chu-tich", "--password", "mat-khau-dai-du"],  # official of another agency
        ["add", "x3", "--role", "auditor", "--name", "X", "--agency", "000.00.00.H49", "--password", "mat-khau-dai-du"],
        ["add", "x4", "--role", "auditor", "--name", "X", "--password", "ngan"],  # too short
        ["passwd", "khong-co-ai", "--password", "mat-khau-dai-du"],
    ):
        result = CliRunner().invoke(cli, ["--config", str(config), "users", *args], standalone_mode=False)
        assert result.exception is not None, args
