"""Drafts (văn bản dự thảo): a letter on its way from the clerk's desk to the exchange.

A clerk composes (uploads a PDF or fills the sample-letter form) and names the official who signs; the official
signs with their own certificate; the clerk applies the agency's seal, picks recipients and priority, looks at the
rendered signed page and sends. Each step is a state (:class:`DraftState`), and each step keeps its own file so
nothing signed is ever overwritten::

    composed ──(official signs)──► signed ──(clerk seals)──► sealed ──(clerk sends)──► sent
        └────────────── discarded (any time before sending) ──────────────┘

Drafts live on disk in the node's part of the data directory (``<data_dir>/ui/<node>/drafts/<id>/``:
``draft.json``, ``original.pdf``, ``signed.pdf``, ``sealed.pdf``, ``attachments/``, preview images), one folder
per draft, written atomically; the node store keeps only what has been sent.
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from docexchange.errors import Conflict, NotFound
from docexchange.pki.keystore import write_atomic

__all__ = ["Draft", "DraftAttachment", "DraftEvent", "DraftState", "DraftStore"]

_ID = re.compile(r"^d[0-9a-f]{20}$")
MAX_RECIPIENTS = 200
MAX_ATTACHMENTS = 20


class DraftState(str, enum.Enum):
    COMPOSED = "composed"
    """Waiting for the official's signature."""
    SIGNED = "signed"
    """Signed by the official; waiting for the seal."""
    SEALED = "sealed"
    """Person and seal signatures on; ready to send."""
    SENT = "sent"
    DISCARDED = "discarded"

    def label(self, lang: str) -> str:
        vi, en = {
            "composed": ("chờ lãnh đạo ký", "awaiting signature"),
            "signed": ("đã ký, chờ đóng dấu", "signed, awaiting seal"),
            "sealed": ("đã đóng dấu, sẵn sàng gửi", "sealed, ready to send"),
            "sent": ("đã gửi", "sent"),
            "discarded": ("đã hủy", "discarded"),
        }[self.value]
        return en if lang == "en" else vi


@dataclass(frozen=True)
class DraftEvent:
    at: datetime
    by: str
    action: str
    """``composed``, ``signed``, ``sealed``, ``sent``, ``discarded``, ``edited``."""
    detail: str = ""


@dataclass(frozen=True)
class DraftAttachment:
    name: str
    content_type: str
    size: int
    file: str


