"""The entry node's check of a submitted packet, in long-lived worker processes.

A node fully parses every packet an agency submits (the safe edXML reader: streaming XML, base64, unzipping of
the attachments), checks the envelope against the directory, extracts the routing facts and finds where its
TraceHeader goes. For a 100 KB packet that is ~2.5 ms of CPU, for a 50 MB one about a second: enough to stall
the event loop, and the largest single cost of the entry node. So it runs in ``[exchange] parse_workers``
worker processes (spawned, the directory loaded once), or inline with ``parse_workers = 0``.

Errors cross the process boundary as ``(class name, code, message_vi, message_en)`` and are raised again as
the same :mod:`docexchange.errors` class.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docexchange import errors as _errors
from docexchange.directory import Directory, load_directory
from docexchange.edxml._xml import ReadLimits
from docexchange.edxml.reader import read_packet
from docexchange.errors import DocExchangeError, InvalidPacket
from docexchange.exchange.packets import PacketInfo, describe
from docexchange.exchange.trace import TraceSplice, splice_in_checked
from docexchange.verify.packet import check_envelope, raise_for

__all__ = ["Inspection", "inspect_packet", "make_parse_pool", "run_inspection"]

_STATE: dict[str, Any] = {}


@dataclass(frozen=True)
class Inspection:
    info: PacketInfo
    recipients: tuple[str, ...]
    """Canonical recipients: the packet's and the ones given outside it."""
    splice: TraceSplice | None
    """Where the node's TraceHeader goes (None: use the parser-guided splice)."""


def inspect_packet(data: bytes, acting_agency: str, extra_recipients: Sequence[str], max_bytes: int,
                   directory: Directory | None = None) -> Inspection:
    """Parse and check a submitted packet; raises what the reader or the envelope check finds."""
    d = directory if directory is not None else _STATE["directory"]
    packet = read_packet(data, limits=ReadLimits.for_packet_size(max(1, max_bytes // (1024 * 1024))))
    extra = tuple(d.resolve(c) if c in d else c for c in extra_recipients)
    raise_for(check_envelope(packet, d, acting_agency=acting_agency, extra_recipients=extra))
    info = describe(packet)
    recipients = tuple(dict.fromkeys((*info.recipients, *extra)))
    if not recipients:
        raise InvalidPacket("Không có nơi nhận", "no recipient")
    return Inspection(info, recipients, splice_in_checked(data))


def _init(directory_file: str) -> None:
    _STATE["directory"] = load_directory(Path(directory_file))


def _work(data: bytes, acting_agency: str, extra: tuple[str, ...], max_bytes: int) -> tuple[str, Any]:
    try:
        return "ok", inspect_packet(data, acting_agency, extra, max_bytes)
    except DocExchangeError as exc:
        return "error", (type(exc).__name__, exc.code, exc.message_vi, exc.message_en)


def make_parse_pool(directory_file: Path, workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=max(1, workers),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init,
        initargs=(str(directory_file),),
    )


async def run_inspection(pool: ProcessPoolExecutor, data: bytes, acting_agency: str,
                         extra_recipients: Sequence[str], max_bytes: int) -> Inspection:
    import asyncio

    status, value = await asyncio.get_running_loop().run_in_executor(
        pool, _work, data, acting_agency, tuple(extra_recipients), max_bytes
    )
    if status == "ok":
        assert isinstance(value, Inspection)
        return value
    name, code, vi, en = value
    cls = getattr(_errors, name, None)
    err: DocExchangeError
    if isinstance(cls, type) and issubclass(cls, DocExchangeError):
        err = cls(vi, en)
    else:  # a subclass defined elsewhere (e.g. a reader-specific one): keep its code
        err = InvalidPacket(vi, en)
        err.code = code
    raise err
