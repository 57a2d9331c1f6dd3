"""Admin API (Bearer BOT_ADMIN_TOKEN): interviews, termination, exit reports, outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.api.common import error, fail, int_cursor, next_link, paging, parse_json_object
from bot.bounded import ascii_equal, check_day
from bot.keys import CORE
from bot.services import browse, events, termination
from bot.services.reports import exit_report
from storage import repo
from storage.models import (
    Candidate,
    ExitRecord,
    IntakeItem,
    IntakeStatus,
    Interview,
    InterviewStatus,
    Notice,
    NoticeAttempt,
    NoticeStatus,
    Todo,
)

routes = web.RouteTableDef()


def require_admin(request: web.Request) -> None:
    token = request.app[CORE].settings.admin_token
    if token is None or not token.get_secret_value():
        fail(503, "disabled", "管理接口未启用(未设置 BOT_ADMIN_TOKEN)")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not ascii_equal(token.get_secret_value(), given.strip()):
        raise web.HTTPUnauthorized(
            text='{"error": "unauthorized", "message": "需要管理员令牌"}',
            content_type="application/json",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def interview_summary(interview: Interview, candidate: Candidate | None) -> dict[str, Any]:
    return {
        "id": interview.platform_id,
        "position": interview.position,
        "status": interview.status,
        "candidate": {
            "name": candidate.name if candidate else None,
            "pipeline_status": candidate.pipeline_status if candidate else None,
        },
        "hr": interview.hr_key,
        "scheduled_at": _iso(interview.scheduled_at),
        "started_at": _iso(interview.started_at),
        "last_activity_at": _iso(interview.last_activity_at),
        "ended_at": _iso(interview.ended_at),
        "answered": interview.answered_count,
    }


def exit_public(record: ExitRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "reason": record.reason,
        "reason_code": record.reason_code,
        "detail": record.detail,
        "operator": record.operator,
        "source": record.source,
        "at": _iso(record.at),
        "progress_snapshot": record.progress_snapshot,
    }


def todo_public(todo: Todo) -> dict[str, Any]:
    return {
        "id": todo.id,
        "assignee": todo.assignee,
        "title": todo.title,
        "done": todo.done,
        "done_at": _iso(todo.done_at),
        "done_by": todo.done_by,
    }


def attempt_public(attempt: NoticeAttempt) -> dict[str, Any]:
    return {
        "channel": attempt.channel,
        "recipient": attempt.recipient,
        "at": _iso(attempt.started_at),
        "finished_at": _iso(attempt.finished_at),
        "result": attempt.result,
        "provider_id": attempt.provider_id,
        "error": attempt.error,
        "idempotency_key": attempt.idem_key,
    }


def notice_public(notice: Notice, attempts: Sequence[NoticeAttempt] = ()) -> dict[str, Any]:
    """``tries``: failed tries on the current channel; ``attempts``: every recorded try on every channel."""
    return {
        "id": notice.id,
        "kind": notice.kind,
        "channel": notice.channel,
        "recipient": notice.recipient,
        "status": notice.status,
        "tries": notice.attempts,
        "attempts": [attempt_public(a) for a in attempts],
        "subject": notice.subject,
        "body": notice.body,
        "last_error": notice.last_error,
        "sent_at": _iso(notice.sent_at),
    }


def intake_public(item: IntakeItem) -> dict[str, Any]:
    """An intake item without its payload (a chat message's text stays out of lists)."""
    return {
        "id": item.id,
        "source": item.source,
        "key": item.key,
        "order_key": item.order_key,
        "status": item.status,
        "tries": item.attempts,
        "last_error": item.last_error,
        "received_at": _iso(item.received_at),
        "done_at": _iso(item.done_at),
    }


# Paged lists: (default, maximum) of ``limit``.
LIST_PAGE = (100, 500)
ITEMS_PAGE = (50, 200)
ANSWERS_PAGE = (100, 500)


@routes.get("/api/interviews")
async def list_interviews(request: web.Request) -> web.Response:
    """Newest first, ``limit`` at a time; ``next`` is the address of the following page."""
    require_admin(request)
    status = request.query.get("status")
    if status and status not in {s.value for s in InterviewStatus}:
        return error(400, "bad_status", f"未知状态 {status!r}", known=[s.value for s in InterviewStatus])
    page = paging(request, default=LIST_PAGE[0], maximum=LIST_PAGE[1])
    async with request.app[CORE].sessions() as session:
        rows = await repo.list_interviews(session, status=status, before=int_cursor(page), limit=page.limit + 1)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    last = rows[-1][0].id if more else None
    return web.json_response(
        {"interviews": [interview_summary(i, c) for i, c in rows], "next": next_link(request, last)}
    )


def _interview_id(request: web.Request) -> str:
    """The path's interview id; one that no interview can have (too long, NUL) is a 404 at once."""
    value = request.match_info["id"]
    if len(value) > 128 or "\x00" in value:
        fail(404, "not_found", "找不到这场面试")
    return value


def _answers_page(answered: list[dict[str, Any]], *, after: int | None, limit: int) -> tuple[list[Any], int | None]:
    """Saved answers (ordered by question number) after question ``after``: a page and the cursor
    of the next one."""
    rest = [a for a in answered if after is None or _question_no(a) > after]
    return rest[:limit], (_question_no(rest[limit - 1]) if len(rest) > limit else None)


def _question_no(answer: dict[str, Any]) -> int:
    value = answer.get("question_no")
    return value if isinstance(value, int) else -1


def _first_page(rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], int | None]:
    """The first ``limit`` of ``limit + 1`` rows and the id of the last one shown when there are more."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more else None)


async def _found(session: AsyncSession, request: web.Request) -> Interview:
    """The path's interview (first read of the route's session), or a 404; when its event was
    accepted a moment ago and is being applied, found once it is."""
    platform_id = _interview_id(request)

    async def look() -> Interview | None:
        await session.rollback()  # a new snapshot for the second look (SQLite keeps a read transaction's own)
        return await repo.get_interview(session, platform_id=platform_id)

    interview = await events.found_once_applied(request.app[CORE], look, lambda found: found is not None)
    if interview is None:
        fail(404, "not_found", f"找不到面试 {request.match_info['id']}")
    return interview


@routes.get("/api/interviews/{id}")
async def get_interview(request: web.Request) -> web.Response:
    """The interview with the first page of each of its lists (``answered``, the exit's answers,
    ``todos``, ``notices``); ``next`` names each list's following page, ``timeline`` its history."""
    require_admin(request)
    core = request.app[CORE]
    base = f"/api/interviews/{quote(request.match_info['id'], safe='')}"
    async with core.sessions() as session:
        interview = await _found(session, request)
        assert interview.id is not None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        body = interview_summary(interview, candidate)
        answered, answers_next = _answers_page(
            interview.progress.get("answered", []), after=None, limit=ANSWERS_PAGE[0]
        )
        body["progress"] = {**interview.progress, "answered": answered}
        exit_record = await repo.get_exit(session, interview_id=interview.id)
        body["exit"] = exit_public(exit_record)
        exit_next = None
        if exit_record is not None and body["exit"] is not None:
            snapshot = exit_record.progress_snapshot
            shown, exit_next = _answers_page(snapshot.get("answered", []), after=None, limit=ANSWERS_PAGE[0])
            body["exit"]["progress_snapshot"] = {**snapshot, "answered": shown} if "answered" in snapshot else snapshot
        todos, todos_next = _first_page(
            await repo.todos_for_interview(session, interview_id=interview.id, limit=ITEMS_PAGE[0] + 1), ITEMS_PAGE[0]
        )
        body["todos"] = [todo_public(t) for t in todos]
        notices, notices_next = _first_page(
            await repo.notices_for_interview(session, interview_id=interview.id, limit=ITEMS_PAGE[0] + 1),
            ITEMS_PAGE[0],
        )
        attempts = await repo.attempts_for_notices(session, notice_ids=[n.id for n in notices if n.id is not None])
        body["notices"] = [notice_public(n, attempts.get(n.id or 0, [])) for n in notices]
    body["next"] = {
        "answered": next_link(request, answers_next, path=f"{base}/answers"),
        "exit_answered": next_link(request, exit_next, path=f"{base}/answers?of=exit"),
        "todos": next_link(request, todos_next, path=f"{base}/todos"),
        "notices": next_link(request, notices_next, path=f"{base}/notices"),
    }
    body["timeline"] = f"{base}/timeline"
    return web.json_response(body)


