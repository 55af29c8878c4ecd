"""Clocks and Vietnam-time helpers.

Stored instants are timezone-aware UTC; everything shown to people is in Vietnam time (UTC+07:00).
The clock is injected everywhere so tests can freeze it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

__all__ = [
    "VN_TZ",
    "Clock",
    "FixedClock",
    "SystemClock",
    "iso_vn",
    "to_vn",
    "vn_datetime",
    "vn_long_date",
]

VN_TZ = timezone(timedelta(hours=7), "ICT")
"""Vietnam time, UTC+07:00 (no daylight saving)."""


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock that stands still until moved; for tests."""

    at: datetime

    def now(self) -> datetime:
        return self.at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self.at = self.at + delta


def to_vn(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: docexchange only handles aware instants")
    return moment.astimezone(VN_TZ)


def vn_long_date(moment: datetime) -> str:
    """The date as clerks write it: ``ngày 05 tháng 01 năm 2025``."""
    d = to_vn(moment)
    return f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"


def vn_datetime(moment: datetime) -> str:
    """Short display form: ``14:05:09 ngày 05/01/2025 (UTC+07:00)``."""
    d = to_vn(moment)
    return f"{d:%H:%M:%S} ngày {d:%d/%m/%Y} (UTC+07:00)"


def iso_vn(moment: datetime) -> str:
    """ISO 8601 in Vietnam time, seconds precision: ``2024-10-10T11:40:00+07:00``."""
    return to_vn(moment).replace(microsecond=0).isoformat()
