"""The one termination procedure, whatever triggered it (admin API, chat, candidate, timeout).

1. claim the interview (conditional update: of two operators at once, one wins);
2. save the candidate's progress on the platform, then terminate it there; on failure
   release the claim and say why, changing nothing else;
3. in one transaction: status, exit record with the saved progress, pipeline status,
   HR to-do, candidate notice, HR chat notice, audit event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.platform_client import PlatformError
from bot.services import notices, people
from bot.services.context import Core
from bot.services.errors import ServiceError
from bot.services.reasons import match_reason, shown_detail
from storage import repo
from storage.models import Candidate, ExitReason, ExitRecord, Interview, InterviewStatus, Notice, Todo

log = logging.getLogger(__name__)

# A claim older than this is from a crashed process and may be taken over.
CLAIM_STALE_AFTER = timedelta(minutes=2)


class TerminationError(ServiceError):
    """Why an interview was not terminated."""

    code = "termination_failed"


class InterviewNotFound(TerminationError):
    code = "not_found"
    http_status = 404


class UnknownReason(TerminationError):
    code = "unknown_reason"
    http_status = 400


class AlreadyTerminated(TerminationError):
    code = "already_terminated"


class AlreadyCompleted(TerminationError):
    code = "already_completed"


class TerminationInProgress(TerminationError):
    code = "termination_in_progress"


class SaveFailed(TerminationError):
    code = "save_failed"
    http_status = 502


class PlatformTerminateFailed(TerminationError):
    code = "platform_terminate_failed"
    http_status = 502


@dataclass
class TerminationResult:
    interview: Interview
    candidate: Candidate
    exit: ExitRecord
    todo: Todo
    notice: Notice


async def resolve_reason(core: Core, text: str) -> ExitReason:
    async with core.sessions() as session:
        reasons = await repo.list_reasons(session)
    reason = match_reason(text, reasons)
    if reason is None:
        names = "、".join(r.name for r in reasons)
        raise UnknownReason(f"无法识别的原因「{text}」,可选:{names}", choices=[r.name for r in reasons])
    return reason


async def _refusal_for(core: Core, interview_id: int) -> TerminationError:
    async with core.sessions() as session:
        interview = await repo.get_interview_by_pk(session, interview_id=interview_id)
        assert interview is not None
        if interview.status == InterviewStatus.terminated.value:
            record = await repo.get_exit(session, interview_id=interview_id)
            who = await people.display_name(session, record.operator) if record else "他人"
            return AlreadyTerminated(f"该面试已被 {who} 终止,无需重复操作", exit=record)
        if interview.status == InterviewStatus.completed.value:
            return AlreadyCompleted("该面试已完成,不能终止")
        who = await people.display_name(session, interview.terminating_by) or "他人"
        return TerminationInProgress(f"{who} 正在终止该面试,请稍候查看结果")


async def terminate(
    core: Core,
    *,
    platform_id: str,
    reason_text: str,
    operator: str,
    source: str,
    detail: str = "",
    chat: str | None = None,
) -> TerminationResult:
    reason = await resolve_reason(core, reason_text)
    now = core.clock.now()
    async with core.sessions() as session:
        interview = await repo.get_interview(session, platform_id=platform_id)
        if interview is None:
            raise InterviewNotFound(f"找不到面试 {platform_id}")
        assert interview.id is not None
        interview_id = interview.id
        won = await repo.claim_termination(
            session, interview_id=interview_id, operator=operator, now=now, stale_before=now - CLAIM_STALE_AFTER
        )
    if not won:
        raise await _refusal_for(core, interview_id)

    try:
        snapshot = await _save_and_stop(core, interview, reason, operator)
    except TerminationError as exc:
        async with core.sessions() as session:
            await repo.release_termination(session, interview_id=interview_id, operator=operator)
            repo.audit(
                session,
                at=core.clock.now(),
                actor=operator,
                action="interview.terminate_failed",
                interview_id=interview_id,
                chat=chat,
                detail={"reason": reason.name, "error": exc.message, "source": source},
            )
            await session.commit()
        raise

    try:
        result = await _commit(core, interview_id, reason, operator, source, detail, chat, snapshot)
    except IntegrityError as exc:  # an exit record exists: someone else finished first
        log.warning("termination of %s lost a race: %s", platform_id, exc)
        raise await _refusal_for(core, interview_id) from exc
    core.wake_outbox()
    log.info("interview %s terminated by %s (%s, %s)", platform_id, operator, reason.code, source)
    return result


async def _save_and_stop(core: Core, interview: Interview, reason: ExitReason, operator: str) -> dict[str, Any]:
    """Save first; only if that worked, stop the interview on the platform."""
    snapshot: dict[str, Any] = {"answered": list(interview.progress.get("answered", []))}
    if core.platform is None:
        snapshot["saved_by"] = "bot"
        return snapshot
    try:
        saved = await core.platform.save_progress(interview.platform_id)
    except PlatformError as exc:
        raise SaveFailed(f"{exc.message},未终止面试,请稍后重试") from exc
    snapshot["saved_by"] = "platform"
    if saved:
        snapshot["platform"] = saved
    try:
        await core.platform.terminate(
            interview.platform_id, reason_code=reason.code, reason=reason.name, operator=operator
        )
    except PlatformError as exc:
        raise PlatformTerminateFailed(f"作答已保存,但{exc.message},面试仍在进行,请稍后重试") from exc
    return snapshot


async def _commit(
    core: Core,
    interview_id: int,
    reason: ExitReason,
    operator: str,
    source: str,
    detail: str,
    chat: str | None,
    snapshot: dict[str, Any],
) -> TerminationResult:
    now = core.clock.now()
    async with core.sessions() as session:
        interview = await repo.get_interview_by_pk(session, interview_id=interview_id)
        assert interview is not None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        assert candidate is not None
        previous_status = interview.status
        interview.status = InterviewStatus.terminated.value
        interview.ended_at = now
        interview.updated_at = now
        interview.terminating_by = None
        interview.terminating_since = None
        candidate.pipeline_status = reason.outcome
        candidate.updated_at = now
        record = ExitRecord(
            interview_id=interview_id,
            attempt=interview.attempt,
            reason_code=reason.code,
            reason=reason.name,
            detail=detail[:500],
            operator=operator,
            source=source,
            at=now,
            progress_snapshot=snapshot,
        )
        session.add(record)
        assignee = interview.hr_key or operator
        todo = Todo(
            assignee=assignee, interview_id=interview_id, title=f"跟进候选人{candidate.name}的面试", created_at=now
        )
        session.add(todo)
        notice = await notices.notify_candidate(
            session,
            core,
            kind="terminated",
            interview=interview,
            candidate=candidate,
            now=now,
            # The reason's label only: HR's own words (detail) stay with HR.
            context={"reason": reason.name, "reason_code": reason.code, "outcome": reason.outcome},
        )
        notices.notify_staff(
            session,
            core,
            kind="hr_terminated",
            # One message each: an operator who is the HR owner has the chat reply already.
            person_key=interview.hr_key if interview.hr_key != operator else None,
            interview=interview,
            now=now,
            dedupe_key=f"hr_terminated:{interview.attempt_key}",
            text=core.templates.render(
                "notices/hr_terminated.txt.j2",
                position=interview.position,
                reason=reason.name,
                outcome=reason.outcome,
                operator=await people.display_name(session, operator),
                source=source,
                answered=len(snapshot.get("answered", [])),
                detail=shown_detail(detail, name=reason.name, code=reason.code),
                **notices.notice_outcome(candidate, interview, core.settings, reader=interview.hr_key),
            ),
        )
        repo.audit(
            session,
            at=now,
            actor=operator,
            action="interview.terminated",
            interview_id=interview_id,
            chat=chat,
            detail={
                "reason": reason.name,
                "source": source,
                "from_status": previous_status,
                "pipeline": reason.outcome,
                "detail": detail,
            },
        )
        await session.commit()
        return TerminationResult(interview=interview, candidate=candidate, exit=record, todo=todo, notice=notice)
