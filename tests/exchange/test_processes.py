"""Nodes as separate OS processes on loopback (``docexchange serve --node X``, real HTTPS, mutual TLS):
commune → commune in another province through the national axis; a middle node killed with SIGKILL in the
middle of a batch of 200 packets and restarted: every packet arrives exactly once (counted)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from exchange_harness import HONG_GAI, THUAN_HOA, NodeProcess, eventually, write_project

from docexchange.config import Settings
from docexchange.exchange.receipts import verify_receipt
from docexchange.pki.devpki import DevPki
from docexchange.web.client import AgencyClient

pytestmark = pytest.mark.slow

NODES = ["lgsp-h49", "vdxp", "lgsp-h57"]
PDF = b"%PDF-1.7\n% docexchange process test\n" + bytes(range(256)) * 40


def credential(settings: Settings, node: str, agency: str, system_id: str) -> str:
    cfg = Path(settings.base_dir) / "config" / "docexchange.toml"
    out = subprocess.run(
        [sys.executable, "-m", "docexchange", "agency", "credentials", "create", "--node", node, "--agency", agency,
         "--system-id", system_id, "--secret-file", str(Path(settings.base_dir) / f"{system_id}.secret")],
        cwd=settings.base_dir, env=dict(os.environ, DOCEXCHANGE_CONFIG=str(cfg)), capture_output=True, text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    return (Path(settings.base_dir) / f"{system_id}.secret").read_text().strip()


@pytest.fixture
def proc_settings(tmp_path: Path, fed_keys: Settings) -> Settings:
    # Each node process checks submitted packets in a worker process of its own, as in production.
    return write_project(tmp_path / "project", fed_keys.keys_dir, fed_keys.pki.port, four_level=False,
                         exchange={"parse_workers": 1})


def meta(n: int) -> dict[str, Any]:
    return {"to": [THUAN_HOA], "subject": f"Văn bản thử số {n}", "code_number": str(n), "code_notation": "UBND-VP",
            "priority": 3 if n % 10 == 0 else 0}


def count_rows(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


async def test_kill_middle_node_during_200_packets(proc_settings: Settings, tmp_path: Path) -> None:
    hg_secret = credential(proc_settings, "lgsp-h49", HONG_GAI, "qlvb-honggai")
    th_secret = credential(proc_settings, "lgsp-h57", THUAN_HOA, "qlvb-thuanhoa")
    procs = {n: NodeProcess(proc_settings, n, tmp_path).start() for n in NODES}
    try:
        for p in procs.values():
            p.wait_ready()
        ca = proc_settings.keys_dir / "ca" / "root.crt"
        from docexchange.directory import load_directory

        d = load_directory(proc_settings.directory_file)
        async with AgencyClient(d.node("lgsp-h49").url, "qlvb-honggai", hg_secret, ca_file=ca) as hg, \
                AgencyClient(d.node("lgsp-h57").url, "qlvb-thuanhoa", th_secret, ca_file=ca) as th:
            # One packet first: it arrives with a full trail and status 01 back.
            first = await hg.submit_document(HONG_GAI, meta(0), PDF)
            mid, did = first["message_id"], first["deliveries"][0]["delivery_id"]

            async def first_back() -> Any:
                r = (await hg.sent_item(HONG_GAI, mid))["recipients"][0]
                return r if r["state"] == "delivered" and r["recipient_status"] == "01" else None

            r = await eventually(first_back, within=60, what="status 01 of the first packet")
            stored = [e for e in r["trail"] if e["event"] == "stored"]
            assert [e["node"] for e in stored] == NODES
            pki = DevPki.open(proc_settings)
            for e in stored:
                verify_receipt(e["receipt"], pki.node_cert(e["node"]), node=e["node"], delivery_id=did)

            # 200 more; the national axis (the middle node) is killed with SIGKILL while they flow.
            sem = asyncio.Semaphore(16)
            submitted: list[dict] = []

            async def submit(n: int) -> None:
                async with sem:
                    for _ in range(100):
                        try:
                            submitted.append(await hg.submit_document(HONG_GAI, meta(n), PDF))
                            return
                        except Exception:  # the sender's node itself stays up; retry anyway
                            await asyncio.sleep(0.2)
                    raise AssertionError(f"could not submit {n}")

            tasks = [asyncio.create_task(submit(n)) for n in range(1, 201)]

            async def forwarded_some() -> bool:
                return sum(1 for s in submitted) >= 60 and count_rows(
                    Path(proc_settings.data_dir) / "vdxp.sqlite",
                    "SELECT COUNT(*) FROM deliveries WHERE state IN ('in_flight', 'forwarded', 'queued')",
                ) >= 20

            await eventually(forwarded_some, within=120, interval=0.05, what="traffic through vdxp")
            procs["vdxp"].kill9()
            arrived_at_kill = count_rows(Path(proc_settings.data_dir) / "lgsp-h57.sqlite",
                                         "SELECT COUNT(*) FROM deliveries WHERE kind = 'document'")
            assert arrived_at_kill < 201, "the kill must happen while packets are still in transit"
            await asyncio.sleep(1.5)
            procs["vdxp"] = NodeProcess(proc_settings, "vdxp", tmp_path).start()
            procs["vdxp"].wait_ready()
            await asyncio.gather(*tasks)
            assert len(submitted) == 200

            async def all_arrived() -> int | None:
                n = count_rows(Path(proc_settings.data_dir) / "lgsp-h57.sqlite",
                               "SELECT COUNT(*) FROM deliveries WHERE next_hop IS NULL AND kind = 'document'")
                return n if n >= 201 else None

            await eventually(all_arrived, within=180, interval=0.5, what="all 201 documents at Thuận Hóa's node")
            await asyncio.sleep(2.0)  # anything late would be a duplicate: give it time to show
            # Counted in the recipient node's database and through the recipient's inbox API.
            db = Path(proc_settings.data_dir) / "lgsp-h57.sqlite"
            assert count_rows(db, "SELECT COUNT(*) FROM deliveries WHERE next_hop IS NULL AND kind = 'document'") == 201
            assert count_rows(db, "SELECT COUNT(DISTINCT document_id) FROM deliveries WHERE kind = 'document'") == 201
            seen: list[str] = []
            cursor = None
            while True:
                page = await th.inbox(THUAN_HOA, kind="document", limit=500, cursor=cursor)
                seen.extend(i["document_id"] for i in page["items"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert len(seen) == 201 and len(set(seen)) == 201
            # And every status 01 made it back: the sender's node has all 201 delivered.
            sender_db = Path(proc_settings.data_dir) / "lgsp-h49.sqlite"

            async def statuses_back() -> int | None:
                n = count_rows(sender_db, "SELECT COUNT(*) FROM deliveries WHERE kind = 'document' "
                                          "AND state = 'delivered' AND recipient_status = '01'")
                return n if n == 201 else None

            await eventually(statuses_back, within=120, interval=0.5, what="201 statuses 01 back at the sender")
            # Duplicate submits after the fact: one delivery still.
            again = await hg.submit_document(HONG_GAI, meta(7), PDF)
            assert again["duplicate"]
            print(json.dumps({"arrived_at_kill": arrived_at_kill, "submitted_at_kill": "≥60"}))
    finally:
        for p in procs.values():
            p.stop()
