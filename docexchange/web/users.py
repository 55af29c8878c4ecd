"""People who use a node's web pages: agency staff, auditors and operators, with scrypt-hashed passwords.

Accounts live in one JSON file in the data directory (``<data_dir>/users.json``, mode 0600), shared by every node
of the host; the node store's protocol has no place for people (its credentials are for *systems* calling the
API). A user signs in at the node that serves their agency; auditors and operators at the nodes they are given
(every node of the host when none is named).

Roles:

* ``clerk`` (văn thư) — composes and sends for the agency, applies the agency's seal, works the inbox;
* ``official`` (lãnh đạo) — a competent person of the agency who signs drafts with their own certificate and
  reads the agency's mail;
* ``auditor`` (kiểm tra viên) — verifies any PDF or packet, reads the trail and receipts of any delivery;
* ``operator`` (vận hành) — queues, dead letters, node and peer health, certificate expiry.

Passwords are hashed with scrypt (memory-hard; ``hashlib.scrypt``), each with its own salt and cost parameters
written next to the hash (``scrypt$<log2 N>$<r>$<p>$<salt>$<hash>``), so the cost can be raised later and old
hashes still verify (and are re-hashed at the next sign-in). ``docexchange users init`` creates the dev accounts
for a directory: every official of the directory (user name = official id), one clerk per agency and one
auditor and one operator, all with the documented dev password unless told otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from docexchange.clock import Clock, SystemClock
from docexchange.config import Settings
from docexchange.directory import Agency, Directory
from docexchange.errors import AuthError, ConfigError
from docexchange.pki.keystore import write_atomic
from docexchange.web.auth import Principal, Role

__all__ = [
    "DEV_PASSWORD",
    "ScryptParams",
    "UserAccount",
    "UserFile",
    "UserRole",
    "check_password_policy",
    "clerk_username",
    "dev_accounts",
    "hash_password",
    "needs_rehash",
    "verify_password",
]

DEV_PASSWORD = "docexchange-dev"  # noqa: S105 - the documented password of the DEV accounts (docs/web.md)
"""Password ``docexchange users init`` gives the dev accounts unless ``--random-passwords`` is used."""

FORMAT = 1
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: memory = 128 · r · N bytes (32 MiB with the defaults), p lanes."""

    log2_n: int = 15
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        return 128 * self.r * (1 << self.log2_n) * self.p + 4 * 1024 * 1024


