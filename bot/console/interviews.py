"""进行中 (the landing page), 面试 (all, filtered and paginated), 面试详情 (the timeline), and the
two actions on an interview: 终止 (the one termination procedure) and 重新安排 (the one reschedule
procedure), both with operator ``<platform>:<user_id>`` and source ``console``."""

from __future__ import annotations

from datetime import date, datetime

from aiohttp import web

from bot.console.web import PREFIX, Form, action, core_of, page, redirect, render, text_field
from bot.services import browse, reasons, scheduling, termination
from bot.services.console_auth import ConsoleUser
from bot.services.errors import ServiceError

routes = web.RouteTableDef()

SOURCE = "console"
# The detail page lists this many of a termination's saved answers (the count is always shown).
ANSWERS_SHOWN = 50


async def _live(request: web.Request, user: ConsoleUser, *, status: int = 200, error: str = "") -> web.Response:
    core = core_of(request)
    return render(
        request,
        "live",
        status=status,
        user=user,
        rows=await browse.live(core, scope=user.scope),
        reasons=await reasons.choices(core),
        error=error,
        done=request.query.get("done", ""),
        refresh=core.settings.console_refresh_seconds,
    )


@routes.get(PREFIX)
@page
async def live(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    return await _live(request, user)


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"bad date {value!r}") from None
    if not 1970 <= day.year <= 2999:
        raise web.HTTPBadRequest(text=f"bad date {value!r}")
    return day


@routes.get(f"{PREFIX}/interviews")
@page
async def interview_list(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    q = request.query
    status = q.get("status", "")
    known = {s.value for s in browse.InterviewStatus}
    if status and status not in known:
        return render(request, "bad_request", status=400, user=user, what="status")
    try:
        start, end = _day(q.get("from")), _day(q.get("to"))
        raw_page = q.get("page", "1") or "1"
        number = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) <= 6 else 0
    except (web.HTTPBadRequest, ValueError):
        return render(request, "bad_request", status=400, user=user, what="date")
    if number < 1:
        return render(request, "bad_request", status=400, user=user, what="page")
    if start and end and end < start:
        return render(request, "bad_request", status=400, user=user, what="range")
    query = q.get("q", "").strip()[:64]
    found = await browse.page(
        core_of(request), scope=user.scope, status=status, start=start, end=end, query=query, number=number
    )
    filters = {"status": status, "from": q.get("from", ""), "to": q.get("to", ""), "q": query}
    return render(request, "interviews", user=user, page=found, filters=filters, statuses=sorted(known))


@routes.get(PREFIX + "/interviews/{id}")
@page
async def interview_detail(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    return await _detail(request, user, request.match_info["id"])


async def _detail(
    request: web.Request, user: ConsoleUser, platform_id: str, *, status: int = 200, error: str = "", **extra: object
) -> web.Response:
    core = core_of(request)
    before = request.query.get("before", "") if request.method == "GET" else ""
    try:
        found = await browse.timeline(core, platform_id=platform_id, scope=user.scope, before=before or None)
    except browse.BadCursor:
        return render(request, "bad_request", status=400, user=user, what="cursor", platform_id=platform_id)
    if found is None:
        return render(request, "not_found", status=404, user=user, platform_id=platform_id)
    return render(
        request,
        "detail",
        status=status,
        user=user,
        t=found,
        before=before,
        answers_shown=ANSWERS_SHOWN,
        reasons=await reasons.choices(core),
        error=error,
        done=request.query.get("done", ""),
        platform_called=termination.platform_called,
        **extra,
    )


def _back(form: Form, platform_id: str) -> str:
    """Where to go after an action: the detail page if it was sent from there, else 进行中."""
    return f"{PREFIX}/interviews/{platform_id}" if text_field(form, "from") == "detail" else PREFIX


async def _terminate(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    core = core_of(request)
    platform_id = request.match_info["id"]
    from_detail = text_field(form, "from") == "detail"

    async def refuse(status: int, message: str) -> web.Response:
        if from_detail:
            return await _detail(request, user, platform_id, status=status, error=message)
        return await _live(request, user, status=status, error=message)

    if await browse.visible(core, platform_id=platform_id, scope=user.scope) is None:
        return await refuse(404, f"找不到面试 {platform_id}")
    reason = text_field(form, "reason", limit=100)
    if not reason:
        return await refuse(400, "请选择终止原因")
    try:
        result = await termination.terminate(
            core,
            platform_id=platform_id,
            reason_text=reason,
            operator=user.key,
            source=SOURCE,
            detail=text_field(form, "note", limit=500),
        )
    except termination.TerminationError as exc:
        return await refuse(exc.http_status, exc.message)
    # "recorded": no platform is connected, the termination is only recorded here.
    raise redirect(_back(form, platform_id), done="terminated" if result.platform_called else "recorded")


routes.post(PREFIX + "/interviews/{id}/terminate")(action(_terminate))


def _local_time(value: str, user_tz: object) -> datetime | None:
    """A ``datetime-local`` value (``2026-03-11T14:00``) in BOT_TIMEZONE."""
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return None
    if naive.tzinfo is not None or not 1970 <= naive.year <= 2999:
        return None
    return naive.replace(tzinfo=user_tz)  # type: ignore[arg-type]


async def _reschedule(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    """First POST: a confirmation; the second (``confirm=1``) reschedules."""
    core = core_of(request)
    platform_id = request.match_info["id"]
    if await browse.visible(core, platform_id=platform_id, scope=user.scope) is None:
        return render(request, "not_found", status=404, user=user, platform_id=platform_id)
    raw = text_field(form, "when", limit=40)
    when = _local_time(raw, core.settings.tz)
    if when is None:
        return await _detail(request, user, platform_id, status=400, error="请选择新的面试时间")
    if text_field(form, "confirm") != "1":
        return await _detail(request, user, platform_id, confirm_when=when, confirm_raw=raw)
    try:
        await scheduling.reschedule(core, platform_id=platform_id, new_time=when, operator=user.key, source=SOURCE)
    except ServiceError as exc:
        return await _detail(request, user, platform_id, status=exc.http_status, error=exc.message)
    raise redirect(f"{PREFIX}/interviews/{platform_id}", done="rescheduled")


routes.post(PREFIX + "/interviews/{id}/reschedule")(action(_reschedule))
