"""POST /api/platform/events: signed events from the AI-interview platform."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aiohttp import web
from pydantic import ValidationError

from bot.api.common import error, parse_json_object
from bot.keys import BACKGROUND, CORE
from bot.logs import log_context
from bot.services import help_requests
from bot.services.context import Core
from bot.services.events import EventType, PlatformEventIn, apply_event
from bot.signing import verify_platform_signature

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _candidate_exits(core: Core) -> None:
    try:
        await help_requests.run_candidate_exits(core)
    except Exception:
        log.exception("candidate exit processing failed; the sweep will retry")


@routes.post("/api/platform/events")
async def platform_events(request: web.Request) -> web.Response:
    core = request.app[CORE]
    settings = core.settings
    if settings.platform_webhook_secret is None:
        return error(503, "disabled", "平台事件接口未启用(未设置 PLATFORM_WEBHOOK_SECRET)")
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
        with log_context(event_id=event.event_id, interview_id=event.interview.id):
            applied = await apply_event(core, event)
    except ValidationError as exc:
        fields = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return error(422, "invalid_event", "事件格式不正确", details=fields)
    if not applied:
        return web.json_response({"status": "duplicate", "event_id": event.event_id})
    if event.type is EventType.help_requested and settings.candidate_exit_policy == "self":
        # Ending the interview calls the platform back: do it after answering, durably
        # (the candidate_exit row is retried by the sweep if this task dies).
        task = asyncio.create_task(_candidate_exits(core), name=f"candidate-exit-{event.event_id}")
        request.app[BACKGROUND].add(task)
        task.add_done_callback(request.app[BACKGROUND].discard)
    return web.json_response({"status": "applied", "event_id": event.event_id})
