"""Node-to-node transport: HTTPS with mutual TLS and pinned certificates, and the batch wire format.

**Pinning.** A node trusts, for each neighbour (parent and children in the axis tree), exactly one certificate:
the one the PKI issued for that node id (``keys/nodes/<id>/tls.crt``). As a client it verifies the server
against that single certificate (OpenSSL partial-chain mode: the pinned certificate itself is the anchor, so a
certificate from the same CA issued to someone else is refused) and checks the host name; as a server it asks
for a client certificate and accepts only the pinned certificates of its neighbours; the peer route then maps
the presented certificate to a node id and refuses a node that is not a neighbour. TLS 1.2 minimum.

**Wire format** of ``POST /peer/v1/transfer`` (``application/x-docexchange-batch``)::

    b"DXB1" | uint32 big-endian length of the header | header JSON (UTF-8) | payloads, concatenated

    header = {"node": "<sending node>", "items": [{"message_id", "kind", "sender", "document_id", "priority",
              "business_type", "status_code", "origin_node", "created_at", "digest", "size", "offset",
              "recipients": [...], "meta": {...}, "trail": {"<delivery id>": [trail entries]}}]}

The answer is JSON: ``{"node", "receipts": [receipt, …], "refused": [{"delivery_id", "code", "message_vi",
"message_en", "retry"}]}``: every delivery of the batch gets a receipt or a refusal.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from docexchange.directory import Directory
from docexchange.errors import KeystoreError, PermanentDeliveryError, RetryableDeliveryError
from docexchange.exchange.model import MessageKind, TrailEntry
from docexchange.exchange.routing import neighbours
from docexchange.pki.keystore import fingerprint, load_cert

__all__ = [
    "CONTENT_TYPE",
    "MAGIC",
    "NODE_HEADER",
    "PING_PATH",
    "TRANSFER_PATH",
    "BadBatch",
    "NodeTls",
    "PeerTransport",
    "Refusal",
    "TransferAnswer",
    "WireItem",
    "decode_batch",
    "encode_batch",
]

MAGIC = b"DXB1"
CONTENT_TYPE = "application/x-docexchange-batch"
TRANSFER_PATH = "/peer/v1/transfer"
PING_PATH = "/peer/v1/ping"
NODE_HEADER = "X-DX-Node"
MAX_HEADER = 16 * 1024 * 1024


class BadBatch(PermanentDeliveryError):
    code = "bad_batch"
    http_status = 400


@dataclass(frozen=True)
class WireItem:
    message_id: str
    kind: MessageKind
    sender: str
    document_id: str
    priority: int
    origin_node: str
    digest: str
    """SHA-256 of ``payload`` (what the sending node stored and sends)."""
    recipients: tuple[str, ...]
    payload: bytes = field(repr=False)
    business_type: int = 0
    status_code: str = ""
    created_at: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    trail: Mapping[str, Sequence[TrailEntry]] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    delivery_id: str
    code: str
    message_vi: str
    message_en: str
    retry: bool

    def to_json(self) -> dict[str, Any]:
        return {"delivery_id": self.delivery_id, "code": self.code, "message_vi": self.message_vi,
                "message_en": self.message_en, "retry": self.retry}


@dataclass(frozen=True)
class TransferAnswer:
    node: str
    receipts: tuple[Mapping[str, Any], ...]
    refused: tuple[Refusal, ...]

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "receipts": list(self.receipts), "refused": [r.to_json() for r in self.refused]}

    @classmethod
    def from_json(cls, data: Any) -> TransferAnswer:
        try:
            return cls(
                node=str(data["node"]),
                receipts=tuple(dict(r) for r in data["receipts"]),
                refused=tuple(
                    Refusal(str(r["delivery_id"]), str(r["code"]), str(r["message_vi"]), str(r["message_en"]),
                            bool(r["retry"]))
                    for r in data["refused"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RetryableDeliveryError(
                "Câu trả lời của trục kế tiếp không đọc được", f"unreadable answer from the next node ({exc})"
            ) from None


def encode_batch(node: str, items: Sequence[WireItem]) -> bytes:
    offset = 0
    heads = []
    for it in items:
        heads.append({
            "message_id": it.message_id,
            "kind": it.kind.value,
            "sender": it.sender,
            "document_id": it.document_id,
            "priority": it.priority,
            "business_type": it.business_type,
            "status_code": it.status_code,
            "origin_node": it.origin_node,
            "created_at": it.created_at,
            "digest": it.digest,
            "size": len(it.payload),
            "offset": offset,
            "recipients": list(it.recipients),
            "meta": dict(it.meta),
            "trail": {k: [t.to_json() for t in v] for k, v in it.trail.items()},
        })
        offset += len(it.payload)
    header = json.dumps({"node": node, "items": heads}, ensure_ascii=False, separators=(",", ":")).encode()
    return b"".join([MAGIC, struct.pack(">I", len(header)), header, *(it.payload for it in items)])


def decode_batch(body: bytes, *, max_items: int = 10_000) -> tuple[str, list[WireItem]]:
    """Parse a batch; :class:`BadBatch` for anything malformed (nothing is trusted before this passes)."""

    def bad(en: str) -> BadBatch:
        return BadBatch(f"Lô gói tin sai định dạng: {en}", f"malformed batch: {en}")

    if len(body) < 8 or body[:4] != MAGIC:
        raise bad("bad magic")
    (hlen,) = struct.unpack(">I", body[4:8])
    if hlen > MAX_HEADER or 8 + hlen > len(body):
        raise bad("header length")
    try:
        header = json.loads(body[8 : 8 + hlen].decode("utf-8"))
        node = str(header["node"])
        heads = header["items"]
        if not isinstance(heads, list) or len(heads) > max_items:
            raise bad("items")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise bad(f"header ({exc})") from None
    base = 8 + hlen
    data = memoryview(body)[base:]
    items = []
    for h in heads:
        try:
            off, size = int(h["offset"]), int(h["size"])
            if off < 0 or size < 0 or off + size > len(data):
                raise bad("payload bounds")
            payload = bytes(data[off : off + size])
            recipients = tuple(str(r) for r in h["recipients"])
            if not recipients:
                raise bad("no recipients")
            trail = {str(k): tuple(TrailEntry.from_json(t) for t in v) for k, v in dict(h.get("trail") or {}).items()}
            items.append(WireItem(
                message_id=str(h["message_id"]),
                kind=MessageKind(h["kind"]),
                sender=str(h["sender"]),
                document_id=str(h["document_id"]),
                priority=int(h["priority"]),
                origin_node=str(h["origin_node"]),
                digest=str(h["digest"]),
                recipients=recipients,
                payload=payload,
                business_type=int(h.get("business_type") or 0),
                status_code=str(h.get("status_code") or ""),
                created_at=str(h.get("created_at") or ""),
                meta=dict(h.get("meta") or {}),
                trail=trail,
            ))
        except BadBatch:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise bad(f"item ({exc})") from None
    return node, items


class NodeTls:
    """TLS material of one node: its certificate and key, and the pinned certificates of its neighbours."""

    def __init__(self, node_id: str, chain_pem: Path, key_pem: Path, passphrase: str,
                 pins: Mapping[str, x509.Certificate]) -> None:
        self.node_id = node_id
        self.chain_pem = chain_pem
        self.key_pem = key_pem
        self._passphrase = passphrase
        self.pins = dict(pins)
        """Neighbour node id → its pinned certificate."""
        self.by_fingerprint = {fingerprint(c): n for n, c in self.pins.items()}
        self._client: dict[str, ssl.SSLContext] = {}
        self._server: ssl.SSLContext | None = None

    @classmethod
    def from_pki(cls, pki: Any, directory: Directory, node_id: str) -> NodeTls:
        """Material from the dev PKI layout (``DevPki``): ``keys/nodes/<id>/``, pins for every neighbour."""
        chain, key = pki.node_tls(node_id)
        pins = {}
        for peer in sorted(neighbours(directory, node_id)):
            path = pki.keys_dir / "nodes" / peer / "tls.crt"
            pins[peer] = load_cert(path)
        return cls(node_id, chain, key, pki.passphrase, pins)

    def _load_own(self, ctx: ssl.SSLContext) -> None:
        try:
            ctx.load_cert_chain(str(self.chain_pem), str(self.key_pem), password=self._passphrase)
        except (ssl.SSLError, OSError) as exc:
            raise KeystoreError(
                f"Không nạp được chứng thư/khóa TLS của trục {self.node_id} (sai mật khẩu?)",
                f"cannot load the TLS certificate/key of node {self.node_id} ({exc})",
            ) from exc

    @staticmethod
    def _pem(certs: Sequence[x509.Certificate]) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)

    def server_context(self) -> ssl.SSLContext:
        if self._server is None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._load_own(ctx)
            if self.pins:
                ctx.load_verify_locations(cadata=self._pem(list(self.pins.values())))
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            ctx.verify_mode = ssl.CERT_OPTIONAL  # agencies' clients come without certificates (HMAC)
            self._server = ctx
        return self._server

    def client_context(self, peer: str) -> ssl.SSLContext:
        ctx = self._client.get(peer)
        if ctx is None:
            if peer not in self.pins:
                raise PermanentDeliveryError(
                    f"Trục {peer} không phải trục lân cận của {self.node_id}",
                    f"node {peer} is not a neighbour of {self.node_id}",
                )
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=self._pem([self.pins[peer]]))
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            ctx.check_hostname = True
            self._load_own(ctx)
            self._client[peer] = ctx
        return ctx

    def peer_of(self, der: bytes | None) -> str | None:
        """The neighbour whose pinned certificate is exactly ``der`` (None: not a pinned neighbour)."""
        if not der:
            return None
        return self.by_fingerprint.get(hashlib.sha256(der).hexdigest())


class PeerTransport:
    """Sends batches to neighbours over keep-alive HTTPS connections (the session is given, not owned)."""

    def __init__(self, node_id: str, directory: Directory, tls: NodeTls, session: aiohttp.ClientSession,
                 *, timeout: float = 60.0) -> None:
        self.node_id = node_id
        self.directory = directory
        self.tls = tls
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=min(10.0, timeout))

    def url(self, peer: str, path: str) -> str:
        return self.directory.node(peer).url + path

    async def transfer(self, peer: str, items: Sequence[WireItem]) -> TransferAnswer:
        body = encode_batch(self.node_id, items)
        data = await self._post(peer, TRANSFER_PATH, body)
        answer = TransferAnswer.from_json(data)
        if answer.node != peer:
            raise RetryableDeliveryError(
                f"Trục trả lời tự xưng là {answer.node}, không phải {peer}", f"answer claims to be from {answer.node}"
            )
        return answer

    async def ping(self, peer: str) -> None:
        await self._post(peer, PING_PATH, b"")

    async def _post(self, peer: str, path: str, body: bytes) -> Any:
        ctx = self.tls.client_context(peer)
        try:
            async with self.session.post(
                self.url(peer, path),
                data=body,
                ssl=ctx,
                timeout=self.timeout,
                headers={"Content-Type": CONTENT_TYPE, NODE_HEADER: self.node_id},
            ) as resp:
                raw = await resp.read()
                if resp.status >= 500 or resp.status in (408, 425, 429):
                    raise RetryableDeliveryError(
                        f"Trục {peer} tạm thời không nhận (HTTP {resp.status})",
                        f"node {peer} temporarily refused (HTTP {resp.status}): {raw[:300]!r}",
                    )
                if resp.status >= 400:
                    raise PermanentDeliveryError(
                        f"Trục {peer} từ chối (HTTP {resp.status})",
                        f"node {peer} refused (HTTP {resp.status}): {raw[:300]!r}",
                    )
                try:
                    return json.loads(raw) if raw else {}
                except ValueError:
                    raise RetryableDeliveryError(
                        f"Trục {peer} trả lời không đọc được", f"unreadable answer from node {peer}"
                    ) from None
        except (aiohttp.ClientConnectorCertificateError, ssl.SSLError) as exc:
            raise RetryableDeliveryError(
                f"Chứng thư TLS của trục {peer} không khớp chứng thư đã ghim",
                f"node {peer}'s TLS certificate does not match the pinned one ({exc})",
            ) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RetryableDeliveryError(
                f"Không kết nối được trục {peer}", f"cannot reach node {peer} ({type(exc).__name__}: {exc})"
            ) from exc
