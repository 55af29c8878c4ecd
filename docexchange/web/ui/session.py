"""Sessions of the web pages: an encrypted, authenticated cookie (AES-256-GCM), CSRF tokens, sign-in throttling.

The cookie holds the user name, the account's session epoch (raised when the password changes, so older
sessions die), a CSRF token and two times (issued, last seen). It is sealed with a key derived (HKDF-SHA256) from
a random secret kept in the data directory (``ui/session.key``, mode 0600, made on first use) and the node id: a
cookie of one node means nothing to another. Flags: ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, and
``Secure`` (with the ``__Host-`` name prefix) when the page is served over HTTPS.

Every form carries the session's CSRF token; a POST without the right token, or with an ``Origin`` of another
site, is refused before the handler runs. Before sign-in the login form gets an anonymous session (no user) for
its token, so a forged login is refused too.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "ABSOLUTE_TIMEOUT",
    "IDLE_TIMEOUT",
    "LoginThrottle",
    "Session",
    "SessionCodec",
    "cookie_name",
    "load_secret",
]

IDLE_TIMEOUT = timedelta(minutes=30)
"""A session unused this long ends."""
ABSOLUTE_TIMEOUT = timedelta(hours=10)
"""A session ends this long after sign-in, used or not (a working day)."""
REFRESH_AFTER = timedelta(minutes=1)
"""The cookie is re-issued (sliding the idle timeout) when it was last refreshed longer ago than this."""
MAX_COOKIE = 4096


def cookie_name(node_id: str, secure: bool) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in node_id)
    return f"{'__Host-' if secure else ''}dx_s_{safe}"


def load_secret(path: Path) -> bytes:
    """The node host's session secret (32 random bytes), created once with mode 0600."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            data = path.read_bytes()
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secret)
                fh.flush()
                os.fsync(fh.fileno())
            return secret
    if len(data) != 32:
        raise ValueError(f"{path}: the session secret must be 32 bytes")
    return data


@dataclass(frozen=True)
class Session:
    csrf: str
    issued: int
    seen: int
    username: str | None = None
    epoch: int = 0
    flash: tuple[tuple[str, str, str], ...] = field(default=())
    """Messages for the next page: (kind, vietnamese, english); kind ``ok`` | ``error`` | ``info``."""

    @classmethod
    def anonymous(cls, now: float) -> Session:
        return cls(csrf=secrets.token_urlsafe(24), issued=int(now), seen=int(now))

    @classmethod
    def signed_in(cls, username: str, epoch: int, now: float) -> Session:
        # A fresh token at sign-in: a token seen before sign-in is never valid after it.
        return cls(csrf=secrets.token_urlsafe(24), issued=int(now), seen=int(now), username=username, epoch=epoch)

    def expired(self, now: float) -> bool:
        if self.username is None:
            return now - self.issued > ABSOLUTE_TIMEOUT.total_seconds()
        return (now - self.seen > IDLE_TIMEOUT.total_seconds()
                or now - self.issued > ABSOLUTE_TIMEOUT.total_seconds())

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), (token or "").encode())

    def with_flash(self, kind: str, vi: str, en: str) -> Session:
        """Keep the newest two messages, each cut to 160 characters (the cookie stays well under 4 KB)."""
        return replace(self, flash=(*self.flash[-1:], (kind, vi[:160], en[:160])))

    def to_json(self) -> dict[str, Any]:
        return {"u": self.username, "e": self.epoch, "c": self.csrf, "i": self.issued, "s": self.seen,
                "f": [list(f) for f in self.flash]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        return cls(
            csrf=str(data["c"]), issued=int(data["i"]), seen=int(data["s"]),
            username=str(data["u"]) if data.get("u") else None, epoch=int(data.get("e", 0)),
            flash=tuple((str(k), str(v), str(e)) for k, v, e in data.get("f", [])),
        )


class SessionCodec:
    """Seals sessions into cookie values and opens them again (AES-256-GCM; the cookie name is bound in)."""

    def __init__(self, secret: bytes, node_id: str) -> None:
        key = HKDF(hashes.SHA256(), 32, salt=b"docexchange-ui-session-v1", info=node_id.encode()).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, session: Session, name: str) -> str:
        nonce = secrets.token_bytes(12)
        body = json.dumps(session.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
        if len(body) > 2400:  # never let messages push the cookie over the browsers' 4 KB limit
            body = json.dumps(replace(session, flash=()).to_json(), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, body, name.encode())).decode().rstrip("=")

    def open(self, value: str | None, name: str) -> Session | None:
        """The session in a cookie value, or None when absent, forged, damaged or of another node."""
        if not value or len(value) > MAX_COOKIE:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            if len(raw) < 12 + 16:
                return None
            body = self._aead.decrypt(raw[:12], raw[12:], name.encode())
            return Session.from_json(json.loads(body))
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Slows down password guessing: after ``free`` failed sign-ins for one user name (or from one address) within
    ``window`` seconds, further attempts wait ``base`` seconds, doubling up to ``cap``. A success clears the name."""

    def __init__(self, free: int = 5, base: float = 30.0, cap: float = 900.0, window: float = 900.0,
                 clock: Any = time.monotonic) -> None:
        self.free = free
        self.base = base
        self.cap = cap
        self.window = window
        self.clock = clock
        self._by_key: dict[str, _Failures] = {}

    def _get(self, key: str) -> _Failures:
        now = self.clock()
        f = self._by_key.get(key)
        if f is None or now - f.last > self.window:
            f = _Failures()
            if len(self._by_key) > 50_000:
                self._by_key.clear()
            self._by_key[key] = f
        return f

    def wait_seconds(self, *keys: str) -> int:
        """Seconds until these keys may try again (0: now)."""
        now = self.clock()
        return max((max(0, int(self._get(k).locked_until - now + 0.999)) for k in keys), default=0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for k in keys:
            f = self._get(k)
            f.count += 1
            f.last = now
            if f.count >= self.free:
                f.locked_until = now + min(self.cap, self.base * 2 ** (f.count - self.free))

    def succeeded(self, key: str) -> None:
        self._by_key.pop(key, None)


def now_seconds(moment: datetime) -> float:
    return moment.timestamp()
