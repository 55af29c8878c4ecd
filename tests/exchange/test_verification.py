"""Arrival verification with the real verifier (NĐ 30 profile: the person's signature, then the seal of the
sending agency): a genuine letter is "hợp lệ"; a letter sealed by another agency is "không hợp lệ" and status 02
goes back to the sender by itself, naming the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from exchange_harness import HONG_GAI, THUAN_HOA, Federation, eventually, write_project

from docexchange.config import Settings
from docexchange.errors import NotFound
from helpers import ServerThread

pytestmark = pytest.mark.slow


@pytest.fixture
async def verifying(tmp_path: Path, fed_keys: Settings, fed_trust: ServerThread) -> Any:
    settings = write_project(tmp_path / "p", fed_keys.keys_dir, fed_keys.pki.port, four_level=False, verify=True)
    fed = Federation(settings)
    await fed.start()
    try:
        yield fed
    finally:
        await fed.close()


def meta(n: str) -> dict[str, Any]:
    return {"to": [THUAN_HOA], "subject": f"Kiểm tra chữ ký {n}", "code_number": n, "code_notation": "UBND-VP"}


async def verified(client: Any, did: str) -> dict | None:
    try:
        item = await client.item(THUAN_HOA, did)
    except NotFound:
        return None  # not arrived yet
    return item if item["verification"] not in ("pending", "skipped") else None


async def test_genuine_letter_passes_and_foreign_seal_is_returned(verifying: Federation,
                                                                  letters: dict[str, bytes]) -> None:
    hg = await verifying.client(HONG_GAI)
    th = await verifying.client(THUAN_HOA)
    good = await hg.submit_document(HONG_GAI, meta("11"), letters[HONG_GAI])
    bad = await hg.submit_document(HONG_GAI, meta("12"), letters["wrong-seal"])
    good_id, bad_id = good["deliveries"][0]["delivery_id"], bad["deliveries"][0]["delivery_id"]

    item = await eventually(lambda: verified(th, good_id), within=120, what="verification of the genuine letter")
    assert item["verification"] == "passed" and item["verification_label_vi"] == "hợp lệ", \
        item["verification_report"]
    assert item["verification_report"]["files"][0]["indication"] == "TOTAL_PASSED"

    item = await eventually(lambda: verified(th, bad_id), within=120, what="verification of the foreign seal")
    assert item["verification"] == "failed" and item["verification_label_vi"] == "không hợp lệ"
    assert "nd30.seal_of_sender" in item["verification_report"]["files"][0]["profile_failures"]
    reasons = item["verification_report"]["reasons_vi"]
    assert reasons, "the reasons are kept"

    async def returned() -> Any:
        r = (await hg.sent_item(HONG_GAI, bad["message_id"]))["recipients"][0]
        return r if r["recipient_status"] == "02" else None

    await eventually(returned, within=60, what="status 02 back at the sender")
    statuses = (await hg.inbox(HONG_GAI, kind="status"))["items"]
    rejection = next(s for s in statuses if s["message"]["status_code"] == "02")
    assert rejection["message"]["meta"]["status"]["description"].startswith("Văn bản không hợp lệ")
    # The genuine one was not returned.
    r = (await hg.sent_item(HONG_GAI, good["message_id"]))["recipients"][0]
    assert r["recipient_status"] == "01"
