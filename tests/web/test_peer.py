"""Node-to-node calls over mutual TLS with pinned certificates: only the neighbour whose certificate is pinned
gets in, under its own name; a certificate from the same CA issued to someone else is refused both ways."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from exchange_harness import Federation

from docexchange.errors import RetryableDeliveryError
from docexchange.exchange.model import MessageKind
from docexchange.exchange.transport import CONTENT_TYPE, NODE_HEADER, PING_PATH, TRANSFER_PATH, WireItem, encode_batch
from docexchange.pki.devpki import CertKind
from docexchange.web.keys import TRANSPORT


def client_ctx(fed: Federation, cert_pem: Path | None, key_pem: Path | None, server: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(fed.ca_file))
    if cert_pem is not None:
        ctx.load_cert_chain(str(cert_pem), str(key_pem), password=fed.pki.passphrase)
    return ctx


def rogue_material(fed: Federation, tmp: Path, name: str) -> tuple[Path, Path]:
    """A TLS certificate from the real issuing CA, for the node id ``name`` — but not the pinned one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    san = [x509.DNSName("localhost"), x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = fed.pki.build_cert(subject, key.public_key(), fed.pki.ca("org"), kind=CertKind.TLS, ca_id="org", san=san)
    pem = serialization.Encoding.PEM
    chain = tmp / f"{name}-rogue.pem"
    chain.write_bytes(cert.public_bytes(pem) + fed.pki.ca_cert("org").public_bytes(pem))
    keyfile = tmp / f"{name}-rogue.key"
    keyfile.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(fed.pki.passphrase.encode())))
    return chain, keyfile


async def post(fed: Federation, server: str, ctx: ssl.SSLContext, claimed: str, path: str = PING_PATH,
               body: bytes = b"") -> tuple[int, dict]:
    url = fed.directory.node(server).url + path
    async with aiohttp.ClientSession() as s, s.post(
        url, data=body, ssl=ctx, headers={NODE_HEADER: claimed, "Content-Type": CONTENT_TYPE}
    ) as resp:
        import json

        return resp.status, json.loads(await resp.read())


async def test_only_pinned_neighbours_get_in(fed3: Federation, tmp_path: Path) -> None:
    vdxp_chain, vdxp_key = fed3.pki.node_tls("vdxp")
    h57_chain, h57_key = fed3.pki.node_tls("lgsp-h57")
    # The pinned parent, under its own name: welcome.
    status, body = await post(fed3, "lgsp-h49", client_ctx(fed3, vdxp_chain, vdxp_key, "lgsp-h49"), "vdxp")
    assert status == 200 and body["node"] == "lgsp-h49"
    # No client certificate (an agency's HTTP client): refused on the peer API.
    status, body = await post(fed3, "lgsp-h49", client_ctx(fed3, None, None, "lgsp-h49"), "vdxp")
    assert status == 403 and body["code"] == "peer_refused"
    # The pinned parent claiming to be someone else.
    status, body = await post(fed3, "lgsp-h49", client_ctx(fed3, vdxp_chain, vdxp_key, "lgsp-h49"), "lgsp-h57")
    assert status == 403 and body["code"] == "peer_refused"
    # Another province's node (valid certificate from the same CA, but not a neighbour of lgsp-h49, so not
    # pinned there): the TLS handshake itself fails.
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await post(fed3, "lgsp-h49", client_ctx(fed3, h57_chain, h57_key, "lgsp-h49"), "lgsp-h57")
    # A certificate from the real CA, issued for "vdxp" but not the pinned one.
    rogue_chain, rogue_key = rogue_material(fed3, tmp_path, "vdxp")
    with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
        await post(fed3, "lgsp-h49", client_ctx(fed3, rogue_chain, rogue_key, "lgsp-h49"), "vdxp")
    # Nothing reached the store.
    assert await fed3.store("lgsp-h49").counts() == {}


async def test_a_batch_from_a_confused_peer_is_refused_per_delivery(fed3: Federation) -> None:
    """vdxp (a pinned neighbour) hands lgsp-h49 a delivery for an agency of Huế: misrouted, refused for good."""
    vdxp_chain, vdxp_key = fed3.pki.node_tls("vdxp")
    import hashlib

    payload = b"<edXML/>"
    item = WireItem(message_id="m" + "1" * 31, kind=MessageKind.STATUS, sender="000.00.00.G22",
                    document_id="x", priority=0, origin_node="vdxp", digest=hashlib.sha256(payload).hexdigest(),
                    recipients=("000.00.31.H57", "000.99.99.H49"), payload=payload)
    status, body = await post(fed3, "lgsp-h49", client_ctx(fed3, vdxp_chain, vdxp_key, "lgsp-h49"), "vdxp",
                              TRANSFER_PATH, encode_batch("vdxp", [item]))
    assert status == 200 and body["receipts"] == []
    codes = sorted(r["code"] for r in body["refused"])
    assert codes == ["misrouted", "unknown_agency"] and not any(r["retry"] for r in body["refused"])
    status, body = await post(fed3, "lgsp-h49", client_ctx(fed3, vdxp_chain, vdxp_key, "lgsp-h49"), "vdxp",
                              TRANSFER_PATH, b"garbage")
    assert status == 400 and body["code"] == "bad_batch"


async def test_a_server_that_is_not_the_pinned_peer_is_refused(fed3: Federation, tmp_path: Path) -> None:
    """lgsp-h49 calling its parent's address, answered by an impostor holding a CA-issued certificate named
    "vdxp": the pinned-certificate check fails and nothing is sent."""
    await fed3.stop("vdxp")
    rogue_chain, rogue_key = rogue_material(fed3, tmp_path, "vdxp")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(rogue_chain), str(rogue_key), password=fed3.pki.passphrase)
    received = []

    async def anything(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"node": "vdxp", "ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    node = fed3.directory.node("vdxp")
    await web.TCPSite(runner, node.host, node.port, ssl_context=ctx).start()
    try:
        transport = fed3.app("lgsp-h49")[TRANSPORT]
        with pytest.raises(RetryableDeliveryError) as exc:
            await transport.ping("vdxp")
        assert "pinned" in exc.value.message_en
        assert received == []
    finally:
        await runner.cleanup()
    await asyncio.sleep(0)
