"""Signed receipts: one signature per committed group, each receipt checkable on its own with the node's
certificate from the PKI; any change to a leaf, the path, the root or the signer is caught."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from docexchange.exchange.receipts import (
    InvalidReceipt,
    ReceiptSigner,
    load_tls_key,
    merkle_path,
    merkle_root,
    verify_receipt,
)
from docexchange.pki.devpki import DevPki

AT = datetime(2025, 1, 5, 1, 2, 3, tzinfo=UTC)


def _items(n: int) -> list[tuple[str, str, str]]:
    return [(f"m{i:031x}.000.00.31.H57", f"{i:064x}", f"{i + 1000:064x}") for i in range(n)]


@pytest.fixture(scope="module")
def signer(dev_pki: DevPki) -> ReceiptSigner:
    _, key = dev_pki.node_tls("vdxp")
    return ReceiptSigner("vdxp", load_tls_key(key, dev_pki.passphrase))


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 33])
def test_every_receipt_of_a_group_verifies(signer: ReceiptSigner, dev_pki: DevPki, n: int) -> None:
    items = _items(n)
    receipts = signer.sign_group(items, AT)
    assert len(receipts) == n
    assert len({r["sig"] for r in receipts}) == 1  # one signature for the group
    cert = dev_pki.node_cert("vdxp")
    for (did, received, stored), r in zip(items, receipts, strict=True):
        verify_receipt(r, cert, node="vdxp", delivery_id=did, received_digest=received, digest=stored)


def test_tampering_is_detected(signer: ReceiptSigner, dev_pki: DevPki) -> None:
    items = _items(5)
    r = signer.sign_group(items, AT)[2]
    cert = dev_pki.node_cert("vdxp")
    cases = {
        "digest": ("digest", "f" * 64),
        "received": ("received_digest", "e" * 64),
        "delivery": ("delivery_id", "m" + "0" * 31 + ".000.00.32.H57"),
        "root": ("root", "0" * 64),
        "time": ("stored_at", "2030-01-01T00:00:00+00:00"),
        "node": ("node", "lgsp-h57"),
    }
    for name, (key, value) in cases.items():
        bad = copy.deepcopy(r)
        bad[key] = value
        with pytest.raises(InvalidReceipt):
            verify_receipt(bad, cert)
        del name
    bad = copy.deepcopy(r)
    bad["path"] = list(reversed(bad["path"]))
    with pytest.raises(InvalidReceipt):
        verify_receipt(bad, cert)
    # Another node's certificate does not verify vdxp's receipt.
    with pytest.raises(InvalidReceipt):
        verify_receipt(r, dev_pki.node_cert("lgsp-h57"))
    # Expectations the receipt does not meet.
    with pytest.raises(InvalidReceipt):
        verify_receipt(r, cert, node="lgsp-h49")
    with pytest.raises(InvalidReceipt):
        verify_receipt(r, cert, received_digest="1" * 64)
    with pytest.raises(InvalidReceipt):
        verify_receipt({"v": 1}, cert)


def test_ecdsa_node_keys_sign_too(dev_pki: DevPki) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    s = ReceiptSigner("x", key)
    assert s.alg == "ES256"
    r = s.sign_group(_items(3), AT)[1]
    # Verifying with an RSA certificate fails cleanly (wrong key type), not with a crash.
    with pytest.raises(InvalidReceipt):
        verify_receipt(r, dev_pki.node_cert("vdxp"))


def test_merkle_paths_are_consistent() -> None:
    import hashlib

    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(11)]
    root = merkle_root(leaves)
    for i in range(len(leaves)):
        h = leaves[i]
        for step in merkle_path(leaves, i):
            side, _, sib = step.partition(":")
            pair = bytes.fromhex(sib) + h if side == "L" else h + bytes.fromhex(sib)
            h = hashlib.sha256(b"\x01" + pair).digest()
        assert h == root
