"""Helpers shared by the HTTP endpoints: JSON errors and body parsing."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from aiohttp import web

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
