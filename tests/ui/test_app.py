"""The pages in-process (aiohttp test client against a real node application): sign-in, cookies, CSRF and
origin checks, who sees what, drafts scoped to their agency, signing needs the password again."""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from ui_harness import PROVINCE, PROVINCE_NODE, SO_NOI_VU, write_ui_project

from docexchange.config import Settings
from docexchange.directory import load_directory
from docexchange.signing import LetterSpec, make_letter
from docexchange.web.app import NodeOptions, create_app
from docexchange.web.keys import TLS
from docexchange.web.users import DEV_PASSWORD, UserFile, dev_accounts
from helpers import free_port

pytestmark = pytest.mark.timeout(300)

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def app_settings(ui_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A project of its own (own data directory) sharing the session's dev PKI."""
    base = tmp_path_factory.mktemp("uiapp")
    settings = write_ui_project(base, ui_settings.keys_dir, ui_settings.pki.port)
    from docexchange.clock import SystemClock

    directory = load_directory(settings.directory_file)
    wanted = {"h49-van-thu", "h49-snv-van-thu", "h49-chu-tich", "h49-pho-chu-tich", "kiem-tra", "van-hanh",
              "h49-honggai-van-thu"}
    accounts = [a for a, _ in dev_accounts(directory, lambda _u: (DEV_PASSWORD, True), SystemClock().now())
                if a.username in wanted]
    UserFile.for_settings(settings).add_many(accounts)
    return settings


def _app(settings: Settings) -> web.Application:
    directory = load_directory(settings.directory_file)
    return create_app(settings, directory, PROVINCE_NODE,
                      options=NodeOptions(dispatch=False, schedule=False, verify_on_arrival=False))


@pytest.fixture
async def client(app_settings: Settings) -> AsyncIterator[TestClient]:
    c = TestClient(TestServer(_app(app_settings)))
    await c.start_server()
    try:
        yield c
    finally:
        await c.close()


async def _csrf(client: TestClient, path: str = "/ui/login") -> str:
    resp = await client.get(path)
    m = CSRF.search(await resp.text())
    assert m is not None, path
    return m.group(1)


async def _login(client: TestClient, username: str, password: str = DEV_PASSWORD) -> aiohttp.ClientResponse:
    token = await _csrf(client)
    return await client.post("/ui/login", data={"csrf": token, "username": username, "password": password,
                                                "next": "/ui/"}, allow_redirects=False)


async def test_sign_in_flow_cookie_flags_and_headers(client: TestClient) -> None:
    resp = await client.get("/ui/inbox", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/login?next=/ui/inbox"
    cookie = resp.headers.getall("Set-Cookie")[0]
    resp = await client.get("/ui/login")
    assert cookie.startswith("dx_s_lgsp_h49=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test
    for h in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert h in resp.headers
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store"
    before = CSRF.search(await resp.text()).group(1)  # type: ignore[union-attr]
    resp = await _login(client, "h49-van-thu")
    assert resp.status == 303 and resp.headers["Location"] == "/ui/"
    home = await client.get("/ui/", allow_redirects=False)
    assert home.headers["Location"] == "/ui/inbox"
    page = await client.get("/ui/inbox")
    text = await page.text()
    assert "Văn thư UBND tỉnh Quảng Ninh" in text and 'lang="vi"' in text
    after = CSRF.search(text).group(1)  # type: ignore[union-attr]
    assert after != before  # a fresh token after sign-in
    resp = await client.post("/ui/logout", data={"csrf": after}, allow_redirects=False)
    assert resp.status == 303
    resp = await client.get("/ui/inbox", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/ui/login")


async def test_csrf_and_origin_are_checked(client: TestClient) -> None:
    resp = await client.post("/ui/login", data={"username": "h49-van-thu", "password": DEV_PASSWORD})
    assert resp.status == 403
    token = await _csrf(client)
    resp = await client.post("/ui/login", data={"csrf": token, "username": "h49-van-thu", "password": DEV_PASSWORD},
                             headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert resp.status == 403
    assert (await _login(client, "h49-van-thu")).status == 303
    resp = await client.post("/ui/logout", data={"csrf": "not-the-token"}, allow_redirects=False)
    assert resp.status == 403
    assert (await client.get("/ui/inbox", allow_redirects=False)).status == 200  # still signed in


async def test_wrong_password_wrong_node_and_throttling(client: TestClient) -> None:
    resp = await _login(client, "h49-van-thu", "sai-mat-khau-1")
    assert resp.status == 401 and "Sai tên đăng nhập hoặc mật khẩu" in await resp.text()
    resp = await _login(client, "h49-honggai-van-thu")  # its agency is served by another node
    assert resp.status == 401 and "không đăng nhập tại" in await resp.text()
    for _ in range(5):
        await _login(client, "h49-snv-van-thu", "sai-mat-khau-1")
    resp = await _login(client, "h49-snv-van-thu")  # even the right password waits now
    assert resp.status == 401 and "thử lại sau" in await resp.text()


@pytest.mark.parametrize("user,allowed,refused", [
    ("h49-van-thu", ["/ui/inbox", "/ui/compose", "/ui/drafts", "/ui/sent", "/ui/verify", "/ui/trail"], ["/ui/ops"]),
    ("h49-chu-tich", ["/ui/inbox", "/ui/drafts", "/ui/sent", "/ui/verify"], ["/ui/compose", "/ui/ops"]),
    ("kiem-tra", ["/ui/verify", "/ui/trail"], ["/ui/inbox", "/ui/compose", "/ui/ops", "/ui/sent"]),
    ("van-hanh", ["/ui/ops", "/ui/verify"], ["/ui/inbox", "/ui/compose", "/ui/drafts"]),
])
async def test_pages_by_role(client: TestClient, user: str, allowed: list[str], refused: list[str]) -> None:
    assert (await _login(client, user)).status == 303
    for path in allowed:
        resp = await client.get(path)
        assert resp.status == 200, (user, path, (await resp.text())[:500])
    for path in refused:
        resp = await client.get(path)
        assert resp.status == 403, (user, path)
        assert "không dành cho vai trò" in await resp.text()


async def test_static_fonts_and_language(client: TestClient) -> None:
    css = await client.get("/ui/static/ui.css")
    assert css.status == 200 and "DX Sans" in await css.text()
    font = await client.get("/ui/fonts/sans.ttf")
    assert font.status == 200 and (await font.read())[:4] == b"\x00\x01\x00\x00"
    assert (await client.get("/ui/fonts/../../etc/passwd")).status == 404
    resp = await client.get("/ui/lang/en?next=/ui/login", allow_redirects=False)
    assert resp.status == 303 and "dx_lang=en" in resp.headers["Set-Cookie"]
    text = await (await client.get("/ui/login")).text()
    assert 'lang="en"' in text and "Sign in" in text
    resp = await client.get("/ui/lang/en?next=https://evil.example/", allow_redirects=False)
    assert resp.headers["Location"] == "/ui/"  # no open redirect


async def _compose(client: TestClient, pdf: bytes, signer: str = "h49-chu-tich", subject: str = "Thử nghiệm") \
        -> aiohttp.ClientResponse:
    token = await _csrf(client, "/ui/compose")
    form = aiohttp.FormData()
    for k, v in {"csrf": token, "source": "upload", "type_name": "Công văn", "code_number": "07",
                 "code_notation": "UBND", "subject": subject, "signer": signer, "priority": "2",
                 "due_date": "15/01/2025"}.items():
        form.add_field(k, v)
    form.add_field("document", pdf, filename="cong-van.pdf", content_type="application/pdf")
    return await client.post("/ui/compose", data=form, allow_redirects=False)


async def test_drafts_belong_to_their_agency_and_signing_needs_the_password(app_settings: Settings) -> None:
    directory = load_directory(app_settings.directory_file)
    pdf = make_letter(LetterSpec.for_official(directory, "h49-chu-tich"))
    server = TestServer(_app(app_settings))
    clerk, other = TestClient(server), TestClient(server)  # two browsers on the same node
    await clerk.start_server()
    await other.start_server()
    try:
        assert (await _login(clerk, "h49-van-thu")).status == 303
        bad = await _compose(clerk, b"not a pdf")
        assert bad.status == 400 and "Tệp văn bản phải là PDF" in await bad.text()
        resp = await _compose(clerk, pdf)
        assert resp.status == 303, await resp.text()
        draft = resp.headers["Location"]
        page = await (await clerk.get(draft)).text()
        assert "chờ lãnh đạo ký" in page and "ngày 15 tháng 01 năm 2025" in page
        doc = await clerk.get(draft + "/document.pdf")
        assert doc.content_type == "application/pdf" and (await doc.read()) == pdf
        assert doc.headers["Content-Disposition"].startswith("inline;")
        assert doc.headers["X-Content-Type-Options"] == "nosniff"
        assert "object-src" not in doc.headers["Content-Security-Policy"]  # the browser's PDF viewer may run
        doc = await clerk.get(draft + "/document.pdf?download=1")
        assert doc.headers["Content-Disposition"].startswith("attachment;")
        assert "sandbox" in doc.headers["Content-Security-Policy"]
        png = await clerk.get(draft + "/preview.png")
        assert png.status == 200 and (await png.read())[:8] == b"\x89PNG\r\n\x1a\n"

        # another agency of the same node: not found, by list and by URL (and its files too)
        assert (await _login(other, "h49-snv-van-thu")).status == 303
        assert "Thử nghiệm" not in await (await other.get("/ui/drafts")).text()
        for suffix in ("", "/document.pdf", "/preview.png"):
            resp = await other.get(draft + suffix)
            assert resp.status == 404, suffix
        token = CSRF.search(await (await other.get("/ui/drafts")).text()).group(1)  # type: ignore[union-attr]
        resp = await other.post(draft + "/discard", data={"csrf": token}, allow_redirects=False)
        assert resp.status == 404

        # the other official of the same agency may not sign a draft meant for the chairman
        await other.post("/ui/logout", data={"csrf": token})
        assert (await _login(other, "h49-pho-chu-tich")).status == 303
        token = CSRF.search(await (await other.get(draft)).text()).group(1)  # type: ignore[union-attr]
        resp = await other.post(draft + "/sign", data={"csrf": token, "password": DEV_PASSWORD})
        assert resp.status == 403

        # the chairman must type his password again; a wrong one signs nothing
        await other.post("/ui/logout", data={"csrf": token})
        assert (await _login(other, "h49-chu-tich")).status == 303
        page = await (await other.get(draft)).text()
        token = CSRF.search(page).group(1)  # type: ignore[union-attr]
        cert = re.search(r'name="certificate" value="([0-9a-f]{64})"', page).group(1)  # type: ignore[union-attr]
        resp = await other.post(draft + "/sign", data={"csrf": token, "certificate": cert, "password": "sai"})
        assert "Mật khẩu xác nhận không đúng" in await resp.text()
        assert "chờ lãnh đạo ký" in await resp.text()
        # the clerk cannot seal or send what is not signed
        ctoken = CSRF.search(await (await clerk.get(draft)).text()).group(1)  # type: ignore[union-attr]
        assert (await clerk.post(draft + "/seal", data={"csrf": ctoken})).status == 409
        assert (await clerk.post(draft + "/send", data={"csrf": ctoken})).status == 409
    finally:
        await other.close()
        await clerk.close()


async def test_password_change_ends_other_sessions(app_settings: Settings) -> None:
    server = TestServer(_app(app_settings))
    a, b = TestClient(server), TestClient(server)
    await a.start_server()
    await b.start_server()
    try:
        assert (await _login(a, "kiem-tra")).status == 303
        assert (await _login(b, "kiem-tra")).status == 303
        token = CSRF.search(await (await a.get("/ui/account")).text()).group(1)  # type: ignore[union-attr]
        resp = await a.post("/ui/account/password", data={"csrf": token, "current": "sai-mat-khau-0",
                                                          "new": "mat-khau-moi-1", "again": "mat-khau-moi-1"})
        assert resp.status == 400
        resp = await a.post("/ui/account/password", data={"csrf": token, "current": DEV_PASSWORD,
                                                          "new": "mat-khau-moi-1", "again": "mat-khau-moi-1"})
        assert "Đã đổi mật khẩu" in await resp.text()
        assert (await a.get("/ui/verify", allow_redirects=False)).status == 200  # this session continues
        assert (await b.get("/ui/verify", allow_redirects=False)).status == 303  # the other one ended
    finally:
        UserFile.for_settings(app_settings).set_password("kiem-tra", DEV_PASSWORD, dev=True)
        await a.close()
        await b.close()


async def test_https_cookie_is_secure_with_host_prefix(app_settings: Settings) -> None:
    app = _app(app_settings)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=app[TLS].server_context())
    await site.start()
    try:
        ctx = ssl.create_default_context(cafile=str(app_settings.keys_dir / "ca" / "root.crt"))
        ctx.check_hostname = False
        async with aiohttp.ClientSession() as s, s.get(f"https://127.0.0.1:{port}/ui/login", ssl=ctx) as resp:
            cookie = resp.headers.getall("Set-Cookie")[0]
            assert cookie.startswith("__Host-dx_s_lgsp_h49=")
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Domain" not in cookie
    finally:
        await runner.cleanup()


async def test_inbox_of_another_agency_is_not_found(client: TestClient) -> None:
    assert (await _login(client, "h49-snv-van-thu")).status == 303
    fake = f"m{'0' * 31}.{PROVINCE}"
    assert (await client.get(f"/ui/inbox/{fake}")).status == 404
    assert (await client.get(f"/ui/inbox/{fake}/files/0")).status == 404
    assert (await client.get("/ui/inbox/not-a-delivery")).status == 404
    assert SO_NOI_VU in await (await client.get("/ui/inbox")).text()
