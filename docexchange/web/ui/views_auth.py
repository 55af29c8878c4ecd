"""Signing in and out, the language switch, the user's own account (password change), the home redirect."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from docexchange.errors import AuthError, ConfigError
from docexchange.web.ui.core import (
    PREFIX,
    SET_LANG_KEY,
    USER_KEY,
    ctx_of,
    flash,
    lang_of,
    read_form,
    redirect,
    render,
    require,
    safe_next,
    set_session,
    user_of,
)
from docexchange.web.ui.i18n import LANGS
from docexchange.web.ui.session import Session
from docexchange.web.users import UserRole, check_password_policy

__all__ = ["setup_auth_routes"]

_HOME = {
    UserRole.CLERK: "inbox",
    UserRole.OFFICIAL: "drafts",
    UserRole.AUDITOR: "verify",
    UserRole.OPERATOR: "ops",
}


async def home(request: web.Request) -> web.StreamResponse:
    user = require(request)
    raise redirect(f"{PREFIX}/{_HOME[user.role]}")


async def login_page(request: web.Request) -> web.StreamResponse:
    if user_of(request) is not None:
        raise redirect(safe_next(request.query.get("next")))
    return render(request, "login.html", next=safe_next(request.query.get("next")), username="", error=None)


async def login(request: web.Request) -> web.StreamResponse:
    ctx = ctx_of(request)
    form = await read_form(request)
    username = form.get("username").lower()[:64]
    password = form.raw("password")[:256]
    target = safe_next(form.get("next"))
    remote = request.remote or "?"
    wait = ctx.throttle.wait_seconds(f"u:{username}", f"ip:{remote}")
    error: tuple[str, str] | None = None
    if wait:
        error = (f"Đăng nhập sai nhiều lần: thử lại sau {wait} giây",
                 f"too many failed sign-ins: try again in {wait} seconds")
    else:
        try:
            user = await asyncio.to_thread(ctx.users.authenticate, username, password)
            if not user.may_sign_in_at(ctx.node_id, ctx.directory):
                raise AuthError(
                    f"Tài khoản này không đăng nhập tại {ctx.node_name}: hãy dùng trục của cơ quan mình",
                    f"this account does not sign in at {ctx.node_name}: use your agency's node",
                )
        except AuthError as exc:
            ctx.throttle.failed(f"u:{username}", f"ip:{remote}")
            error = (exc.message_vi, exc.message_en)
        else:
            ctx.throttle.succeeded(f"u:{username}")
            set_session(request, Session.signed_in(user.username, user.session_epoch, time.time()))
            request[USER_KEY] = user
            raise redirect(target)
    lang = lang_of(request)
    return render(request, "login.html", status=401, next=target, username=username,
                  error=lang.t(*error) if error else None)


async def logout(request: web.Request) -> web.StreamResponse:
    await read_form(request)
    set_session(request, Session.anonymous(time.time()))
    request[USER_KEY] = None
    resp = redirect(f"{PREFIX}/login")
    raise resp


async def set_lang(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    if code not in LANGS:
        raise web.HTTPNotFound()
    request[SET_LANG_KEY] = code
    raise redirect(safe_next(request.query.get("next")))


async def account(request: web.Request) -> web.StreamResponse:
    require(request)
    return render(request, "account.html", active="account", error=None)


async def change_password(request: web.Request) -> web.StreamResponse:
    user = require(request)
    ctx = ctx_of(request)
    form = await read_form(request)
    lang = lang_of(request)
    current, new, again = form.raw("current")[:256], form.raw("new")[:256], form.raw("again")[:256]
    error = None
    try:
        await asyncio.to_thread(ctx.users.authenticate, user.username, current)
    except AuthError:
        error = lang.t("Mật khẩu hiện tại không đúng", "the current password is wrong")
    if error is None and new != again:
        error = lang.t("Hai lần nhập mật khẩu mới không khớp", "the two new passwords differ")
    if error is None:
        try:
            check_password_policy(new)
        except ConfigError as exc:
            error = lang.t(exc.message_vi, exc.message_en)
    if error is not None:
        return render(request, "account.html", status=400, active="account", error=error)
    await asyncio.to_thread(ctx.users.set_password, user.username, new)
    fresh = ctx.users.get(user.username)
    assert fresh is not None
    set_session(request, Session.signed_in(fresh.username, fresh.session_epoch, time.time()))
    request[USER_KEY] = fresh
    flash(request, "ok", "Đã đổi mật khẩu", "password changed")
    raise redirect(f"{PREFIX}/account")


def setup_auth_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", home)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/lang/{code}", set_lang)
    r.add_get("/account", account)
    r.add_post("/account/password", change_password)
