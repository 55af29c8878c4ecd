"""The frame every page shares: the UI context, the session middleware, rendering, forms with CSRF, access rules.

Handlers stay thin (parse → call the node's service → render); what they share lives here:

* :class:`UiContext` — resources of the pages of one node (accounts, session codec, drafts, worker, templates);
* :func:`ui_middleware` — opens the session cookie, finds the signed-in user (the account must still exist, be
  enabled, belong at this node and carry the session's epoch), picks the language, turns our errors into an
  error page (or a sign-in redirect), refreshes the cookie and adds the security headers;
* :func:`read_form` — reads a form within a size limit and checks its CSRF token;
* :func:`require` — the signed-in user, with one of the given roles, or a refusal.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import BodyPartReader, web
from multidict import CIMultiDict

from docexchange.clock import Clock
from docexchange.config import Settings
from docexchange.directory import Agency, Directory
from docexchange.errors import AuthError, DocExchangeError, Forbidden, NotFound
from docexchange.exchange.model import Verification
from docexchange.web.ui.drafts import DraftStore
from docexchange.web.ui.i18n import Lang, pick_lang
from docexchange.web.ui.session import (
    REFRESH_AFTER,
    LoginThrottle,
    Session,
    SessionCodec,
    cookie_name,
)
from docexchange.web.ui.work import Worker
from docexchange.web.users import UserAccount, UserFile, UserRole

__all__ = [
    "PREFIX",
    "UI",
    "Form",
    "UiContext",
    "Upload",
    "flash",
    "lang_of",
    "read_form",
    "redirect",
    "render",
    "require",
    "ui_middleware",
    "user_of",
]

log = logging.getLogger(__name__)

PREFIX = "/ui"
LANG_COOKIE = "dx_lang"
FORM_LIMIT = 64 * 1024
"""Largest ordinary (non-upload) form."""

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; font-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


@dataclass
class UiContext:
    node_id: str
    settings: Settings
    directory: Directory
    clock: Clock
    users: UserFile
    codec: SessionCodec
    drafts: DraftStore
    worker: Worker
    env: jinja2.Environment
    work_dir: Path
    """``<data_dir>/ui/<node>``: drafts, verification reports."""
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    verifier: Any = None
    """The PDF verifier (made on first use)."""
    verifier_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def node_name(self) -> str:
        return self.directory.node(self.node_id).name

    def agency_name(self, code: str) -> str:
        try:
            return self.directory.agency(code).name
        except DocExchangeError:
            return code

    def agency(self, code: str) -> Agency | None:
        try:
            return self.directory.agency(code)
        except DocExchangeError:
            return None

    async def get_verifier(self) -> Any:
        async with self.verifier_lock:
            if self.verifier is None:
                from docexchange.verify.pdf import Verifier

                self.verifier = await asyncio.to_thread(Verifier.from_settings, self.settings, self.directory,
                                                        clock=self.clock)
            return self.verifier

    def close(self) -> None:
        self.worker.close()
        if self.verifier is not None:
            try:
                self.verifier.close()
            except Exception:
                log.warning("closing the verifier failed", exc_info=True)


UI = web.AppKey("ui", UiContext)

SESSION_KEY = web.RequestKey("ui_session", Session)
DIRTY_KEY = web.RequestKey("ui_session_dirty", bool)
LANG_KEY = web.RequestKey("ui_lang", Lang)
USER_KEY = web.RequestKey("ui_user", object)
SET_LANG_KEY = web.RequestKey("ui_set_lang", str)


# -- request state --------------------------------------------------------------------------------------------
def ctx_of(request: web.Request) -> UiContext:
    return request.config_dict[UI]


def user_of(request: web.Request) -> UserAccount | None:
    user = request.get(USER_KEY)
    return user if isinstance(user, UserAccount) else None


def lang_of(request: web.Request) -> Lang:
    return request.get(LANG_KEY) or Lang()


def session_of(request: web.Request) -> Session:
    return request[SESSION_KEY]


def set_session(request: web.Request, session: Session) -> None:
    request[SESSION_KEY] = session
    request[DIRTY_KEY] = True


def flash(request: web.Request, kind: str, vi: str, en: str) -> None:
    set_session(request, session_of(request).with_flash(kind, vi, en))


def require(request: web.Request, *roles: UserRole) -> UserAccount:
    """The signed-in user; :class:`AuthError` (→ sign-in page) or :class:`Forbidden` (→ 403 page)."""
    user = user_of(request)
    if user is None:
        raise AuthError("Vui lòng đăng nhập", "please sign in")
    if roles and user.role not in roles:
        raise Forbidden("Trang này không dành cho vai trò của bạn", "this page is not for your role")
    return user


def safe_next(target: str | None) -> str:
    """Only local paths of the pages may be redirected to after sign-in."""
    if not target or not target.startswith(PREFIX + "/") or target.startswith("//") or "\\" in target:
        return PREFIX + "/"
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc:
        return PREFIX + "/"
    return target


# -- rendering ------------------------------------------------------------------------------------------------
def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("docexchange.web.ui", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["todate"] = _todate
    env.filters["verification"] = lambda v: Verification(v) if not isinstance(v, Verification) else v
    return env


def _todate(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _nav(user: UserAccount | None, lang: Lang) -> list[tuple[str, str, str]]:
    """(path, label, key) of the menu for a role."""
    if user is None:
        return []
    t = lang.t
    items: list[tuple[str, str, str]] = []
    if user.role in (UserRole.CLERK, UserRole.OFFICIAL):
        items.append((f"{PREFIX}/inbox", t("Văn bản đến", "Inbox"), "inbox"))
        if user.role == UserRole.CLERK:
            items.append((f"{PREFIX}/compose", t("Soạn và gửi", "Compose and send"), "compose"))
        items.append((f"{PREFIX}/drafts", t("Dự thảo" if user.role == UserRole.CLERK else "Chờ ký",
                                            "Drafts" if user.role == UserRole.CLERK else "To sign"), "drafts"))
        items.append((f"{PREFIX}/sent", t("Văn bản đi", "Sent"), "sent"))
    if user.role == UserRole.OPERATOR:
        items.append((f"{PREFIX}/ops", t("Vận hành", "Operations"), "ops"))
    items.append((f"{PREFIX}/verify", t("Kiểm tra chữ ký", "Verify signatures"), "verify"))
    if user.role == UserRole.AUDITOR:
        items.append((f"{PREFIX}/trail", t("Tra cứu hành trình", "Delivery trail"), "trail"))
    return items


def render(request: web.Request, template: str, *, status: int = 200, active: str = "", **context: Any) -> web.Response:
    ctx = ctx_of(request)
    lang = lang_of(request)
    user = user_of(request)
    session = request.get(SESSION_KEY)
    flashes = list(session.flash) if session is not None else []
    if flashes:
        set_session(request, Session(**{**session.__dict__, "flash": ()}))
    user_agency = ctx.agency(user.agency) if user is not None and user.agency else None
    body = ctx.env.get_template(template).render(
        **lang.functions(),
        L=lang,
        lang=lang.code,
        user=user,
        user_agency=user_agency,
        csrf=session.csrf if session is not None else "",
        nav=_nav(user, lang),
        active=active,
        flashes=flashes,
        node_name=ctx.node_name,
        node_id=ctx.node_id,
        path=request.path_qs,
        prefix=PREFIX,
        agency_name=ctx.agency_name,
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


# -- forms ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    name: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Form:
    fields: Mapping[str, list[str]]
    files: tuple[Upload, ...] = ()

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def raw(self, name: str) -> str:
        values = self.fields.get(name)
        return values[0] if values else ""

    def getall(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, []) if v.strip()]

    def file(self, name: str) -> Upload | None:
        for f in self.files:
            if f.name == name and f.data:
                return f
        return None

    def uploads(self, name: str) -> list[Upload]:
        return [f for f in self.files if f.name == name and f.data]


class TooLarge(DocExchangeError):
    code = "too_large"
    http_status = 413


def _too_large(limit: int) -> TooLarge:
    mb = limit / (1024 * 1024)
    size = f"{mb:.0f} MB" if mb >= 1 else f"{limit // 1024} KB"
    return TooLarge(f"Nội dung gửi lên vượt giới hạn {size}", f"the submitted content exceeds {size}")


async def read_form(request: web.Request, *, max_bytes: int = FORM_LIMIT, max_files: int = 0,
                    check_csrf: bool = True) -> Form:
    """The posted form (urlencoded or multipart), read within ``max_bytes``; its CSRF token checked."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(max_bytes)
    fields: dict[str, list[str]] = {}
    files: list[Upload] = []
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        total = 0
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise web.HTTPBadRequest()
            chunks = []
            while True:
                chunk = await part.read_chunk(64 * 1024)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise _too_large(max_bytes)
                chunks.append(chunk)
            data = b"".join(chunks)
            name = part.name or ""
            if part.filename is not None:
                if len(files) >= max_files:
                    if data:
                        raise TooLarge("Quá nhiều tệp", "too many files")
                    continue
                files.append(Upload(name, part.filename or "", part.headers.get("Content-Type", ""), data))
            else:
                if len(fields) > 200:
                    raise TooLarge("Quá nhiều trường", "too many fields")
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    raise web.HTTPBadRequest() from None
                fields.setdefault(name, []).append(text)
    else:
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(max_bytes)
        try:
            pairs = urllib.parse.parse_qsl(bytes(body).decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            raise web.HTTPBadRequest() from None
        for k, v in pairs:
            fields.setdefault(k, []).append(v)
    form = Form(fields, tuple(files))
    if check_csrf and not session_of(request).check_csrf(form.raw("csrf")):
        raise Forbidden(
            "Phiên làm việc đã hết hạn hoặc biểu mẫu không hợp lệ: tải lại trang và thử lại",
            "the session expired or the form is not valid (CSRF): reload the page and try again",
        )
    return form


# -- the middleware -------------------------------------------------------------------------------------------
def _secure(request: web.Request) -> bool:
    return request.secure


def _load_user(ctx: UiContext, session: Session) -> UserAccount | None:
    if session.username is None:
        return None
    try:
        user = ctx.users.get(session.username)
    except DocExchangeError:
        log.exception("cannot read the accounts file")
        return None
    if user is None or user.session_epoch != session.epoch or not user.may_sign_in_at(ctx.node_id, ctx.directory):
        return None
    return user


def _security_headers(resp: web.StreamResponse) -> None:
    h = resp.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if "Cache-Control" not in h:
        h["Cache-Control"] = "no-store"


def _static_cache(request: web.Request, resp: web.StreamResponse) -> None:
    if request.path.startswith(f"{PREFIX}/static/") and resp.status == 200:
        resp.headers["Cache-Control"] = "public, max-age=3600"


def _origin_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    expected = f"{request.scheme}://{request.host}"
    return origin == expected


def _set_cookie(resp: web.StreamResponse, request: web.Request, ctx: UiContext, session: Session) -> None:
    secure = _secure(request)
    name = cookie_name(ctx.node_id, secure)
    resp.set_cookie(name, ctx.codec.seal(session, name), path="/", httponly=True, samesite="Strict",
                    secure=secure)


def clear_cookie(resp: web.StreamResponse, request: web.Request, ctx: UiContext) -> None:
    secure = _secure(request)
    resp.del_cookie(cookie_name(ctx.node_id, secure), path="/", secure=secure, httponly=True, samesite="Strict")


@web.middleware
async def ui_middleware(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    ctx = ctx_of(request)
    now = time.time()
    secure = _secure(request)
    name = cookie_name(ctx.node_id, secure)
    session = ctx.codec.open(request.cookies.get(name), name)
    fresh = session is None or session.expired(now)
    if session is None or session.expired(now):
        session = Session.anonymous(now)
    request[SESSION_KEY] = session
    request[DIRTY_KEY] = fresh and request.method == "GET"
    lang_code = pick_lang(request.cookies.get(LANG_COOKIE), request.query.get("lang"), None)
    request[LANG_KEY] = Lang(lang_code)
    user = _load_user(ctx, session)
    if session.username is not None and user is None:
        session = Session.anonymous(now)
        set_session(request, session)
    request[USER_KEY] = user
    try:
        if request.method not in ("GET", "HEAD", "OPTIONS") and not _origin_ok(request):
            raise Forbidden("Yêu cầu đến từ trang khác bị từ chối", "cross-site request refused")
        resp = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            resp = _error_page(request, exc.status, *_HTTP_TEXT.get(exc.status, ("Lỗi", "Error")))
        else:
            resp = web.Response(status=exc.status, headers=exc.headers)
    except AuthError as exc:
        if isinstance(exc, Forbidden):
            resp = _error_page(request, 403, exc.message_vi, exc.message_en)
        elif request.method == "GET":
            resp = web.Response(status=303, headers={
                "Location": f"{PREFIX}/login?next={urllib.parse.quote(request.path_qs)}"})
        else:
            resp = _error_page(request, 401, exc.message_vi, exc.message_en)
    except DocExchangeError as exc:
        if exc.http_status >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        resp = _error_page(request, exc.http_status if exc.http_status >= 400 else 400, exc.message_vi,
                           exc.message_en)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        resp = _error_page(request, 500, "Lỗi nội bộ của hệ thống, vui lòng thử lại", "internal error, please retry")
    session = request[SESSION_KEY]
    if request.get(DIRTY_KEY) or (
        session.username is not None and now - session.seen > REFRESH_AFTER.total_seconds()
    ):
        if session.username is not None:
            session = Session(**{**session.__dict__, "seen": int(now)})
        _set_cookie(resp, request, ctx, session)
    if request.get(SET_LANG_KEY):
        resp.set_cookie(LANG_COOKIE, request[SET_LANG_KEY], path="/", httponly=True, samesite="Strict",
                        secure=secure, max_age=365 * 86400)
    _static_cache(request, resp)
    _security_headers(resp)
    return resp


_HTTP_TEXT = {
    400: ("Yêu cầu không hợp lệ", "Bad request"),
    403: ("Không được phép", "Forbidden"),
    404: ("Không tìm thấy trang hoặc văn bản", "Page or document not found"),
    405: ("Phương thức không được hỗ trợ", "Method not allowed"),
    413: ("Nội dung gửi lên quá lớn", "Request too large"),
}


def _error_page(request: web.Request, status: int, vi: str, en: str) -> web.Response:
    try:
        return render(request, "error.html", status=status, status_code=status, message_vi=vi, message_en=en)
    except Exception:
        log.exception("error page failed")
        return web.Response(status=status, text=f"{status}: {vi} — {en}", content_type="text/plain")


def not_found() -> NotFound:
    return NotFound("Không tìm thấy văn bản", "document not found")


def file_response(data: bytes, filename: str, content_type: str, *, inline: bool = False) -> web.Response:
    """A file download: inline only for PDFs (opened in the browser's viewer), never sniffed."""
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename) \
        or "tep"
    disp = "inline" if inline and content_type == "application/pdf" else "attachment"
    headers = CIMultiDict({
        "Content-Disposition": f"{disp}; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(filename)}",
        "Cache-Control": "no-store",
        # an inline PDF opens in the browser's own viewer, which a page CSP (object-src) would block: only framing
        # by other sites is refused for it; every other file is a sandboxed attachment
        "Content-Security-Policy": "default-src 'none'; sandbox" if disp == "attachment" else "frame-ancestors 'none'",
    })
    ctype = content_type if content_type in ("application/pdf", "application/json", "text/html",
                                             "application/xml", "image/png") else "application/octet-stream"
    return web.Response(body=data, content_type=ctype, headers=headers)
