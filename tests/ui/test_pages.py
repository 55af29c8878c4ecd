"""The pages in a real browser (Debian's Chromium driven by Playwright) against two real axis nodes.

One scenario, in order: the Hồng Gai commune clerk composes a letter (Hỏa tốc), the commune's chairwoman signs it
choosing her certificate, the clerk seals it, picks the province by searching the directory, looks at the signed
page and sends; at the provincial node the province's clerk sees it in the inbox marked "hợp lệ" with the full
report and accepts it (03); back at the commune node the sent page shows status 03 with the trail and signed
receipts. Then: an auditor verifies a tampered copy and reads "không hợp lệ" with the reason; a clerk of another
agency of the same node cannot open the province's document, not from the list and not by URL; the operator's
page; the English switch. Screenshots of every page go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from ui_harness import COMMUNE_NODE, GOVERNMENT_OFFICE, HONG_GAI, PROVINCE, PROVINCE_NODE, UiBed

from docexchange.web.users import DEV_PASSWORD

pytestmark = pytest.mark.timeout(900)

SUBJECT = "Về việc triển khai tiếp nhận văn bản điện tử có chữ ký số trên địa bàn phường"
BODY = (
    "Thực hiện Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác văn thư, "
    "Ủy ban nhân dân phường Hồng Gai báo cáo Ủy ban nhân dân tỉnh Quảng Ninh kết quả triển khai.\n\n"
    "Đề nghị Ủy ban nhân dân tỉnh xem xét, chỉ đạo./."
)


def _context(browser: Any) -> Any:
    ctx = browser.new_context(ignore_https_errors=True, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                              viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(60_000)
    return ctx


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def _login(page: Any, bed: UiBed, node: str, username: str, password: str = DEV_PASSWORD) -> None:
    page.goto(bed.url(node, "/ui/login"))
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(password)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_load_state()
    assert "/ui/login" not in page.url, page.content()[:2000]


def _reload_until(page: Any, check: Any, within: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {page.url}\n{page.inner_text('main')[:3000]}")
        time.sleep(1.0)
        page.reload()


def _tamper(pdf: bytes) -> bytes:
    """Flip one byte inside the first content stream (covered by every signature's byte range)."""
    m = re.search(rb"stream\r?\n", pdf)
    assert m is not None
    pos = m.end() + 40
    return pdf[:pos] + bytes([pdf[pos] ^ 0x5A]) + pdf[pos + 1:]


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def test_commune_to_province_full_scenario(ui_bed: UiBed, browser: Any, artifacts: Path,
                                           state: dict[str, Any]) -> None:
    bed = ui_bed
    clerk_ctx, official_ctx, province_ctx = _context(browser), _context(browser), _context(browser)
    clerk, official, province = clerk_ctx.new_page(), official_ctx.new_page(), province_ctx.new_page()

    # -- the commune clerk composes --------------------------------------------------------------------------
    clerk.goto(bed.url(COMMUNE_NODE, "/ui/login"))
    _shot(clerk, artifacts, "01-dang-nhap")
    _login(clerk, bed, COMMUNE_NODE, "h49-honggai-van-thu")
    assert clerk.get_by_role("heading", name="Văn bản đến").is_visible()
    clerk.get_by_role("link", name="Soạn và gửi").click()
    clerk.get_by_label("Điền mẫu công văn", exact=False).check()
    clerk.get_by_label("Loại văn bản").select_option("Công văn")
    clerk.get_by_label("Trích yếu nội dung").fill(SUBJECT)
    clerk.get_by_label("Người ký").select_option("h49-honggai-chu-tich")
    clerk.get_by_label("Độ khẩn").select_option("3")
    clerk.get_by_label("Kính gửi (công văn)").fill("Ủy ban nhân dân tỉnh Quảng Ninh.")
    clerk.get_by_label("Nội dung văn bản").fill(BODY)
    clerk.get_by_label("Nơi nhận (in trên văn bản)").fill("UBND tỉnh Quảng Ninh (b/c);\nLưu: VT, VP.")
    _shot(clerk, artifacts, "02-soan-van-ban")
    clerk.get_by_role("button", name="Tạo dự thảo và trình ký").click()
    clerk.wait_for_url(re.compile(r"/ui/drafts/d[0-9a-f]+$"))
    draft_url = clerk.url
    state["draft_path"] = "/ui/drafts/" + draft_url.rsplit("/", 1)[1]
    assert clerk.locator("[data-draft-state]").get_attribute("data-draft-state") == "composed"
    ref = clerk.locator("h1 .code").inner_text().strip()  # e.g. 01/UBND, unique per draft
    state["ref"] = ref
    assert "Vũ Thị Mai" in clerk.inner_text("main")
    _shot(clerk, artifacts, "03-du-thao-cho-ky")

    # -- the official signs, choosing her certificate --------------------------------------------------------
    _login(official, bed, COMMUNE_NODE, "h49-honggai-chu-tich")
    assert "/ui/drafts" in official.url
    official.locator(f"a[href='{state['draft_path']}']").first.click()
    official.wait_for_url(draft_url)
    cert = official.locator("input[name=certificate]")
    assert cert.count() >= 1
    cert.first.check()
    official.get_by_label("Nhập lại mật khẩu để xác nhận ký").fill(DEV_PASSWORD)
    _shot(official, artifacts, "04-lanh-dao-ky")
    official.get_by_role("button", name="Ký số").click()
    official.wait_for_url(draft_url)
    assert official.locator("[data-draft-state]").get_attribute("data-draft-state") == "signed", \
        official.inner_text("main")[:2000]
    _shot(official, artifacts, "05-da-ky")

    # -- the clerk seals, picks the province, previews and sends ---------------------------------------------
    clerk.reload()
    clerk.get_by_role("button", name="Đóng dấu (ký số cơ quan)").click()
    clerk.wait_for_url(re.compile(r"/ui/drafts/d[0-9a-f]+"))
    assert clerk.locator("[data-draft-state]").get_attribute("data-draft-state") == "sealed", \
        clerk.inner_text("main")[:2000]
    clerk.get_by_label("Tìm cơ quan theo tên hoặc mã").fill("quang ninh")
    clerk.get_by_role("button", name="Tìm").click()
    clerk.locator(f"button[data-add='{PROVINCE}']").click()
    clerk.wait_for_load_state()
    assert clerk.locator("ul.chips").inner_text().count("Ủy ban nhân dân tỉnh Quảng Ninh") == 1
    preview = clerk.locator("img.preview")
    preview.scroll_into_view_if_needed()
    clerk.wait_for_function("() => { const i = document.querySelector('img.preview'); "
                            "return i && i.complete && i.naturalWidth > 100; }")
    _shot(clerk, artifacts, "06-da-dong-dau-xem-truoc")
    png = clerk.request.get(preview.get_attribute("src") and clerk.url.split("/ui/")[0]
                            + preview.get_attribute("src")).body()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (artifacts / "06b-trang-da-ky.png").write_bytes(png)
    clerk.get_by_role("button", name="Gửi văn bản").click()
    clerk.wait_for_url(re.compile(r"/ui/sent/m[0-9a-f]+$"))
    state["sent_path"] = "/ui/sent/" + clerk.url.rsplit("/", 1)[1]
    assert PROVINCE in clerk.inner_text("main")
    _shot(clerk, artifacts, "07-van-ban-di")

    # -- the province receives it, verified "hợp lệ", urgent, and accepts ------------------------------------
    _login(province, bed, PROVINCE_NODE, "h49-van-thu")

    def arrived_valid() -> bool:
        row = province.locator("tr[data-delivery]", has_text=f"số {ref}")
        return row.count() == 1 and row.locator("[data-verification=passed]").count() == 1

    _reload_until(province, arrived_valid, what="the document in the province's inbox, verified")
    assert province.locator(".urgent-box").is_visible()
    assert "hỏa tốc" in province.locator(".urgent-box").inner_text().lower()
    row = province.locator("tr[data-delivery]", has_text=f"số {ref}")
    assert SUBJECT in row.inner_text() and "hợp lệ" in row.inner_text()
    _shot(province, artifacts, "08-van-ban-den")
    row.get_by_role("link").first.click()
    province.wait_for_url(re.compile(r"/ui/inbox/m"))
    state["inbox_path"] = "/ui/inbox/" + province.url.rsplit("/ui/inbox/", 1)[1]
    verdict = province.locator("[data-verdict]")
    assert verdict.get_attribute("data-verdict") == "passed"
    assert "hợp lệ" in verdict.inner_text()
    main = province.inner_text("main")
    for field in ("Tổ chức cung cấp dịch vụ chứng thực", "Thời điểm ký", "Thời hạn hiệu lực của chứng thư",
                  "Tính toàn vẹn của văn bản", "Hiệu lực chứng thư tại thời điểm ký", "Vũ Thị Mai"):
        assert field in main, field
    _shot(province, artifacts, "09-chi-tiet-van-ban-den")
    pdf = province.request.get(bed.url(PROVINCE_NODE, state["inbox_path"] + "/files/0?download=1")).body()
    assert pdf.startswith(b"%PDF-")
    state["pdf"] = pdf
    report = json.loads(province.request.get(bed.url(PROVINCE_NODE, state["inbox_path"] + "/report.json")).body())
    assert report["result"] == "passed"
    province.get_by_role("button", name="Tiếp nhận (03)").click()
    province.wait_for_load_state()
    assert "Đã gửi trạng thái 03" in province.inner_text("main")
    _shot(province, artifacts, "10-da-tiep-nhan")

    # -- the sender sees status 03, with the trail and valid receipts ----------------------------------------
    clerk.goto(bed.url(COMMUNE_NODE, state["sent_path"]))

    def accepted() -> bool:
        cell = clerk.locator(f"tr[data-recipient='{PROVINCE}'] [data-status]")
        return cell.count() == 1 and cell.get_attribute("data-status") == "03"

    _reload_until(clerk, accepted, what="status 03 on the sender's page")
    text = clerk.inner_text("main")
    assert "03 · Đã tiếp nhận" in text
    assert "01 · Đã đến" in text
    assert "Biên nhận có chữ ký hợp lệ của trục" in text
    assert "Trục liên thông văn bản tỉnh Quảng Ninh" in text
    _shot(clerk, artifacts, "11-van-ban-di-da-tiep-nhan")
    for c in (clerk_ctx, official_ctx, province_ctx):
        c.close()


def test_auditor_sees_tampered_pdf_invalid(ui_bed: UiBed, browser: Any, artifacts: Path,
                                           state: dict[str, Any], tmp_path: Path) -> None:
    if "pdf" not in state:
        pytest.skip("needs the document of the full scenario")
    bed = ui_bed
    ctx = _context(browser)
    page = ctx.new_page()
    _login(page, bed, PROVINCE_NODE, "kiem-tra")
    assert "/ui/verify" in page.url
    bad = tmp_path / "cong-van-bi-sua.pdf"
    bad.write_bytes(_tamper(state["pdf"]))
    page.get_by_label("Tệp PDF hoặc gói tin edXML").set_input_files(str(bad))
    page.get_by_label("Cơ quan gửi", exact=False).fill(HONG_GAI)
    _shot(page, artifacts, "12-kiem-tra-chu-ky")
    page.get_by_role("button", name="Kiểm tra", exact=True).click()
    page.wait_for_url(re.compile(r"/ui/verify/r[0-9a-f]+$"))
    verdict = page.locator("[data-verdict]")
    assert verdict.get_attribute("data-verdict") == "failed", page.inner_text("main")[:3000]
    assert "không hợp lệ" in verdict.inner_text()
    reasons = page.locator(".report [data-reason]")
    assert reasons.count() >= 1
    assert any(w in page.inner_text("main").lower() for w in ("toàn vẹn", "thay đổi", "băm"))
    _shot(page, artifacts, "13-bien-ban-khong-hop-le")
    data = json.loads(page.request.get(page.url + ".json").body())
    assert data["result"] == "failed"
    assert data["files"][0]["report"]["outcome"] == "invalid"
    html = page.request.get(page.url + ".html")
    assert html.ok and "không hợp lệ" in html.text()

    # the genuine document, for contrast: valid
    good = tmp_path / "cong-van.pdf"
    good.write_bytes(state["pdf"])
    page.goto(bed.url(PROVINCE_NODE, "/ui/verify"))
    page.get_by_label("Tệp PDF hoặc gói tin edXML").set_input_files(str(good))
    page.get_by_label("Cơ quan gửi", exact=False).fill(HONG_GAI)
    page.get_by_role("button", name="Kiểm tra", exact=True).click()
    page.wait_for_url(re.compile(r"/ui/verify/r[0-9a-f]+$"))
    assert page.locator("[data-verdict]").get_attribute("data-verdict") == "passed", page.inner_text("main")[:3000]

    # the delivery's trail and receipts, looked up by the auditor
    did = state["inbox_path"].rsplit("/", 1)[1]
    page.goto(bed.url(PROVINCE_NODE, f"/ui/trail?delivery={did}"))
    text = page.inner_text("main")
    assert "Biên nhận có chữ ký hợp lệ của trục" in text
    assert HONG_GAI in text
    _shot(page, artifacts, "14-hanh-trinh-kiem-toan")
    ctx.close()


def test_other_agency_cannot_open_the_document(ui_bed: UiBed, browser: Any, artifacts: Path,
                                               state: dict[str, Any]) -> None:
    if "inbox_path" not in state:
        pytest.skip("needs the document of the full scenario")
    bed = ui_bed
    ctx = _context(browser)
    page = ctx.new_page()
    _login(page, bed, PROVINCE_NODE, "h49-snv-van-thu")  # Sở Nội vụ: same node, another agency
    assert SUBJECT not in page.inner_text("main")
    resp = page.goto(bed.url(PROVINCE_NODE, state["inbox_path"]))
    assert resp is not None and resp.status == 404
    assert SUBJECT not in page.content()
    for suffix in ("/files/0", "/report.json", "/packet.xml"):
        r = page.request.get(bed.url(PROVINCE_NODE, state["inbox_path"] + suffix))
        assert r.status == 404, suffix
        assert b"%PDF" not in r.body()
    _shot(page, artifacts, "15-co-quan-khac-khong-xem-duoc")
    # the province's clerk cannot sign in at the commune's node, nor open its draft or sent pages
    other = _context(browser).new_page()
    other.goto(bed.url(COMMUNE_NODE, "/ui/login"))
    other.get_by_label("Tên đăng nhập").fill("h49-van-thu")
    other.get_by_label("Mật khẩu").fill(DEV_PASSWORD)
    other.get_by_role("button", name="Đăng nhập").click()
    assert "/ui/login" in other.url
    assert "không đăng nhập tại" in other.inner_text("main")
    r = other.goto(bed.url(COMMUNE_NODE, state["sent_path"]))
    assert r is not None and "/ui/login" in other.url
    # a forged POST without the form's CSRF token is refused
    r = page.request.post(bed.url(PROVINCE_NODE, state["inbox_path"] + "/status"), form={"code": "03"})
    assert r.status in (403, 404)
    ctx.close()


def test_operator_and_english(ui_bed: UiBed, browser: Any, artifacts: Path, state: dict[str, Any]) -> None:
    bed = ui_bed
    ctx = _context(browser)
    page = ctx.new_page()
    _login(page, bed, PROVINCE_NODE, "van-hanh")
    assert "/ui/ops" in page.url
    page.goto(bed.url(PROVINCE_NODE, "/ui/ops?probe=1"))
    text = page.inner_text("main")
    assert "Hàng đợi theo trạng thái và nơi đến" in text
    assert "Hạn của chứng thư số" in text
    peer = page.locator(f"tr[data-peer='{COMMUNE_NODE}']")
    assert "✔" in peer.inner_text(), peer.inner_text()
    _shot(page, artifacts, "16-van-hanh")
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert "Node operations" in page.inner_text("main")
    assert page.locator("html").get_attribute("lang") == "en"
    _shot(page, artifacts, "17-english")
    page.get_by_role("link", name="Tiếng Việt").click()
    assert "Vận hành trục" in page.inner_text("main")
    ctx.close()


# -- further flows --------------------------------------------------------------------------------------------
def _make_and_send(bed: UiBed, node: str, clerk: Any, official: Any, official_id: str, subject: str, query: str,
                   recipient: str, *, priority: str = "0", amend_reason: str | None = None) -> tuple[str, str]:
    """Compose (letter form) → the official signs → the clerk seals, adds ``recipient`` and sends. The clerk's
    page may already be on a pre-filled compose form (update/replace). Returns (sent page path, reference)."""
    if "/ui/compose" not in clerk.url:
        clerk.goto(bed.url(node, "/ui/compose"))
    clerk.get_by_label("Điền mẫu công văn", exact=False).check()
    clerk.get_by_label("Trích yếu nội dung").fill(subject)
    clerk.get_by_label("Người ký").select_option(official_id)
    clerk.get_by_label("Độ khẩn").select_option(priority)
    clerk.get_by_label("Nội dung văn bản").fill(BODY)
    if amend_reason is not None:
        clerk.get_by_label("Lý do cập nhật/thay thế").fill(amend_reason)
    clerk.get_by_role("button", name="Tạo dự thảo và trình ký").click()
    clerk.wait_for_url(re.compile(r"/ui/drafts/d[0-9a-f]+$"))
    draft_path = "/ui/drafts/" + clerk.url.rsplit("/", 1)[1]
    ref = clerk.locator("h1 .code").inner_text().strip()
    official.goto(bed.url(node, draft_path))
    official.locator("input[name=certificate]").first.check()
    official.get_by_label("Nhập lại mật khẩu để xác nhận ký").fill(DEV_PASSWORD)
    official.get_by_role("button", name="Ký số").click()
    official.wait_for_url(bed.url(node, draft_path))
    assert official.locator("[data-draft-state]").get_attribute("data-draft-state") == "signed"
    clerk.goto(bed.url(node, draft_path))
    clerk.get_by_role("button", name="Đóng dấu (ký số cơ quan)").click()
    clerk.wait_for_load_state()
    assert clerk.locator("[data-draft-state]").get_attribute("data-draft-state") == "sealed"
    if clerk.locator("ul.chips li", has_text=recipient).count() == 0:
        clerk.get_by_label("Tìm cơ quan theo tên hoặc mã").fill(query)
        clerk.get_by_role("button", name="Tìm").click()
        clerk.locator(f"button[data-add='{recipient}']").click()
        clerk.wait_for_load_state()
    clerk.get_by_role("button", name="Gửi văn bản").click()
    clerk.wait_for_url(re.compile(r"/ui/sent/m[0-9a-f]+$"))
    return "/ui/sent/" + clerk.url.rsplit("/", 1)[1], ref


def _open_inbox_item(bed: UiBed, page: Any, ref: str) -> str:
    page.goto(bed.url(PROVINCE_NODE, "/ui/inbox"))
    _reload_until(page, lambda: page.locator("tr[data-delivery]", has_text=f"số {ref}").count() == 1,
                  what=f"{ref} in the province's inbox")
    page.locator("tr[data-delivery]", has_text=f"số {ref}").get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/ui/inbox/m"))
    return "/ui/inbox/" + page.url.rsplit("/ui/inbox/", 1)[1]


def _status_of(page: Any, recipient: str) -> str | None:
    cell = page.locator(f"tr[data-recipient='{recipient}'] [data-status]")
    return cell.get_attribute("data-status") if cell.count() == 1 else None


def test_return_recall_and_replace(ui_bed: UiBed, browser: Any, artifacts: Path, state: dict[str, Any]) -> None:
    bed = ui_bed
    clerk_ctx, official_ctx, province_ctx = _context(browser), _context(browser), _context(browser)
    clerk, official, province = clerk_ctx.new_page(), official_ctx.new_page(), province_ctx.new_page()
    _login(clerk, bed, COMMUNE_NODE, "h49-honggai-van-thu")
    _login(official, bed, COMMUNE_NODE, "h49-honggai-pho-chu-tich")
    _login(province, bed, PROVINCE_NODE, "h49-van-thu")

    # returned (02) with a reason, and the sender reads the reason
    sent_b, ref_b = _make_and_send(bed, COMMUNE_NODE, clerk, official, "h49-honggai-pho-chu-tich",
                                   "Về việc đề nghị cấp kinh phí sửa chữa trụ sở", "tỉnh quảng ninh", PROVINCE)
    _open_inbox_item(bed, province, ref_b)
    province.get_by_label("Lý do trả lại").fill("Văn bản gửi sai thẩm quyền, đề nghị gửi Sở Tài chính")
    province.get_by_role("button", name="Trả lại văn bản (02)").click()
    province.wait_for_load_state()
    assert "Đã gửi trạng thái 02" in province.inner_text("main")
    clerk.goto(bed.url(COMMUNE_NODE, sent_b))
    _reload_until(clerk, lambda: _status_of(clerk, PROVINCE) == "02", what="status 02 at the sender")
    assert "Văn bản gửi sai thẩm quyền" in clerk.inner_text("main")
    _shot(clerk, artifacts, "18-bi-tra-lai")

    # replaced: "Thay thế" from the sent page → a new, re-signed document naming the one it replaces
    clerk.get_by_role("link", name="Thay thế").click()
    clerk.wait_for_url(re.compile(r"/ui/compose\?amend="))
    assert "thay thế" in clerk.inner_text("main")
    _, ref_b2 = _make_and_send(bed, COMMUNE_NODE, clerk, official, "h49-honggai-pho-chu-tich",
                                     "Về việc đề nghị cấp kinh phí sửa chữa trụ sở (thay thế)", "tỉnh quảng ninh",
                                     PROVINCE, amend_reason="Gửi lại đúng thẩm quyền")
    _open_inbox_item(bed, province, ref_b2)
    assert province.locator("[data-business='3']").count() == 1
    _shot(province, artifacts, "19-van-ban-thay-the")

    # recalled (13): the recipient agrees (15) and the document leaves its inbox
    sent_c, ref_c = _make_and_send(bed, COMMUNE_NODE, clerk, official, "h49-honggai-pho-chu-tich",
                                   "Về việc mời họp giao ban tháng", "tỉnh quảng ninh", PROVINCE, priority="1")
    item_c = _open_inbox_item(bed, province, ref_c)
    clerk.goto(bed.url(COMMUNE_NODE, sent_c))
    clerk.on("dialog", lambda d: d.accept())
    clerk.get_by_label("Lý do thu hồi").fill("Văn bản có sai sót về thời gian họp")
    clerk.get_by_role("button", name="Thu hồi").click()
    clerk.wait_for_load_state()
    assert "Đã thu hồi" in clerk.inner_text("main")
    province.goto(bed.url(PROVINCE_NODE, item_c))
    _reload_until(province, lambda: province.get_by_role("button", name="Đồng ý thu hồi (15)").count() == 1,
                  what="the recall request at the recipient")
    _shot(province, artifacts, "20-de-nghi-thu-hoi")
    province.get_by_role("button", name="Đồng ý thu hồi (15)").click()
    province.wait_for_url(re.compile(r"/ui/inbox$"))
    assert f"số {ref_c}" not in province.inner_text("main")
    clerk.goto(bed.url(COMMUNE_NODE, sent_c))
    _reload_until(clerk, lambda: _status_of(clerk, PROVINCE) == "15", what="status 15 at the sender")
    _shot(clerk, artifacts, "21-da-thu-hoi")
    for c in (clerk_ctx, official_ctx, province_ctx):
        c.close()


def test_dead_letter_resend(ui_bed: UiBed, browser: Any, artifacts: Path) -> None:
    """A document to the Government Office goes through the national axis, which is down: after the route's two
    attempts it is a dead letter on the operator's page, and the operator puts it back in the queue."""
    bed = ui_bed
    clerk_ctx, official_ctx, op_ctx = _context(browser), _context(browser), _context(browser)
    clerk, official, op = clerk_ctx.new_page(), official_ctx.new_page(), op_ctx.new_page()
    _login(clerk, bed, PROVINCE_NODE, "h49-van-thu")
    _login(official, bed, PROVINCE_NODE, "h49-chu-tich")
    sent, _ = _make_and_send(bed, PROVINCE_NODE, clerk, official, "h49-chu-tich",
                             "Báo cáo tình hình triển khai văn bản điện tử của tỉnh", "G22", GOVERNMENT_OFFICE)
    _login(op, bed, PROVINCE_NODE, "van-hanh")
    _reload_until(op, lambda: op.locator("tr[data-dead]").count() >= 1, what="a dead letter on the ops page")
    row = op.locator("tr[data-dead]").first
    assert GOVERNMENT_OFFICE in row.get_attribute("data-dead")
    assert "vdxp" in row.inner_text()
    _shot(op, artifacts, "22-thu-chet")
    row.get_by_role("button", name="Gửi lại").click()
    op.wait_for_load_state()
    assert "Đã đưa lại vào hàng đợi" in op.inner_text("main")
    clerk.goto(bed.url(PROVINCE_NODE, sent))
    assert "Văn phòng Chính phủ" in clerk.inner_text("main")
    for c in (clerk_ctx, official_ctx, op_ctx):
        c.close()


def test_tablet_layout_and_keyboard_sign_in(ui_bed: UiBed, browser: Any, artifacts: Path) -> None:
    """Signing in with the keyboard alone, and the inbox on a tablet held upright: nothing runs off the screen."""
    bed = ui_bed
    ctx = browser.new_context(ignore_https_errors=True, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                              viewport={"width": 820, "height": 1180}, has_touch=True)
    page = ctx.new_page()
    page.goto(bed.url(PROVINCE_NODE, "/ui/login"))
    assert page.evaluate("document.activeElement.id") == "username"  # the user name field has the focus
    page.keyboard.type("h49-van-thu")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(DEV_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/inbox"))
    page.keyboard.press("Tab")  # the skip link comes first on every page
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "noi-dung"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, overflow
    _shot(page, artifacts, "23-may-tinh-bang-van-ban-den")
    first = page.locator("tr[data-delivery] a").first
    if first.count():
        first.click()
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
        _shot(page, artifacts, "24-may-tinh-bang-chi-tiet")
    ctx.close()
