"""Settings: ``config/docexchange.toml`` read into frozen dataclasses.

This module is the only reader of the configuration files and of the environment. Loading refuses unknown
keys, missing required values and wrong types with a message naming the file, the key and what was expected.
Secrets (passphrases, PINs) never live here: only the *name* of the environment variable that holds them.
"""

from __future__ import annotations

import enum
import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from docexchange.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG",
    "ExchangeSettings",
    "PadesLevel",
    "PathSettings",
    "PkiSettings",
    "RouteSettings",
    "SchedulerSettings",
    "ServeSettings",
    "Settings",
    "SigningSettings",
    "StoreSettings",
    "VerificationSettings",
    "VxpSettings",
    "env_secret",
    "load_dataclass",
    "load_settings",
    "read_toml",
]

DEFAULT_CONFIG = Path("config/docexchange.toml")
CONFIG_ENV = "DOCEXCHANGE_CONFIG"


class PadesLevel(str, enum.Enum):
    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


@dataclass(frozen=True)
class PathSettings:
    data_dir: str = "data"
    """Where nodes keep their stores and spool files (relative paths are relative to the working folder)."""
    keys_dir: str = "keys"
    """The dev PKI, or your real certificates: CA certificates, PKCS#12 files, revocation state."""
    directory: str = "config/agencies.toml"
    """The agency directory: agencies, axis nodes, aliases."""


@dataclass(frozen=True)
class PkiSettings:
    host: str = "127.0.0.1"
    """Host the trust services (TSA, OCSP, CRL) listen on and that certificates point to."""
    port: int = 8480
    """Port of the trust services; the URLs in issued certificates use it."""
    passphrase_env: str = "DOCEXCHANGE_KEY_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
    """Environment variable holding the PKCS#12 passphrase (dev default ``docexchange-dev`` when unset)."""
    key_algorithm: str = "rsa2048"
    """Key type for generated end-entity keys: ``rsa2048``, ``rsa3072`` or ``ecdsa-p256``."""
    validity_days: int = 730
    """Lifetime of generated end-entity certificates."""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class ServeSettings:
    nodes: tuple[str, ...] = ()
    """Axis nodes (ids from the directory) this host runs; empty means every node in the directory."""
    trust_services: bool = True
    """Also serve the dev PKI's TSA, OCSP and CRLs (``[pki] host/port``)."""
    workers: int = 1
    """Worker processes per node (PostgreSQL store only)."""


@dataclass(frozen=True)
class StoreSettings:
    url: str = ""
    """``sqlite:///path/{node}.sqlite`` or ``postgresql://…``; empty: one SQLite file per node in data_dir."""
    pool_min: int = 1
    """Smallest connection pool (PostgreSQL)."""
    pool_max: int = 10
    """Largest connection pool (PostgreSQL)."""
    sqlite_busy_ms: int = 5000
    """How long an SQLite write waits for a lock held by another process before failing (then retried)."""


@dataclass(frozen=True)
class SigningSettings:
    level: PadesLevel = PadesLevel.B_LT
    """PAdES baseline level applied to outgoing documents."""
    digest: str = "sha256"
    """Message digest: ``sha256``, ``sha384`` or ``sha512`` (never SHA-1)."""
    rsa_pss: bool = False
    """Sign with RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys only)."""
    font: str = ""
    """TrueType/OpenType font for stamps; empty: Liberation Serif (Debian fonts-liberation) or bundled."""
    tsa_url: str = ""
    """RFC 3161 time-stamping service for B-T and above; empty: the dev PKI's TSA at ``[pki]`` ``/tsa``."""
    precheck_cache_seconds: int = 300
    """How long a signer's certificate check (validity, OCSP/CRL, chain) is reused by a long-lived signing
    service; also bounded by the OCSP/CRL ``nextUpdate``. 0: check before every signature."""
    max_pdf_mb: int = 50
    """Largest PDF accepted for signing."""


