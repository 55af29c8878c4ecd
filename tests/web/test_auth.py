"""HMAC-signed requests, checked against credentials kept encrypted in a real store: every way a request can
be wrong is refused with its own precise code, and nothing else gets through."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docexchange.clock import FixedClock
from docexchange.errors import AuthError, ConfigError, Forbidden, ReplayedRequest, RequestExpired
from docexchange.exchange.sqlite_store import SqliteStore
from docexchange.web.auth import Credentials, HmacScheme, Role, SecretBox, SignedRequest, sign_request

NOW = datetime(2025, 1, 5, 1, 0, tzinfo=UTC)


@pytest.fixture
async def creds(tmp_path: Path):
    store = SqliteStore(tmp_path / "n.sqlite", "n")
    await store.open()
    clock = FixedClock(NOW)
    c = Credentials(store, SecretBox("passphrase", "node:n"), clock, cache_seconds=0)
    try:
        yield c, store, clock
    finally:
        await store.close()


def req(secret: str, system: str = "qlvb-hg", *, body: bytes = b'{"a":1}', path: str = "/api/v1/x",
        now: float | None = None, nonce: str | None = None, query=(("b", "2"), ("a", "1"))) -> SignedRequest:
    headers = sign_request(secret, system, method="POST", path=path, query=query, body=body,
                           headers={"Content-Type": "application/json"}, now=now or NOW.timestamp(), nonce=nonce)
    return SignedRequest("POST", path, tuple(query), headers, body)


async def test_a_signed_request_is_accepted_once(creds) -> None:
    c, _store, _ = creds
    _, secret = await c.create("qlvb-hg", Role.AGENCY, ["000.01.11.H49"])
    r = req(secret, nonce="n" * 20)
    p = await c.authenticate(r)
    assert p.system_id == "qlvb-hg" and p.role == Role.AGENCY and p.agencies == {"000.01.11.H49"}
    with pytest.raises(ReplayedRequest):
        await c.authenticate(r)


async def test_every_kind_of_wrong_request_is_refused(creds) -> None:
    c, _store, clock = creds
    _, secret = await c.create("qlvb-hg", Role.AGENCY, ["000.01.11.H49"])
    ok = req(secret)
    cases = {
        "missing": (SignedRequest("POST", "/api/v1/x", (), {}, b""), AuthError, "auth"),
        "wrong secret": (req("not-the-secret"), AuthError, "auth"),
        "unknown system": (req(secret, "nobody-here"), AuthError, "auth"),
        "expired": (req(secret, now=NOW.timestamp() - 301), RequestExpired, "request_expired"),
        "future": (req(secret, now=NOW.timestamp() + 301), RequestExpired, "request_expired"),
        "body changed": (SignedRequest(ok.method, ok.path, ok.query, ok.headers, b'{"a":2}'), AuthError, "auth"),
        "path changed": (SignedRequest(ok.method, "/api/v1/y", ok.query, ok.headers, ok.body), AuthError, "auth"),
        "query changed": (SignedRequest(ok.method, ok.path, (("a", "9"),), ok.headers, ok.body), AuthError, "auth"),
        "method changed": (SignedRequest("GET", ok.path, ok.query, ok.headers, ok.body), AuthError, "auth"),
    }
    for name, (r, exc, code) in cases.items():
        with pytest.raises(exc) as info:
            await c.authenticate(r)
        assert info.value.code == code, name
    # A header left out of the signature.
    h = dict(ok.headers)
    h["Authorization"] = h["Authorization"].replace(";x-dx-nonce", "")
    with pytest.raises(AuthError, match="x-dx-nonce"):
        await c.authenticate(SignedRequest(ok.method, ok.path, ok.query, h, ok.body))
    # A signed header whose value was swapped after signing.
    h = dict(ok.headers)
    h["Content-Type"] = "application/xml"
    with pytest.raises(AuthError):
        await c.authenticate(SignedRequest(ok.method, ok.path, ok.query, h, ok.body))
    # The original still works (nothing above consumed its nonce).
    assert (await c.authenticate(ok)).system_id == "qlvb-hg"
    del clock


async def test_rotation_and_revocation(creds) -> None:
    c, _store, _ = creds
    _, old = await c.create("qlvb-hg", Role.AGENCY, ["000.01.11.H49"])
    new = await c.rotate("qlvb-hg")
    with pytest.raises(AuthError):
        await c.authenticate(req(old))
    assert (await c.authenticate(req(new))).system_id == "qlvb-hg"
    await c.revoke("qlvb-hg")
    with pytest.raises(AuthError):
        await c.authenticate(req(new))
    with pytest.raises(ConfigError):
        await c.create("qlvb-hg", Role.AGENCY, ["000.01.11.H49"])  # exists: rotate instead
    with pytest.raises(ConfigError):
        await c.create("bad id!", Role.AGENCY, ["000.01.11.H49"])


async def test_secrets_are_stored_encrypted(creds, tmp_path: Path) -> None:
    c, store, _ = creds
    _, secret = await c.create("qlvb-hg", Role.AGENCY, ["000.01.11.H49"])
    record = await store.credential("qlvb-hg")
    assert secret.encode() not in record.secret_box
    raw = (tmp_path / "n.sqlite").read_bytes() + (tmp_path / "n.sqlite-wal").read_bytes()
    assert secret.encode() not in raw
    # Another passphrase cannot open it.
    other = Credentials(store, SecretBox("another", "node:n"), FixedClock(NOW), cache_seconds=0)
    with pytest.raises(AuthError):
        await other.authenticate(req(secret))


def test_principal_roles() -> None:
    from docexchange.web.auth import Principal

    p = Principal("x", Role.AGENCY, frozenset({"000.01.11.H49"}))
    p.require_agency("000.01.11.H49")
    with pytest.raises(Forbidden):
        p.require_agency("000.02.12.H49")
    with pytest.raises(Forbidden):
        p.require(Role.OPERATOR)
    auditor = Principal("a", Role.AUDITOR, frozenset({"000.01.11.H49"}))
    assert not auditor.may_act_for("000.01.11.H49")  # an auditor reads, it never acts for an agency


def test_another_scheme_for_another_front() -> None:
    """The national-axis-style API reuses the same machinery with its own header names."""
    scheme = HmacScheme(algorithm="VXP-HMAC-SHA256", date="timestamp", nonce="nonce", content_sha256="bodyhash",
                        required_signed=("from", "to"))
    h = sign_request("s3cret", "sys1", method="POST", path="/sendEdoc", body=b"<edXML/>",
                     headers={"from": "000.01.11.H49", "to": '["000.00.31.H57"]'}, scheme=scheme, now=time.time())
    assert h["bodyhash"] == hashlib.sha256(b"<edXML/>").hexdigest()
    assert h["Authorization"].startswith("VXP-HMAC-SHA256 Credential=sys1, SignedHeaders=")
    assert "from;" in h["Authorization"] and ";to" in h["Authorization"]
    assert timedelta(minutes=5) == scheme.window
