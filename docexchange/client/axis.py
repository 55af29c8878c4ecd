"""A client of the national-axis-style API (``docs/national-axis-api.md``), for agencies without software of
their own and for scripts; used by ``docexchange axis``::

    async with AxisClient(node.url, "qlvb-honggai", secret, ca_file=keys / "ca/root.crt") as axis:
        sent = await axis.send_edoc("000.01.11.H49", packet, to=["000.00.01.H57"])
        waiting = await axis.received("000.00.01.H57")
        data = await axis.get_edoc("000.00.01.H57", waiting.items[0]["docId"])
        await axis.update_status("000.00.01.H57", waiting.items[0]["docId"], "done")

Every call is signed (:func:`~docexchange.client.wire.sign_call`) with a fresh nonce, so retrying a call is
safe: ``sendEdoc`` is idempotent on the node (a repeat answers ``duplicate: true`` with the original docIds).
A FAIL answer raises :class:`AxisError` carrying its ``ErrorCode`` and HTTP status; a node that cannot be
reached raises :class:`~docexchange.errors.RetryableDeliveryError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from docexchange.client.session import SignedHttpClient
from docexchange.client.wire import (
    SERVICE_TYPE,
    ErrorCode,
    Header,
    MessageType,
    Operation,
    TransportStatus,
    operation_path,
    sign_call,
)
from docexchange.errors import DocExchangeError, RetryableDeliveryError

__all__ = ["AxisClient", "AxisError", "Page"]

_MAX_ANSWER = 128 * 1024 * 1024
"""Largest answer read (a 50 MB packet is ~67 MB of base64)."""


class AxisError(DocExchangeError):
    """A FAIL answer of the axis: ``error_code`` is its stable ``ErrorCode``, ``http_status`` the HTTP status."""

    code = "axis"

    def __init__(self, error_code: str, message_vi: str, message_en: str, http_status: int,
                 answer: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"[{error_code}] {message_vi}", f"[{error_code}] {message_en}")
        self.error_code = error_code
        self.http_status = http_status
        self.answer = dict(answer or {})
        self.exit_code = 75 if http_status >= 500 else 1

    @property
    def known(self) -> ErrorCode | None:
        try:
            return ErrorCode(self.error_code)
        except ValueError:
            return None


@dataclass(frozen=True)
class Page:
    items: tuple[dict[str, Any], ...]
    next_cursor: str | None


class AxisClient(SignedHttpClient):
    def __init__(
        self,
        base_url: str,
        system_id: str,
        secret: str,
        *,
        ca_file: Path | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 120.0,
        prefix: str = "/vxp",
    ) -> None:
        super().__init__(base_url, system_id, secret, ca_file=ca_file, session=session, timeout=timeout)
        self.prefix = prefix

    # -- plumbing ------------------------------------------------------------------------------
    async def call(self, operation: Operation | str, params: Mapping[str, str | None],
                   body: bytes = b"") -> dict[str, Any]:
        """One signed call; the OK answer as a dict, or :class:`AxisError`."""
        http = await self._http()
        clean = {k: v for k, v in params.items() if v is not None}
        headers = sign_call(self._secret, self.system_id, operation, clean, body, prefix=self.prefix)
        if body:
            headers["Content-Type"] = "application/xml"
        url = self.base_url + operation_path(operation, self.prefix)
        try:
            async with http.post(url, data=body, headers=headers, ssl=self._ssl,
                                          timeout=self.timeout) as resp:
                status = resp.status
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    if size > _MAX_ANSWER:
                        raise AxisError("ANSWER_TOO_LARGE", "Câu trả lời của trục quá lớn",
                                        "the axis answer is too large", status)
                    chunks.append(chunk)
                raw = b"".join(chunks)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryableDeliveryError(
                f"Không kết nối được trục {self.base_url}", f"cannot reach {self.base_url} ({exc})"
            ) from exc
        try:
            answer = json.loads(raw)
            if not isinstance(answer, dict):
                raise ValueError("not an object")
        except ValueError:
            raise AxisError(
                "BAD_ANSWER", f"Câu trả lời của trục không phải JSON (HTTP {status})",
                f"the axis answered something that is not JSON (HTTP {status})", status,
            ) from None
        if answer.get("status") != "OK":
            code = str(answer.get("ErrorCode") or f"HTTP_{status}")
            vi = str(answer.get("ErrorDesc") or f"Lỗi HTTP {status}")
            en = str(answer.get("ErrorDescEn") or vi)
            if status >= 500 or code == ErrorCode.SERVICE_UNAVAILABLE.value:
                raise RetryableDeliveryError(f"[{code}] {vi}", f"[{code}] {en}")
            raise AxisError(code, vi, en, status, answer)
        return answer

    @staticmethod
    def _mtype(status: bool) -> str:
        return (MessageType.STATUS if status else MessageType.EDOC).value

    # -- operations ----------------------------------------------------------------------------
    async def send_edoc(self, agency: str, packet: bytes, *, to: Sequence[str] = (),
                        status: bool = False) -> dict[str, Any]:
        """sendEdoc: a document packet (or with ``status=True`` a status packet) from ``agency``."""
        return await self.call(Operation.SEND_EDOC, {
            Header.FROM: agency,
            Header.TO: json.dumps(list(to)),
            Header.SERVICETYPE: SERVICE_TYPE,
            Header.MESSAGETYPE: self._mtype(status),
        }, packet)

    async def received(self, agency: str, *, status: bool = False, limit: int | None = None,
                       cursor: str | None = None) -> Page:
        """getReceivedEdocList: packets waiting for ``agency`` (documents, or statuses)."""
        answer = await self.call(Operation.GET_RECEIVED_EDOC_LIST, {
            Header.FROM: agency, Header.SERVICETYPE: SERVICE_TYPE, Header.MESSAGETYPE: self._mtype(status),
            Header.LIMIT: str(limit) if limit else None, Header.CURSOR: cursor,
        })
        return Page(tuple(answer.get("data") or ()), answer.get("nextCursor"))

    async def get_edoc(self, agency: str, doc_id: str) -> bytes:
        """getEdoc: the packet's edXML, checked against the SHA-256 the node announces."""
        answer = await self.call(Operation.GET_EDOC, {
            Header.FROM: agency, Header.SERVICETYPE: SERVICE_TYPE, Header.DOCID: doc_id,
        })
        try:
            data = base64.b64decode(str(answer.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            raise AxisError("BAD_ANSWER", "Dữ liệu base64 của gói tin bị hỏng", "the packet's base64 is damaged",
                            200) from None
        if hashlib.sha256(data).hexdigest() != answer.get("sha256"):
            raise AxisError("BAD_ANSWER", "Gói tin nhận về không khớp mã băm SHA-256 trục công bố",
                            "the packet does not match the SHA-256 the axis announced", 200)
        return data

    async def update_status(self, agency: str, doc_id: str, status: TransportStatus | str) -> dict[str, Any]:
        """updateStatus: done | processing | fail for a received packet."""
        return await self.call(Operation.UPDATE_STATUS, {
            Header.FROM: agency, Header.SERVICETYPE: SERVICE_TYPE, Header.DOCID: doc_id,
            Header.STATUS: TransportStatus(status).value,
        })

    async def sent(self, agency: str, *, status: bool = False, doc_id: str | None = None,
                   limit: int | None = None, cursor: str | None = None) -> Page:
        """getSentEdocList: what ``agency`` sent from this node, with each recipient's state and status."""
        answer = await self.call(Operation.GET_SENT_EDOC_LIST, {
            Header.FROM: agency, Header.SERVICETYPE: SERVICE_TYPE, Header.MESSAGETYPE: self._mtype(status),
            Header.DOCID: doc_id, Header.LIMIT: str(limit) if limit else None, Header.CURSOR: cursor,
        })
        return Page(tuple(answer.get("data") or ()), answer.get("nextCursor"))

    async def count(self, agency: str, *, status: bool = False) -> int:
        """countReceiveEdoc / countReceiveStatus."""
        op = Operation.COUNT_RECEIVE_STATUS if status else Operation.COUNT_RECEIVE_EDOC
        answer = await self.call(op, {Header.FROM: agency, Header.SERVICETYPE: SERVICE_TYPE})
        return int(answer.get("total", 0))

    async def agencies(self) -> list[dict[str, Any]]:
        """getAgencyList: the agencies reachable through the axis."""
        answer = await self.call(Operation.GET_AGENCY_LIST, {})
        return list(answer.get("data") or ())
