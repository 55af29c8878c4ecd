"""Accounts of the web pages: scrypt hashes, the accounts file, dev accounts, roles → principals."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from docexchange.directory import load_directory
from docexchange.errors import AuthError, ConfigError
from docexchange.web.auth import Role
from docexchange.web.users import (
    DEV_PASSWORD,
    ScryptParams,
    UserAccount,
    UserFile,
    UserRole,
    check_password_policy,
    clerk_username,
    dev_accounts,
    hash_password,
    needs_rehash,
    verify_password,
)
from helpers import REPO

NOW = datetime(2025, 1, 5, 7, 0, tzinfo=UTC)
FAST = ScryptParams(log2_n=10, r=8, p=1)


@pytest.fixture(scope="module")
def directory():  # type: ignore[no-untyped-def]
    return load_directory(REPO / "config" / "agencies.toml")


def _account(name: str = "h49-van-thu", role: UserRole = UserRole.CLERK, agency: str = "000.00.00.H49",
             password: str = "mat-khau-dung-1") -> UserAccount:
    return UserAccount(username=name, full_name="Văn thư UBND tỉnh", role=role, password_hash=hash_password(password,
                       FAST), created_at=NOW, agency=agency if role.agency_bound else "")


def test_hash_is_salted_self_describing_and_verifies() -> None:
    a, b = hash_password("Mật khẩu đủ dài 1", FAST), hash_password("Mật khẩu đủ dài 1", FAST)
    assert a != b  # a new salt each time
    assert a.startswith("scrypt$10$8$1$")
    assert verify_password("Mật khẩu đủ dài 1", a)
    assert not verify_password("Mật khẩu đủ dài 2", a)
    assert not verify_password("", a)


def test_default_cost_is_memory_hard_and_old_hashes_are_upgraded() -> None:
    default = hash_password("mat-khau-dung-1")
    assert default.split("$")[1:4] == ["15", "8", "1"]  # 2^15 · 8 · 128 B = 32 MiB
    assert needs_rehash(hash_password("mat-khau-dung-1", FAST))
    assert not needs_rehash(default)


@pytest.mark.parametrize("bad", ["", "scrypt$15$8$1$abc", "bcrypt$15$8$1$AAAA$AAAA", "scrypt$40$8$1$AAAA$AAAA"])
def test_malformed_hash_is_refused(bad: str) -> None:
    with pytest.raises(AuthError):
        verify_password("x", bad)


@pytest.mark.parametrize("pw", ["ngan", " co-khoang-trang-dau", "co\tky-tu-dieu-khien", "x" * 257])
def test_password_policy(pw: str) -> None:
    with pytest.raises(ConfigError):
        check_password_policy(pw)
    check_password_policy("đủ mười ký tự")


def test_user_file_add_get_authenticate(tmp_path: Path) -> None:
    uf = UserFile(tmp_path / "users.json")
    uf.add(_account())
    assert stat.S_IMODE((tmp_path / "users.json").stat().st_mode) == 0o600
    assert "password_hash" not in repr(uf.get("h49-van-thu"))
    with pytest.raises(ConfigError):
        uf.add(_account())  # no silent overwrite
    assert uf.authenticate("H49-VAN-THU ", "mat-khau-dung-1").username == "h49-van-thu"
    with pytest.raises(AuthError) as wrong:
        uf.authenticate("h49-van-thu", "sai-mat-khau")
    with pytest.raises(AuthError) as unknown:
        uf.authenticate("khong-co-ai", "sai-mat-khau")
    assert wrong.value.message_vi == unknown.value.message_vi  # does not tell which names exist
    # an older, cheaper hash is replaced by one with the current cost at the next sign-in
    assert not needs_rehash(uf.get("h49-van-thu").password_hash)  # type: ignore[union-attr]


def test_password_change_and_disable_end_sessions(tmp_path: Path) -> None:
    uf = UserFile(tmp_path / "users.json")
    uf.add(_account())
    epoch = uf.get("h49-van-thu").session_epoch  # type: ignore[union-attr]
    uf.set_password("h49-van-thu", "mat-khau-moi-12")
    user = uf.get("h49-van-thu")
    assert user is not None and user.session_epoch == epoch + 1 and not user.dev_password
    assert uf.authenticate("h49-van-thu", "mat-khau-moi-12")
    uf.set_disabled("h49-van-thu", True)
    with pytest.raises(AuthError):
        uf.authenticate("h49-van-thu", "mat-khau-moi-12")
    assert uf.get("h49-van-thu").session_epoch == epoch + 2  # type: ignore[union-attr]
    with pytest.raises(ConfigError):
        uf.set_password("khong-co-ai", "mat-khau-moi-12")


def test_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "users.json").write_text("{not json", "utf-8")
    with pytest.raises(ConfigError, match=r"users\.json"):
        UserFile(tmp_path / "users.json").get("x")


@pytest.mark.parametrize("name", ["A", "có-dấu", "a b", "-dau-gach", "x" * 65])
def test_bad_usernames(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        UserFile(tmp_path / "users.json").add(_account(name=name))


def test_principals_and_where_users_sign_in(directory) -> None:  # type: ignore[no-untyped-def]
    clerk = _account()
    p = clerk.principal()
    assert p.role == Role.AGENCY and p.agencies == {"000.00.00.H49"} and p.system_id == "web:h49-van-thu"
    assert clerk.may_sign_in_at("lgsp-h49", directory)
    assert not clerk.may_sign_in_at("lgsp-h57", directory)
    auditor = _account("kiem-tra", UserRole.AUDITOR)
    assert auditor.principal().role == Role.AUDITOR and not auditor.principal().agencies
    assert auditor.may_sign_in_at("lgsp-h57", directory)
    assert not UserAccount(**{**auditor.__dict__, "nodes": ("vdxp",)}).may_sign_in_at("lgsp-h57", directory)
    assert _account("van-hanh", UserRole.OPERATOR).principal().role == Role.OPERATOR
    assert not UserAccount(**{**clerk.__dict__, "disabled": True}).may_sign_in_at("lgsp-h49", directory)


def test_dev_accounts_cover_every_official_one_clerk_per_agency(directory) -> None:  # type: ignore[no-untyped-def]
    pairs = dev_accounts(directory, lambda _u: (DEV_PASSWORD, True), NOW)
    accounts = [a for a, _ in pairs]
    names = [a.username for a in accounts]
    assert len(names) == len(set(names))
    officials = {o.id for a in directory for o in a.officials}
    assert officials <= set(names)
    clerks = [a for a in accounts if a.role == UserRole.CLERK]
    assert sorted(c.agency for c in clerks) == sorted(a.code for a in directory)
    assert "h49-honggai-van-thu" in names and "h49-van-thu" in names and "g22-van-thu" in names
    assert {a.role for a in accounts if a.username in ("kiem-tra", "van-hanh")} == {UserRole.AUDITOR,
                                                                                   UserRole.OPERATOR}
    assert all(a.dev_password for a in accounts)
    chu_tich = next(a for a in accounts if a.username == "h49-honggai-chu-tich")
    assert chu_tich.role == UserRole.OFFICIAL and chu_tich.official_id == "h49-honggai-chu-tich"
    assert verify_password(DEV_PASSWORD, chu_tich.password_hash)


def test_clerk_username_falls_back_to_the_code(directory) -> None:  # type: ignore[no-untyped-def]
    agency = directory.agency("000.00.11.H49")
    assert clerk_username(agency) == "h49-halong-van-thu"
    assert clerk_username(agency, taken={"h49-halong-van-thu"}) == "van-thu-000-00-11-h49"
