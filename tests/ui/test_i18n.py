"""Dates as clerks write them, Vietnam time, Vietnamese first with English glosses."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from docexchange.exchange.model import DeliveryState, Verification
from docexchange.web.ui.i18n import Lang, detail_label, event_label, parse_date, pick_lang

VI, EN = Lang("vi"), Lang("en")
# 23:30 on 4 January UTC is 06:30 on 5 January in Vietnam
MOMENT = datetime(2025, 1, 4, 23, 30, 5, tzinfo=UTC)


def test_dates_in_vietnam_time() -> None:
    assert VI.long_date(MOMENT) == "ngày 05 tháng 01 năm 2025"
    assert VI.long_date(date(2020, 3, 5)) == "ngày 05 tháng 03 năm 2020"
    assert EN.long_date(MOMENT) == "5 January 2025"
    assert VI.when(MOMENT) == "06:30 ngày 05/01/2025"
    assert VI.when(MOMENT, True) == "06:30:05 ngày 05/01/2025"
    assert EN.when(MOMENT) == "05/01/2025 06:30"
    assert VI.short_date(MOMENT) == "05/01/2025"
    assert VI.iso(MOMENT) == "2025-01-05T06:30:05+07:00"
    assert VI.when(None) == "—" and VI.long_date(None) == "—"


@pytest.mark.parametrize("text,expected", [
    ("05/01/2025", date(2025, 1, 5)), ("5/1/2025", date(2025, 1, 5)), ("05-01-2025", date(2025, 1, 5)),
    ("05.01.2025", date(2025, 1, 5)), ("2025-01-05", date(2025, 1, 5)),
])
def test_parse_dates_as_typed(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["31/02/2025", "01/13/2025", "hôm nay", "2025/01/05x", ""])
def test_parse_date_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


def test_labels() -> None:
    assert VI.priority(3) == "Hỏa tốc" and EN.priority(0) == "Normal" and VI.priority(99) == "Thường"
    assert VI.status("03") == "Đã tiếp nhận" and EN.status("02").startswith("Returned")
    assert VI.state(DeliveryState.DEAD) == "gửi không thành công" and EN.state(DeliveryState.DEAD).startswith("failed")
    assert VI.verification(Verification.PASSED) == "hợp lệ"
    assert VI.verification(Verification.FAILED) == "không hợp lệ"
    assert VI.verification(Verification.INDETERMINATE) == "chưa xác định"
    assert event_label("status:03", "vi") == "ghi nhận trạng thái 03 (Đã tiếp nhận)"
    assert event_label("stored", "en") == "stored, receipt signed"
    assert detail_label("verified", "passed", "vi") == "hợp lệ"
    assert detail_label("recall_requested", "replace", "vi") == "thay thế"
    assert detail_label("stored", "anything", "vi") == "anything"
    assert VI.t("Văn bản đến", "Inbox") == "Văn bản đến" and EN.t("Văn bản đến", "Inbox") == "Inbox"


def test_language_choice_defaults_to_vietnamese() -> None:
    assert pick_lang(None, None, "en-US,en;q=0.9") == "vi"
    assert pick_lang("en", None, None) == "en"
    assert pick_lang("en", "vi", None) == "vi"
    assert pick_lang("fr", "de", None) == "vi"
