"""The packaged client (:class:`docexchange.client.AxisClient`) and the CLI (``docexchange agency credentials``,
``docexchange axis``) against three real nodes: credentials issued by the operator's command while the nodes
run, a signed letter sent with ``axis send``, fetched and acknowledged, a status back, errors as exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from vxp_harness import HONG_GAI, SNV_HUE, THUAN_HOA

from docexchange.client import AxisClient, AxisError
from docexchange.clock import VN_TZ
from docexchange.config import Settings
from docexchange.edxml import read_packet, write_status
from docexchange.edxml.model import Organization, ResponseFor, StaffInfo, StatusCode, StatusPacket

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def cli(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``python -m docexchange …`` as a child process (the nodes keep serving in this event loop meanwhile)."""
    cfg = Path(settings.base_dir) / "config" / "docexchange.toml"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCEXCHANGE_")}
    full_env.update(DOCEXCHANGE_CONFIG=str(cfg), PYTHONUNBUFFERED="1", **(env or {}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "docexchange", *args, cwd=settings.base_dir, env=full_env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8"), err.decode("utf-8")


async def poll(check: Any, what: str, within: float = 90.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _client(axis: Any, node_id: str, system_id: str, secret: str) -> AxisClient:
    return AxisClient(axis.url(node_id), system_id, secret, ca_file=Path(axis.ca_file))


async def test_operator_and_agency_commands_end_to_end(axis: Any, letter: Any, vxp_settings: Settings,
                                                       tmp_path: Path) -> None:
    s = vxp_settings
    # The operator issues credentials while the nodes run; the home node is found from the agency.
    rc, out, err = await cli(s, "agency", "credentials", "create", "--system-id", "qlvb-honggai",
                             "--agency", HONG_GAI, "--label", "QLVB phường Hồng Gai")
    assert rc == 0, err
    assert "lgsp-h49" in out and "chỉ hiển thị một lần" in err
    commune_secret = out.strip().splitlines()[-1]
    assert len(commune_secret) >= 40

    secret_file = tmp_path / "hue.secret"
    rc, out, err = await cli(s, "agency", "credentials", "create", "--node", "lgsp-h57", "--system-id", "qlvb-hue",
                             "--agency", SNV_HUE, "--agency", THUAN_HOA, "--secret-file", str(secret_file))
    assert rc == 0, err
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    hue_secret = secret_file.read_text().strip()
    assert hue_secret not in out + err

    rc, out, err = await cli(s, "agency", "credentials", "create", "--system-id", "qlvb-hue", "--agency", SNV_HUE)
    assert rc == 78 and "đã tồn tại" in err
    rc, out, err = await cli(s, "agency", "credentials", "create", "--system-id", "qlvb-mixed",
                             "--agency", HONG_GAI, "--agency", SNV_HUE)
    assert rc == 78 and "nhiều trục" in err

    rc, out, _ = await cli(s, "agency", "credentials", "list", "--node", "lgsp-h57", "--json")
    assert rc == 0
    (row,) = [r for r in json.loads(out) if r["system_id"] == "qlvb-hue"]
    assert row["agencies"] == sorted([SNV_HUE, THUAN_HOA]) and row["role"] == "agency" and row["revoked_at"] is None
    assert hue_secret not in out

    commune_env = {"DOCEXCHANGE_SYSTEM_ID": "qlvb-honggai", "DOCEXCHANGE_SECRET": commune_secret}
    hue_args = ["--system-id", "qlvb-hue", "--secret-file", str(secret_file)]

    # axis send: the packet as it is; its kind read from the packet.
    packet_file = tmp_path / "cv-12.xml"
    packet_file.write_bytes(letter.packet)
    rc, out, err = await cli(s, "axis", "send", str(packet_file), "--from", HONG_GAI, "--to", SNV_HUE, "--json",
                             env=commune_env)
    assert rc == 0, err
    sent = json.loads(out)
    assert sent["status"] == "OK" and sent["documentId"] == letter.document_id and not sent["duplicate"]

    async with _client(axis, "lgsp-h57", "qlvb-hue", hue_secret) as hue, \
            _client(axis, "lgsp-h49", "qlvb-honggai", commune_secret) as commune:
        assert await poll(lambda: hue.count(SNV_HUE), "the letter at Huế") == 1
        page = await hue.received(SNV_HUE)
        (item,) = page.items
        assert page.next_cursor is None and item["documentId"] == letter.document_id
        data = await hue.get_edoc(SNV_HUE, item["docId"])
        packet = read_packet(data)
        assert packet.attachments[0].content == letter.pdf  # type: ignore[union-attr]
        assert [t.organ_id for t in packet.trace_headers] == ["000.00.00.H49", "000.00.00.G22", "000.00.00.H57"]

        # axis list / get / ack / count, as a clerk without software would.
        rc, out, err = await cli(s, "axis", "list", "--from", SNV_HUE, "--json", *hue_args)
        assert rc == 0, err
        assert [i["docId"] for i in json.loads(out)] == [item["docId"]]
        rc, out, err = await cli(s, "axis", "list", "--from", SNV_HUE, *hue_args)
        assert rc == 0 and item["docId"] in out and HONG_GAI in out and "Khẩn" in out
        target = tmp_path / "received.xml"
        rc, out, err = await cli(s, "axis", "get", item["docId"], "--from", SNV_HUE, "-o", str(target), *hue_args)
        assert rc == 0, err
        assert target.read_bytes() == data
        rc, out, err = await cli(s, "axis", "ack", item["docId"], "--from", SNV_HUE, *hue_args)
        assert rc == 0 and "done" in out and "acknowledged" in out
        rc, out, err = await cli(s, "axis", "count", "--from", SNV_HUE, *hue_args)
        assert (rc, out.strip()) == (0, "0")

        # A status 03 written by the "department's software" (our edXML writer), sent with axis send.
        status = write_status(StatusPacket(
            sender=Organization(SNV_HUE, "Sở Nội vụ thành phố Huế"),
            response_for=ResponseFor(HONG_GAI, letter.code, packet.promulgation.date,  # type: ignore[union-attr]
                                     letter.document_id),
            status_code=StatusCode.ACCEPTED, timestamp=datetime.now(VN_TZ).replace(microsecond=0),
            staff_info=StaffInfo(department="Văn phòng", staff="Lê Thị Thu Hà"), description="Đã vào sổ",
        ))
        status_file = tmp_path / "status-03.xml"
        status_file.write_bytes(status)
        rc, out, err = await cli(s, "axis", "send", str(status_file), "--from", SNV_HUE, *hue_args)
        assert rc == 0, err
        assert "trạng thái" in out

        async def statuses() -> Any:
            items = (await commune.received(HONG_GAI, status=True)).items
            return items if {i["statusCode"] for i in items} >= {"01", "03"} else None

        got = await poll(statuses, "statuses 01 and 03 at the commune")
        assert sorted(i["statusCode"] for i in got) == ["01", "03"]
        assert await commune.count(HONG_GAI, status=True) == 2

        async def accepted() -> Any:
            (one,) = (await commune.sent(HONG_GAI)).items
            r = one["recipients"][0]
            return one if r["statusCode"] == "03" and r["state"] == "acknowledged" else None

        await poll(accepted, "status 03 and the acknowledgement on the sender's side")
        rc, out, err = await cli(s, "axis", "list", "--from", HONG_GAI, "--sent", env=commune_env)
        assert rc == 0 and SNV_HUE in out and "[03]" in out and "acknowledged" in out

        rc, out, err = await cli(s, "axis", "agencies", "--node", "lgsp-h49", env=commune_env)
        assert rc == 0 and HONG_GAI in out and "Sở Nội vụ thành phố Huế" in out

        # Errors: a FAIL answer is an AxisError with its ErrorCode; on the command line a message and exit 1.
        with pytest.raises(AxisError) as bad:
            await hue.update_status(SNV_HUE, "khong-co", "done")
        assert (bad.value.error_code, bad.value.http_status) == ("DOC_NOT_FOUND", 404)
        assert "DOC_NOT_FOUND" in bad.value.message_vi and "khong-co" in bad.value.message_vi
        rc, out, err = await cli(s, "axis", "get", "khong-co", "--from", SNV_HUE, *hue_args)
        assert rc == 1 and "DOC_NOT_FOUND" in err and "Không có docId" in err
        async with _client(axis, "lgsp-h57", "qlvb-hue", "not-the-secret") as wrong:
            with pytest.raises(AxisError) as denied:
                await wrong.count(SNV_HUE)
        assert (denied.value.error_code, denied.value.http_status) == ("AUTH_INVALID", 401)
        with pytest.raises(AxisError) as forbidden:
            await hue.count(HONG_GAI)
        assert forbidden.value.error_code == "FORBIDDEN_AGENCY"
        rc, out, err = await cli(s, "axis", "count", "--from", SNV_HUE, "--system-id", "qlvb-hue")
        assert rc == 78 and "DOCEXCHANGE_SECRET" in err

        # Rotation: the new secret works, the old one stops working (the node caches a secret a few seconds).
        rc, out, err = await cli(s, "agency", "credentials", "rotate", "--node", "lgsp-h49",
                                 "--system-id", "qlvb-honggai")
        assert rc == 0, err
        new_secret = out.strip().splitlines()[-1]
        assert new_secret != commune_secret
        async with _client(axis, "lgsp-h49", "qlvb-honggai", new_secret) as rotated:
            assert await poll(lambda: _works(rotated), "the new secret accepted") is True

        async def old_refused() -> bool:
            try:
                await commune.count(HONG_GAI)
            except AxisError as exc:
                return exc.error_code == "AUTH_INVALID"
            return False

        await poll(old_refused, "the old secret refused")
        rc, out, err = await cli(s, "agency", "credentials", "revoke", "--node", "lgsp-h49",
                                 "--system-id", "qlvb-honggai")
        assert rc == 0, err
        async with _client(axis, "lgsp-h49", "qlvb-honggai", new_secret) as revoked:
            await poll(lambda: _refused(revoked), "the revoked system refused")


async def _works(client: AxisClient) -> bool:
    try:
        await client.count(HONG_GAI)
    except AxisError:
        return False
    return True


async def _refused(client: AxisClient) -> bool:
    return not await _works(client)


async def test_client_refuses_a_packet_that_does_not_match_the_announced_digest() -> None:
    """getEdoc answers carry the SHA-256 of the edXML: the client checks it (here against a fake node)."""
    import base64
    import hashlib

    from aiohttp import web

    async def fake(request: web.Request) -> web.Response:
        data = b"<edXML/>"
        return web.json_response({"status": "OK", "ErrorCode": "0", "ErrorDesc": "Thành công",
                                  "data": base64.b64encode(data + b" ").decode(),
                                  "sha256": hashlib.sha256(data).hexdigest()})

    app = web.Application()
    app.router.add_post("/vxp/getEdoc", fake)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with AxisClient(f"http://127.0.0.1:{port}", "x-system", "secret") as c:
            with pytest.raises(AxisError) as bad:
                await c.get_edoc(SNV_HUE, "m1.x")
        assert bad.value.error_code == "BAD_ANSWER"
    finally:
        await runner.cleanup()
