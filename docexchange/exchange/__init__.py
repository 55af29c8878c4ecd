"""The exchange: axis nodes that route signed packets across the levels, exactly once, with statuses back.

Entry points: :class:`~docexchange.exchange.service.NodeService` (the business operations every front calls),
:class:`~docexchange.exchange.store.Store` (the storage protocol; SQLite and PostgreSQL behind it), the pure
:mod:`~docexchange.exchange.routing` and :mod:`~docexchange.exchange.retry`, and the delivery model
(:mod:`~docexchange.exchange.model`). See ``docs/exchange.md``. Submodules are imported on demand.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Delivery", "DeliveryState", "MessageKind", "NodeService", "Store"]

_WHERE = {
    "Delivery": "docexchange.exchange.model",
    "DeliveryState": "docexchange.exchange.model",
    "MessageKind": "docexchange.exchange.model",
    "NodeService": "docexchange.exchange.service",
    "Store": "docexchange.exchange.store",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'docexchange.exchange' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