@routes.get("/api/interviews/{id}/answers")
async def interview_answers(request: web.Request) -> web.Response:
    """Saved answers by question number: the interview's progress, or (``of=exit``) what its
    latest termination saved."""
    require_admin(request)
    of = request.query.get("of", "progress")
    if of not in ("progress", "exit"):
        return error(400, "bad_of", "of 须为 progress 或 exit")
    page = paging(request, default=ANSWERS_PAGE[0], maximum=ANSWERS_PAGE[1])
    async with request.app[CORE].sessions() as session:
        interview = await _found(session, request)
        assert interview.id is not None
        if of == "exit":
            record = await repo.get_exit(session, interview_id=interview.id)
            answered = record.progress_snapshot.get("answered", []) if record is not None else []
        else:
            answered = interview.progress.get("answered", [])
    shown, after = _answers_page(answered, after=int_cursor(page), limit=page.limit)
    return web.json_response({"answered": shown, "total": len(answered), "next": next_link(request, after)})


@routes.get("/api/interviews/{id}/todos")
async def interview_todos(request: web.Request) -> web.Response:
    """The interview's to-dos, oldest first."""
    require_admin(request)
    page = paging(request, default=ITEMS_PAGE[0], maximum=ITEMS_PAGE[1])
    async with request.app[CORE].sessions() as session:
        interview = await _found(session, request)
        assert interview.id is not None
        rows = await repo.todos_for_interview(
            session, interview_id=interview.id, after=int_cursor(page), limit=page.limit + 1
        )
    todos, last = _first_page(rows, page.limit)
    return web.json_response({"todos": [todo_public(t) for t in todos], "next": next_link(request, last)})


