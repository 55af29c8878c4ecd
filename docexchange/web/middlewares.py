"""The one place where errors become HTTP answers: ``application/problem+json`` (RFC 9457) with our stable code
and the Vietnamese and English messages. Unexpected exceptions are logged and answered 500 without details."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from docexchange.errors import DocExchangeError

__all__ = ["PROBLEM_TYPE", "error_middleware", "problem"]

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"

_HTTP_CODES = {
    400: ("bad_request", "Yêu cầu không hợp lệ", "bad request"),
    401: ("auth", "Chưa xác thực", "unauthenticated"),
    403: ("forbidden", "Không được phép", "forbidden"),
    404: ("not_found", "Không tìm thấy", "not found"),
    405: ("method_not_allowed", "Phương thức không được hỗ trợ", "method not allowed"),
    413: ("packet_too_large", "Nội dung gửi lên quá lớn", "request body too large"),
    415: ("unsupported_media_type", "Kiểu nội dung không được hỗ trợ", "unsupported media type"),
}


def problem(status: int, code: str, message_vi: str, message_en: str, **extra: Any) -> web.Response:
    body = {
        "type": f"https://docexchange.example/problems/{code}",
        "title": message_en,
        "status": status,
        "code": code,
        "message_vi": message_vi,
        "message_en": message_en,
        "detail": f"{message_vi} — {message_en}" if message_en != message_vi else message_vi,
        **extra,
    }
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=PROBLEM_TYPE,
        charset="utf-8",
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except DocExchangeError as exc:
        if exc.http_status >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc)
        resp = problem(exc.http_status, exc.code, exc.message_vi, exc.message_en)
        if exc.http_status == 401:
            resp.headers["WWW-Authenticate"] = "DX-HMAC-SHA256"
        return resp
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, vi, en = _HTTP_CODES.get(exc.status, ("http_error", "Lỗi HTTP", exc.reason))
        return problem(exc.status, code, vi, en if exc.status != 405 else f"{en}: {request.method}")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal", "Lỗi nội bộ của trục", "internal error")
