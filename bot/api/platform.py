"""POST /api/platform/events: signed events from the AI-interview platform."""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web
from pydantic import ValidationError

from bot.api.common import error, parse_json_object
from bot.keys import CORE, PLATFORM_INTAKE
from bot.logs import log_context
from bot.platform_intake import RETRY_AFTER_SECONDS, Busy
from bot.services.events import EventType, PlatformEventIn, typed_data
from bot.signing import verify_platform_signature

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/api/platform/events")
async def platform_events(request: web.Request) -> web.Response:
    """Verify, bound, validate, store and answer at once (``accepted`` or ``duplicate``); the event
    is applied by the intake's worker (``bot/platform_intake.py``). Malformed events are refused
    before anything is stored; a full backlog is a prompt 503 with ``Retry-After``."""
    core = request.app[CORE]
    settings = core.settings
    if settings.platform_webhook_secret is None:
        return error(503, "disabled", "平台事件接口未启用(未设置 PLATFORM_WEBHOOK_SECRET)")
    intake = request.app[PLATFORM_INTAKE]
    if intake.busy():  # before any work: the platform learns at once that it must wait
        return _busy("backlog above its bound")
    raw = await request.read()
    problem = verify_platform_signature(
        settings.platform_webhook_secret.get_secret_value(),
        request.headers.get("X-Bot-Timestamp"),
        request.headers.get("X-Bot-Signature"),
        raw,
        now=core.clock.now().timestamp(),
        max_skew=settings.signature_max_skew_seconds,
    )
    if problem:
        log.warning("platform event rejected from %s: %s", request.remote, problem)
        return error(401, "bad_signature", f"签名校验失败: {problem}")
    data = parse_json_object(raw)
    known = [t.value for t in EventType]
    if data.get("type") not in known:
        return error(400, "unknown_event_type", f"未知的事件类型: {data.get('type')!r}", known=known)
    try:
        # Events may run ahead of our clock by the skew signatures allow, no more.
        context = {"now": core.clock.now(), "max_ahead": timedelta(seconds=settings.signature_max_skew_seconds)}
        event = PlatformEventIn.model_validate(data, context=context)
        typed_data(event)
    except ValidationError as exc:
        fields = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return error(422, "invalid_event", "事件格式不正确", details=fields)
    with log_context(event_id=event.event_id, interview_id=event.interview.id):
        try:
            new = await intake.store(event, data)
        except Busy as exc:
            return _busy(str(exc))
    core.metrics.callback("platform", "accepted" if new else "duplicate")
    return web.json_response({"status": "accepted" if new else "duplicate", "event_id": event.event_id})


def _busy(why: str) -> web.Response:
    log.warning("platform event refused for now: %s", why)
    response = error(503, "busy", f"事件积压,请 {RETRY_AFTER_SECONDS} 秒后重试")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
