"""Who is calling: per-system credentials and HMAC-SHA256 signed requests.

Used by every front of a node (the agency JSON API, the national-axis-style API, scripts). The operator issues
each calling system a **system id** and a **shared secret** (``docexchange agency credentials create``); a system
acts for one agency or, for a software vendor, several. Roles: ``agency`` (its own mail), ``auditor`` (reads
trails and receipts of any delivery at the node), ``operator`` (administers queues and credentials).

Secrets are stored encrypted (AES-256-GCM; the key is derived with HKDF-SHA256 from the node's key passphrase,
read from the environment, and the node id), decrypted only to check a signature, and never logged.

**Signing a request** (:class:`HmacScheme`, defaults shown)::

    X-DX-Date: <unix time, seconds>
    X-DX-Nonce: <16–64 characters [A-Za-z0-9_-], new for every request>
    X-DX-Content-SHA256: <hex SHA-256 of the body (of b"" when there is none)>
    Authorization: DX-HMAC-SHA256 Credential=<system id>, SignedHeaders=<names;lower;case>, Signature=<hex>

    string to sign = "DX-HMAC-SHA256\\n" + date + "\\n" + nonce + "\\n" + METHOD + "\\n" + path + "\\n"
                     + canonical query + "\\n" + canonical headers + "\\n" + signed header names + "\\n"
                     + body sha256
    canonical query   = pairs sorted by name then value, each percent-encoded (RFC 3986 unreserved kept), "&"-joined
    canonical headers = for each signed header in SignedHeaders order: name + ":" + value (trimmed) + "\\n"
    Signature         = hex(HMAC-SHA256(secret, string to sign))

The date, nonce and content hash headers must be among the signed headers. A request is refused when the date
is more than ``window`` seconds away from the node's clock, when the signature does not match, when the body
does not match its hash, or when the (system id, nonce) pair was seen before.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from docexchange.clock import Clock
from docexchange.errors import AuthError, ConfigError, Forbidden, ReplayedRequest, RequestExpired
from docexchange.exchange.store import CredentialRecord, Store

__all__ = [
    "DEFAULT_SCHEME",
    "Credentials",
    "HmacScheme",
    "Principal",
    "Role",
    "SecretBox",
    "SignedRequest",
    "canonical_query",
    "sign_request",
    "string_to_sign",
]

_SYSTEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class Role(str, enum.Enum):
    AGENCY = "agency"
    AUDITOR = "auditor"
    OPERATOR = "operator"

    @property
    def label_vi(self) -> str:
        return {"agency": "cơ quan", "auditor": "kiểm tra viên", "operator": "vận hành"}[self.value]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    system_id: str
    role: Role
    agencies: frozenset[str] = frozenset()

    def may_act_for(self, agency: str) -> bool:
        return self.role == Role.AGENCY and agency in self.agencies

    def require_agency(self, agency: str) -> None:
        if not self.may_act_for(agency):
            raise Forbidden(
                f"Hệ thống '{self.system_id}' không được phép thao tác thay cơ quan {agency}",
                f"system '{self.system_id}' may not act for agency {agency}",
            )

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            names = ", ".join(r.label_vi for r in roles)
            raise Forbidden(
                f"Thao tác này dành cho vai trò: {names}",
                f"this operation needs role {', '.join(r.value for r in roles)}",
            )


class SecretBox:
    """AES-256-GCM for stored secrets; the key comes from HKDF over a passphrase kept outside the store."""

    def __init__(self, passphrase: str, context: str) -> None:
        if not passphrase:
            raise ConfigError("Thiếu mật khẩu để mã hóa bí mật", "a passphrase is needed to encrypt secrets")
        key = HKDF(hashes.SHA256(), 32, salt=b"docexchange-credentials-v1", info=context.encode()).derive(
            passphrase.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, secret: bytes, aad: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return b"\x01" + nonce + self._aead.encrypt(nonce, secret, aad.encode())

    def open(self, box: bytes, aad: str) -> bytes:
        if len(box) < 29 or box[0] != 1:
            raise AuthError("Bí mật lưu trữ bị hỏng", "stored secret is damaged")
        try:
            return self._aead.decrypt(box[1:13], box[13:], aad.encode())
        except InvalidTag:
            raise AuthError(
                "Không giải mã được bí mật (mật khẩu khóa của trục đã đổi?)",
                "cannot decrypt a stored secret (did the node's key passphrase change?)",
            ) from None


@dataclass(frozen=True)
class HmacScheme:
    """Header names and rules of the signature scheme (the national-axis API uses its own names)."""

    algorithm: str = "DX-HMAC-SHA256"
    authorization: str = "Authorization"
    date: str = "X-DX-Date"
    nonce: str = "X-DX-Nonce"
    content_sha256: str = "X-DX-Content-SHA256"
    required_signed: tuple[str, ...] = ()
    """Further headers that must be signed (besides date, nonce and content hash)."""
    window: timedelta = timedelta(minutes=5)

    @property
    def mandatory(self) -> tuple[str, ...]:
        return tuple(h.lower() for h in (self.date, self.nonce, self.content_sha256, *self.required_signed))


DEFAULT_SCHEME = HmacScheme()


def _pct(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(pairs))


def string_to_sign(
    scheme: HmacScheme,
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed: Sequence[str],
    body_sha256: str,
) -> bytes:
    lower = {k.lower(): v for k, v in headers.items()}
    canon = "".join(f"{h}:{lower.get(h, '').strip()}\n" for h in signed)
    return "\n".join(
        [
            scheme.algorithm,
            lower.get(scheme.date.lower(), "").strip(),
            lower.get(scheme.nonce.lower(), "").strip(),
            method.upper(),
            path,
            canonical_query(query),
            canon,
            ";".join(signed),
            body_sha256,
        ]
    ).encode("utf-8")


def sign_request(
    secret: str,
    system_id: str,
    *,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    scheme: HmacScheme = DEFAULT_SCHEME,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers to add to a request so a node accepts it (the client side of the scheme)."""
    out = dict(headers or {})
    out[scheme.date] = str(int(now if now is not None else time.time()))
    out[scheme.nonce] = nonce or secrets.token_urlsafe(18)
    out[scheme.content_sha256] = hashlib.sha256(body).hexdigest()
    signed = sorted({*(k.lower() for k in out), *scheme.mandatory})
    sts = string_to_sign(scheme, method=method, path=path, query=query, headers=out, signed=signed,
                         body_sha256=out[scheme.content_sha256])
    sig = hmac.new(secret.encode(), sts, hashlib.sha256).hexdigest()
    out[scheme.authorization] = (
        f"{scheme.algorithm} Credential={system_id}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    return out


@dataclass(frozen=True)
class SignedRequest:
    """What the server needs of a request to authenticate it (framework-neutral)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: bytes = field(repr=False)


def _parse_authorization(scheme: HmacScheme, value: str) -> tuple[str, list[str], str]:
    algo, _, rest = value.strip().partition(" ")
    if algo != scheme.algorithm:
        raise AuthError(
            f"Sai phương thức xác thực (cần {scheme.algorithm})",
            f"wrong authorization scheme (need {scheme.algorithm})",
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        k, sep, v = item.strip().partition("=")
        if sep:
            parts[k.strip()] = v.strip()
    try:
        system_id, signed, sig = parts["Credential"], parts["SignedHeaders"], parts["Signature"]
    except KeyError as exc:
        raise AuthError(
            f"Tiêu đề xác thực thiếu trường {exc.args[0]}", f"authorization header lacks {exc.args[0]}"
        ) from None
    names = [h for h in signed.split(";") if h]
    if not _SYSTEM_ID.match(system_id):
        raise AuthError("Mã hệ thống không hợp lệ", "malformed system id")
    if not re.fullmatch(r"[0-9a-f]{64}", sig):
        raise AuthError("Chữ ký yêu cầu sai định dạng", "malformed request signature")
    return system_id, names, sig


class Credentials:
    """Issues, rotates, revokes and checks credentials of one node (records live in the node's store)."""

    def __init__(self, store: Store, box: SecretBox, clock: Clock, scheme: HmacScheme = DEFAULT_SCHEME,
                 cache_seconds: float = 5.0) -> None:
        self.store = store
        self.box = box
        self.clock = clock
        self.scheme = scheme
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, CredentialRecord | None, bytes | None]] = {}

    # -- administration ------------------------------------------------------------------------
    @staticmethod
    def _check_id(system_id: str) -> None:
        if not _SYSTEM_ID.match(system_id):
            raise ConfigError(
                f"Mã hệ thống '{system_id}' không hợp lệ (2–64 ký tự chữ, số, . _ -)",
                f"invalid system id '{system_id}' (2-64 characters: letters, digits, . _ -)",
            )

    async def create(self, system_id: str, role: Role, agencies: Sequence[str], label: str = "",
                     *, replace_existing: bool = False) -> tuple[CredentialRecord, str]:
        """A new credential; returns the record and the secret, shown once and never stored in clear."""
        self._check_id(system_id)
        if role == Role.AGENCY and not agencies:
            raise ConfigError("Hệ thống của cơ quan cần ít nhất một mã cơ quan", "an agency system needs agencies")
        existing = await self.store.credential(system_id)
        if existing is not None and not replace_existing:
            raise ConfigError(
                f"Mã hệ thống '{system_id}' đã tồn tại (dùng rotate để cấp bí mật mới)",
                f"system id '{system_id}' exists (use rotate for a new secret)",
            )
        secret = secrets.token_urlsafe(32)
        record = CredentialRecord(
            system_id=system_id,
            role=role.value,
            agencies=tuple(sorted(set(agencies))),
            secret_box=self.box.seal(secret.encode(), system_id),
            created_at=self.clock.now(),
            label=label,
        )
        await self.store.put_credential(record)
        self._cache.pop(system_id, None)
        return record, secret

    async def rotate(self, system_id: str) -> str:
        record = await self._require(system_id)
        secret = secrets.token_urlsafe(32)
        await self.store.put_credential(
            replace(record, secret_box=self.box.seal(secret.encode(), system_id), rotated_at=self.clock.now(),
                    revoked_at=None)
        )
        self._cache.pop(system_id, None)
        return secret

    async def revoke(self, system_id: str) -> None:
        record = await self._require(system_id)
        await self.store.put_credential(replace(record, revoked_at=self.clock.now()))
        self._cache.pop(system_id, None)

    async def _require(self, system_id: str) -> CredentialRecord:
        record = await self.store.credential(system_id)
        if record is None:
            raise ConfigError(f"Không có hệ thống '{system_id}'", f"no system '{system_id}'")
        return record

    # -- checking ------------------------------------------------------------------------------
    async def _lookup(self, system_id: str) -> tuple[CredentialRecord | None, bytes | None]:
        now = time.monotonic()
        hit = self._cache.get(system_id)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1], hit[2]
        record = await self.store.credential(system_id)
        secret = None
        if record is not None and record.revoked_at is None:
            secret = self.box.open(record.secret_box, system_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[system_id] = (now, record, secret)
        return record, secret

    async def authenticate(self, req: SignedRequest) -> Principal:
        """The caller of a signed request, or :class:`AuthError` saying precisely what is wrong."""
        scheme = self.scheme
        headers = {k.lower(): v for k, v in req.headers.items()}
        auth = headers.get(scheme.authorization.lower())
        if not auth:
            raise AuthError(
                "Thiếu thông tin xác thực: yêu cầu phải được ký (HMAC-SHA256)",
                "missing credentials: the request must be signed (HMAC-SHA256)",
            )
        system_id, signed, signature = _parse_authorization(scheme, auth)
        missing = [h for h in scheme.mandatory if h not in signed]
        if missing:
            raise AuthError(
                f"Các tiêu đề sau phải được ký: {', '.join(missing)}",
                f"these headers must be signed: {', '.join(missing)}",
            )
        date_text = headers.get(scheme.date.lower(), "")
        try:
            stamp = int(date_text)
        except ValueError:
            raise AuthError(f"Tiêu đề {scheme.date} không hợp lệ", f"invalid {scheme.date} header") from None
        now = self.clock.now().timestamp()
        if abs(now - stamp) > scheme.window.total_seconds():
            raise RequestExpired(
                f"Yêu cầu đã hết hạn hoặc đồng hồ lệch quá {int(scheme.window.total_seconds())} giây",
                f"request timestamp outside the {int(scheme.window.total_seconds())} s window (expired or clock skew)",
            )
        nonce = headers.get(scheme.nonce.lower(), "")
        if not _NONCE.match(nonce):
            raise AuthError(f"Tiêu đề {scheme.nonce} không hợp lệ", f"invalid {scheme.nonce} header")
        body_hash = hashlib.sha256(req.body).hexdigest()
        if not hmac.compare_digest(headers.get(scheme.content_sha256.lower(), "").strip().lower(), body_hash):
            raise AuthError(
                "Mã băm SHA-256 của nội dung không khớp", "the body does not match its SHA-256 header"
            )
        record, secret = await self._lookup(system_id)
        if record is None or secret is None:
            # Same answer for unknown and revoked: do not tell which system ids exist.
            raise AuthError("Sai thông tin xác thực", "invalid credentials")
        sts = string_to_sign(scheme, method=req.method, path=req.path, query=req.query, headers=req.headers,
                             signed=signed, body_sha256=body_hash)
        expected = hmac.new(secret, sts, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AuthError("Sai thông tin xác thực", "invalid credentials")
        expires = datetime.fromtimestamp(stamp, self.clock.now().tzinfo) + scheme.window
        if not await self.store.remember_nonce(system_id, nonce, expires + scheme.window):
            raise ReplayedRequest("Yêu cầu đã được gửi trước đó (phát lại)", "replayed request (nonce seen before)")
        return Principal(system_id, Role(record.role), frozenset(record.agencies))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
