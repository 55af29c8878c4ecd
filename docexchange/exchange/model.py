"""The exchange's vocabulary: messages, deliveries, their states and the trail.

A *message* is one packet as a node stores it (an edXML document or status packet, or an internal delivery
report). A *delivery* is one message on its way to one recipient: a packet to N recipients is N deliveries, each
with its own state and trail. The states form an explicit machine (:data:`TRANSITIONS`); final states stay
final. Everything here is a value: no I/O, no clock.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from docexchange.errors import DeliveryError

__all__ = [
    "FINAL_STATES",
    "PRIORITY_LABELS",
    "STATUS_LABELS",
    "TRANSITIONS",
    "Delivery",
    "DeliveryEvent",
    "DeliveryState",
    "IllegalTransition",
    "MessageKind",
    "RecallState",
    "StoredMessage",
    "TrailEntry",
    "Verification",
    "check_transition",
    "delivery_id_for",
    "message_id_for",
    "priority_rank",
    "split_delivery_id",
]


class DeliveryState(str, enum.Enum):
    """Where one delivery stands at one node."""

    QUEUED = "queued"
    """Stored here, waiting for a worker to forward it to the next node."""
    IN_FLIGHT = "in_flight"
    """Leased by a worker that is sending it; an expired lease puts it back to ``queued``."""
    RETRY_WAIT = "retry_wait"
    """The last attempt failed with a temporary error; waits for its backoff to elapse."""
    FORWARDED = "forwarded"
    """The next node answered with a signed receipt: this node's part is done."""
    DELIVERED = "delivered"
    """In the recipient's inbox (at the recipient's node, or reported back to the sender's)."""
    ACKNOWLEDGED = "acknowledged"
    """The recipient agency fetched it and acknowledged the transfer. Final."""
    DEAD = "dead"
    """Out of attempts or window, or refused for good; the payload is kept and an operator can resend it."""
    RECALLED = "recalled"
    """Withdrawn by the sender (before it left, or with the recipient's agreement, status 15). Final."""

    @property
    def final(self) -> bool:
        return self in FINAL_STATES

    @property
    def label_vi(self) -> str:
        return _STATE_VI[self]


_STATE_VI = {
    DeliveryState.QUEUED: "đang chờ gửi",
    DeliveryState.IN_FLIGHT: "đang gửi",
    DeliveryState.RETRY_WAIT: "chờ gửi lại",
    DeliveryState.FORWARDED: "đã chuyển tiếp",
    DeliveryState.DELIVERED: "đã đến hộp thư",
    DeliveryState.ACKNOWLEDGED: "đã nhận",
    DeliveryState.DEAD: "gửi không thành công",
    DeliveryState.RECALLED: "đã thu hồi",
}

FINAL_STATES = frozenset({DeliveryState.ACKNOWLEDGED, DeliveryState.RECALLED})

S = DeliveryState
TRANSITIONS: Mapping[DeliveryState, frozenset[DeliveryState]] = {
    # → delivered/acknowledged from queued, in_flight or retry_wait: a delivery report overtook the receipt (the
    # next node stored it but its answer was lost; the report proves it went through: it is not sent again).
    S.QUEUED: frozenset({S.IN_FLIGHT, S.DELIVERED, S.ACKNOWLEDGED, S.DEAD, S.RECALLED}),
    # in_flight → queued: lease expired.
    S.IN_FLIGHT: frozenset({S.QUEUED, S.FORWARDED, S.RETRY_WAIT, S.DEAD, S.DELIVERED, S.ACKNOWLEDGED}),
    S.RETRY_WAIT: frozenset({S.IN_FLIGHT, S.QUEUED, S.DELIVERED, S.ACKNOWLEDGED, S.DEAD, S.RECALLED}),
    S.FORWARDED: frozenset({S.DELIVERED, S.ACKNOWLEDGED, S.DEAD, S.RECALLED}),
    S.DELIVERED: frozenset({S.ACKNOWLEDGED, S.RECALLED}),
    # dead → queued: operator resend; → forwarded/delivered: a late report proves it did get through.
    S.DEAD: frozenset({S.QUEUED, S.FORWARDED, S.DELIVERED, S.ACKNOWLEDGED, S.RECALLED}),
    S.ACKNOWLEDGED: frozenset(),
    S.RECALLED: frozenset(),
}
del S


class IllegalTransition(DeliveryError):
    code = "illegal_transition"
    http_status = 409


def check_transition(old: DeliveryState, new: DeliveryState) -> None:
    """Refuse a move the machine does not allow (staying put is always allowed)."""
    if old == new:
        return
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(
            f"Không thể chuyển trạng thái từ '{old.label_vi}' sang '{new.label_vi}'",
            f"cannot move a delivery from {old.value} to {new.value}",
        )


class MessageKind(str, enum.Enum):
    DOCUMENT = "document"
    """An edXML document packet (văn bản)."""
    STATUS = "status"
    """An edXML status packet (trạng thái 01…16)."""
    REPORT = "report"
    """An internal delivery report travelling back to the sender's node (never shown in an inbox)."""


