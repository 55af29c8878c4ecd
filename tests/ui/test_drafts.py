"""Drafts on disk: one folder per draft, scoped to its agency, files never overwritten by a later step."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from docexchange.errors import Conflict, NotFound
from docexchange.web.ui.drafts import Draft, DraftEvent, DraftState, DraftStore

NOW = datetime(2025, 1, 5, 1, 0, tzinfo=UTC)


def _draft(store: DraftStore, agency: str = "000.00.00.H49", at: datetime = NOW) -> Draft:
    return Draft(id=store.new_id(), agency=agency, created_by="h49-van-thu", created_at=at, updated_at=at,
                 state=DraftState.COMPOSED, signer="h49-chu-tich", subject="Về việc thử nghiệm", code_number="05",
                 code_notation="QĐ-UBND", promulgation_date=date(2025, 1, 5), priority=3, due_date=date(2025, 1, 10),
                 recipients=("000.00.00.H57",), to_places=("Như trên;",),
                 history=(DraftEvent(at, "h49-van-thu", "composed"),))


def test_create_read_and_json_round_trip(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    d = store.create(_draft(store), b"%PDF-1.7 original", [("phu-luc.pdf", "application/pdf", b"%PDF-appendix")])
    assert d.attachments[0].name == "phu-luc.pdf" and d.attachments[0].size == len(b"%PDF-appendix")
    assert store.get(d.id) == d
    assert store.read(d, "original.pdf") == b"%PDF-1.7 original"
    assert store.read(d, d.attachments[0].file) == b"%PDF-appendix"
    assert stat.S_IMODE((tmp_path / d.id / "draft.json").stat().st_mode) == 0o600
    assert d.reference == "05/QĐ-UBND" and d.current_file == "original.pdf"
    signed = replace(d, state=DraftState.SIGNED)
    assert signed.current_file == "signed.pdf" and replace(d, state=DraftState.SENT).current_file == "sealed.pdf"


def test_another_agency_gets_not_found(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    d = store.create(_draft(store), b"%PDF-", [])
    assert store.for_agency("000.00.00.H49", d.id).id == d.id
    with pytest.raises(NotFound):
        store.for_agency("000.00.01.H49", d.id)


@pytest.mark.parametrize("bad", ["../etc", "d123", "D" + "0" * 20, "d" + "0" * 19 + "/", ""])
def test_ids_are_checked(tmp_path: Path, bad: str) -> None:
    with pytest.raises(NotFound):
        DraftStore(tmp_path).get(bad)


def test_only_known_files_are_read_or_written(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    d = store.create(_draft(store), b"%PDF-", [])
    for name in ("draft.json", "../x", "attachments/../../x", "previews/a.png"):
        with pytest.raises(NotFound):
            store.read(d, name)
    with pytest.raises(Conflict):
        store.write(d, "original.pdf", b"x")  # the composed original is never overwritten
    store.write(d, "signed.pdf", b"%PDF-signed")
    assert store.read(d, "signed.pdf") == b"%PDF-signed"


def test_list_newest_first_and_discard(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    a = store.create(_draft(store, at=NOW), b"%PDF-a", [("x.bin", "application/octet-stream", b"x")])
    b = store.create(_draft(store, at=NOW + timedelta(hours=1)), b"%PDF-b", [])
    store.create(_draft(store, agency="000.00.01.H49"), b"%PDF-c", [])
    assert [d.id for d in store.list("000.00.00.H49")] == [b.id, a.id]
    gone = replace(a, state=DraftState.DISCARDED)
    store.save(gone)
    store.purge_files(gone)
    assert [d.id for d in store.list("000.00.00.H49", open_only=True)] == [b.id]
    with pytest.raises(NotFound):
        store.read(gone, "original.pdf")
    assert store.get(a.id).state == DraftState.DISCARDED  # the record stays
