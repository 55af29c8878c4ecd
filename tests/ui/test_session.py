"""Session cookies (sealed, bound to node and cookie name, expiring), CSRF tokens, sign-in throttling."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from docexchange.web.ui.session import (
    ABSOLUTE_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_COOKIE,
    LoginThrottle,
    Session,
    SessionCodec,
    cookie_name,
    load_secret,
)

SECRET = bytes(range(32))
T0 = 1_736_060_400.0


def test_round_trip_and_fresh_csrf_at_sign_in() -> None:
    codec = SessionCodec(SECRET, "lgsp-h49")
    anon = Session.anonymous(T0)
    signed = Session.signed_in("h49-van-thu", 3, T0)
    assert anon.csrf != signed.csrf and len(signed.csrf) >= 32
    name = cookie_name("lgsp-h49", secure=True)
    assert name == "__Host-dx_s_lgsp_h49"
    back = codec.open(codec.seal(signed, name), name)
    assert back == signed and back.username == "h49-van-thu" and back.epoch == 3


def test_forged_damaged_or_foreign_cookies_are_ignored() -> None:
    codec = SessionCodec(SECRET, "lgsp-h49")
    name = cookie_name("lgsp-h49", secure=False)
    value = codec.seal(Session.signed_in("h49-van-thu", 0, T0), name)
    flipped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    assert codec.open(flipped, name) is None
    assert codec.open(value, cookie_name("lgsp-h57", secure=False)) is None  # the name is bound in
    assert SessionCodec(SECRET, "lgsp-h57").open(value, name) is None  # another node's key
    assert SessionCodec(bytes(32), "lgsp-h49").open(value, name) is None  # another host's secret
    for junk in (None, "", "%%%", "A" * 10, "A" * (MAX_COOKIE + 1)):
        assert codec.open(junk, name) is None


def test_expiry_idle_and_absolute() -> None:
    s = Session.signed_in("u1", 0, T0)
    assert not s.expired(T0 + IDLE_TIMEOUT.total_seconds() - 1)
    assert s.expired(T0 + IDLE_TIMEOUT.total_seconds() + 1)
    busy = Session(**{**s.__dict__, "seen": int(T0 + ABSOLUTE_TIMEOUT.total_seconds())})
    assert busy.expired(T0 + ABSOLUTE_TIMEOUT.total_seconds() + 1)  # used all day long: still ends


def test_csrf_check() -> None:
    s = Session.anonymous(T0)
    assert s.check_csrf(s.csrf)
    assert not s.check_csrf(None) and not s.check_csrf("") and not s.check_csrf(s.csrf + "x")


def test_flash_messages_never_push_the_cookie_over_4k() -> None:
    codec = SessionCodec(SECRET, "n")
    s = Session.signed_in("u1", 0, T0)
    for _ in range(10):
        s = s.with_flash("ok", "Đã gửi văn bản ồ ạt " * 40, "sent " * 80)
    assert len(s.flash) == 2
    value = codec.seal(s, "c")
    assert len(value) < 4000 and codec.open(value, "c") is not None


def test_secret_file_is_made_once_private(tmp_path: Path) -> None:
    p = tmp_path / "ui" / "session.key"
    first = load_secret(p)
    assert load_secret(p) == first and len(first) == 32
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    p.write_bytes(b"short")
    with pytest.raises(ValueError):
        load_secret(p)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_throttle_slows_guessing_then_forgets_on_success() -> None:
    clock = Clock()
    th = LoginThrottle(free=3, base=30, cap=120, window=900, clock=clock)
    for _ in range(2):
        th.failed("u:a", "ip:1")
    assert th.wait_seconds("u:a", "ip:1") == 0
    th.failed("u:a", "ip:1")
    assert th.wait_seconds("u:a") == 30 and th.wait_seconds("ip:1") == 30
    assert th.wait_seconds("u:b", "ip:2") == 0  # others are not affected
    th.failed("u:a")
    assert th.wait_seconds("u:a") == 60  # doubles
    for _ in range(5):
        th.failed("u:a")
    assert th.wait_seconds("u:a") == 120  # capped
    clock.t += 121
    assert th.wait_seconds("u:a") == 0
    th.succeeded("u:a")
    th.failed("u:a")
    assert th.wait_seconds("u:a") == 0