@routes.get("/api/interviews/{id}/notices")
async def interview_notices(request: web.Request) -> web.Response:
    """The interview's notices with every recorded try, oldest first."""
    require_admin(request)
    page = paging(request, default=ITEMS_PAGE[0], maximum=ITEMS_PAGE[1])
    async with request.app[CORE].sessions() as session:
        interview = await _found(session, request)
        assert interview.id is not None
        rows = await repo.notices_for_interview(
            session, interview_id=interview.id, after=int_cursor(page), limit=page.limit + 1
        )
        notices, last = _first_page(rows, page.limit)
        attempts = await repo.attempts_for_notices(session, notice_ids=[n.id for n in notices if n.id is not None])
    body = [notice_public(n, attempts.get(n.id or 0, [])) for n in notices]
    return web.json_response({"notices": body, "next": next_link(request, last)})


@routes.get("/api/interviews/{id}/timeline")
async def interview_timeline(request: web.Request) -> web.Response:
    """Everything recorded about the interview, newest first (the console's 时间线)."""
    require_admin(request)
    page = paging(request, default=browse.TIMELINE_PAGE, maximum=browse.TIMELINE_MAX)
    core = request.app[CORE]
    platform_id = _interview_id(request)
    try:
        found = await events.found_once_applied(
            core,
            lambda: browse.timeline(core, platform_id=platform_id, scope=None, before=page.cursor, limit=page.limit),
            lambda found: found is not None,
        )
    except browse.BadCursor:
        return error(400, "bad_cursor", "cursor 不正确:请使用上一页返回的 next 链接")
    if found is None:
        return error(404, "not_found", f"找不到面试 {request.match_info['id']}")
    items = [timeline_public(item) for item in reversed(found.items)]
    return web.json_response({"items": items, "next": next_link(request, found.older)})


def timeline_public(entry: browse.TimelineItem) -> dict[str, Any]:
    item = entry.item
    out: dict[str, Any] = {"kind": entry.kind, "at": _iso(entry.at)}
    if entry.kind == "event":
        out |= {"event_id": item.event_id, "type": item.type, "data": item.payload.get("data", {})}
    elif entry.kind == "audit":
        out |= {"action": item.action, "actor": item.actor, "detail": item.detail}
    elif entry.kind == "exit":
        out |= {"attempt": item.attempt, **(exit_public(item) or {})}
        out["progress_snapshot"] = {k: v for k, v in item.progress_snapshot.items() if k != "answered"}
        out["answered_count"] = len(item.progress_snapshot.get("answered", []))
    elif entry.kind == "todo":
        out |= todo_public(item)
    elif entry.kind == "notice":
        out |= notice_public(item, entry.attempts)
    elif entry.kind == "reminder":
        out |= {"reminder": item.kind, "state": item.state, "note": item.note}
    return out


