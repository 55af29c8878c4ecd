"""``docexchange users``: the people who sign in to a node's web pages (``<data_dir>/users.json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from docexchange.cli.runtime import CliContext, echo_ok, echo_warn, pass_ctx
from docexchange.errors import ConfigError

if TYPE_CHECKING:
    from docexchange.web.users import UserFile

__all__ = ["users"]


def _file(ctx: CliContext) -> UserFile:
    from docexchange.web.users import UserFile

    return UserFile.for_settings(ctx.settings)


def _read_password(given: str | None, username: str) -> str:
    from docexchange.web.users import check_password_policy, env_password

    password = given or env_password()
    if password is None:
        password = click.prompt(f"Mật khẩu mới cho {username} (new password)", hide_input=True,
                                confirmation_prompt="Nhập lại (repeat)")
    check_password_policy(password)
    return password


@click.group()
def users() -> None:
    """Tài khoản người dùng trang web — web user accounts (văn thư, lãnh đạo, kiểm tra viên, vận hành)."""


@users.command("init")
@click.option("--random-passwords", is_flag=True,
              help="Mật khẩu ngẫu nhiên cho từng tài khoản, in ra một lần (random password per account, shown once).")
@click.option("--password", "password", default=None,
              help="Một mật khẩu cho mọi tài khoản mới (one password for every new account); mặc định: "
                   "mật khẩu thử nghiệm 'docexchange-dev' hoặc $DOCEXCHANGE_USER_PASSWORD.")
@pass_ctx
def init(ctx: CliContext, random_passwords: bool, password: str | None) -> None:
    """Tạo tài khoản cho mọi cán bộ trong danh bạ, một văn thư mỗi cơ quan, một kiểm tra viên và một người vận
    hành — create accounts for every official, one clerk per agency, an auditor and an operator.

    Tài khoản đã có được giữ nguyên (existing accounts are kept)."""
    from docexchange.clock import SystemClock
    from docexchange.web.users import DEV_PASSWORD, check_password_policy, dev_accounts, env_password, new_password

    fixed = password or env_password()
    if fixed is not None:
        check_password_policy(fixed)

    def password_for(_username: str) -> tuple[str, bool]:
        if random_passwords:
            return new_password(), False
        if fixed is not None:
            return fixed, False
        return DEV_PASSWORD, True

    directory = ctx.directory()
    uf = _file(ctx)
    existing = {u.username for u in uf.all()}
    candidates = dev_accounts(directory, password_for, SystemClock().now())
    fresh = [(a, pw) for a, pw in candidates if a.username not in existing]
    added, kept = uf.add_many([a for a, _ in fresh])
    shown = {a.username for a in added}
    for account, pw in fresh:
        if account.username not in shown:
            continue
        where = f" {account.agency}" if account.agency else ""
        line = f"  {account.username:<28} {account.role.label_vi:<22}{where}  {account.full_name}"
        if random_passwords:
            line += f"  mật khẩu: {pw}"
        click.echo(line)
    echo_ok(f"Đã tạo {len(added)} tài khoản, giữ nguyên {len(kept)} — {len(added)} created, {len(kept)} kept "
            f"({uf.path})")
    if added and not random_passwords and fixed is None:
        echo_warn(f"Mật khẩu thử nghiệm '{DEV_PASSWORD}' — chỉ dùng để thử, đổi bằng 'docexchange users passwd' "
                  f"(dev password; change it for real use)")


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["clerk", "official", "auditor", "operator"]), required=True)
@click.option("--name", "full_name", required=True, help="Họ và tên (full name).")
@click.option("--agency", default="", help="Mã cơ quan (agency code) — văn thư và lãnh đạo.")
@click.option("--official", "official_id", default="",
              help="Mã cán bộ trong danh bạ (official id) — lãnh đạo ký bằng chứng thư của người này.")
@click.option("--node", "nodes", multiple=True, help="Trục được đăng nhập (kiểm tra viên/vận hành); lặp lại được.")
@click.option("--password", default=None, help="Mật khẩu (hỏi nếu bỏ trống; or $DOCEXCHANGE_USER_PASSWORD).")
@pass_ctx
def add(ctx: CliContext, username: str, role: str, full_name: str, agency: str, official_id: str,
        nodes: tuple[str, ...], password: str | None) -> None:
    """Thêm một tài khoản — add an account."""
    from docexchange.clock import SystemClock
    from docexchange.web.users import UserAccount, UserRole, check_username, hash_password

    check_username(username)
    r = UserRole(role)
    directory = ctx.directory()
    position = ""
    if r.agency_bound:
        if not agency and official_id:
            agency = directory.find_official(official_id)[0].code
        if not agency:
            raise ConfigError("Văn thư và lãnh đạo cần --agency", "clerks and officials need --agency")
        agency = directory.resolve(agency)
        if r == UserRole.OFFICIAL:
            if not official_id:
                raise ConfigError("Lãnh đạo cần --official (mã cán bộ trong danh bạ)", "officials need --official")
            owner, official = directory.find_official(official_id)
            if owner.code != agency:
                raise ConfigError(f"Cán bộ {official_id} không thuộc cơ quan {agency}",
                                  f"official {official_id} is not of agency {agency}")
            position = official.position
    elif agency or official_id:
        raise ConfigError("Kiểm tra viên và vận hành không gắn với cơ quan", "auditors and operators have no agency")
    for n in nodes:
        directory.node(n)
    pw = _read_password(password, username)
    now = SystemClock().now()
    account = UserAccount(username=username, full_name=full_name, role=r, password_hash=hash_password(pw),
                          created_at=now, agency=agency if r.agency_bound else "", official_id=official_id,
                          position=position, nodes=tuple(nodes), password_changed_at=now)
    _file(ctx).add(account)
    echo_ok(f"Đã thêm {username} ({r.label_vi}) — added")


@users.command("passwd")
@click.argument("username")
@click.option("--password", default=None, help="Mật khẩu mới (hỏi nếu bỏ trống; or $DOCEXCHANGE_USER_PASSWORD).")
@pass_ctx
def passwd(ctx: CliContext, username: str, password: str | None) -> None:
    """Đặt mật khẩu mới (các phiên đang mở bị hủy) — set a new password (open sessions end)."""
    uf = _file(ctx)
    if uf.get(username) is None:
        raise ConfigError(f"Không có tài khoản '{username}'", f"no user '{username}'")
    uf.set_password(username, _read_password(password, username))
    echo_ok(f"Đã đổi mật khẩu của {username} — password changed")


@users.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Mở lại tài khoản (re-enable).")
@pass_ctx
def disable(ctx: CliContext, username: str, enable: bool) -> None:
    """Khóa (hoặc mở lại) một tài khoản — disable (or re-enable) an account."""
    _file(ctx).set_disabled(username, not enable)
    echo_ok(f"{username}: {'đã mở lại' if enable else 'đã khóa'} — {'enabled' if enable else 'disabled'}")


@users.command("list")
@click.option("--agency", default="", help="Chỉ cơ quan này (only this agency).")
@click.option("--json", "as_json", is_flag=True, help="In JSON (no password hashes).")
@pass_ctx
def list_(ctx: CliContext, agency: str, as_json: bool) -> None:
    """Liệt kê tài khoản — list accounts."""
    import json

    accounts = [u for u in _file(ctx).all() if not agency or u.agency == agency]
    if as_json:
        rows = []
        for u in accounts:
            d = u.to_json()
            d.pop("password_hash")
            rows.append(d)
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if not accounts:
        echo_warn("Chưa có tài khoản: chạy 'docexchange users init' — no accounts yet")
        return
    for u in accounts:
        flags = []
        if u.disabled:
            flags.append("đã khóa/disabled")
        if u.dev_password:
            flags.append("mật khẩu thử nghiệm/dev password")
        click.echo(f"{u.username:<28} {u.role.label_vi:<22} {u.agency:<15} {u.full_name}"
                   + (f"  [{', '.join(flags)}]" if flags else ""))