@dataclass(frozen=True)
class Draft:
    id: str
    agency: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    state: DraftState
    signer: str
    """Official id of the person who must sign."""
    subject: str
    code_number: str
    code_notation: str
    type_name: str = "Công văn"
    promulgation_date: date | None = None
    source: str = "upload"
    """``upload`` or ``letter`` (the sample-letter form)."""
    document_name: str = "van-ban.pdf"
    priority: int = 0
    due_date: date | None = None
    content: str = ""
    to_places: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    business_type: int = 0
    business_target: str = ""
    business_reason: str = ""
    added_receivers: tuple[str, ...] = ()
    removed_receivers: tuple[str, ...] = ()
    person_cert: str = ""
    """SHA-256 of the certificate the official signed with."""
    seal_cert: str = ""
    sent_message_id: str = ""
    sent_document_id: str = ""
    attachments: tuple[DraftAttachment, ...] = ()
    history: tuple[DraftEvent, ...] = field(default=())

    @property
    def reference(self) -> str:
        return f"{self.code_number}/{self.code_notation}"

    @property
    def current_file(self) -> str:
        return {DraftState.COMPOSED: "original.pdf", DraftState.SIGNED: "signed.pdf"}.get(self.state, "sealed.pdf")

    @property
    def open(self) -> bool:
        return self.state not in (DraftState.SENT, DraftState.DISCARDED)

    def to_json(self) -> dict[str, Any]:
        def conv(v: Any) -> Any:
            if isinstance(v, (datetime, date)):
                return v.isoformat()
            if isinstance(v, enum.Enum):
                return v.value
            if isinstance(v, tuple):
                return [conv(x) for x in v]
            if isinstance(v, (DraftEvent, DraftAttachment)):
                return {k: conv(x) for k, x in v.__dict__.items()}
            return v

        return {k: conv(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Draft:
        def dt(v: Any) -> datetime:
            return datetime.fromisoformat(str(v))

        def d(v: Any) -> date | None:
            return date.fromisoformat(str(v)) if v else None

        return cls(
            id=data["id"], agency=data["agency"], created_by=data["created_by"], created_at=dt(data["created_at"]),
            updated_at=dt(data["updated_at"]), state=DraftState(data["state"]), signer=data["signer"],
            subject=data["subject"], code_number=data["code_number"], code_notation=data["code_notation"],
            type_name=data.get("type_name", "Công văn"), promulgation_date=d(data.get("promulgation_date")),
            source=data.get("source", "upload"), document_name=data.get("document_name", "van-ban.pdf"),
            priority=int(data.get("priority", 0)), due_date=d(data.get("due_date")), content=data.get("content", ""),
            to_places=tuple(data.get("to_places", ())), recipients=tuple(data.get("recipients", ())),
            business_type=int(data.get("business_type", 0)), business_target=data.get("business_target", ""),
            business_reason=data.get("business_reason", ""),
            added_receivers=tuple(data.get("added_receivers", ())),
            removed_receivers=tuple(data.get("removed_receivers", ())),
            person_cert=data.get("person_cert", ""), seal_cert=data.get("seal_cert", ""),
            sent_message_id=data.get("sent_message_id", ""), sent_document_id=data.get("sent_document_id", ""),
            attachments=tuple(DraftAttachment(**a) for a in data.get("attachments", ())),
            history=tuple(DraftEvent(at=dt(e["at"]), by=e["by"], action=e["action"], detail=e.get("detail", ""))
                          for e in data.get("history", ())),
        )


class DraftStore:
    """Drafts of one node, on disk. Changes to one draft are serialised by a per-draft lock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    def _dir(self, draft_id: str) -> Path:
        if not _ID.match(draft_id):
            raise NotFound("Không tìm thấy văn bản dự thảo", f"no draft {draft_id!r}")
        return self.root / draft_id

    def lock(self, draft_id: str) -> asyncio.Lock:
        lock = self._locks.get(draft_id)
        if lock is None:
            lock = self._locks[draft_id] = asyncio.Lock()
        return lock

    @staticmethod
    def new_id() -> str:
        return "d" + secrets.token_hex(10)

    def create(self, draft: Draft, original: bytes, attachments: list[tuple[str, str, bytes]]) -> Draft:
        folder = self._dir(draft.id)
        folder.mkdir(parents=True, exist_ok=False)
        write_atomic(folder / "original.pdf", original, mode=0o600)
        atts = []
        for i, (name, ctype, data) in enumerate(attachments[:MAX_ATTACHMENTS]):
            rel = f"attachments/{i:02d}.bin"
            write_atomic(folder / rel, data, mode=0o600)
            atts.append(DraftAttachment(name=name, content_type=ctype, size=len(data), file=rel))
        draft = replace(draft, attachments=tuple(atts))
        self.save(draft)
        return draft

    def save(self, draft: Draft) -> None:
        body = json.dumps(draft.to_json(), ensure_ascii=False, indent=1).encode()
        write_atomic(self._dir(draft.id) / "draft.json", body, mode=0o600)

    def get(self, draft_id: str) -> Draft:
        path = self._dir(draft_id) / "draft.json"
        try:
            return Draft.from_json(json.loads(path.read_text("utf-8")))
        except FileNotFoundError:
            raise NotFound("Không tìm thấy văn bản dự thảo", f"no draft {draft_id}") from None

    def for_agency(self, agency: str, draft_id: str) -> Draft:
        """A draft of ``agency``; another agency's draft is "not found" (its existence is not revealed)."""
        draft = self.get(draft_id)
        if draft.agency != agency:
            raise NotFound("Không tìm thấy văn bản dự thảo", f"no draft {draft_id}")
        return draft

    def read(self, draft: Draft, name: str) -> bytes:
        if name not in ("original.pdf", "signed.pdf", "sealed.pdf") and not re.fullmatch(r"attachments/\d\d\.bin",
                                                                                         name):
            raise NotFound("Không có tệp này", f"no file {name!r}")
        try:
            return (self._dir(draft.id) / name).read_bytes()
        except FileNotFoundError:
            raise NotFound("Không có tệp này", f"no file {name!r}") from None

    def write(self, draft: Draft, name: str, data: bytes) -> None:
        if name not in ("signed.pdf", "sealed.pdf"):
            raise Conflict("Tệp không ghi được", f"cannot write {name!r}")
        write_atomic(self._dir(draft.id) / name, data, mode=0o600)

    def preview_path(self, draft: Draft, stage: str, page: int) -> Path:
        return self._dir(draft.id) / "previews" / f"{stage}-{page:03d}.png"

    def all(self) -> Iterator[Draft]:
        if not self.root.exists():
            return
        for folder in sorted(self.root.iterdir()):
            if _ID.match(folder.name) and (folder / "draft.json").exists():
                try:
                    yield Draft.from_json(json.loads((folder / "draft.json").read_text("utf-8")))
                except (ValueError, KeyError):
                    continue

    def list(self, agency: str, *, open_only: bool = False) -> list[Draft]:
        out = [d for d in self.all() if d.agency == agency and (d.open or not open_only)]
        return sorted(out, key=lambda d: d.updated_at, reverse=True)

    def purge_files(self, draft: Draft) -> None:
        """Drop the working files of a discarded draft (keep draft.json as its record)."""
        folder = self._dir(draft.id)
        for name in ("original.pdf", "signed.pdf", "sealed.pdf"):
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / "attachments", ignore_errors=True)
        shutil.rmtree(folder / "previews", ignore_errors=True)
