"""The exchange's command line: ``docexchange send`` / ``inbox`` for scripting against a node, and
``docexchange demo`` from nothing (a project folder with only its config, free ports)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from exchange_harness import HONG_GAI, THUAN_HOA, Federation, eventually, write_directory

from docexchange.config import Settings
from docexchange.web.auth import Role
from helpers import REPO, free_port

pytestmark = pytest.mark.slow


def run(settings_dir: Path, *args: str, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    cfg = settings_dir / "config" / "docexchange.toml"
    return subprocess.run([sys.executable, "-m", "docexchange", *args], cwd=settings_dir, capture_output=True,
                          text=True, check=False, timeout=timeout,
                          env=dict(os.environ, DOCEXCHANGE_CONFIG=str(cfg), **(env or {})))


async def test_send_and_inbox_commands(federation: Federation, fed_settings: Settings, tmp_path: Path,
                                       letters: dict[str, bytes]) -> None:
    base = Path(fed_settings.base_dir)
    hg_secret = await federation.credential("lgsp-h49-hg", "cli-hg", Role.AGENCY, [HONG_GAI])
    th_secret_file = tmp_path / "th.secret"
    th_secret_file.write_text(await federation.credential("lgsp-h57", "cli-th", Role.AGENCY, [THUAN_HOA]))
    pdf = tmp_path / "cong-van.pdf"
    pdf.write_bytes(letters[HONG_GAI])
    env = {"DOCEXCHANGE_SYSTEM_ID": "cli-hg", "DOCEXCHANGE_SECRET": hg_secret}
    sent = await asyncio.to_thread(run, base, "send", "--as", HONG_GAI, "--to", THUAN_HOA, "--subject",
                                   "Gửi bằng dòng lệnh", "--number", "77", "--notation", "UBND-VP", "--priority", "3",
                                   "--json", str(pdf), env=env)
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    did = result["deliveries"][0]["delivery_id"]
    again = await asyncio.to_thread(run, base, "send", "--as", HONG_GAI, "--to", THUAN_HOA, "--subject",
                                    "Gửi bằng dòng lệnh", "--number", "77", "--notation", "UBND-VP", str(pdf), env=env)
    assert again.returncode == 0 and "duplicate" in again.stdout

    th = await federation.client(THUAN_HOA)
    await eventually(lambda: _arrived(th, did), what="arrival")
    th_args = ("--as", THUAN_HOA, "--system-id", "cli-th", "--secret-file", str(th_secret_file))
    listing = await asyncio.to_thread(run, base, "inbox", *th_args)
    assert listing.returncode == 0, listing.stderr
    assert "Hỏa tốc" in listing.stdout and "Gửi bằng dòng lệnh" in listing.stdout and did in listing.stdout
    out = tmp_path / "out"
    fetched = await asyncio.to_thread(run, base, "inbox", *th_args, "--fetch", did, "--out", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert (out / "cong-van.pdf").read_bytes() == letters[HONG_GAI]
    assert (out / f"{did}.xml").read_bytes().startswith(b"<?xml")
    acked = await asyncio.to_thread(run, base, "inbox", *th_args, "--ack", did)
    assert acked.returncode == 0 and '"acknowledged"' in acked.stdout
    status = await asyncio.to_thread(run, base, "inbox", *th_args, "--status", did, "02")
    assert status.returncode != 0 and "lý do" in status.stderr  # 02 needs a reason
    # Wrong secret: a clear error, not a traceback.
    bad = await asyncio.to_thread(run, base, "inbox", "--as", THUAN_HOA, env={"DOCEXCHANGE_SYSTEM_ID": "cli-th",
                                                                              "DOCEXCHANGE_SECRET": "wrong"})
    assert bad.returncode != 0 and "Lỗi [auth]" in bad.stderr and "Traceback" not in bad.stderr


async def _arrived(client: object, did: str) -> bool:
    items = (await client.inbox(THUAN_HOA))["items"]  # type: ignore[attr-defined]
    return any(i["delivery_id"] == did for i in items)


def test_demo_from_nothing(tmp_path: Path) -> None:
    """A folder with only the project's config (ports made free): the demo builds the PKI, runs three nodes,
    signs and sends, sees everything arrive verified and the statuses come back, and exits 0."""
    project = tmp_path / "clone"
    (project / "config").mkdir(parents=True)
    write_directory(project / "config" / "agencies.toml", four_level=False)
    toml = (REPO / "config" / "docexchange.toml").read_text().replace("port = 8480", f"port = {free_port()}")
    (project / "config" / "docexchange.toml").write_text(toml)
    out = subprocess.run([sys.executable, "-m", "docexchange", "demo", "--no-wait"], cwd=project,
                         capture_output=True, text=True, timeout=600, check=False,
                         env={k: v for k, v in os.environ.items() if k != "DOCEXCHANGE_CONFIG"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "Chưa có hạ tầng khóa" in text and (project / "keys" / "pki.json").exists()
    assert text.count("— chữ ký: hợp lệ") == 7  # 1 + 1 + 5 recipients, each verified
    assert text.count(": 03 Đã tiếp nhận") == 7
    assert text.count("biên nhận hợp lệ") == 3  # Quảng Ninh → national → Huế
    assert "mọi văn bản đã đến đúng một lần" in text
    assert "(UTC+07:00)" in text
    # the web pages are usable straight away: accounts created, the clerk's sign-in printed and valid
    assert "/ui/ — đăng nhập h49-honggai-van-thu / docexchange-dev" in text
    from docexchange.config import load_settings
    from docexchange.web.users import UserFile

    accounts = UserFile.for_settings(load_settings(project / "config" / "docexchange.toml"))
    clerk = accounts.authenticate("h49-honggai-van-thu", "docexchange-dev")
    assert clerk.agency == "000.01.11.H49"
    shutil.rmtree(project / "keys", ignore_errors=True)