@dataclass(frozen=True)
class VerificationSettings:
    anchors: tuple[str, ...] = ()
    """Extra trust anchors (DER or PEM files) besides the dev root in keys_dir."""
    revocation_freshness_hours: int = 24
    """Revocation data older than this (relative to signing time) counts as stale."""
    allow_online: bool = True
    """Fetch OCSP/CRL online when embedded data is missing."""
    nd30_on_arrival: bool = True
    """Check the NĐ 30 profile (person + seal of the sender) for every arriving document."""
    isolation: str = "process"
    """``process``: untrusted PDFs are parsed in a long-lived worker process bounded in time and memory;
    ``inline``: in the calling process (only for callers that already run verification in isolated workers)."""
    timeout_seconds: int = 60
    """Longest one document may take to verify; a PDF that takes longer is stopped and reported unverifiable."""
    memory_limit_mb: int = 2048
    """Address-space limit of the verification worker process (``isolation = "process"``)."""
    max_document_mb: int = 100
    """Largest PDF accepted for verification."""
    online_timeout_seconds: int = 5
    """Timeout of one online OCSP/CRL request."""


@dataclass(frozen=True)
class ExchangeSettings:
    max_packet_mb: int = 50
    """Largest edXML packet a node accepts."""
    lease_seconds: int = 60
    """How long a worker holds a delivery before it returns to the queue."""
    max_attempts: int = 12
    """Attempts per hop before a delivery becomes a dead letter."""
    retry_window_hours: int = 48
    """Total time a delivery may be retried before it becomes a dead letter."""
    auto_reject_invalid: bool = True
    """Send status 02 automatically when an arriving document fails verification."""
    retry_base_seconds: float = 1.0
    """Delay before the second attempt; it doubles at each further attempt (with ±20 % jitter)."""
    retry_max_delay_seconds: float = 300.0
    """Longest delay between two attempts."""
    routes: tuple[RouteSettings, ...] = ()
    """Per-destination overrides of ``max_attempts`` and ``retry_window_hours``."""
    breaker_failures: int = 3
    """Consecutive failed transfers to a node that open its circuit breaker (nothing is sent until a probe works)."""
    breaker_open_seconds: float = 2.0
    """First cool-down of an open breaker; doubles at each failed probe."""
    breaker_max_open_seconds: float = 60.0
    """Longest cool-down between probes."""
    batch_max_items: int = 64
    """Deliveries sent to a neighbour in one transfer."""
    batch_max_mb: int = 16
    """Bytes sent to a neighbour in one transfer (a single larger packet still goes alone)."""
    peer_concurrency: int = 2
    """Transfers in flight at once to each neighbour."""
    verify_workers: int = 1
    """Long-lived worker processes verifying arrived documents (NĐ 30 profile)."""
    parse_workers: int = 1
    """Worker processes checking the packets agencies submit (full parse off the event loop); 0: in process."""
    transfer_timeout_seconds: float = 60.0
    """A transfer to a neighbour that takes longer counts as failed (and is retried)."""


@dataclass(frozen=True)
class RouteSettings:
    """Retry limits for the route to one neighbour node."""

    peer: str
    """Node id of the neighbour."""
    max_attempts: int = 12
    """Attempts before a delivery to it becomes a dead letter."""
    retry_window_hours: float = 48.0
    """Total time deliveries to it are retried."""


@dataclass(frozen=True)
class SchedulerSettings:
    retry_seconds: int = 2
    """How often due retries are picked up."""
    lease_recovery_seconds: int = 15
    """How often expired leases are returned to the queue."""
    housekeeping_minutes: int = 60
    """How often old receipts and spool files are cleaned."""


