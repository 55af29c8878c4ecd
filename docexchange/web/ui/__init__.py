"""The web pages of a node, for the people of its agencies (văn thư, lãnh đạo), auditors and operators.

Server-rendered (aiohttp + jinja2), a little CSS and JavaScript, no build step; Vietnamese by default with an
English switch; every time in Vietnam time. Mounted under ``/ui/`` on the node's own HTTPS port by one call in
:func:`docexchange.web.app.create_app`::

    setup_ui(app)

Pages (see docs/web.md): sign-in, Soạn và gửi (compose → the official signs → the clerk seals → send), Văn bản
đi (sent, with every recipient's state, status 01–06, and the trail with signed receipts; recall, update,
replace), Văn bản đến (inbox with the verification badge and report; accept, return, assign, in progress,
done), Kiểm tra chữ ký (verify any PDF or packet), Vận hành (queues, dead letters, peers, certificates).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

__all__ = ["create_ui_app", "setup_ui"]

STATIC = Path(__file__).resolve().parent / "static"
FONTS = Path(__file__).resolve().parent.parent.parent / "fonts_data"


def create_ui_app(parent: web.Application) -> web.Application:
    """The pages as a sub-application (its own middleware); resources are made when the node starts."""
    from docexchange.web.ui.core import ui_middleware
    from docexchange.web.ui.views_audit import setup_audit_routes
    from docexchange.web.ui.views_auth import setup_auth_routes
    from docexchange.web.ui.views_compose import setup_compose_routes
    from docexchange.web.ui.views_mail import setup_mail_routes
    from docexchange.web.ui.views_ops import setup_ops_routes

    app = web.Application(middlewares=[ui_middleware])
    app.cleanup_ctx.append(_ui_ctx(parent))
    setup_auth_routes(app)
    setup_compose_routes(app)
    setup_mail_routes(app)
    setup_audit_routes(app)
    setup_ops_routes(app)
    app.router.add_static("/static/", STATIC, name="static", append_version=False)
    app.router.add_get("/fonts/{name}", _font)
    return app


def _ui_ctx(parent: web.Application):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from docexchange.web.keys import CLOCK, DIRECTORY, NODE_ID, SETTINGS
        from docexchange.web.ui.core import UI, UiContext, make_env
        from docexchange.web.ui.drafts import DraftStore
        from docexchange.web.ui.session import SessionCodec, load_secret
        from docexchange.web.ui.work import Worker
        from docexchange.web.users import UserFile

        settings, node_id = parent[SETTINGS], parent[NODE_ID]
        work_dir = settings.data_dir / "ui" / node_id
        work_dir.mkdir(parents=True, exist_ok=True)
        secret = load_secret(settings.data_dir / "ui" / "session.key")
        ui = UiContext(
            node_id=node_id, settings=settings, directory=parent[DIRECTORY], clock=parent[CLOCK],
            users=UserFile.for_settings(settings, parent[CLOCK]), codec=SessionCodec(secret, node_id),
            drafts=DraftStore(work_dir / "drafts"), worker=Worker(settings), env=make_env(), work_dir=work_dir,
        )
        app[UI] = ui
        try:
            yield
        finally:
            ui.close()

    return ctx


_FONT_FILES = {"sans.ttf": "LiberationSans-Regular.ttf", "sans-bold.ttf": "LiberationSans-Bold.ttf"}


async def _font(request: web.Request) -> web.StreamResponse:
    """Liberation Sans (full Vietnamese coverage, bundled): the pages show every diacritic on any machine."""
    name = _FONT_FILES.get(request.match_info["name"])
    if name is None or not (FONTS / name).is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(FONTS / name, headers={"Cache-Control": "public, max-age=86400",
                                                   "Content-Type": "font/ttf"})


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


def setup_ui(app: web.Application) -> None:
    """Mount the pages under ``/ui/`` and send ``/`` there."""
    app.add_subapp("/ui/", create_ui_app(app))
    app.router.add_get("/", _root)
