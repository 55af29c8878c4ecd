"""A client for a node's agency JSON API (signed requests, TLS verified against the PKI root).

Used by ``docexchange send`` / ``inbox`` / ``demo``, the tests and the benchmark::

    async with AgencyClient(node.url, "hg-qlvb", secret, ca_file=keys / "ca/root.crt") as c:
        result = await c.submit_document("000.01.11.H49", metadata, pdf)
        page = await c.inbox("000.00.31.H57", wait=10)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from docexchange.client.session import SignedHttpClient
from docexchange.errors import (
    AuthError,
    Conflict,
    DocExchangeError,
    Forbidden,
    InvalidPacket,
    NotFound,
    PacketTooLarge,
    RetryableDeliveryError,
    StoreError,
    UnknownAgency,
)
from docexchange.web.auth import DEFAULT_SCHEME, HmacScheme, sign_request

__all__ = ["AgencyClient", "ApiError"]


class ApiError(DocExchangeError):
    """An error answer from a node, carrying its stable code and HTTP status."""

    def __init__(self, status: int, code: str, message_vi: str, message_en: str) -> None:
        super().__init__(message_vi, message_en)
        self.status = status
        self.code = code
        self.http_status = status


_BY_STATUS: dict[int, type[DocExchangeError]] = {
    400: InvalidPacket, 401: AuthError, 403: Forbidden, 404: NotFound, 409: Conflict, 413: PacketTooLarge,
    503: StoreError,
}


class AgencyClient(SignedHttpClient):
    connection_limit = 64

    def __init__(
        self,
        base_url: str,
        system_id: str,
        secret: str,
        *,
        ca_file: Path | None = None,
        session: aiohttp.ClientSession | None = None,
        scheme: HmacScheme = DEFAULT_SCHEME,
        timeout: float = 120.0,
    ) -> None:
        super().__init__(base_url, system_id, secret, ca_file=ca_file, session=session, timeout=timeout)
        self.scheme = scheme

    # -- plumbing ------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        raw: bool = False,
    ) -> Any:
        http = await self._http()
        headers = {"Content-Type": content_type} if content_type else {}
        signed = sign_request(self._secret, self.system_id, method=method, path=path, query=params, body=body,
                              headers=headers, scheme=self.scheme)
        try:
            async with http.request(
                method, self.base_url + path, params=list(params), data=body or None, headers=signed,
                ssl=self._ssl, timeout=self.timeout,
            ) as resp:
                data = await resp.read()
                status, headers_in = resp.status, dict(resp.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise RetryableDeliveryError(
                f"Không kết nối được trục {self.base_url}", f"cannot reach {self.base_url} ({exc})"
            ) from exc
        if status >= 400:
            raise self._error(status, data)
        if raw:
            return data, headers_in
        if status == 204 or not data:
            return None
        return json.loads(data)

    @staticmethod
    def _error(status: int, data: bytes) -> DocExchangeError:
        try:
            body = json.loads(data)
            code, vi, en = body["code"], body["message_vi"], body["message_en"]
        except (ValueError, KeyError, TypeError):
            code, vi, en = "http_error", f"Lỗi HTTP {status}", f"HTTP {status}: {data[:200]!r}"
        err = ApiError(status, code, vi, en)
        base = _BY_STATUS.get(status)
        if code == "unknown_agency":
            base = UnknownAgency
        if base is not None:
            typed = base(vi, en)
            typed.code = code
            typed.http_status = status
            return typed
        return err

    # -- sending -------------------------------------------------------------------------------
    async def submit_packet(self, agency: str, packet: bytes, *, to: Sequence[str] = ()) -> dict[str, Any]:
        """Hand the node an edXML packet (document or status)."""
        params = [("to", t) for t in to]
        return await self.request("POST", f"/api/v1/agencies/{agency}/documents", params=params, body=packet,
                                  content_type="application/xml")

    @staticmethod
    def _multipart(metadata: Mapping[str, Any], pdf: bytes, name: str,
                   attachments: Sequence[tuple[str, str, bytes]]) -> tuple[bytes, str]:
        boundary = "dx" + uuid.uuid4().hex
        parts = [
            (b'Content-Disposition: form-data; name="metadata"\r\nContent-Type: application/json; charset=utf-8\r\n\r\n'
             + json.dumps(dict(metadata), ensure_ascii=False).encode()),
        ]

        def file_part(field: str, fname: str, ctype: str, data: bytes) -> bytes:
            from urllib.parse import quote

            ascii_name = "".join(c if c.isascii() and c not in '"\\\r\n' else "_" for c in fname)
            return (f'Content-Disposition: form-data; name="{field}"; filename="{ascii_name}"; '
                    f"filename*=UTF-8''{quote(fname)}\r\nContent-Type: {ctype}\r\n\r\n").encode() + data

        parts.append(file_part("document", name, "application/pdf", pdf))
        for fname, ctype, data in attachments:
            parts.append(file_part("attachment", fname, ctype, data))
        sep = f"--{boundary}\r\n".encode()
        body = b"".join(sep + p + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()
        return body, f"multipart/form-data; boundary={boundary}"

    async def submit_document(self, agency: str, metadata: Mapping[str, Any], pdf: bytes, *,
                              name: str = "van-ban.pdf",
                              attachments: Sequence[tuple[str, str, bytes]] = ()) -> dict[str, Any]:
        """Hand the node a signed PDF and the letter's metadata; the node writes the edXML packet."""
        body, ctype = self._multipart(metadata, pdf, name, attachments)
        return await self.request("POST", f"/api/v1/agencies/{agency}/documents", body=body,
                                  content_type=ctype)

    # -- receiving -----------------------------------------------------------------------------
    async def inbox(self, agency: str, **filters: Any) -> dict[str, Any]:
        params: list[tuple[str, str]] = []
        for k, v in filters.items():
            if v is None:
                continue
            for item in v if isinstance(v, (list, tuple)) else [v]:
                params.append((k, str(item).lower() if isinstance(item, bool) else str(item)))
        return await self.request("GET", f"/api/v1/agencies/{agency}/inbox", params=params)

    async def item(self, agency: str, delivery_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/agencies/{agency}/inbox/{delivery_id}")

    async def packet(self, agency: str, delivery_id: str) -> bytes:
        data, _ = await self.request("GET", f"/api/v1/agencies/{agency}/inbox/{delivery_id}/packet", raw=True)
        return data

    async def attachments(self, agency: str, delivery_id: str) -> list[dict[str, Any]]:
        data = await self.request("GET", f"/api/v1/agencies/{agency}/inbox/{delivery_id}/attachments")
        return list(data["attachments"])

    async def attachment(self, agency: str, delivery_id: str, index: int) -> bytes:
        data, _ = await self.request("GET", f"/api/v1/agencies/{agency}/inbox/{delivery_id}/attachments/{index}",
                                     raw=True)
        return data

    async def ack(self, agency: str, delivery_id: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/agencies/{agency}/inbox/{delivery_id}/ack")

    async def status(self, agency: str, delivery_id: str, code: str, description: str | None = None,
                     staff: Mapping[str, str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"code": code}
        if description is not None:
            body["description"] = description
        if staff is not None:
            body["staff"] = dict(staff)
        return await self.request("POST", f"/api/v1/agencies/{agency}/inbox/{delivery_id}/status",
                                  body=json.dumps(body, ensure_ascii=False).encode(), content_type="application/json")

    async def recall_response(self, agency: str, delivery_id: str, agree: bool,
                              reason: str | None = None) -> dict[str, Any]:
        body = {"agree": agree, **({"reason": reason} if reason else {})}
        return await self.request("POST", f"/api/v1/agencies/{agency}/inbox/{delivery_id}/recall-response",
                                  body=json.dumps(body, ensure_ascii=False).encode(), content_type="application/json")

    # -- sent ----------------------------------------------------------------------------------
    async def sent(self, agency: str, **filters: Any) -> dict[str, Any]:
        params = [(k, str(v)) for k, v in filters.items() if v is not None]
        return await self.request("GET", f"/api/v1/agencies/{agency}/sent", params=params)

    async def sent_item(self, agency: str, message_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/agencies/{agency}/sent/{message_id}")

    async def recall(self, agency: str, message_id: str, *, recipients: Sequence[str] = (),
                     reason: str | None = None) -> dict[str, Any]:
        body = {"recipients": list(recipients), **({"reason": reason} if reason else {})}
        return await self.request("POST", f"/api/v1/agencies/{agency}/sent/{message_id}/recall",
                                  body=json.dumps(body, ensure_ascii=False).encode(), content_type="application/json")

    async def update(self, agency: str, message_id: str, metadata: Mapping[str, Any], pdf: bytes,
                     *, replace: bool = False, name: str = "van-ban.pdf") -> dict[str, Any]:
        body, ctype = self._multipart(metadata, pdf, name, ())
        op = "replace" if replace else "update"
        return await self.request("POST", f"/api/v1/agencies/{agency}/sent/{message_id}/{op}", body=body,
                                  content_type=ctype)

    # -- trails and operations -----------------------------------------------------------------
    async def trail(self, delivery_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/api/v1/deliveries/{delivery_id}/trail")

    async def queue(self, state: str = "dead", destination: str | None = None) -> dict[str, Any]:
        params = [("state", state)] + ([("destination", destination)] if destination else [])
        return await self.request("GET", "/api/v1/admin/queue", params=params)

    async def resend(self, delivery_id: str) -> dict[str, Any]:
        return await self.request("POST", f"/api/v1/admin/queue/{delivery_id}/resend")

    async def purge(self, delivery_id: str) -> None:
        await self.request("DELETE", f"/api/v1/admin/queue/{delivery_id}")

    async def node_status(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/admin/status")

    async def directory(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v1/directory")
