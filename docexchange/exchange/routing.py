"""Routing through the axis tree: pure functions of the directory.

A packet climbs from the sender's home node toward the lowest common ancestor of the two home nodes and then
descends to the recipient's home node (``Directory.node_path``). At every node the question is only "where does
this recipient go next from here?", answered by :func:`next_hop`; :func:`expected_from` lets a node refuse a
transfer that should not have come to it from that peer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from docexchange.directory import Directory
from docexchange.errors import UnknownAgency

__all__ = ["Hop", "Misrouted", "adjacent", "arrives_via", "neighbours", "next_hop", "plan"]


class Misrouted(UnknownAgency):
    """A peer handed this node a delivery whose route does not pass here from that peer."""

    code = "misrouted"
    http_status = 421


@dataclass(frozen=True)
class Hop:
    recipient: str
    """Canonical code of the recipient (aliases resolved)."""
    next_hop: str | None
    """The next node, or None when the recipient's mailbox is at this node."""


def next_hop(directory: Directory, at_node: str, recipient: str) -> Hop:
    """Where ``recipient`` goes from ``at_node``; raises :class:`UnknownAgency` for an unknown recipient."""
    code = directory.resolve(recipient)
    return Hop(code, directory.next_hop(at_node, code))


def plan(directory: Directory, at_node: str, recipients: Iterable[str]) -> list[Hop]:
    """Hops for every recipient, in the order given, duplicates (after alias resolution) removed."""
    seen: set[str] = set()
    hops = []
    for r in recipients:
        hop = next_hop(directory, at_node, r)
        if hop.recipient not in seen:
            seen.add(hop.recipient)
            hops.append(hop)
    return hops


def neighbours(directory: Directory, node_id: str) -> frozenset[str]:
    """The parent and children of ``node_id``: the only nodes it talks to."""
    node = directory.node(node_id)
    near = {c.id for c in directory.children(node_id)}
    if node.parent:
        near.add(node.parent)
    return frozenset(near)


def adjacent(directory: Directory, a: str, b: str) -> bool:
    return b in neighbours(directory, a)


def arrives_via(directory: Directory, at_node: str, from_node: str, recipient: str) -> Hop:
    """Check that ``recipient``'s route passes from ``from_node`` to ``at_node``; the hop onward from here.

    Raises :class:`Misrouted` when it does not (a confused or hostile peer), :class:`UnknownAgency` when the
    recipient is not in this node's directory.
    """
    hop = next_hop(directory, at_node, recipient)
    if directory.next_hop(from_node, hop.recipient) != at_node:
        raise Misrouted(
            f"Gói tin gửi {hop.recipient} không đi qua trục {at_node} khi đến từ {from_node}",
            f"a delivery to {hop.recipient} coming from {from_node} should not pass through {at_node}",
        )
    return hop