DEFAULT_PARAMS = ScryptParams()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """A new salted scrypt hash of ``password`` in the self-describing text form."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << params.log2_n, r=params.r, p=params.p,
                            maxmem=params.maxmem, dklen=32)
    return f"scrypt${params.log2_n}${params.r}${params.p}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    try:
        algo, log2_n, r, p, salt, digest = encoded.split("$")
        if algo != "scrypt":
            raise ValueError(algo)
        params = ScryptParams(int(log2_n), int(r), int(p))
        if not (10 <= params.log2_n <= 22 and 1 <= params.r <= 32 and 1 <= params.p <= 16):
            raise ValueError("cost out of range")
        return params, _unb64(salt), _unb64(digest)
    except ValueError:
        raise AuthError("Mật khẩu lưu trữ sai định dạng", "stored password hash is malformed") from None


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    params, salt, expected = _parse(encoded)
    if len(password) > MAX_PASSWORD:
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << params.log2_n, r=params.r, p=params.p,
                         maxmem=params.maxmem, dklen=len(expected))
    return hmac.compare_digest(got, expected)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    current, _, _ = _parse(encoded)
    return (current.log2_n, current.r, current.p) < (params.log2_n, params.r, params.p)


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(
            f"Mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự", f"the password needs at least {MIN_PASSWORD} characters"
        )
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"Mật khẩu dài quá {MAX_PASSWORD} ký tự", f"the password is longer than {MAX_PASSWORD}")
    if password.strip() != password or not password.isprintable():
        raise ConfigError(
            "Mật khẩu không được có khoảng trắng ở đầu/cuối hay ký tự điều khiển",
            "the password may not start or end with spaces or hold control characters",
        )


class UserRole(str, enum.Enum):
    CLERK = "clerk"
    OFFICIAL = "official"
    AUDITOR = "auditor"
    OPERATOR = "operator"

    @property
    def label_vi(self) -> str:
        return {"clerk": "Văn thư", "official": "Lãnh đạo (người ký)", "auditor": "Kiểm tra viên",
                "operator": "Vận hành"}[self.value]

    @property
    def label_en(self) -> str:
        return {"clerk": "Clerk", "official": "Official (signer)", "auditor": "Auditor",
                "operator": "Operator"}[self.value]

    @property
    def agency_bound(self) -> bool:
        return self in (UserRole.CLERK, UserRole.OFFICIAL)


@dataclass(frozen=True)
class UserAccount:
    username: str
    full_name: str
    role: UserRole
    password_hash: str = field(repr=False)
    created_at: datetime
    agency: str = ""
    """Agency code (clerks and officials)."""
    official_id: str = ""
    """The directory official this account is (officials): their certificates are the ones they sign with."""
    position: str = ""
    nodes: tuple[str, ...] = ()
    """Auditors and operators: nodes where they may sign in (empty: every node of the host)."""
    disabled: bool = False
    dev_password: bool = False
    """The account still has the documented dev password (the pages show a warning)."""
    password_changed_at: datetime | None = None
    session_epoch: int = 0
    """Raised when the password changes: every session opened before is void."""

    def principal(self) -> Principal:
        """What the node's service sees when this person acts."""
        sid = f"web:{self.username}"
        if self.role.agency_bound:
            return Principal(sid, Role.AGENCY, frozenset({self.agency}))
        if self.role == UserRole.AUDITOR:
            return Principal(sid, Role.AUDITOR)
        return Principal(sid, Role.OPERATOR)

    def may_sign_in_at(self, node_id: str, directory: Directory) -> bool:
        if self.disabled:
            return False
        if self.role.agency_bound:
            return self.agency in directory and directory.agency(self.agency).node == node_id
        return not self.nodes or node_id in self.nodes

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "full_name": self.full_name,
            "role": self.role.value,
            "password_hash": self.password_hash,
            "created_at": self.created_at.isoformat(),
            "agency": self.agency,
            "official_id": self.official_id,
            "position": self.position,
            "nodes": list(self.nodes),
            "disabled": self.disabled,
            "dev_password": self.dev_password,
            "password_changed_at": self.password_changed_at.isoformat() if self.password_changed_at else None,
            "session_epoch": self.session_epoch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserAccount:
        changed = data.get("password_changed_at")
        return cls(
            username=str(data["username"]),
            full_name=str(data["full_name"]),
            role=UserRole(data["role"]),
            password_hash=str(data["password_hash"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            agency=str(data.get("agency") or ""),
            official_id=str(data.get("official_id") or ""),
            position=str(data.get("position") or ""),
            nodes=tuple(str(n) for n in data.get("nodes") or ()),
            disabled=bool(data.get("disabled", False)),
            dev_password=bool(data.get("dev_password", False)),
            password_changed_at=datetime.fromisoformat(str(changed)) if changed else None,
            session_epoch=int(data.get("session_epoch", 0)),
        )


def check_username(username: str) -> None:
    if not _USERNAME.match(username):
        raise ConfigError(
            f"Tên đăng nhập '{username}' không hợp lệ (2–64 ký tự: chữ thường không dấu, số, . _ -)",
            f"invalid user name '{username}' (2-64 characters: lower-case ASCII letters, digits, . _ -)",
        )


class UserFile:
    """The accounts file: read (cached by modification time) and changed under an exclusive file lock."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self._cache: tuple[tuple[int, int], dict[str, UserAccount]] | None = None

    @classmethod
    def for_settings(cls, settings: Settings, clock: Clock | None = None) -> UserFile:
        return cls(settings.data_dir / "users.json", clock)

    # -- reading -------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def _read(self) -> dict[str, UserAccount]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        if st.st_size > 16 * 1024 * 1024:
            raise ConfigError(f"Tệp {self.path} quá lớn", f"{self.path} is too large")
        try:
            raw = json.loads(self.path.read_text("utf-8"))
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}")
            users = {u["username"]: UserAccount.from_json(u) for u in raw.get("users", [])}
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"Tệp tài khoản {self.path} bị hỏng", f"accounts file {self.path} is damaged ({exc})") \
                from exc
        self._cache = (stamp, users)
        return users

    def get(self, username: str) -> UserAccount | None:
        return self._read().get(username)

    def all(self) -> list[UserAccount]:
        return sorted(self._read().values(), key=lambda u: (u.role.value, u.agency, u.username))

    # -- changing ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, UserAccount]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        with lock.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                self._cache = None
                users = dict(self._read())
                yield users
                body = {"format": FORMAT, "users": [u.to_json() for u in sorted(users.values(),
                                                                               key=lambda u: u.username)]}
                write_atomic(self.path, json.dumps(body, ensure_ascii=False, indent=1).encode(), mode=0o600)
                self._cache = None
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def add(self, account: UserAccount, *, replace_existing: bool = False) -> UserAccount:
        check_username(account.username)
        with self._locked() as users:
            if account.username in users and not replace_existing:
                raise ConfigError(f"Tài khoản '{account.username}' đã có", f"user '{account.username}' exists")
            users[account.username] = account
        return account

    def add_many(self, accounts: Iterable[UserAccount]) -> tuple[list[UserAccount], list[str]]:
        """Add the accounts that do not exist yet; returns (added, user names kept as they were)."""
        added, kept = [], []
        with self._locked() as users:
            for a in accounts:
                check_username(a.username)
                if a.username in users:
                    kept.append(a.username)
                else:
                    users[a.username] = a
                    added.append(a)
        return added, kept

    def set_password(self, username: str, password: str, *, dev: bool = False, check_policy: bool = True) -> None:
        if check_policy:
            check_password_policy(password)
        encoded = hash_password(password)
        with self._locked() as users:
            user = users.get(username)
            if user is None:
                raise ConfigError(f"Không có tài khoản '{username}'", f"no user '{username}'")
            users[username] = replace(user, password_hash=encoded, dev_password=dev,
                                      password_changed_at=self.clock.now(), session_epoch=user.session_epoch + 1)

    def rehash(self, username: str, password: str) -> None:
        """Store a fresh hash with the current cost (after a successful sign-in with an older one)."""
        encoded = hash_password(password)
        with self._locked() as users:
            user = users.get(username)
            if user is not None:
                users[username] = replace(user, password_hash=encoded)

    def set_disabled(self, username: str, disabled: bool) -> None:
        with self._locked() as users:
            user = users.get(username)
            if user is None:
                raise ConfigError(f"Không có tài khoản '{username}'", f"no user '{username}'")
            users[username] = replace(user, disabled=disabled, session_epoch=user.session_epoch + 1)

    def remove(self, username: str) -> None:
        with self._locked() as users:
            if users.pop(username, None) is None:
                raise ConfigError(f"Không có tài khoản '{username}'", f"no user '{username}'")

    def authenticate(self, username: str, password: str) -> UserAccount:
        """The account if the password is right; :class:`AuthError` otherwise (same answer for unknown users).

        CPU and memory bound (scrypt): call it from a worker thread, not the event loop."""
        user = self.get(username.strip().lower())
        if user is None:
            # Spend the same work as a real check so the answer time does not tell which names exist.
            verify_password(password, _DUMMY_HASH)
            raise AuthError("Sai tên đăng nhập hoặc mật khẩu", "wrong user name or password")
        ok = verify_password(password, user.password_hash)
        if not ok or user.disabled:
            raise AuthError("Sai tên đăng nhập hoặc mật khẩu", "wrong user name or password")
        if needs_rehash(user.password_hash):
            self.rehash(user.username, password)
        return user


_DUMMY_HASH = "scrypt$15$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


# -- dev accounts ---------------------------------------------------------------------------------------------
def _common_prefix(ids: list[str]) -> str:
    parts = [i.split("-") for i in ids]
    out: list[str] = []
    for tokens in zip(*parts, strict=False):
        if all(t == tokens[0] for t in tokens):
            out.append(tokens[0])
        else:
            break
    return "-".join(out)


def clerk_username(agency: Agency, taken: set[str] | None = None) -> str:
    """The dev clerk's user name: the officials' common id prefix + ``-van-thu`` (``h49-halong-van-thu``),
    else ``van-thu-`` + the agency code (``van-thu-000-00-11-h49``)."""
    ids = [o.id for o in agency.officials]
    prefix = _common_prefix(ids) if len(ids) >= 2 else ""
    name = f"{prefix}-van-thu" if prefix else ""
    if not name or not _USERNAME.match(name) or (taken is not None and name in taken):
        name = "van-thu-" + agency.code.lower().replace(".", "-")
    return name


def dev_accounts(directory: Directory, password_for: Any, now: datetime) -> list[tuple[UserAccount, str]]:
    """Accounts for a directory: each official, one clerk per agency, one auditor, one operator.

    ``password_for(username)`` gives each account's password; returns (account, password) pairs."""
    out: list[tuple[UserAccount, str]] = []
    taken: set[str] = {o.id for a in directory for o in a.officials}

    def make(username: str, full_name: str, role: UserRole, **kw: Any) -> None:
        pw, dev = password_for(username)
        out.append((UserAccount(username=username, full_name=full_name, role=role, password_hash=hash_password(pw),
                                created_at=now, dev_password=dev, password_changed_at=now, **kw), pw))

    for agency in sorted(directory, key=lambda a: a.code):
        for o in agency.officials:
            make(o.id, o.full_name, UserRole.OFFICIAL, agency=agency.code, official_id=o.id, position=o.position)
        clerk = clerk_username(agency, taken)
        taken.add(clerk)
        make(clerk, f"Văn thư {agency.short_name or agency.name}", UserRole.CLERK, agency=agency.code,
             position="Văn thư")
    make("kiem-tra", "Kiểm tra viên", UserRole.AUDITOR)
    make("van-hanh", "Quản trị vận hành", UserRole.OPERATOR)
    return out


def new_password() -> str:
    """A random password for ``--random-passwords`` (20 characters, URL-safe)."""
    return secrets.token_urlsafe(15)


def env_password(name: str = "DOCEXCHANGE_USER_PASSWORD") -> str | None:
    return os.environ.get(name)
