"""Verification of signed PDFs: PAdES validation, the NĐ 30 profile, and reports people can trust.

The high-level entry point is :class:`Verifier` (``docexchange.verify.pdf``); reports are
:class:`VerificationReport` values (``docexchange.verify.report``). Names are imported lazily so that light
users of this package (e.g. ``docexchange.verify.packet``) do not pay for loading pyHanko.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "POLICIES",
    "Indication",
    "Outcome",
    "SealPins",
    "SignatureReport",
    "SubIndication",
    "VerificationReport",
    "Verifier",
    "pinned_seal_fingerprints",
]

_WHERE = {
    "Verifier": "docexchange.verify.pdf",
    "POLICIES": "docexchange.verify.nd30",
    "SealPins": "docexchange.verify.nd30",
    "pinned_seal_fingerprints": "docexchange.verify.nd30",
    "Indication": "docexchange.verify.report",
    "Outcome": "docexchange.verify.report",
    "SignatureReport": "docexchange.verify.report",
    "SubIndication": "docexchange.verify.report",
    "VerificationReport": "docexchange.verify.report",
}

if TYPE_CHECKING:
    from docexchange.verify.nd30 import POLICIES, SealPins, pinned_seal_fingerprints
    from docexchange.verify.pdf import Verifier
    from docexchange.verify.report import Indication, Outcome, SignatureReport, SubIndication, VerificationReport


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'docexchange.verify' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
