"""Words and dates on the pages: Vietnamese first, English on request; every time in Vietnam time.

Templates call ``T("Văn bản đến", "Inbox")``: the Vietnamese text is the source, the English one its gloss, side
by side where they are used (no message catalogue to drift apart). Dates are written the way clerks write them
(``ngày 05 tháng 01 năm 2025``), times as ``14:05 ngày 05/01/2025``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from docexchange.clock import to_vn
from docexchange.exchange.model import PRIORITY_LABELS, STATUS_LABELS, DeliveryState, Verification

__all__ = [
    "LANGS",
    "PRIORITY_EN",
    "STATUS_EN",
    "Lang",
    "priority_label",
    "state_label",
    "status_label",
    "verification_label",
]

LANGS = ("vi", "en")

_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")

PRIORITY_EN = {0: "Normal", 1: "Urgent", 2: "Very urgent", 3: "Express (Hỏa tốc)", 4: "Express, timed"}

STATUS_EN = {
    "01": "Arrived",
    "02": "Returned (rejected)",
    "03": "Accepted",
    "04": "Assigned",
    "05": "In progress",
    "06": "Done",
    "13": "Recalled by sender",
    "15": "Recall/update agreed",
    "16": "Recall/update refused",
}

_STATE_EN = {
    DeliveryState.QUEUED: "queued",
    DeliveryState.IN_FLIGHT: "sending",
    DeliveryState.RETRY_WAIT: "waiting to retry",
    DeliveryState.FORWARDED: "forwarded",
    DeliveryState.DELIVERED: "in the recipient's inbox",
    DeliveryState.ACKNOWLEDGED: "received",
    DeliveryState.DEAD: "failed (dead letter)",
    DeliveryState.RECALLED: "recalled",
}

_VERIFICATION_EN = {
    Verification.PENDING: "being checked",
    Verification.PASSED: "valid",
    Verification.FAILED: "not valid",
    Verification.INDETERMINATE: "indeterminate",
    Verification.SKIPPED: "not checked",
}

_EVENTS = {
    "stored": ("đã lưu và ký biên nhận", "stored, receipt signed"),
    "forwarded": ("đã chuyển tiếp", "forwarded"),
    "delivered": ("đã vào hộp thư", "delivered to the inbox"),
    "acknowledged": ("cơ quan nhận đã lấy văn bản", "fetched by the recipient"),
    "verified": ("đã kiểm tra chữ ký", "signatures checked"),
    "dead": ("gửi không thành công", "failed"),
    "resent": ("gửi lại", "resent"),
    "recalled": ("đã thu hồi", "recalled"),
    "rejected": ("bị từ chối", "rejected"),
    "purged": ("thư chết đã bị xóa", "dead letter purged"),
    "recall_requested": ("nơi gửi đề nghị thu hồi/cập nhật/thay thế", "the sender asks to recall/update/replace"),
}

_RECALL_REQUESTS = {
    "13": ("lấy lại (13)", "recall (13)"),
    "revoke": ("thu hồi", "revocation"),
    "update": ("cập nhật", "update"),
    "replace": ("thay thế", "replacement"),
}

RECALL_STATES = {
    "requested": ("đang đề nghị thu hồi", "recall requested"),
    "agreed": ("đã đồng ý thu hồi", "recall agreed"),
    "refused": ("từ chối thu hồi", "recall refused"),
}


def priority_label(priority: int, lang: str) -> str:
    return PRIORITY_EN.get(priority, "Normal") if lang == "en" else PRIORITY_LABELS.get(priority, "Thường")


def status_label(code: str, lang: str) -> str:
    if not code:
        return ""
    return STATUS_EN.get(code, code) if lang == "en" else STATUS_LABELS.get(code, code)


def state_label(state: DeliveryState, lang: str) -> str:
    return _STATE_EN[state] if lang == "en" else state.label_vi


def verification_label(v: Verification, lang: str) -> str:
    return _VERIFICATION_EN[v] if lang == "en" else v.label_vi


def event_label(event: str, lang: str) -> str:
    if event.startswith("status:"):
        code = event.partition(":")[2]
        return (f"ghi nhận trạng thái {code} ({status_label(code, lang)})" if lang != "en"
                else f"status {code} recorded ({status_label(code, lang)})")
    vi, en = _EVENTS.get(event, (event, event))
    return en if lang == "en" else vi


def detail_label(event: str, detail: str, lang: str) -> str:
    """A trail entry's detail, translated where it is a known word (a verification verdict)."""
    if event == "verified" and detail in Verification._value2member_map_:
        return verification_label(Verification(detail), lang)
    if event == "recall_requested" and detail in _RECALL_REQUESTS:
        vi, en = _RECALL_REQUESTS[detail]
        return en if lang == "en" else vi
    if event == "recalled" and detail.startswith("recall agreed"):
        return "recall agreed (15)" if lang == "en" else "nơi nhận đồng ý thu hồi (15)"
    if event == "recalled" and detail == "recalled before sending":
        return detail if lang == "en" else "rút lại trước khi chuyển đi"
    return detail