class Verification(str, enum.Enum):
    """Result of the NĐ 30 check of an arrived document, at the recipient's node."""

    PENDING = "pending"
    PASSED = "passed"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"
    SKIPPED = "skipped"
    """Not a document, or arrival verification is switched off."""

    @property
    def label_vi(self) -> str:
        return {
            "pending": "đang kiểm tra",
            "passed": "hợp lệ",
            "failed": "không hợp lệ",
            "indeterminate": "chưa xác định",
            "skipped": "không kiểm tra",
        }[self.value]


class RecallState(str, enum.Enum):
    """Where a recall / update / replacement request of the sender stands for one delivery."""

    REQUESTED = "requested"
    AGREED = "agreed"
    REFUSED = "refused"


PRIORITY_LABELS = {0: "Thường", 1: "Khẩn", 2: "Thượng khẩn", 3: "Hỏa tốc", 4: "Hỏa tốc hẹn giờ"}
"""edXML ``OtherInfo/Priority`` values (standards §3)."""

STATUS_LABELS = {
    "01": "Đã đến",
    "02": "Từ chối tiếp nhận",
    "03": "Đã tiếp nhận",
    "04": "Phân công",
    "05": "Đang xử lý",
    "06": "Hoàn thành",
    "13": "Lấy lại",
    "15": "Đồng ý thu hồi/cập nhật",
    "16": "Từ chối thu hồi/cập nhật",
}


def priority_rank(priority: int) -> int:
    """Queue rank of an edXML priority: Hỏa tốc (3, and 4 "hẹn giờ") before Thượng khẩn (2) before Khẩn (1)
    before Thường (0). Unknown values count as Thường."""
    return {0: 0, 1: 1, 2: 2, 3: 3, 4: 3}.get(priority, 0)


def message_id_for(*key: str) -> str:
    """A message id derived from what makes a message itself (so a repeated submit maps to the same id)."""
    h = hashlib.sha256("\x1f".join(key).encode("utf-8")).hexdigest()
    return f"m{h[:31]}"


def delivery_id_for(message_id: str, recipient: str) -> str:
    return f"{message_id}.{recipient}"


def split_delivery_id(delivery_id: str) -> tuple[str, str]:
    message_id, sep, recipient = delivery_id.partition(".")
    if not sep or not message_id.startswith("m") or not recipient:
        raise ValueError(f"not a delivery id: {delivery_id!r}")
    return message_id, recipient


@dataclass(frozen=True)
class TrailEntry:
    """One step of a delivery's journey: who, when, what (event), the digest of what it stored, its receipt."""

    node: str
    event: str
    """``stored`` (accepted and committed by ``node``), ``delivered``, ``acknowledged``, ``verified``, ``dead``,
    ``resent``, ``recalled``, ``rejected``."""
    at: datetime
    digest: str = ""
    receipt: dict[str, Any] | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "event": self.event,
            "at": self.at.isoformat(),
            "digest": self.digest,
            "receipt": self.receipt,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrailEntry:
        return cls(
            node=str(data["node"]),
            event=str(data["event"]),
            at=datetime.fromisoformat(str(data["at"])),
            digest=str(data.get("digest") or ""),
            receipt=data.get("receipt"),
            detail=str(data.get("detail") or ""),
        )


@dataclass(frozen=True)
class DeliveryEvent:
    """What a delivery report says happened to one delivery at a downstream node."""

    delivery_id: str
    state: DeliveryState
    """``delivered``, ``acknowledged``, ``dead`` (refused downstream) or ``recalled``."""
    trail: tuple[TrailEntry, ...] = ()
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "state": self.state.value,
            "trail": [t.to_json() for t in self.trail],
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeliveryEvent:
        return cls(
            delivery_id=str(data["delivery_id"]),
            state=DeliveryState(data["state"]),
            trail=tuple(TrailEntry.from_json(t) for t in data.get("trail", ())),
            reason=str(data.get("reason") or ""),
        )


@dataclass(frozen=True)
class StoredMessage:
    """A message as one node holds it (metadata; the payload is fetched separately by digest)."""

    message_id: str
    kind: MessageKind
    sender: str
    document_id: str
    priority: int
    digest: str
    size: int
    origin_node: str
    received_from: str
    created_at: datetime
    business_type: int = 0
    status_code: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """One message on its way to one recipient, as seen at one node."""

    delivery_id: str
    message_id: str
    recipient: str
    kind: MessageKind
    sender: str
    document_id: str
    priority: int
    state: DeliveryState
    next_hop: str | None
    """The node it goes to next; None when the recipient's mailbox is here."""
    attempts: int
    created_at: datetime
    updated_at: datetime
    first_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str = ""
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    fetched_at: datetime | None = None
    recipient_status: str = ""
    recipient_status_at: datetime | None = None
    recall: RecallState | None = None
    withdrawn: bool = False
    verification: Verification = Verification.SKIPPED
    message: StoredMessage | None = None

    @property
    def local(self) -> bool:
        return self.next_hop is None
