"""``docexchange demo``: the whole exchange on one machine, from nothing.

Builds the dev PKI if it is missing, starts the trust services (TSA, OCSP, CRL), the national axis and the two
provincial axes of the directory on SQLite, signs sample letters (the official, then the seal, as NĐ 30
requires) and sends them:

* a commune of Quảng Ninh → the Government Office (national axis);
* that commune → a commune of Huế (through the national axis);
* UBND tỉnh Quảng Ninh → its department, districts and communes, Hỏa tốc;

shows each letter arriving and verified (NĐ 30 profile) with statuses flowing back, the journey of one of them
node by node with its signed receipts, then leaves the nodes running with their URLs and the credentials to
call them (``docexchange inbox``). Output in Vietnamese, times in Vietnam time.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from docexchange.cli.runtime import CliContext, pass_ctx
from docexchange.clock import SystemClock, vn_datetime, vn_long_date
from docexchange.config import Settings
from docexchange.directory import Directory
from docexchange.errors import ConfigError, DocExchangeError

__all__ = ["SCENARIO", "Letter", "demo"]

HONG_GAI = "000.01.11.H49"
THUAN_HOA = "000.00.31.H57"
VPCP = "000.00.00.G22"
H49 = "000.00.00.H49"


@dataclass(frozen=True)
class Letter:
    title: str
    official: str
    sender: str
    to: tuple[str, ...]
    subject: str
    doc_type: str
    notation: str
    priority: int = 0


SCENARIO = (
    Letter("Xã/phường gửi Văn phòng Chính phủ", "h49-honggai-chu-tich", HONG_GAI, (VPCP,),
           "Báo cáo kết quả triển khai gửi, nhận văn bản điện tử trên địa bàn phường", "BÁO CÁO", "BC-UBND"),
    Letter("Xã/phường gửi phường của tỉnh khác (qua trục quốc gia)", "h49-honggai-chu-tich", HONG_GAI, (THUAN_HOA,),
           "Về việc trao đổi kinh nghiệm chuyển đổi số cấp xã", "CÔNG VĂN", "UBND-VP"),
    Letter("Tỉnh gửi sở, huyện, xã trực thuộc", "h49-chu-tich", H49,
           ("000.00.01.H49", "000.00.11.H49", "000.00.12.H49", HONG_GAI, "000.02.12.H49"),
           "Về việc ứng phó khẩn cấp với bão số 3", "CÔNG ĐIỆN", "CĐ-UBND", 3),
)


def _say(text: str, **style: Any) -> None:
    click.secho(text, **style)


def _now() -> str:
    return vn_datetime(SystemClock().now())


def _ensure_pki(settings: Settings, directory: Directory) -> None:
    from docexchange.pki.devpki import DevPki

    pki = DevPki.from_settings(settings)
    fresh = not pki.exists()
    if fresh:
        _say("① Chưa có hạ tầng khóa: đang tạo CA, chứng thư con dấu, cán bộ và trục (lần đầu ~15 giây)…",
             fg="cyan")
    steps = {"n": 0}

    def progress(_msg: str) -> None:
        steps["n"] += 1

    report = pki.init(directory, progress=progress)
    if fresh:
        _say(f"   Đã tạo {len(report.created)} mục trong {pki.keys_dir}", fg="green")
    else:
        _say(f"① Hạ tầng khóa thử nghiệm có sẵn ({pki.keys_dir}); bổ sung {len(report.created)} mục", fg="cyan")


def _ensure_users(settings: Settings, directory: Directory) -> bool:
    """Web accounts for the sample agencies (as ``docexchange users init``); True when they use the dev password."""
    from docexchange.web.users import DEV_PASSWORD, UserFile, dev_accounts, env_password

    fixed = env_password()
    uf = UserFile.for_settings(settings)
    existing = {u.username for u in uf.all()}
    accounts = dev_accounts(directory, lambda _u: (fixed or DEV_PASSWORD, fixed is None), SystemClock().now())
    added, _kept = uf.add_many([a for a, _ in accounts if a.username not in existing])
    if added:
        _say(f"   Đã tạo {len(added)} tài khoản trang web ({uf.path})", fg="green")
    return fixed is None


def _sign_all(settings: Settings, directory: Directory, run: str) -> list[tuple[Letter, str, bytes]]:
    from docexchange.signing import LetterSpec, SigningService, make_letter

    out = []
    with SigningService(settings) as service:
        for i, letter in enumerate(SCENARIO, start=1):
            number = f"{run}{i}"
            spec = LetterSpec.for_official(directory, letter.official, number=number, notation=letter.notation,
                                           subject=letter.subject, doc_type=letter.doc_type,
                                           issued=SystemClock().now().date())
            pdf = make_letter(spec)
            pdf = service.sign(pdf, service.person(letter.official))
            pdf = service.sign(pdf, service.seal(letter.sender))
            out.append((letter, number, pdf))
    return out


def _secret_dir(settings: Settings) -> Path:
    return settings.data_dir / "demo-credentials"


async def _scenario(settings: Settings, nodeset: Any, directory: Directory, *, step_seconds: float) -> bool:
    from docexchange.exchange.receipts import verify_receipt
    from docexchange.pki.devpki import DevPki
    from docexchange.web.auth import Role
    from docexchange.web.client import AgencyClient
    from docexchange.web.keys import CREDENTIALS

    ca = settings.keys_dir / "ca" / "root.crt"
    agencies = sorted({a for letter in SCENARIO for a in (letter.sender, *letter.to)})
    clients: dict[str, AgencyClient] = {}
    secrets_dir = _secret_dir(settings)
    secrets_dir.mkdir(parents=True, exist_ok=True)
    for code in agencies:
        node_id = directory.agency(code).node
        sid = f"demo-{code.replace('.', '-').lower()}"
        _, secret = await nodeset.apps[node_id][CREDENTIALS].create(sid, Role.AGENCY, [code], "docexchange demo",
                                                                     replace_existing=True)
        path = secrets_dir / f"{sid}.secret"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        clients[code] = AgencyClient(directory.node(node_id).url, sid, secret, ca_file=ca)
    run = SystemClock().now().strftime("%H%M%S")
    _say(f"③ Ký văn bản mẫu: người có thẩm quyền ký trước, văn thư ký số con dấu sau (NĐ 30) — {_now()}", fg="cyan")
    signed = await asyncio.to_thread(_sign_all, settings, directory, run)
    ok = True
    try:
        sent: list[tuple[Letter, dict[str, Any]]] = []
        _say("④ Gửi văn bản qua trục liên thông", fg="cyan")
        for letter, number, pdf in signed:
            meta = {"to": list(letter.to), "subject": letter.subject, "code_number": number,
                    "code_notation": letter.notation, "type_name": letter.doc_type.capitalize(),
                    "priority": letter.priority}
            agency, official = directory.find_official(letter.official)
            meta["signer"] = {"full_name": official.full_name, "position": official.position,
                              "competence": official.competence}
            result = await clients[letter.sender].submit_document(letter.sender, meta, pdf,
                                                                  name=f"{number}-{letter.notation}.pdf")
            sent.append((letter, result))
            flag = "  ‼ HỎA TỐC" if letter.priority >= 3 else ""
            _say(f"   ➜ {letter.title}{flag}", bold=True)
            _say(f"     Số {number}/{letter.notation} của {agency.name} — {len(pdf) // 1024} KB, "
                 f"{len(result['deliveries'])} nơi nhận — trục đã nhận và ký biên nhận lúc {_now()}")
        _say("⑤ Văn bản đến, được kiểm tra chữ ký tự động (NĐ 30: cá nhân + con dấu của cơ quan gửi)", fg="cyan")
        deadline = time.monotonic() + step_seconds
        for letter, result in sent:
            for d in result["deliveries"]:
                rc = d["recipient"]
                item = await _wait_verified(clients[rc], rc, d["delivery_id"], deadline)
                if item is None:
                    ok = False
                    _say(f"   ✗ {directory.agency(rc).name}: chưa đến sau {step_seconds:.0f} giây", fg="red")
                    continue
                verdict = item["verification_label_vi"]
                color = "green" if item["verification"] == "passed" else "red"
                ok = ok and item["verification"] == "passed"
                when = vn_datetime(datetime.fromisoformat(item["delivered_at"]))
                _say(f"   ✓ {when}  {directory.agency(rc).name} nhận «{letter.subject[:60]}» "
                     f"[{item['priority_label_vi']}] — chữ ký: ", nl=False)
                _say(verdict, fg=color, bold=True)
                await clients[rc].ack(rc, d["delivery_id"])
                await clients[rc].status(rc, d["delivery_id"], "03", "Đã vào sổ văn bản đến")
        _say("⑥ Trạng thái gửi ngược về nơi gửi (01 đã đến, 03 đã tiếp nhận)", fg="cyan")
        for letter, result in sent:
            item = await _wait_statuses(clients[letter.sender], letter.sender, result["message_id"], deadline)
            for r in (item or {}).get("recipients", []):
                label = r["recipient_status_label_vi"] or "—"
                _say(f"   ↩ {directory.agency(letter.sender).short_name or letter.sender} ← "
                     f"{directory.agency(r['recipient']).name}: {r['recipient_status']} {label} "
                     f"({r['state_label_vi']})")
            if item is None:
                ok = False
        letter, result = sent[1]
        item = await clients[letter.sender].sent_item(letter.sender, result["message_id"])
        trail = item["recipients"][0]["trail"]
        pki = DevPki.open(settings)
        _say("⑦ Hành trình của văn bản Hồng Gai → Thuận Hóa, từng trục, với biên nhận ký số", fg="cyan")
        for e in trail:
            if e["event"] != "stored":
                continue
            try:
                verify_receipt(e["receipt"], pki.node_cert(e["node"]), node=e["node"])
                mark = "biên nhận hợp lệ"
            except DocExchangeError:
                mark = "BIÊN NHẬN KHÔNG HỢP LỆ"
                ok = False
            _say(f"   • {e['at_vn']}  {e['node_name']}: đã lưu, SHA-256 {e['digest'][:16]}… — {mark}")
    finally:
        for c in clients.values():
            await c.close()
    return ok


async def _wait_verified(client: Any, agency: str, did: str, deadline: float) -> dict[str, Any] | None:
    from docexchange.errors import NotFound

    while time.monotonic() < deadline:
        try:
            item = await client.item(agency, did)
        except NotFound:
            await client.inbox(agency, wait=2, kind="document")
            continue
        if item["verification"] not in ("pending",):
            return dict(item)
        await asyncio.sleep(0.3)
    return None


async def _wait_statuses(client: Any, agency: str, message_id: str, deadline: float) -> dict[str, Any] | None:
    while time.monotonic() < deadline:
        item = await client.sent_item(agency, message_id)
        if all(r["recipient_status"] in ("03", "04", "05", "06") for r in item["recipients"]):
            return dict(item)
        await asyncio.sleep(0.3)
    return None


@click.command()
@click.option("--no-wait", is_flag=True, help="Thoát sau kịch bản, không để các trục chạy (exit after the run).")
@click.option("--timeout", type=float, default=180.0, show_default=True, help="Chờ tối đa (giây) cho mỗi bước.")
@pass_ctx
def demo(ctx: CliContext, no_wait: bool, timeout: float) -> None:
    """Chạy thử toàn bộ: PKI, ba trục, ký và gửi văn bản mẫu — the whole exchange on this machine."""
    from docexchange.cli.serve import NodeSet, start_trust_services

    settings = ctx.settings
    directory = ctx.directory()
    _say(f"docexchange — chạy thử liên thông văn bản điện tử, {vn_long_date(SystemClock().now())}", bold=True)
    _ensure_pki(settings, directory)
    dev_password = _ensure_users(settings, directory)
    node_ids = [n.id for n in directory.nodes]

    async def main() -> bool:
        import signal

        trust = await start_trust_services(settings, quiet=True)
        nodeset = NodeSet(settings)
        try:
            await nodeset.start(node_ids, verify_on_arrival=True, quiet=True)
            _say(f"② Đã chạy dịch vụ tin cậy (TSA/OCSP/CRL) và {len(node_ids)} trục trên SQLite "
                 f"({settings.data_dir})", fg="cyan")
            ok = await _scenario(settings, nodeset, directory, step_seconds=timeout)
            _say("")
            _say("Kết quả: mọi văn bản đã đến đúng một lần, hợp lệ, trạng thái đã về nơi gửi." if ok else
                 "Kết quả: có bước chưa hoàn thành (xem ở trên).", fg="green" if ok else "red", bold=True)
            _say("Các trục đang chạy (the nodes are running):", bold=True)
            for n in directory.nodes:
                _say(f"   {n.name}: {n.url}  (API: {n.url}/openapi.json)")
            _say(f"   Dịch vụ tin cậy: {settings.pki.base_url}")
            home = directory.node(directory.agency(HONG_GAI).node)
            password = "docexchange-dev" if dev_password else "$DOCEXCHANGE_USER_PASSWORD"
            _say(f"Trang web cho văn thư, lãnh đạo, kiểm tra viên (web pages): {home.url}/ui/ — đăng nhập "
                 f"h49-honggai-van-thu / {password} (mỗi cơ quan đăng nhập ở trục của mình; "
                 "'docexchange users list' liệt kê tài khoản)")
            _say(f"Thông tin xác thực của các cơ quan thử: {_secret_dir(settings)}/*.secret — ví dụ:")
            _say(f"   DOCEXCHANGE_SYSTEM_ID=demo-{THUAN_HOA.replace('.', '-').lower()} "
                 f"DOCEXCHANGE_SECRET=$(cat {_secret_dir(settings)}/demo-{THUAN_HOA.replace('.', '-').lower()}"
                 f".secret) docexchange inbox --as {THUAN_HOA}")
            if no_wait:
                return ok
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            _say("Nhấn Ctrl+C để dừng (press Ctrl+C to stop).")
            await stop.wait()
            return ok
        finally:
            await nodeset.stop()
            await trust.cleanup()

    try:
        ok = asyncio.run(main())
    except ConfigError as exc:
        raise ConfigError(
            f"{exc.message_vi} — demo dùng các cổng trong config/agencies.toml và [pki] port",
            f"{exc.message_en} — the demo uses the ports of config/agencies.toml and [pki] port",
        ) from exc
    if not ok:
        raise SystemExit(1)
