"""Admin API (Bearer BOT_ADMIN_TOKEN): interviews, termination, exit reports, outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from bot.api.common import error, fail, parse_json_object
from bot.bounded import ascii_equal, check_day
from bot.chat.messages import INBOUND_KIND
from bot.keys import CORE
from bot.services import termination
from bot.services.reports import exit_report
from storage import repo
from storage.models import Candidate, ExitRecord, Interview, InterviewStatus, Notice, NoticeAttempt, NoticeStatus, Todo

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


@routes.get("/api/interviews")
async def list_interviews(request: web.Request) -> web.Response:
    require_admin(request)
    status = request.query.get("status")
    if status and status not in {s.value for s in InterviewStatus}:
        return error(400, "bad_status", f"未知状态 {status!r}", known=[s.value for s in InterviewStatus])
    core = request.app[CORE]
    async with core.sessions() as session:
        interviews = await repo.list_interviews(session, status=status)
        out = []
        for interview in interviews:
            candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
            out.append(interview_summary(interview, candidate))
    return web.json_response({"interviews": out})


def _interview_id(request: web.Request) -> str:
    """The path's interview id; one that no interview can have (too long, NUL) is a 404 at once."""
    value = request.match_info["id"]
    if len(value) > 128 or "\x00" in value:
        fail(404, "not_found", "找不到这场面试")
    return value


@routes.get("/api/interviews/{id}")
async def get_interview(request: web.Request) -> web.Response:
    require_admin(request)
    core = request.app[CORE]
    async with core.sessions() as session:
        interview = await repo.get_interview(session, platform_id=_interview_id(request))
        if interview is None:
            return error(404, "not_found", f"找不到面试 {request.match_info['id']}")
        assert interview.id is not None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        body = interview_summary(interview, candidate)
        body["progress"] = interview.progress
        body["exit"] = exit_public(await repo.get_exit(session, interview_id=interview.id))
        body["todos"] = [todo_public(t) for t in await repo.todos_for_interview(session, interview_id=interview.id)]
        notices = await repo.notices_for_interview(session, interview_id=interview.id)
        attempts = await repo.attempts_for_notices(session, notice_ids=[n.id for n in notices if n.id is not None])
        body["notices"] = [notice_public(n, attempts.get(n.id or 0, [])) for n in notices]
    return web.json_response(body)


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
    try:
        result = await termination.terminate(
            request.app[CORE],
            platform_id=_interview_id(request),
            reason_text=body.reason,
            operator=operator,
            source="admin_api",
            detail=body.detail,
        )
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
    require_admin(request)
    status = request.query.get("status")
    if status and status not in {s.value for s in NoticeStatus}:
        return error(400, "bad_status", f"未知状态 {status!r}", known=[s.value for s in NoticeStatus])
    # Received chat messages waiting to be processed live in the outbox too; list them only when asked.
    kind = request.query.get("kind")
    if kind is not None and (len(kind) > 64 or "\x00" in kind):
        return error(400, "bad_kind", "kind 不合法")
    async with request.app[CORE].sessions() as session:
        rows = await repo.list_notices(session, status=status, kind=kind, exclude_kind=None if kind else INBOUND_KIND)
    return web.json_response({"notices": [notice_public(n) for n in rows]})
