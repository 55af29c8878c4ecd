"""Choosing the store backend from the settings (``[store] url``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from docexchange.config import Settings
from docexchange.errors import ConfigError
from docexchange.exchange.store import ReceiptSigning, Store

__all__ = ["open_store", "sqlite_path"]


def sqlite_path(settings: Settings, node_id: str) -> Path:
    """The SQLite file of ``node_id``: ``[store] url`` = ``sqlite:///relative/{node}.sqlite`` (relative to the
    project folder), ``sqlite:////absolute/{node}.sqlite``, or empty for ``<data_dir>/<node>.sqlite``."""
    url = settings.store.url.strip()
    if not url:
        return settings.data_dir / f"{node_id}.sqlite"
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"Không phải URL SQLite: {url!r}", f"not an SQLite URL: {url!r}")
    rest = url[len("sqlite:///") :]
    if "{node}" not in rest:
        raise ConfigError(
            "URL SQLite phải chứa {node} (mỗi trục một tệp)", "an SQLite URL must contain {node} (one file per node)"
        )
    return settings.path(rest.replace("{node}", node_id))


def open_store(
    settings: Settings,
    node_id: str,
    *,
    signer: ReceiptSigning | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Store:
    """A store for ``node_id`` as configured (call ``await store.open()`` before use)."""
    url = settings.store.url.strip()
    if not url or url.startswith("sqlite:"):
        from docexchange.exchange.sqlite_store import SqliteStore

        return SqliteStore(sqlite_path(settings, node_id), node_id, signer=signer, clock=clock,
                           busy_ms=settings.store.sqlite_busy_ms)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from docexchange.exchange.postgres_store import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                "Kho PostgreSQL chưa được cài đặt trong phiên bản này", "the PostgreSQL store is not available"
            ) from exc
        return PostgresStore(url, node_id, signer=signer, clock=clock, settings=settings)
    raise ConfigError(f"URL kho dữ liệu không hỗ trợ: {url!r}", f"unsupported store URL: {url!r}")
