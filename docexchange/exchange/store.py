"""The Store protocol: everything a node keeps, behind one async interface.

Implementations: :mod:`docexchange.exchange.sqlite_store` (embedded, one node per file) and, later, PostgreSQL
(several workers sharing one database). The protocol is shaped for both:

* every operation that changes state is one transaction (``ingest`` stores a message, its deliveries, their
  signed receipts, the follow-up messages and the effects on other deliveries atomically);
* work is *claimed* with a lease (``claim``, ``claim_verifications``); a settle only applies while the lease
  is still held, except a receipt, which is proof and always applies;
* deduplication, receipts and the trail are keyed by ``(message id, recipient)`` in the database itself.

The store applies what the service decides; it holds no routing or business rules. Receipts are signed by a
callback given at construction, inside the transaction, once per group of deliveries committed together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from docexchange.exchange.model import (
    Delivery,
    DeliveryEvent,
    DeliveryState,
    MessageKind,
    StoredMessage,
    TrailEntry,
    Verification,
)

__all__ = [
    "Claimed",
    "CredentialRecord",
    "Dead",
    "DeliveryOutcome",
    "Effect",
    "Forwarded",
    "InboxQuery",
    "Ingest",
    "IngestOutcome",
    "NewDelivery",
    "NewMessage",
    "Page",
    "QueueQuery",
    "RecallRequestEffect",
    "ReceiptSigning",
    "ReportEffect",
    "Requeue",
    "RetryLater",
    "SentQuery",
    "Settle",
    "StatusEffect",
    "Store",
    "VerificationJob",
    "VerificationResult",
    "WithdrawEffect",
]

ReceiptSigning = Callable[[Sequence[tuple[str, str, str]], datetime], list[dict[str, Any]]]
"""``(delivery_id, received_digest, stored_digest)`` triples committed together → one receipt each."""


@dataclass(frozen=True)
class NewMessage:
    """A message to store (as this node will keep and forward it: its TraceHeader already appended)."""

    message_id: str
    kind: MessageKind
    sender: str
    document_id: str
    priority: int
    payload: bytes = field(repr=False)
    digest: str
    """SHA-256 (hex) of ``payload``."""
    received_digest: str
    """SHA-256 (hex) of the bytes as they arrived (before this node's TraceHeader)."""
    origin_node: str
    received_from: str
    """Peer node id, or ``api:<system id>`` for a submission."""
    business_type: int = 0
    status_code: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewDelivery:
    recipient: str
    next_hop: str | None
    """None: the recipient's mailbox is at this node (the delivery is stored as ``delivered``)."""
    verify: bool = False
    """Queue the arrival verification of the message (documents delivered here)."""
    followups: tuple[Ingest, ...] = ()
    """Stored in the same transaction only when this delivery is new here (e.g. the automatic status 01)."""
    idem_key: str | None = None
    """Submit idempotency key (sender, DocumentId, recipient …), set where the message entered the exchange: a
    second delivery with the same key is a duplicate of the first, whatever its message id."""


@dataclass(frozen=True)
class ReportEffect:
    """A delivery report passing this node: move the delivery (if held here) and extend its trail."""

    event: DeliveryEvent


@dataclass(frozen=True)
class StatusEffect:
    """A business status about document ``document_id`` sent by ``doc_sender`` to ``doc_recipient``:
    recorded on the matching delivery wherever it is held. 15 withdraws it, 16 refuses a pending recall."""

    document_id: str
    doc_sender: str
    doc_recipient: str
    code: str
    at: datetime


@dataclass(frozen=True)
class RecallRequestEffect:
    """The sender asks the recipient to withdraw (13, BussinessDocType 1) or supersede (2, 3) a document."""

    document_id: str
    doc_sender: str
    doc_recipient: str
    request: str
    """``13``, ``revoke``, ``update`` or ``replace``."""
    by_message: str
    at: datetime


@dataclass(frozen=True)
class WithdrawEffect:
    """Withdraw deliveries (sender recalled them before they left, or the recipient agreed to a recall)."""

    delivery_ids: tuple[str, ...]
    at: datetime
    reason: str = ""


Effect = ReportEffect | StatusEffect | RecallRequestEffect | WithdrawEffect


@dataclass(frozen=True)
class Ingest:
    """One message arriving at this node with the deliveries it creates here."""

    message: NewMessage
    deliveries: tuple[NewDelivery, ...]
    effects: tuple[Effect, ...] = ()
    """Applied once, when at least one of the deliveries is new here."""
    trail: Mapping[str, Sequence[TrailEntry]] = field(default_factory=dict)
    """Trail entries learnt from upstream, per delivery id (kept when the delivery is new here)."""
    receipt: bool = True
    """Sign a receipt for each new delivery (always, except for internal follow-ups)."""


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: str
    recipient: str
    duplicate: bool
    state: DeliveryState
    receipt: Mapping[str, Any] | None
    """The signed receipt (the original one for a duplicate)."""


@dataclass(frozen=True)
class IngestOutcome:
    message_id: str
    digest: str
    deliveries: tuple[DeliveryOutcome, ...]

    @property
    def duplicate(self) -> bool:
        return all(d.duplicate for d in self.deliveries)


@dataclass(frozen=True)
class Claimed:
    delivery: Delivery
    message: StoredMessage


@dataclass(frozen=True)
class Forwarded:
    delivery_id: str
    receipt: Mapping[str, Any]
    at: datetime


@dataclass(frozen=True)
class RetryLater:
    delivery_id: str
    retry_at: datetime
    error: str


@dataclass(frozen=True)
class Dead:
    delivery_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Requeue:
    """Give the lease back without counting the attempt (e.g. the breaker opened before it was sent)."""

    delivery_id: str


Settle = Forwarded | RetryLater | Dead | Requeue


@dataclass(frozen=True)
class Page:
    items: tuple[Any, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class InboxQuery:
    recipients: tuple[str, ...]
    kind: MessageKind | None = None
    states: tuple[DeliveryState, ...] = ()
    """Empty: delivered and acknowledged (and recalled, with ``include_withdrawn``)."""
    senders: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    unacknowledged: bool = False
    include_withdrawn: bool = False
    document_id: str | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class SentQuery:
    senders: tuple[str, ...]
    kind: MessageKind | None = MessageKind.DOCUMENT
    document_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class QueueQuery:
    states: tuple[DeliveryState, ...] = (DeliveryState.DEAD,)
    destination: str | None = None
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True)
class VerificationJob:
    message_id: str
    sender: str
    document_id: str
    digest: str
    priority: int
    attempts: int
    recipients: tuple[str, ...]
    """Recipients of the message whose mailbox is at this node."""
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class VerificationResult:
    message_id: str
    result: Verification
    report: Mapping[str, Any]
    at: datetime
    followups: tuple[Ingest, ...] = ()
    """E.g. the automatic status 02 back to the sender."""


@dataclass(frozen=True)
class CredentialRecord:
    """A system allowed to call the node: an agency's software, a vendor serving several agencies, an auditor
    or an operator. The shared secret is stored encrypted (``secret_box``), never in clear."""

    system_id: str
    role: str
    """``agency``, ``auditor`` or ``operator``."""
    agencies: tuple[str, ...]
    secret_box: bytes = field(repr=False)
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    label: str = ""


@runtime_checkable
class Store(Protocol):
    node_id: str

    async def open(self) -> None:
        """Connect and apply migrations (refusing a schema newer than this code knows)."""
        ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    # -- arrival -----------------------------------------------------------------------------
    async def ingest(self, items: Sequence[Ingest], at: datetime) -> list[IngestOutcome]:
        """Store messages and their deliveries durably (one transaction), deduplicated by (message id,
        recipient); sign receipts for the new deliveries; return every delivery's receipt."""
        ...

    async def apply(self, effects: Sequence[Effect], ingests: Sequence[Ingest], at: datetime) -> list[IngestOutcome]:
        """Apply effects unconditionally and store ``ingests``, atomically (recipient and sender actions)."""
        ...

    # -- forwarding --------------------------------------------------------------------------
    async def claim(self, destination: str, limit: int, max_bytes: int, owner: str, now: datetime,
                    lease_until: datetime) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries bound for ``destination`` (highest priority first); each claim
        counts one attempt."""
        ...

    async def payloads(self, digests: Sequence[str]) -> dict[str, bytes]: ...

    async def settle(self, outcomes: Sequence[Settle], owner: str, at: datetime,
                     followups: Sequence[Ingest] = ()) -> None:
        """Record what happened to claimed deliveries (and store follow-ups such as dead-letter reports)."""
        ...

    async def recover_leases(self, now: datetime, *, all_owners_except: str | None = None) -> int:
        """Return expired leases to the queue (with ``all_owners_except``: every lease not held by that owner,
        expired or not — used at start-up by a node that is the only user of its store)."""
        ...

    async def due_destinations(self, now: datetime) -> dict[str, int]:
        """Destinations with deliveries ready to be claimed now, and how many."""
        ...

    async def next_due(self, destination: str) -> datetime | None:
        """When the earliest waiting delivery for ``destination`` becomes due (None: nothing waiting)."""
        ...

    async def reports_trail(self, delivery_ids: Sequence[str]) -> dict[str, list[TrailEntry]]:
        """Trail entries this node holds for these deliveries (sent along with delivery reports)."""
        ...

    # -- verification ------------------------------------------------------------------------
    async def claim_verifications(self, limit: int, owner: str, now: datetime,
                                  lease_until: datetime) -> list[VerificationJob]: ...

    async def finish_verification(self, result: VerificationResult, owner: str) -> None: ...

    async def verification(self, message_id: str) -> tuple[Verification, Mapping[str, Any] | None]: ...

    # -- mailboxes ---------------------------------------------------------------------------
    async def delivery(self, delivery_id: str) -> Delivery | None: ...

    async def deliveries_of(self, message_id: str) -> list[Delivery]: ...

    async def find_deliveries(self, *, sender: str, document_id: str, recipients: Sequence[str] = (),
                              kind: MessageKind = MessageKind.DOCUMENT) -> list[Delivery]: ...

    async def inbox(self, query: InboxQuery) -> Page: ...

    async def sent(self, query: SentQuery) -> Page:
        """Messages sent from this node by the given agencies (items: StoredMessage), newest first."""
        ...

    async def mark_fetched(self, delivery_id: str, at: datetime) -> None: ...

    async def acknowledge(self, delivery_id: str, at: datetime, followups: Sequence[Ingest] = ()) -> Delivery:
        """Move a delivered delivery to ``acknowledged`` (idempotent) and store its report."""
        ...

    async def trail(self, delivery_id: str) -> list[TrailEntry]: ...

    # -- operators ---------------------------------------------------------------------------
    async def queue(self, query: QueueQuery) -> Page: ...

    async def resend(self, delivery_id: str, at: datetime) -> Delivery:
        """Put a dead letter back in the queue with fresh attempts."""
        ...

    async def purge(self, delivery_id: str, at: datetime) -> None:
        """Delete a dead letter (and its payload when nothing else refers to it)."""
        ...

    async def counts(self) -> dict[str, dict[str, int]]:
        """Deliveries per state, per destination (``local`` for mailboxes here)."""
        ...

    # -- credentials -------------------------------------------------------------------------
    async def put_credential(self, record: CredentialRecord) -> None: ...

    async def credential(self, system_id: str) -> CredentialRecord | None: ...

    async def credentials(self) -> list[CredentialRecord]: ...

    async def remember_nonce(self, system_id: str, nonce: str, expires_at: datetime) -> bool:
        """Record a request nonce; False if it was seen before (a replay)."""
        ...

    # -- housekeeping ------------------------------------------------------------------------
    async def housekeeping(self, now: datetime) -> dict[str, int]:
        """Drop expired nonces and unreferenced payloads; counts of what was removed."""
        ...