@dataclass(frozen=True)
class VxpSettings:
    """The national-axis-style API (``POST /vxp/<operation>``, docs/national-axis-api.md)."""

    enabled: bool = True
    """Serve the national-axis-style API on every node."""
    timestamp_window_seconds: int = 300
    """A signed call whose ``timestamp`` is further than this from the node's clock is refused (AUTH_EXPIRED)."""
    list_limit: int = 100
    """Items per page of getReceivedEdocList / getSentEdocList when the caller sends no ``limit`` (at most 500)."""


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    pki: PkiSettings = field(default_factory=PkiSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    signing: SigningSettings = field(default_factory=SigningSettings)
    verification: VerificationSettings = field(default_factory=VerificationSettings)
    exchange: ExchangeSettings = field(default_factory=ExchangeSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    vxp: VxpSettings = field(default_factory=VxpSettings)
    base_dir: str = "."
    """Folder relative paths are resolved against (the folder holding ``config/``); set by the loader."""

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def data_dir(self) -> Path:
        return self.path(self.paths.data_dir)

    @property
    def keys_dir(self) -> Path:
        return self.path(self.paths.keys_dir)

    @property
    def directory_file(self) -> Path:
        return self.path(self.paths.directory)


T = TypeVar("T")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(tp: Any, value: Any, source: str, key: str) -> Any:
    def wrong() -> ConfigError:
        return ConfigError(
            f"{source}: khóa '{key}' phải là {_type_name(tp)}, nhưng có {value!r}",
            f"{source}: key '{key}' must be {_type_name(tp)}, got {value!r}",
        )

    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for arg in args:
            try:
                return _convert(arg, value, source, key)
            except ConfigError:
                continue
        raise wrong()
    if origin is tuple:
        if not isinstance(value, list):
            raise wrong()
        (inner, *_rest) = get_args(tp)
        return tuple(_convert(inner, v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise wrong()
        return value
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise wrong()
        return load_dataclass(typing.cast(type, tp), value, source, prefix=f"{key}.")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise wrong() from None
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    if tp is Any:
        return value
    raise wrong()


def load_dataclass(cls: type[T], data: dict[str, Any], source: str, prefix: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a TOML table, strictly."""
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(typing.cast(Any, cls)) if f.init}
    unknown = sorted(set(data) - set(known))
    if unknown:
        names = ", ".join(f"'{prefix}{k}'" for k in unknown)
        raise ConfigError(
            f"{source}: khóa không được hỗ trợ {names} (các khóa hợp lệ: {', '.join(sorted(known))})",
            f"{source}: unknown key {names} (valid keys: {', '.join(sorted(known))})",
        )
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], source, prefix + name)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(
                f"{source}: thiếu khóa bắt buộc '{prefix}{name}' ({_type_name(hints[name])})",
                f"{source}: missing required key '{prefix}{name}' ({_type_name(hints[name])})",
            )
    return cls(**kwargs)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"Không tìm thấy tệp cấu hình {path}", f"configuration file {path} not found"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: tệp TOML sai cú pháp ({exc})", f"{path}: invalid TOML ({exc})"
        ) from exc


def load_settings(path: Path | None = None) -> Settings:
    """Load settings from ``path``, ``$DOCEXCHANGE_CONFIG`` or ``config/docexchange.toml``.

    A missing default file gives the embedded defaults; a file named explicitly must exist.
    """
    explicit = path is not None or CONFIG_ENV in os.environ
    cfg = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    if not cfg.exists() and not explicit:
        return Settings(base_dir=str(Path.cwd()))
    data = read_toml(cfg)
    if "base_dir" in data:
        raise ConfigError(
            f"{cfg}: khóa 'base_dir' do chương trình tự đặt", f"{cfg}: 'base_dir' is set by the loader"
        )
    base = cfg.resolve().parent
    base_dir = base.parent if base.name == "config" else base
    data = {**data, "base_dir": str(base_dir)}
    return load_dataclass(Settings, data, str(cfg))


DEV_PASSPHRASE = "docexchange-dev"  # noqa: S105 - documented dev default for generated test keys


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from the environment (never from a committed file)."""
    return os.environ.get(name, default)
