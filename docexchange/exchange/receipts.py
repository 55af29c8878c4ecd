"""Signed receipts: a node's proof that it durably stored exactly these bytes for this delivery.

A node commits deliveries in groups; it signs each group once. The signed statement names the node, the
commit time and the root of a Merkle tree (RFC 6962 style hashing) whose leaves are ``(delivery id, SHA-256
of the packet as received, SHA-256 of the packet as stored)`` (a node appends its TraceHeader before storing).
Each delivery's receipt carries its leaf, the audit path to the root and the root signature, so it can be
checked on its own, offline, with the node's certificate from the PKI — and it reveals nothing about the other
deliveries of the group but hashes.

The key is the node's TLS key (certified by the PKI for that node id, the same certificate peers pin), used
with RSASSA-PSS/SHA-256 (or ECDSA/SHA-256 for EC keys). Receipt JSON::

    {"v": 1, "node": "vdxp", "stored_at": "2025-01-05T07:00:00+00:00", "delivery_id": "m….000.00.31.H57",
     "received_digest": "<hex sha256 of the bytes received>", "digest": "<hex sha256 of the bytes stored>",
     "index": 3, "count": 17, "path": ["R:<hex>", "L:<hex>", …],
     "root": "<hex>", "alg": "PS256", "sig": "<base64>"}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from docexchange.errors import DeliveryError, KeystoreError, WrongPassphrase

__all__ = [
    "InvalidReceipt",
    "ReceiptSigner",
    "leaf_hash",
    "load_tls_key",
    "merkle_path",
    "merkle_root",
    "verify_receipt",
]

VERSION = 1


class InvalidReceipt(DeliveryError):
    code = "invalid_receipt"
    http_status = 502


def leaf_hash(delivery_id: str, received_digest: str, digest: str) -> bytes:
    text = f"dx-receipt-leaf-v1\x1f{delivery_id}\x1f{received_digest}\x1f{digest}"
    return hashlib.sha256(b"\x00" + text.encode()).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [_node_hash(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        if len(cur) % 2:
            nxt.append(cur[-1])  # an odd node is carried up unchanged
        levels.append(nxt)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    return _levels(leaves)[-1][0]


def merkle_path(leaves: Sequence[bytes], index: int) -> list[str]:
    """Audit path of leaf ``index``: sibling hashes bottom-up, each prefixed with the side it sits on."""
    path = []
    for level in _levels(leaves)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(("L:" if sibling < index else "R:") + level[sibling].hex())
        index //= 2
    return path


def _fold(leaf: bytes, path: Sequence[str]) -> bytes:
    h = leaf
    for step in path:
        side, _, hexval = step.partition(":")
        sibling = bytes.fromhex(hexval)
        if side == "L":
            h = _node_hash(sibling, h)
        elif side == "R":
            h = _node_hash(h, sibling)
        else:
            raise ValueError(f"bad path step {step!r}")
    return h


def _statement(node: str, stored_at: str, root_hex: str, count: int) -> bytes:
    return f"docexchange-receipt-v{VERSION}\n{node}\n{stored_at}\n{root_hex}\n{count}\n".encode()


def load_tls_key(key_pem: Path, passphrase: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(key_pem.read_bytes(), passphrase.encode())
    except FileNotFoundError:
        raise KeystoreError(f"Không tìm thấy khóa {key_pem}", f"key file {key_pem} not found") from None
    except (ValueError, TypeError) as exc:
        raise WrongPassphrase(
            f"Không mở được khóa {key_pem} (sai mật khẩu?)", f"cannot open key {key_pem} (wrong passphrase?)"
        ) from exc


class ReceiptSigner:
    """Signs groups of stored deliveries for one node (the key is loaded once)."""

    def __init__(self, node: str, key: PrivateKeyTypes) -> None:
        self.node = node
        self.key = key
        if isinstance(key, rsa.RSAPrivateKey):
            self.alg = "PS256"
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            self.alg = "ES256"
        else:
            raise KeystoreError(
                "Khóa của trục phải là RSA hoặc ECDSA", f"node key must be RSA or ECDSA, not {type(key).__name__}"
            )

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(
                data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
            )
        assert isinstance(self.key, ec.EllipticCurvePrivateKey)
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def sign_group(self, items: Sequence[tuple[str, str, str]], stored_at: datetime) -> list[dict[str, Any]]:
        """Receipts for ``(delivery_id, received_digest, stored_digest)`` committed together at ``stored_at``
        (one signature for the group)."""
        if not items:
            return []
        when = stored_at.isoformat()
        leaves = [leaf_hash(d, r, g) for d, r, g in items]
        root = merkle_root(leaves).hex()
        sig = base64.b64encode(self._sign(_statement(self.node, when, root, len(items)))).decode()
        return [
            {
                "v": VERSION,
                "node": self.node,
                "stored_at": when,
                "delivery_id": d,
                "received_digest": r,
                "digest": g,
                "index": i,
                "count": len(items),
                "path": merkle_path(leaves, i),
                "root": root,
                "alg": self.alg,
                "sig": sig,
            }
            for i, (d, r, g) in enumerate(items)
        ]


def verify_receipt(
    receipt: Mapping[str, Any],
    cert: x509.Certificate,
    *,
    node: str | None = None,
    delivery_id: str | None = None,
    received_digest: str | None = None,
    digest: str | None = None,
    signature_checked: bool = False,
) -> None:
    """Check a receipt against the node's certificate (and, when given, the expected node, delivery, digests).

    ``signature_checked``: the root signature of this very receipt group was verified already (by the caller,
    for an earlier receipt of the same group): only the leaf and its audit path are checked.

    Raises :class:`InvalidReceipt` naming what is wrong.
    """

    def bad(vi: str, en: str) -> InvalidReceipt:
        return InvalidReceipt(f"Biên nhận không hợp lệ: {vi}", f"invalid receipt: {en}")

    try:
        if int(receipt["v"]) != VERSION:
            raise bad("phiên bản không hỗ trợ", f"unsupported version {receipt['v']}")
        r_node, r_did, r_digest = str(receipt["node"]), str(receipt["delivery_id"]), str(receipt["digest"])
        r_received = str(receipt["received_digest"])
        stored_at, root, count = str(receipt["stored_at"]), str(receipt["root"]), int(receipt["count"])
        path = [str(p) for p in receipt["path"]]
        sig = base64.b64decode(str(receipt["sig"]), validate=True)
        alg = str(receipt["alg"])
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise bad("thiếu hoặc sai trường", f"missing or malformed field ({exc})") from None
    if node is not None and r_node != node:
        raise bad(f"do trục {r_node} cấp, không phải {node}", f"issued by {r_node}, expected {node}")
    if delivery_id is not None and r_did != delivery_id:
        raise bad("không đúng lượt chuyển", f"names delivery {r_did}, expected {delivery_id}")
    if received_digest is not None and r_received != received_digest:
        raise bad("mã băm không khớp với dữ liệu đã gửi", "received digest does not match what was sent")
    if digest is not None and r_digest != digest:
        raise bad("mã băm không khớp với dữ liệu đã lưu", "digest does not match what was stored")
    try:
        computed = _fold(leaf_hash(r_did, r_received, r_digest), path).hex()
    except ValueError as exc:
        raise bad("đường kiểm chứng hỏng", f"broken audit path ({exc})") from None
    if computed != root:
        raise bad("đường kiểm chứng không dẫn tới gốc đã ký", "audit path does not lead to the signed root")
    if signature_checked:
        return
    statement = _statement(r_node, stored_at, root, count)
    public = cert.public_key()
    try:
        if alg == "PS256" and isinstance(public, rsa.RSAPublicKey):
            public.verify(sig, statement, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                          hashes.SHA256())
        elif alg == "ES256" and isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(sig, statement, ec.ECDSA(hashes.SHA256()))
        else:
            raise bad(f"thuật toán {alg} không khớp với khóa", f"algorithm {alg} does not match the key")
    except InvalidSignature:
        raise bad("chữ ký sai", "signature does not verify with the node's certificate") from None
