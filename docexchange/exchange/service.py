"""A node's business operations, shared by every front (agency JSON API, national-axis API, web pages, CLI).

Each operation takes the authenticated :class:`~docexchange.web.auth.Principal`, checks what it may do, and
calls the store; routing and business rules are decided here, the store applies them atomically. The web
handlers only parse and answer.

Arrival rules (at the node holding the recipient's mailbox): the fast checks (recipient known, size,
integrity, duplicate) run before the packet is committed; the commit stores the delivery as ``delivered`` and,
in the same transaction, the automatic status 01 back to the sender (which also carries the delivery report
that moves the sender's copy to ``delivered``) and the queued NĐ 30 verification (whose failure sends status 02).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from docexchange.clock import Clock
from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.edxml._xml import MiB, ReadLimits
from docexchange.edxml.model import Attachment, DocumentPacket, StaffInfo, StatusCode
from docexchange.edxml.reader import read_packet
from docexchange.errors import (
    Conflict,
    DocExchangeError,
    InvalidPacket,
    NotFound,
    PacketTooLarge,
    UnknownAgency,
)
from docexchange.exchange import routing
from docexchange.exchange.model import (
    Delivery,
    DeliveryEvent,
    DeliveryState,
    MessageKind,
    RecallState,
    StoredMessage,
    TrailEntry,
    delivery_id_for,
    message_id_for,
    split_delivery_id,
)
from docexchange.exchange.packets import (
    OutgoingDocument,
    PacketInfo,
    describe,
    document_packet,
    idempotency_key,
    sha256,
    status_packet,
)
from docexchange.exchange.parsing import inspect_packet, run_inspection
from docexchange.exchange.store import (
    DeliveryOutcome,
    Effect,
    InboxQuery,
    Ingest,
    NewDelivery,
    NewMessage,
    Page,
    QueueQuery,
    RecallRequestEffect,
    ReportEffect,
    SentQuery,
    StatusEffect,
    Store,
    WithdrawEffect,
)
from docexchange.exchange.trace import TraceSplice, append_at, append_fast, append_first, append_known
from docexchange.exchange.transport import Refusal, TransferAnswer, WireItem
from docexchange.verify.packet import check_envelope, raise_for
from docexchange.web.auth import Principal, Role

__all__ = [
    "RECIPIENT_STATUSES",
    "SYSTEM",
    "NodeService",
    "RecallResult",
    "SentItem",
    "SubmitResult",
]

log = logging.getLogger(__name__)

SYSTEM = Principal("system", Role.OPERATOR)
"""The node acting on its own behalf (scheduler jobs, the operator's CLI on the host)."""

RECIPIENT_STATUSES = frozenset({"02", "03", "04", "05", "06"})
"""Statuses a recipient sends through ``send_status`` (15/16 answer a recall, 01 is automatic)."""

_BUSINESS_REQUEST = {1: "revoke", 2: "update", 3: "replace"}
_INLINE_PARSE_LIMIT = 2 * MiB


@dataclass(frozen=True)
class SubmitResult:
    message_id: str
    document_id: str
    kind: MessageKind
    deliveries: tuple[DeliveryOutcome, ...]

    @property
    def duplicate(self) -> bool:
        return all(d.duplicate for d in self.deliveries)

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "document_id": self.document_id,
            "kind": self.kind.value,
            "duplicate": self.duplicate,
            "deliveries": [
                {
                    "delivery_id": d.delivery_id,
                    "recipient": d.recipient,
                    "state": d.state.value,
                    "duplicate": d.duplicate,
                    "receipt": d.receipt,
                }
                for d in self.deliveries
            ],
        }


@dataclass(frozen=True)
class SentItem:
    message: StoredMessage
    deliveries: tuple[Delivery, ...]
    trails: Mapping[str, Sequence[TrailEntry]] = field(default_factory=dict)


@dataclass(frozen=True)
class RecallResult:
    withdrawn: tuple[str, ...]
    """Deliveries recalled before they left this node."""
    requested: SubmitResult | None
    """The status 13 sent to recipients that already have the document (they answer 15 or 16)."""


def _event_meta(events: Sequence[DeliveryEvent]) -> list[dict[str, Any]]:
    return [{"delivery_id": e.delivery_id, "state": e.state.value, "reason": e.reason} for e in events]


