"""Node-to-node routes (mutual TLS, pinned certificates): receive a batch, answer a probe.

The caller is identified by the certificate it presented during the TLS handshake — never by what it says:
the certificate must be exactly the one pinned for a neighbour of this node, and the ``X-DX-Node`` header must
name that same neighbour. Anything else is refused with 403 (``peer_refused``) before the body is read.
"""

from __future__ import annotations

import ssl

from aiohttp import web

from docexchange.errors import PeerRefused
from docexchange.exchange.transport import NODE_HEADER, PING_PATH, TRANSFER_PATH, decode_batch
from docexchange.web.keys import NODE_ID, SERVICE, TLS

__all__ = ["peer_of", "setup_peer_routes"]


def peer_of(request: web.Request) -> str:
    """The neighbour node calling, from its pinned client certificate; :class:`PeerRefused` otherwise."""
    tls = request.app[TLS]
    ssl_obj = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_obj.getpeercert(binary_form=True) if isinstance(ssl_obj, ssl.SSLObject) else None
    claimed = request.headers.get(NODE_HEADER, "")
    if not der:
        raise PeerRefused(
            "Lời gọi giữa các trục phải dùng chứng thư TLS của trục (mTLS)",
            "node-to-node calls need the calling node's TLS client certificate",
        )
    peer = tls.peer_of(der)
    if peer is None:
        raise PeerRefused(
            "Chứng thư của bên gọi không phải chứng thư đã ghim cho trục lân cận nào",
            "the caller's certificate is not the one pinned for any neighbouring node",
        )
    if claimed != peer:
        raise PeerRefused(
            f"Bên gọi tự xưng là {claimed!r} nhưng chứng thư là của trục {peer}",
            f"the caller claims to be {claimed!r} but its certificate is pinned for {peer}",
        )
    return peer


async def transfer(request: web.Request) -> web.Response:
    peer = peer_of(request)
    body = await request.read()
    node, items = decode_batch(body)
    if node != peer:
        raise PeerRefused(f"Lô gói tin ghi nơi gửi {node}, không phải {peer}", f"batch says it is from {node}")
    answer = await request.app[SERVICE].receive(peer, items)
    return web.json_response(answer.to_json())


async def ping(request: web.Request) -> web.Response:
    peer_of(request)
    return web.json_response({"node": request.app[NODE_ID], "ok": True})


def setup_peer_routes(app: web.Application) -> None:
    app.router.add_post(TRANSFER_PATH, transfer)
    app.router.add_post(PING_PATH, ping)
