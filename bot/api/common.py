"""Helpers shared by the HTTP endpoints: JSON errors, body parsing and paging (``limit``, ``cursor``, ``next``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NoReturn

from aiohttp import web
from yarl import URL

from bot.bounded import BadInput, load_json


def error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


def fail(status: int, code: str, message: str, **extra: Any) -> NoReturn:
    body = json.dumps({"error": code, "message": message, **extra}, ensure_ascii=False)
    raise _http_error(status, body)


def _http_error(status: int, body: str) -> web.HTTPException:
    cls = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        413: web.HTTPRequestEntityTooLarge,
        415: web.HTTPUnsupportedMediaType,
        422: web.HTTPUnprocessableEntity,
        502: web.HTTPBadGateway,
        503: web.HTTPServiceUnavailable,
    }[status]
    if cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(max_size=0, actual_size=0, text=body, content_type="application/json")
    return cls(text=body, content_type="application/json")


MESSAGES = {
    "malformed_json": "请求体不是合法的 JSON",
    "too_deep": "请求体嵌套层数过多",
    "nul_character": "请求体含有 NUL 字符",
    "malformed_text": "请求体含有无法编码的字符",
}


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, through the one bounded loader (``bot.bounded``); else 400."""
    try:
        data = load_json(raw)
    except BadInput as exc:
        fail(400, exc.code, f"{MESSAGES.get(exc.code, '请求体不合法')}: {exc}")
    if not isinstance(data, dict):
        fail(400, "malformed_json", "请求体必须是 JSON 对象")
    return data


@dataclass(frozen=True)
class Paging:
    """A list endpoint's ``limit`` and ``cursor`` query parameters, checked."""

    limit: int
    cursor: str | None


def paging(request: web.Request, *, default: int, maximum: int) -> Paging:
    """``limit`` (1..maximum, ``default`` when absent) and the opaque ``cursor`` a ``next`` link
    carries; a bad value is a 400 and nothing is read."""
    raw = request.query.get("limit", "")
    if not raw:
        limit = default
    elif raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= maximum:
        limit = int(raw)
    else:
        fail(400, "bad_limit", f"limit 须为 1 到 {maximum} 的整数(默认 {default})", maximum=maximum)
    cursor = request.query.get("cursor") or None
    if cursor is not None and (len(cursor) > 100 or not cursor.isascii() or not cursor.isprintable()):
        fail(400, "bad_cursor", "cursor 不正确:请使用上一页返回的 next 链接")
    return Paging(limit, cursor)


def int_cursor(page: Paging) -> int | None:
    """The cursor of an id- or number-keyed list, or a 400."""
    if page.cursor is None:
        return None
    if not (page.cursor.isdigit() and len(page.cursor) <= 18):
        fail(400, "bad_cursor", "cursor 不正确:请使用上一页返回的 next 链接")
    return int(page.cursor)


def next_link(request: web.Request, cursor: object | None, *, path: str | None = None) -> str | None:
    """The address of the next page (this request's path and query with ``cursor`` replaced), or
    None when there is no next page. ``path`` for a page of another resource (its first-page query
    is then just the cursor)."""
    if cursor is None:
        return None
    if path is not None:
        return str(URL(path).update_query(cursor=str(cursor)))
    return str(request.rel_url.update_query(cursor=str(cursor)))