class NodeService:
    def __init__(
        self,
        *,
        node_id: str,
        directory: Directory,
        store: Store,
        clock: Clock,
        settings: Settings,
        verify_on_arrival: bool | None = None,
        parser: ProcessPoolExecutor | None = None,
    ) -> None:
        self.node_id = node_id
        self.directory = directory
        self.store = store
        self.clock = clock
        self.settings = settings
        node = directory.node(node_id)
        self.node = node
        self.organ = node.organ_id or self._node_agency(node_id)
        self.max_packet = settings.exchange.max_packet_mb * MiB
        self.limits = ReadLimits(max_packet_bytes=self.max_packet)
        self.verify_on_arrival = (
            settings.verification.nd30_on_arrival if verify_on_arrival is None else verify_on_arrival
        )
        self.parser = parser
        """Worker processes checking submitted packets (None: in this process)."""
        self._wakers: list[Callable[[str | None], None]] = []
        self._mail = asyncio.Event()

    def _node_agency(self, node_id: str) -> str:
        local = self.directory.agencies_of(node_id)
        if not local:
            raise UnknownAgency(f"Trục {node_id} không có cơ quan nào", f"node {node_id} serves no agency")
        return sorted(local, key=lambda a: (a.level.value != "central", a.parent != "", a.code))[0].code

    # -- wiring --------------------------------------------------------------------------------
    def on_queued(self, waker: Callable[[str | None], None]) -> None:
        """Register a callback told when work is queued for a destination (the dispatcher's wake-up)."""
        self._wakers.append(waker)

    def notify(self, destinations: Sequence[str | None] = ()) -> None:
        """Work was queued for these destinations (None: look everywhere); new mail may be waiting."""
        for w in self._wakers:
            for d in destinations or (None,):
                w(d)
        event, self._mail = self._mail, asyncio.Event()
        event.set()

    def mail_token(self) -> asyncio.Event:
        """Take before looking at a mailbox; :meth:`wait_for_mail` then returns at once if mail came since."""
        return self._mail

    async def wait_for_mail(self, seconds: float, token: asyncio.Event | None = None) -> None:
        """Return when new mail may have arrived (or after ``seconds``): for long-polling clients."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((token or self._mail).wait(), seconds)

    # -- building blocks -----------------------------------------------------------------------
    def _home_here(self, code: str) -> bool:
        return self.directory.agency(code).node == self.node_id

    def _status_ingest(
        self,
        *,
        sender: str,
        recipient: str,
        about_sender: str,
        document_id: str,
        code: StatusCode,
        at: datetime,
        doc_meta: Mapping[str, Any],
        priority: int,
        description: str | None = None,
        staff: StaffInfo | None = None,
        reports: Sequence[DeliveryEvent] = (),
        extra_effects: Sequence[Effect] = (),
        received_from: str,
    ) -> Ingest:
        """A status packet written by this node (automatic 01/02, or on behalf of an agency), ready to store."""
        data = status_packet(
            directory=self.directory, sender=sender, about_sender=about_sender, document_id=document_id, code=code,
            at=at, meta=doc_meta, description=description, staff=staff, trace_organ=self.organ,
        )
        stored, splice = append_known(data, self.organ, at.replace(microsecond=0))
        digest = sha256(stored)
        mid = message_id_for(MessageKind.STATUS.value, sender, document_id, digest)
        hop = routing.next_hop(self.directory, self.node_id, recipient)
        meta: dict[str, Any] = {
            "from": {"organ_id": sender},
            "status": {"code": code.value, "label_vi": code.label_vi, "description": description,
                       "timestamp": at.isoformat()},
            "response_for": {"organ_id": about_sender, "document_id": document_id,
                             "code": doc_meta.get("code"), "subject": doc_meta.get("subject")},
            "trace": splice.to_json(),
            "to": [{"organ_id": recipient}],
        }
        if reports:
            meta["reports"] = _event_meta(reports)
        effects: list[Effect] = [ReportEffect(e) for e in reports]
        effects.append(StatusEffect(document_id, about_sender, sender, code.value, at))
        if code == StatusCode.RECALL:
            effects.append(RecallRequestEffect(document_id, sender, recipient, "13", mid, at))
        effects.extend(extra_effects)
        return Ingest(
            message=NewMessage(
                message_id=mid, kind=MessageKind.STATUS, sender=sender, document_id=document_id,
                priority=priority, payload=stored, digest=digest, received_digest=sha256(data),
                origin_node=self.node_id, received_from=received_from, status_code=code.value, meta=meta,
            ),
            deliveries=(NewDelivery(hop.recipient, hop.next_hop),),
            effects=tuple(effects),
            receipt=False,
        )

    def _report_ingest(self, events: Sequence[DeliveryEvent], to_agency: str, priority: int, at: datetime) -> Ingest:
        """A standalone delivery report (acknowledged, dead …) to the sender's node."""
        body = json.dumps(_event_meta(events), separators=(",", ":")).encode()
        key = "|".join(f"{e.delivery_id}:{e.state.value}" for e in events)
        mid = message_id_for(MessageKind.REPORT.value, self.node_id, key)
        hop = routing.next_hop(self.directory, self.node_id, to_agency)
        digest = sha256(body)
        return Ingest(
            message=NewMessage(
                message_id=mid, kind=MessageKind.REPORT, sender=self.organ, document_id=key[:200],
                priority=priority, payload=body, digest=digest, received_digest=digest, origin_node=self.node_id,
                received_from="node", meta={"reports": _event_meta(events)},
            ),
            deliveries=(NewDelivery(hop.recipient, hop.next_hop),),
            effects=tuple(ReportEffect(e) for e in events),
            receipt=False,
        )

    def _arrival(
        self,
        info_kind: MessageKind,
        message_id: str,
        sender: str,
        recipient: str,
        document_id: str,
        priority: int,
        meta: Mapping[str, Any],
        at: datetime,
    ) -> tuple[bool, tuple[Ingest, ...]]:
        """(verify?, follow-ups) for a delivery landing in a mailbox here."""
        if info_kind != MessageKind.DOCUMENT:
            return False, ()
        event = DeliveryEvent(delivery_id_for(message_id, recipient), DeliveryState.DELIVERED)
        try:
            ack = self._status_ingest(
                sender=recipient, recipient=sender, about_sender=sender, document_id=document_id,
                code=StatusCode.ARRIVED, at=at, doc_meta=meta, priority=priority,
                description="Văn bản đã đến hộp thư của cơ quan nhận", reports=(event,), received_from="node",
            )
        except UnknownAgency:
            log.warning("no route back to %s for status 01 of %s", sender, document_id)
            return self.verify_on_arrival, ()
        return self.verify_on_arrival, (ack,)

    def _message_effects(self, info: PacketInfo, recipient: str, message_id: str, at: datetime) -> list[Effect]:
        """Effects a packet has on earlier deliveries, wherever it is stored."""
        effects: list[Effect] = []
        if info.kind == MessageKind.STATUS:
            about = str(info.meta.get("response_for", {}).get("organ_id") or recipient)
            if info.status_code == StatusCode.RECALL.value:
                effects.append(RecallRequestEffect(info.document_id, info.sender, recipient, "13", message_id, at))
            else:
                effects.append(StatusEffect(info.document_id, about, info.sender, info.status_code, at))
        elif info.business_type and info.business_target:
            request = _BUSINESS_REQUEST.get(info.business_type, "revoke")
            effects.append(RecallRequestEffect(info.business_target, info.sender, recipient, request, message_id, at))
            for rep in info.meta.get("business", {}).get("replacements", []) or []:
                target = rep.get("document_id")
                if target and target != info.business_target:
                    effects.append(RecallRequestEffect(target, info.sender, recipient, request, message_id, at))
        for ev in info.meta.get("reports", []) or []:
            try:
                effects.append(ReportEffect(DeliveryEvent(str(ev["delivery_id"]), DeliveryState(ev["state"]),
                                                          reason=str(ev.get("reason") or ""))))
            except (KeyError, ValueError):
                log.warning("ignoring malformed report %r", ev)
        return effects

    # -- submit --------------------------------------------------------------------------------
    async def submit_packet(
        self, principal: Principal, agency: str, data: bytes, *, to: Sequence[str] = (),
        data_sha256: str | None = None,
    ) -> SubmitResult:
        """An agency hands the node an edXML packet (document or status) it wrote itself. ``data_sha256``: the
        SHA-256 of ``data`` when the caller has it already (the signed request carries it)."""
        principal.require_agency(agency)
        if len(data) > self.max_packet:
            raise PacketTooLarge(
                f"Gói tin {len(data) // MiB} MB vượt giới hạn {self.max_packet // MiB} MB",
                f"packet of {len(data)} bytes exceeds the {self.max_packet} byte limit",
            )
        at = self.clock.now()
        if self.parser is not None:
            insp = await run_inspection(self.parser, data, agency, to, self.max_packet)
        elif len(data) > _INLINE_PARSE_LIMIT:
            insp = await asyncio.to_thread(inspect_packet, data, agency, to, self.max_packet, self.directory)
        else:
            insp = inspect_packet(data, agency, to, self.max_packet, self.directory)
        if insp.splice is not None:
            stored, splice = append_at(data, insp.splice, self.organ, at)
        else:
            stored, splice = await asyncio.to_thread(append_first, data, self.organ, at)
        return await self._submit(principal, insp.info, data, stored, splice, insp.recipients, at, data_sha256)

    async def submit_document(
        self,
        principal: Principal,
        agency: str,
        doc: OutgoingDocument,
        pdf: bytes,
        attachments: Sequence[tuple[str, str, bytes]] = (),
    ) -> SubmitResult:
        """An agency hands the node a signed PDF and the letter's metadata; the node writes the edXML."""
        principal.require_agency(agency)
        if not pdf.startswith(b"%PDF-"):
            raise InvalidPacket("Tệp văn bản không phải PDF", "the document file is not a PDF")
        at = self.clock.now().replace(microsecond=0)
        to = tuple(self.directory.resolve(c) for c in doc.to)
        if not to:
            raise InvalidPacket("Không có nơi nhận", "no recipient")
        if len(pdf) + sum(len(a[2]) for a in attachments) > self.max_packet:
            raise PacketTooLarge(
                f"Gói tin vượt giới hạn {self.max_packet // MiB} MB", f"packet exceeds {self.max_packet} bytes"
            )
        # The node writes the packet itself from a model the writer checks: nothing to parse back.
        packet, data = await asyncio.to_thread(
            document_packet, self.directory, agency, OutgoingDocument(**{**doc.__dict__, "to": to}), pdf,
            attachments, at=at, trace_organ=self.organ,
        )
        if len(data) > self.max_packet:
            raise PacketTooLarge(
                f"Gói tin vượt giới hạn {self.max_packet // MiB} MB", f"packet exceeds {self.max_packet} bytes"
            )
        raise_for(check_envelope(packet, self.directory, acting_agency=agency))
        info = describe(packet)
        stored, splice = append_known(data, self.organ, at)
        return await self._submit(principal, info, data, stored, splice, to, at)

    async def _submit(
        self,
        principal: Principal,
        info: PacketInfo,
        received: bytes,
        stored: bytes,
        splice: TraceSplice,
        recipients: Sequence[str],
        at: datetime,
        received_digest: str | None = None,
    ) -> SubmitResult:
        received_digest = received_digest or sha256(received)
        mid = info.message_id(received_digest)
        hops = routing.plan(self.directory, self.node_id, recipients)
        meta = {**info.meta, "trace": splice.to_json(), "to_codes": [h.recipient for h in hops]}
        deliveries = []
        effects: list[Effect] = []
        for hop in hops:
            verify, followups = False, cast(tuple[Ingest, ...], ())
            if hop.next_hop is None:
                verify, followups = self._arrival(info.kind, mid, info.sender, hop.recipient, info.document_id,
                                                  info.priority, meta, at)
            deliveries.append(NewDelivery(
                hop.recipient, hop.next_hop, verify=verify, followups=followups,
                idem_key=idempotency_key(info, hop.recipient, received_digest),
            ))
            effects.extend(self._message_effects(info, hop.recipient, mid, at))
        ingest = Ingest(
            message=NewMessage(
                message_id=mid, kind=info.kind, sender=info.sender, document_id=info.document_id,
                priority=info.priority, payload=stored, digest=sha256(stored), received_digest=received_digest,
                origin_node=self.node_id, received_from=f"api:{principal.system_id}",
                business_type=info.business_type, status_code=info.status_code, meta=meta,
            ),
            deliveries=tuple(deliveries),
            effects=tuple(effects),
        )
        (outcome,) = await self.store.ingest([ingest], at)
        self.notify(destinations=[h.next_hop for h in hops if h.next_hop] or [None])
        return SubmitResult(outcome.message_id, info.document_id, info.kind, outcome.deliveries)

    # -- arrival from a peer -------------------------------------------------------------------
    async def receive(self, peer: str, items: Sequence[WireItem]) -> TransferAnswer:
        """A batch from a neighbour (already authenticated by its pinned certificate)."""
        at = self.clock.now()
        refused: list[Refusal] = []
        ingests: list[Ingest] = []
        destinations: set[str | None] = set()
        for it in items:
            dids = [delivery_id_for(it.message_id, r) for r in it.recipients]

            def refuse(exc: DocExchangeError, retry: bool, only: Sequence[str] | None = None,
                       _dids: list[str] = dids) -> None:
                for d in only if only is not None else _dids:
                    refused.append(Refusal(d, exc.code, exc.message_vi, exc.message_en, retry))

            if len(it.payload) > self.max_packet:
                refuse(PacketTooLarge(f"Gói tin vượt {self.max_packet // MiB} MB", "packet too large"), False)
                continue
            if sha256(it.payload) != it.digest:
                refuse(InvalidPacket("Gói tin bị hỏng trên đường truyền (sai mã băm)", "digest mismatch"), True)
                continue
            hops = []
            for r, did in zip(it.recipients, dids, strict=True):
                try:
                    hops.append(routing.arrives_via(self.directory, self.node_id, peer, r))
                except UnknownAgency as exc:
                    refuse(exc, False, [did])
            if not hops:
                continue
            info = PacketInfo(
                kind=it.kind, sender=it.sender, recipients=tuple(h.recipient for h in hops),
                document_id=it.document_id, priority=it.priority, business_type=it.business_type,
                business_target=(it.meta.get("business") or {}).get("target"), status_code=it.status_code,
                meta=it.meta,
            )
            if it.kind == MessageKind.REPORT:
                stored, splice_json = it.payload, None
            else:
                try:
                    stored, splice = append_fast(it.payload, TraceSplice.from_json(it.meta.get("trace")),
                                                 self.organ, at)
                except DocExchangeError as exc:
                    refuse(exc, False)
                    continue
                splice_json = splice.to_json()
            meta = dict(it.meta)
            if splice_json is not None:
                meta["trace"] = splice_json
            deliveries = []
            effects: list[Effect] = []
            for hop in hops:
                verify, followups = False, cast(tuple[Ingest, ...], ())
                if hop.next_hop is None:
                    verify, followups = self._arrival(it.kind, it.message_id, it.sender, hop.recipient,
                                                      it.document_id, it.priority, meta, at)
                deliveries.append(NewDelivery(hop.recipient, hop.next_hop, verify=verify, followups=followups))
                destinations.add(hop.next_hop)
                effects.extend(self._message_effects(info, hop.recipient, it.message_id, at))
            # Report effects are per message, not per recipient: keep one of each.
            unique: list[Effect] = []
            for e in effects:
                if e not in unique:
                    unique.append(e)
            trail = dict(it.trail)
            for e in unique:
                if isinstance(e, ReportEffect) and e.event.delivery_id in trail:
                    idx = unique.index(e)
                    unique[idx] = ReportEffect(DeliveryEvent(e.event.delivery_id, e.event.state,
                                                             tuple(trail[e.event.delivery_id]), e.event.reason))
            ingests.append(Ingest(
                message=NewMessage(
                    message_id=it.message_id, kind=it.kind, sender=it.sender, document_id=it.document_id,
                    priority=it.priority, payload=stored, digest=sha256(stored), received_digest=it.digest,
                    origin_node=it.origin_node, received_from=peer, business_type=it.business_type,
                    status_code=it.status_code, meta=meta,
                ),
                deliveries=tuple(deliveries),
                effects=tuple(unique),
                trail={d: v for d, v in trail.items() if d in {delivery_id_for(it.message_id, h.recipient)
                                                                for h in hops}},
            ))
        receipts: list[Mapping[str, Any]] = []
        if ingests:
            outcomes = await self.store.ingest(ingests, at)
            for o in outcomes:
                for d in o.deliveries:
                    if d.receipt:
                        receipts.append(d.receipt)
                    else:
                        refused.append(Refusal(d.delivery_id, "no_receipt", "Không có biên nhận", "no receipt", True))
            self.notify(destinations=sorted((d for d in destinations if d), key=str) or [None])
        return TransferAnswer(self.node_id, tuple(receipts), tuple(refused))

    # -- access --------------------------------------------------------------------------------
    def _check_recipient(self, principal: Principal, d: Delivery) -> None:
        if d.next_hop is not None or not principal.may_act_for(d.recipient):
            raise NotFound("Không tìm thấy văn bản trong hộp thư", "no such item in this agency's inbox")

    async def _delivery(self, delivery_id: str) -> Delivery:
        try:
            split_delivery_id(delivery_id)
        except ValueError:
            raise NotFound("Mã lượt chuyển không hợp lệ", f"invalid delivery id {delivery_id!r}") from None
        d = await self.store.delivery(delivery_id)
        if d is None:
            raise NotFound("Không tìm thấy lượt chuyển", f"no delivery {delivery_id}")
        return d

    async def inbox_item(self, principal: Principal, delivery_id: str) -> Delivery:
        d = await self._delivery(delivery_id)
        self._check_recipient(principal, d)
        if d.kind == MessageKind.REPORT or d.state not in (
            DeliveryState.DELIVERED, DeliveryState.ACKNOWLEDGED, DeliveryState.RECALLED
        ):
            raise NotFound("Không tìm thấy văn bản trong hộp thư", "no such item in this agency's inbox")
        return d

    # -- inbox ---------------------------------------------------------------------------------
    async def inbox(self, principal: Principal, query: InboxQuery) -> Page:
        principal.require(Role.AGENCY)
        for code in query.recipients:
            principal.require_agency(code)
        return await self.store.inbox(query)

    async def packet(self, principal: Principal, delivery_id: str) -> tuple[Delivery, bytes]:
        d = await self.inbox_item(principal, delivery_id)
        assert d.message is not None
        data = (await self.store.payloads([d.message.digest])).get(d.message.digest)
        if data is None:
            raise NotFound("Gói tin không còn trong kho", "the packet is no longer stored")
        if d.fetched_at is None:
            await self.store.mark_fetched(delivery_id, self.clock.now())
        return d, data

    async def attachments(self, principal: Principal, delivery_id: str) -> tuple[Delivery, tuple[Attachment, ...]]:
        d, data = await self.packet(principal, delivery_id)
        if d.kind != MessageKind.DOCUMENT:
            return d, ()
        packet = await asyncio.to_thread(read_packet, data, limits=self.limits)
        assert isinstance(packet, DocumentPacket)
        return d, packet.attachments

    async def acknowledge(self, principal: Principal, delivery_id: str) -> Delivery:
        d = await self.inbox_item(principal, delivery_id)
        if d.state == DeliveryState.ACKNOWLEDGED:
            return d
        if d.state == DeliveryState.RECALLED:
            raise Conflict("Văn bản đã bị thu hồi", "the document was recalled")
        at = self.clock.now()
        followups: tuple[Ingest, ...] = ()
        if d.message is not None and d.message.origin_node != self.node_id and d.kind != MessageKind.REPORT:
            event = DeliveryEvent(delivery_id, DeliveryState.ACKNOWLEDGED)
            try:
                followups = (self._report_ingest([event], d.sender, d.priority, at),)
            except UnknownAgency:
                followups = ()
        done = await self.store.acknowledge(delivery_id, at, followups)
        self.notify()
        return done

    async def verification(self, principal: Principal, delivery_id: str) -> tuple[str, Mapping[str, Any] | None]:
        d = await self.inbox_item(principal, delivery_id)
        state, report = await self.store.verification(d.message_id)
        return state.value, report

    # -- recipient actions ---------------------------------------------------------------------
    async def send_status(
        self, principal: Principal, delivery_id: str, code: str, description: str | None = None,
        staff: StaffInfo | None = None,
    ) -> SubmitResult:
        """The recipient tells the sender what became of the document: 02 (returned) … 06 (done)."""
        if code not in RECIPIENT_STATUSES:
            raise InvalidPacket(
                f"Mã trạng thái {code!r} không gửi được ở đây (02–06; 15/16 để trả lời thu hồi)",
                f"status {code!r} cannot be sent here (02-06; 15/16 answer a recall)",
            )
        d = await self.inbox_item(principal, delivery_id)
        if d.kind != MessageKind.DOCUMENT:
            raise Conflict("Chỉ gửi trạng thái cho văn bản", "statuses answer documents only")
        if d.withdrawn:
            raise Conflict("Văn bản đã bị thu hồi", "the document was withdrawn")
        if code == "02" and not description:
            raise InvalidPacket("Từ chối tiếp nhận cần ghi lý do", "a rejection (02) needs a reason")
        return await self._send_status(principal, d, StatusCode(code), description, staff)

    async def _send_status(self, principal: Principal, d: Delivery, code: StatusCode, description: str | None,
                           staff: StaffInfo | None, extra: Sequence[Effect] = ()) -> SubmitResult:
        at = self.clock.now().replace(microsecond=0)
        assert d.message is not None
        ingest = self._status_ingest(
            sender=d.recipient, recipient=d.sender, about_sender=d.sender, document_id=d.document_id, code=code,
            at=at, doc_meta=d.message.meta, priority=d.priority, description=description, staff=staff,
            extra_effects=extra, received_from=f"api:{principal.system_id}",
        )
        (outcome,) = await self.store.apply((), [ingest], at)
        self.notify(destinations=[ingest.deliveries[0].next_hop])
        return SubmitResult(outcome.message_id, d.document_id, MessageKind.STATUS, outcome.deliveries)

    async def respond_recall(self, principal: Principal, delivery_id: str, agree: bool,
                             reason: str | None = None) -> SubmitResult:
        """The recipient agrees (15: the document leaves its inbox) or refuses (16) a recall/update/replace."""
        d = await self.inbox_item(principal, delivery_id)
        if d.recall != RecallState.REQUESTED:
            raise Conflict("Không có yêu cầu thu hồi/cập nhật nào đang chờ", "no pending recall for this document")
        code = StatusCode.RECALL_AGREED if agree else StatusCode.RECALL_REFUSED
        return await self._send_status(principal, d, code, reason, None)

    # -- sender side ---------------------------------------------------------------------------
    async def sent(self, principal: Principal, query: SentQuery) -> list[SentItem]:
        principal.require(Role.AGENCY)
        for code in query.senders:
            principal.require_agency(code)
        page = await self.store.sent(query)
        out = []
        for m in page.items:
            out.append(SentItem(m, tuple(await self.store.deliveries_of(m.message_id))))
        return out

    async def sent_page(self, principal: Principal, query: SentQuery) -> tuple[list[SentItem], str | None]:
        principal.require(Role.AGENCY)
        for code in query.senders:
            principal.require_agency(code)
        page = await self.store.sent(query)
        items = [SentItem(m, tuple(await self.store.deliveries_of(m.message_id))) for m in page.items]
        return items, page.next_cursor

    async def sent_item(self, principal: Principal, message_id: str, *, trails: bool = True) -> SentItem:
        deliveries = await self.store.deliveries_of(message_id)
        if not deliveries or deliveries[0].message is None or deliveries[0].message.origin_node != self.node_id:
            raise NotFound("Không tìm thấy văn bản đã gửi", f"no sent message {message_id}")
        message = deliveries[0].message
        if not (principal.may_act_for(message.sender) or principal.role == Role.AUDITOR):
            raise NotFound("Không tìm thấy văn bản đã gửi", f"no sent message {message_id}")
        trail_map = await self.store.reports_trail([d.delivery_id for d in deliveries]) if trails else {}
        return SentItem(message, tuple(deliveries), trail_map)

    async def recall(self, principal: Principal, agency: str, document_id: str,
                     recipients: Sequence[str] = (), reason: str | None = None) -> RecallResult:
        """Lấy lại (13): withdraw what has not left yet; ask the recipients that have it to agree (15/16)."""
        principal.require_agency(agency)
        mine = [d for d in await self.store.find_deliveries(sender=agency, document_id=document_id)
                if d.message is not None and d.message.origin_node == self.node_id]
        if recipients:
            wanted = {self.directory.resolve(r) for r in recipients}
            mine = [d for d in mine if d.recipient in wanted]
        if not mine:
            raise NotFound("Không tìm thấy văn bản đã gửi", f"no document {document_id} sent by {agency}")
        at = self.clock.now().replace(microsecond=0)
        local_cancel = [d.delivery_id for d in mine
                        if d.state in (DeliveryState.QUEUED, DeliveryState.RETRY_WAIT, DeliveryState.DEAD)]
        ask = [d for d in mine if d.delivery_id not in local_cancel and not d.withdrawn
               and d.state != DeliveryState.RECALLED]
        ingests = []
        for d in ask:
            assert d.message is not None
            ingests.append(self._status_ingest(
                sender=agency, recipient=d.recipient, about_sender=agency, document_id=document_id,
                code=StatusCode.RECALL, at=at, doc_meta=d.message.meta, priority=d.priority,
                description=reason or "Đề nghị thu hồi văn bản", received_from=f"api:{principal.system_id}",
            ))
        effects: list[Effect] = []
        if local_cancel:
            effects.append(WithdrawEffect(tuple(local_cancel), at, reason or "recalled before sending"))
        outcomes = await self.store.apply(effects, ingests, at)
        self.notify(destinations=[i.deliveries[0].next_hop for i in ingests] or [None])
        requested = None
        if outcomes:
            requested = SubmitResult(outcomes[0].message_id, document_id, MessageKind.STATUS,
                                     tuple(x for o in outcomes for x in o.deliveries))
        return RecallResult(tuple(local_cancel), requested)

    # -- trails --------------------------------------------------------------------------------
    async def trail(self, principal: Principal, delivery_id: str) -> tuple[Delivery, list[TrailEntry]]:
        d = await self._delivery(delivery_id)
        allowed = principal.role == Role.AUDITOR or (
            principal.role == Role.AGENCY and (principal.may_act_for(d.sender) or
                                               (d.next_hop is None and principal.may_act_for(d.recipient)))
        )
        if not allowed:
            raise NotFound("Không tìm thấy lượt chuyển", f"no delivery {delivery_id}")
        return d, await self.store.trail(delivery_id)

    # -- operators -----------------------------------------------------------------------------
    async def queue(self, principal: Principal, query: QueueQuery) -> Page:
        principal.require(Role.OPERATOR)
        return await self.store.queue(query)

    async def queue_item(self, principal: Principal, delivery_id: str) -> tuple[Delivery, list[TrailEntry]]:
        principal.require(Role.OPERATOR)
        d = await self._delivery(delivery_id)
        return d, await self.store.trail(delivery_id)

    async def resend(self, principal: Principal, delivery_id: str) -> Delivery:
        principal.require(Role.OPERATOR)
        await self._delivery(delivery_id)
        d = await self.store.resend(delivery_id, self.clock.now())
        self.notify(destinations=[d.next_hop])
        return d

    async def purge(self, principal: Principal, delivery_id: str) -> None:
        principal.require(Role.OPERATOR)
        await self._delivery(delivery_id)
        await self.store.purge(delivery_id, self.clock.now())

    async def counts(self, principal: Principal) -> dict[str, dict[str, int]]:
        principal.require(Role.OPERATOR, Role.AUDITOR)
        return await self.store.counts()

    # -- verification results ------------------------------------------------------------------
    def rejection_followups(self, message: Mapping[str, Any], message_id: str, sender: str, document_id: str,
                            priority: int, recipients: Sequence[str], reasons: Sequence[str],
                            at: datetime) -> tuple[Ingest, ...]:
        """Status 02 from each local recipient back to the sender, naming why the document failed."""
        text = "Văn bản không hợp lệ: " + "; ".join(reasons) if reasons else "Văn bản không hợp lệ"
        out = []
        for r in recipients:
            try:
                out.append(self._status_ingest(
                    sender=r, recipient=sender, about_sender=sender, document_id=document_id,
                    code=StatusCode.REJECTED, at=at.replace(microsecond=0), doc_meta=message, priority=priority,
                    description=text[:2000], received_from="node",
                ))
            except UnknownAgency:
                log.warning("no route back to %s for status 02 of %s", sender, message_id)
        return tuple(out)

    def dead_report(self, delivery: Delivery, message: StoredMessage, reason: str,
                    at: datetime) -> tuple[Ingest, ...]:
        """Tell the sender's node a delivery died here (not for reports, to avoid loops)."""
        if delivery.kind == MessageKind.REPORT or message.origin_node == self.node_id:
            return ()
        try:
            return (self._report_ingest(
                [DeliveryEvent(delivery.delivery_id, DeliveryState.DEAD, reason=reason[:500])],
                delivery.sender, delivery.priority, at,
            ),)
        except UnknownAgency:
            return ()