class TerminateIn(BaseModel):
    reason: str = Field(min_length=1, max_length=100)
    operator: str = Field("admin", min_length=1, max_length=100)
    detail: str = Field("", max_length=500)


@routes.post("/api/interviews/{id}/terminate")
async def terminate_interview(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        body = TerminateIn.model_validate(parse_json_object(await request.read()))
    except ValidationError as exc:
        return error(
            422, "invalid_request", "需要 reason(原因),可选 operator、detail", details=exc.errors(include_url=False)
        )
    operator = body.operator if body.operator.startswith("admin") else f"admin:{body.operator}"
    core = request.app[CORE]

    async def terminate() -> termination.TerminationResult:
        return await termination.terminate(
            core,
            platform_id=_interview_id(request),
            reason_text=body.reason,
            operator=operator,
            source="admin_api",
            detail=body.detail,
        )

    try:
        try:
            result = await terminate()
        except termination.InterviewNotFound:
            if not await events.caught_up(core):  # else its event was accepted a moment ago
                raise
            result = await terminate()
    except termination.TerminationError as exc:
        extra: dict[str, Any] = {}
        if isinstance(exc.extra.get("exit"), ExitRecord):
            extra["exit"] = exit_public(exc.extra["exit"])
        if "choices" in exc.extra:
            extra["choices"] = exc.extra["choices"]
        return error(exc.http_status, exc.code, exc.message, **extra)
    return web.json_response(
        {
            "status": "terminated",
            "interview": interview_summary(result.interview, result.candidate),
            "exit": exit_public(result.exit),
            "todo": todo_public(result.todo),
            "notice": notice_public(result.notice),
        }
    )


def _parse_day(value: str | None, name: str) -> date:
    if not value:
        fail(400, "missing_parameter", f"缺少参数 {name}(YYYY-MM-DD)")
    try:
        return check_day(date.fromisoformat(value))
    except ValueError as exc:
        fail(400, "bad_date", f"{name} 不是合法日期: {value!r}(YYYY-MM-DD, {exc})")


@routes.get("/api/reports/exits")
async def exits(request: web.Request) -> web.Response:
    require_admin(request)
    start = _parse_day(request.query.get("from"), "from")
    end = _parse_day(request.query.get("to"), "to")
    if end < start:
        return error(400, "bad_range", "to 不能早于 from")
    report = await exit_report(request.app[CORE], start=start, end=end)
    return web.json_response(report.as_dict())


@routes.get("/api/notices")
async def list_notices(request: web.Request) -> web.Response:
    """The outbox, newest first, ``limit`` at a time; ``next`` is the address of the following page."""
    require_admin(request)
    status = request.query.get("status")
    if status and status not in {s.value for s in NoticeStatus}:
        return error(400, "bad_status", f"未知状态 {status!r}", known=[s.value for s in NoticeStatus])
    kind = request.query.get("kind")
    if kind is not None and (len(kind) > 64 or "\x00" in kind):
        return error(400, "bad_kind", "kind 不合法")
    page = paging(request, default=LIST_PAGE[0], maximum=LIST_PAGE[1])
    async with request.app[CORE].sessions() as session:
        rows = await repo.list_notices(
            session,
            status=status,
            kind=kind,
            before=int_cursor(page),
            limit=page.limit + 1,
        )
    notices, last = _first_page(rows, page.limit)
    return web.json_response({"notices": [notice_public(n) for n in notices], "next": next_link(request, last)})


@routes.get("/api/intake")
async def list_intake(request: web.Request) -> web.Response:
    """What was taken in (chat messages, platform events), newest first, ``limit`` at a time; e.g.
    ``?status=failed`` for the ones given up on after their last try."""
    require_admin(request)
    status = request.query.get("status")
    if status and status not in {s.value for s in IntakeStatus}:
        return error(400, "bad_status", f"未知状态 {status!r}", known=[s.value for s in IntakeStatus])
    source = request.query.get("source")
    if source is not None and (len(source) > 32 or "\x00" in source):
        return error(400, "bad_source", "source 不合法")
    page = paging(request, default=LIST_PAGE[0], maximum=LIST_PAGE[1])
    async with request.app[CORE].sessions() as session:
        rows = await repo.intake_page(
            session, status=status, source=source, before=int_cursor(page), limit=page.limit + 1
        )
    items, last = _first_page(rows, page.limit)
    return web.json_response({"items": [intake_public(i) for i in items], "next": next_link(request, last)})
