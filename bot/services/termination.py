"""The one termination procedure, whatever triggered it (admin API, chat, candidate, timeout, help).

It is a durable job (``termination_job``), so a crash at any moment neither drops nor half-does it:

1. claim the interview and commit the job row (the intent: operator, source, reason, detail,
   who to tell) in one transaction, before any outside call; of two operators at once, one wins;
2. save the candidate's progress on the platform (``Idempotency-Key: save-<job id>``) and
   record the answer; then terminate it there (``terminate-<job id>``) and record that; a platform
   that says it is already terminated counts as done; on a failure the job fails, the claim is
   released and the caller is told why, nothing else changes;
3. in one transaction: status, exit record with the saved progress, pipeline status, HR to-do,
   candidate notice, HR chat notice, audit event, and the job marked done.

The caller runs the job at once and gets its answer in the same request. A job left unfinished by a
crash is resumed by ``sweep.terminations`` (at start-up and every BOT_SWEEP_INTERVAL_SECONDS) from
the step it reached, as soon as its claim expires or its process on this host is gone; the same
idempotency keys go to the platform again, and the person who asked is told the outcome in chat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.logs import log_context
from bot.platform_client import ALREADY_TERMINATED, PlatformError
from bot.services import ats, lifecycle, notices, outbound, people
from bot.services.claims import CLAIM_FOR
from bot.services.context import Core
from bot.services.errors import ServiceError, refusal
from bot.services.reasons import match_reason, shown_detail
from storage import repo
from storage.models import (
    Candidate,
    ExitReason,
    ExitRecord,
    Interview,
    InterviewStatus,
    JobState,
    Notice,
    TerminationJob,
    Todo,
)

log = logging.getLogger(__name__)

# An interview claim older than this without an open job (left by an older version) may be taken over.
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


def platform_called(snapshot: dict[str, Any]) -> bool:
    """Whether the platform was asked to save and terminate (an exit record's progress snapshot).

    False when no platform is connected (PLATFORM_API_BASE or its secret unset): the termination is
    recorded here only, the interview on the platform goes on and nobody saved its answers. Records
    from before the flag existed tell it by ``saved_by``."""
    return bool(snapshot.get("platform_called", snapshot.get("saved_by") == "platform"))


@dataclass
class TerminationResult:
    interview: Interview
    candidate: Candidate
    exit: ExitRecord
    todo: Todo
    notice: Notice

    @property
    def platform_called(self) -> bool:
        """The platform saved the answers and terminated the interview (else: recorded here only)."""
        return platform_called(self.exit.progress_snapshot)

    @property
    def answered(self) -> int:
        """How many answers our record of the interview holds."""
        return len(self.exit.progress_snapshot.get("answered", []))

    def reply_context(self) -> dict[str, Any]:
        """For ``templates/chat/_platform_outcome.txt.j2``: what happened on the platform."""
        return {"platform_called": self.platform_called, "answered": self.answered}


async def resolve_reason(core: Core, text: str) -> ExitReason:
    async with core.sessions() as session:
        reasons = await repo.list_reasons(session)
    reason = match_reason(text, reasons)
    if reason is None:
        names = [r.name for r in reasons]
        raise UnknownReason(refusal(core, "unknown_reason", text=text, names=names), choices=names)
    return reason


async def _refusal_for(core: Core, interview_id: int) -> TerminationError:
    async with core.sessions() as session:
        interview = await repo.get_interview_by_pk(session, interview_id=interview_id)
        assert interview is not None
        if interview.status == InterviewStatus.terminated.value:
            record = await repo.get_exit(session, interview_id=interview_id)
            who = await people.display_name(session, record.operator) if record else ""
            return AlreadyTerminated(refusal(core, "already_terminated", who=who), exit=record)
        if interview.status == InterviewStatus.completed.value:
            return AlreadyCompleted(refusal(core, "already_completed"))
        who = await people.display_name(session, interview.terminating_by)
        return TerminationInProgress(refusal(core, "terminating", who=who))


async def terminate(
    core: Core,
    *,
    platform_id: str,
    reason_text: str,
    operator: str,
    source: str,
    detail: str = "",
    chat: str | None = None,
    hold_notice_seconds: int = 0,
) -> TerminationResult:
    """Terminate now; ``chat`` (the audit chat) also means ``operator`` is told in chat if a crash
    makes the job finish later. ``hold_notice_seconds``: the candidate's notice waits that long
    (a new time booked right after supersedes it and says both; a crash in between lets it go)."""
    with log_context(interview_id=platform_id):
        reason = await resolve_reason(core, reason_text)
        token = core.runs.start(core.worker_id)
        try:
            job_id = await _open_job(core, platform_id, reason, operator, source, detail, chat, token)
            result = await _run(core, job_id, token, hold_notice_seconds=hold_notice_seconds)
        finally:
            core.runs.end(token)
        log.info("interview %s terminated by %s (%s, %s)", platform_id, operator, reason.code, source)
        return result


async def _open_job(
    core: Core,
    platform_id: str,
    reason: ExitReason,
    operator: str,
    source: str,
    detail: str,
    chat: str | None,
    token: str,
) -> int:
    """Claim the interview and commit the job in one transaction; the job id, or a refusal."""
    now = core.clock.now()
    async with core.sessions() as session:
        interview = await repo.get_interview(session, platform_id=platform_id)
        if interview is None:
            raise InterviewNotFound(refusal(core, "interview_not_found", platform_id=platform_id))
        assert interview.id is not None
        interview_id = interview.id
        won = await repo.claim_termination(
            session, interview_id=interview_id, operator=operator, now=now, stale_before=now - CLAIM_STALE_AFTER
        )
        job = TerminationJob(
            interview_id=interview_id,
            attempt=interview.attempt,
            open_key=f"{interview_id}:{interview.attempt}",
            reason_code=reason.code,
            operator=operator,
            source=source,
            detail=detail[:500],
            chat=chat,
            notify_to=operator if chat else None,
            claimed_by=token,
            claimed_until=now + CLAIM_FOR,
            created_at=now,
            updated_at=now,
        )
        if won:
            session.add(job)
            try:
                await session.commit()
            except IntegrityError:  # an unfinished job holds this interview (it will be resumed)
                await session.rollback()
                won = False
    if not won:
        raise await _refusal_for(core, interview_id)
    assert job.id is not None
    return job.id


async def sweep_terminations(core: Core, *, limit: int = 50) -> int:
    """Resume jobs a crashed process left unfinished; returns how many completed now.

    A job is taken over (compare-and-set on its old claim) once its claim expired, its claimer's
    replica lease expired (``repo.claimer_gone``: within about BOT_LEASE_SECONDS of a kill), or it
    was claimed by an earlier boot of this instance or an ended run of this process."""
    now = core.clock.now()
    async with core.sessions() as session:
        jobs = await repo.open_termination_jobs(session, limit=limit, now=now, me=core.worker_id)
    completed = 0
    for job, claimer_gone in jobs:
        expired = job.claimed_until is None or job.claimed_until < now
        mine_gone = core.runs.owner_gone(job.claimed_by, instance=core.instance, worker=core.worker_id)
        if not (expired or claimer_gone or mine_gone):
            continue  # its process is still working on it
        assert job.id is not None
        token = core.runs.start(core.worker_id)
        try:
            async with core.sessions() as session:
                won = await repo.take_over_job_and_commit(
                    session, job_id=job.id, previous=job.claimed_by, claimed_by=token, until=now + CLAIM_FOR, now=now
                )
            if not won:
                continue  # another replica took it
            log.info("resuming termination job %s at %s (was claimed by %s)", job.id, job.state, job.claimed_by)
            try:
                await _run(core, job.id, token)
                completed += 1
            except TerminationError as exc:
                log.warning("resumed termination job %s did not complete: %s (%s)", job.id, exc.code, exc.message)
        finally:
            core.runs.end(token)
    return completed


async def _run(core: Core, job_id: int, token: str, *, hold_notice_seconds: int = 0) -> TerminationResult:
    """Take the job from the step it reached to the end (or to a recorded failure)."""
    async with core.sessions() as session:
        job = await session.get(TerminationJob, job_id)
        assert job is not None
        interview = await repo.get_interview_by_pk(session, interview_id=job.interview_id)
        assert interview is not None
        reasons = {r.code: r for r in await repo.list_reasons(session, active_only=False)}
    reason = reasons[job.reason_code]
    platform_id = interview.platform_id
    state = job.state
    try:
        if state == JobState.saving.value:
            saved: dict[str, Any] = {}
            if core.platform is not None:
                try:
                    saved = await core.platform.save_progress(platform_id, idempotency_key=f"save-{job_id}")
                except PlatformError as exc:
                    raise SaveFailed(refusal(core, "save_failed", problem=exc.message)) from exc
            # A platform that has terminated the interview already has nothing left to terminate.
            after = JobState.finishing.value if saved.pop(ALREADY_TERMINATED, False) else JobState.terminating.value
            if core.platform is None:
                after = JobState.finishing.value
            # What the save established, as it goes into the exit record's progress snapshot.
            outcome: dict[str, Any] = {
                "saved_by": "bot" if core.platform is None else "platform",
                "platform_called": core.platform is not None,
            }
            if saved:
                outcome["platform"] = saved
            values: dict[str, Any] = {"save_result": outcome}
            if after == JobState.finishing.value and core.platform is not None:
                values["terminate_result"] = saved
            await _step(core, job, token, state, after, **values)
            state = after
        if state == JobState.terminating.value:
            answer: dict[str, Any] = {}
            if core.platform is not None:
                try:
                    answer = await core.platform.terminate(
                        platform_id,
                        reason_code=reason.code,
                        reason=reason.name,
                        operator=job.operator,
                        idempotency_key=f"terminate-{job_id}",
                    )
                except PlatformError as exc:
                    raise PlatformTerminateFailed(
                        refusal(core, "platform_terminate_failed", problem=exc.message)
                    ) from exc
                answer.pop(ALREADY_TERMINATED, None)
            await _step(core, job, token, state, JobState.finishing.value, terminate_result=answer)
            state = JobState.finishing.value
    except (SaveFailed, PlatformTerminateFailed) as exc:
        await _fail(core, job, token, state, exc, candidate_of=interview)
        raise
    try:
        result = await _commit(core, job, reason, token, hold_notice_seconds=hold_notice_seconds)
    except IntegrityError as exc:  # an exit record exists: someone else finished first
        log.warning("termination of %s lost a race: %s", platform_id, exc)
        async with core.sessions() as session:
            now = core.clock.now()
            await repo.advance_job(
                session,
                job_id=job_id,
                claimed_by=token,
                from_state=JobState.finishing.value,
                until=now,
                now=now,
                state=JobState.done.value,
                open_key=None,
                finished_at=now,
                error="exit record existed",
            )
            await session.commit()
        raise await _refusal_for(core, job.interview_id) from exc
    core.wake_outbox()
    return result


async def _step(core: Core, job: TerminationJob, token: str, from_state: str, to_state: str, **values: Any) -> None:
    """Commit one step's result; a run that lost its claim stops here."""
    assert job.id is not None
    now = core.clock.now()
    async with core.sessions() as session:
        ok = await repo.advance_job(
            session,
            job_id=job.id,
            claimed_by=token,
            from_state=from_state,
            until=now + CLAIM_FOR,
            now=now,
            state=to_state,
            **values,
        )
        await session.commit()
    if not ok:
        raise await _refusal_for(core, job.interview_id)


async def _fail(
    core: Core, job: TerminationJob, token: str, state: str, exc: TerminationError, *, candidate_of: Interview
) -> None:
    """The platform refused or was unreachable: the job fails, the interview is released."""
    assert job.id is not None
    now = core.clock.now()
    async with core.sessions() as session:
        ok = await repo.advance_job(
            session,
            job_id=job.id,
            claimed_by=token,
            from_state=state,
            until=now,
            now=now,
            state=JobState.failed.value,
            open_key=None,
            error=exc.message[:1000],
            finished_at=now,
        )
        if not ok:  # another run owns the job now; it will finish or fail it
            return
        await repo.release_termination(session, interview_id=job.interview_id, operator=job.operator)
        repo.audit(
            session,
            at=now,
            actor=job.operator,
            action="interview.terminate_failed",
            interview_id=job.interview_id,
            chat=job.chat,
            detail={"reason_code": job.reason_code, "error": exc.message, "source": job.source, "job": job.id},
        )
        if await _was_resumed(session, job.id):
            candidate = await repo.get_candidate(session, candidate_id=candidate_of.candidate_id)
            await _tell_outcome(
                session,
                core,
                job,
                candidate_of,
                now,
                ok=False,
                candidate_name=candidate.name if candidate else "",
                error=exc.message,
            )
        await session.commit()
    core.wake_outbox()


async def _was_resumed(session: AsyncSession, job_id: int) -> bool:
    job = await session.get(TerminationJob, job_id, populate_existing=True)
    return bool(job and job.resumed)


async def _tell_outcome(
    session: AsyncSession, core: Core, job: TerminationJob, interview: Interview, now: datetime, **context: Any
) -> None:
    """The person who asked waited for an answer a crash cut off: tell them in chat how it ended."""
    await notices.notify_staff(
        session,
        core,
        kind="termination_outcome",
        person_key=job.notify_to,
        interview=interview,
        now=now,
        dedupe_key=f"termination_job:{job.id}",
        text=core.templates.render("chat/termination_resumed.txt.j2", position=interview.position, **context),
    )


async def _commit(
    core: Core, job: TerminationJob, reason: ExitReason, token: str, *, hold_notice_seconds: int = 0
) -> TerminationResult:
    now = core.clock.now()
    assert job.id is not None
    interview_id, operator, source, detail, chat = job.interview_id, job.operator, job.source, job.detail, job.chat
    async with core.sessions() as session:
        fresh = await session.get(TerminationJob, job.id, populate_existing=True)
        assert fresh is not None
        interview = await repo.get_interview_by_pk(session, interview_id=interview_id)
        assert interview is not None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        assert candidate is not None
        snapshot: dict[str, Any] = {"answered": list(interview.progress.get("answered", [])), **fresh.save_result}
        # A job resumed from before the flag existed: derive it the way old records are read.
        snapshot["platform_called"] = platform_called(snapshot)
        answered = len(snapshot["answered"])
        if fresh.terminate_result:
            snapshot["platform_terminate"] = fresh.terminate_result
        previous_status, previous_pipeline = interview.status, candidate.pipeline_status
        interview.status = InterviewStatus.terminated.value
        interview.ended_at = now
        interview.updated_at = now
        interview.terminating_by = None
        interview.terminating_since = None
        candidate.pipeline_status = reason.outcome
        candidate.updated_at = now
        # Reminders and the guide can no longer be sent; a 求助 about it is settled.
        await lifecycle.interview_ended(session, interview=interview, actor=operator, now=now)
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
        await outbound.exit_recorded(
            session, core, interview, candidate, record, reason, previous_pipeline=previous_pipeline
        )
        assignee = interview.hr_key or operator
        todo = Todo(
            assignee=assignee,
            interview_id=interview_id,
            title=refusal(core, "follow_up_todo", candidate_name=candidate.name),
            created_at=now,
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
            # answered / saved_on_platform: the notice says the answers were kept only when both hold.
            context={
                "reason": reason.name,
                "reason_code": reason.code,
                "outcome": reason.outcome,
                "answered": answered,
                "saved_on_platform": snapshot["platform_called"],
            },
            hold_seconds=hold_notice_seconds,
        )
        await notices.notify_staff(
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
                answered=answered,
                platform_called=snapshot["platform_called"],
                detail=shown_detail(detail, name=reason.name, code=reason.code),
                **notices.notice_outcome(candidate, interview, core, reader=interview.hr_key),
            ),
        )
        await ats.queue_exit(session, core, interview=interview, record=record, reason=reason, now=now)
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
        if not await repo.advance_job(
            session,
            job_id=job.id,
            claimed_by=token,
            from_state=JobState.finishing.value,
            until=now,
            now=now,
            state=JobState.done.value,
            open_key=None,
            finished_at=now,
        ):
            await session.rollback()
            raise await _refusal_for(core, interview_id)
        if fresh.resumed:
            await _tell_outcome(
                session,
                core,
                fresh,
                interview,
                now,
                ok=True,
                candidate_name=candidate.name,
                reason=reason.name,
                outcome=reason.outcome,
                answered=answered,
                platform_called=snapshot["platform_called"],
            )
        await session.commit()
        return TerminationResult(interview=interview, candidate=candidate, exit=record, todo=todo, notice=notice)