@dataclass(frozen=True)
class Lang:
    """The language of one page: translation and date formatting bound to it (passed to templates)."""

    code: str = "vi"

    @property
    def en(self) -> bool:
        return self.code == "en"

    def t(self, vi: str, en: str) -> str:
        return en if self.en else vi

    def long_date(self, value: date | datetime | None) -> str:
        """``ngày 05 tháng 01 năm 2025`` / ``5 January 2025``."""
        if value is None:
            return "—"
        d = to_vn(value).date() if isinstance(value, datetime) else value
        if self.en:
            return f"{d.day} {_MONTHS_EN[d.month - 1]} {d.year}"
        return f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"

    def short_date(self, value: date | datetime | None) -> str:
        """``05/01/2025`` (day/month/year, Vietnam time) for tables."""
        if value is None:
            return "—"
        d = to_vn(value).date() if isinstance(value, datetime) else value
        return f"{d.day:02d}/{d.month:02d}/{d.year}"

    def when(self, value: datetime | None, seconds: bool = False) -> str:
        """``14:05 ngày 05/01/2025`` / ``05/01/2025 14:05`` (Vietnam time)."""
        if value is None:
            return "—"
        d = to_vn(value)
        hm = f"{d:%H:%M:%S}" if seconds else f"{d:%H:%M}"
        if self.en:
            return f"{d:%d/%m/%Y} {hm}"
        return f"{hm} ngày {d:%d/%m/%Y}"

    def iso(self, value: datetime | None) -> str:
        return to_vn(value).replace(microsecond=0).isoformat() if value is not None else ""

    def priority(self, p: int) -> str:
        return priority_label(p, self.code)

    def status(self, code: str) -> str:
        return status_label(code, self.code)

    def state(self, s: DeliveryState) -> str:
        return state_label(s, self.code)

    def verification(self, v: Verification) -> str:
        return verification_label(v, self.code)

    def event(self, e: str) -> str:
        return event_label(e, self.code)

    def detail(self, event: str, detail: str) -> str:
        return detail_label(event, detail, self.code)

    def recall(self, state: str) -> str:
        vi, en = RECALL_STATES.get(state, (state, state))
        return en if self.en else vi

    def functions(self) -> dict[str, Callable[..., str]]:
        return {"T": self.t, "long_date": self.long_date, "short_date": self.short_date, "when": self.when,
                "iso": self.iso}


def parse_date(text: str) -> date:
    """A date as clerks type it: ``05/01/2025`` (day/month/year), ``5/1/2025``, ``05-01-2025`` or ISO
    ``2025-01-05``; :class:`ValueError` otherwise."""
    t = text.strip()
    m = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", t)
    if m:
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    return date.fromisoformat(t)


def pick_lang(cookie: str | None, query: str | None, accept: str | None) -> str:
    """The page language: ``?lang=`` wins, then the ``dx_lang`` cookie, then Vietnamese (the default for every
    user: the browser's Accept-Language is not trusted to pick English)."""
    for cand in (query, cookie):
        if cand in LANGS:
            return cand
    return "vi"
