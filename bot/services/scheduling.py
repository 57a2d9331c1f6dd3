"""Rescheduling an interview: the one procedure behind 重新安排 (chat), the admin API and the CLI.

What it does, by the interview's status:

- scheduled: moves the start time.
- terminated: reopens it as the next attempt (status scheduled, start/activity/end times cleared,
  answers kept, candidate back to 待面试). The exit record of the earlier attempt stays, so reports
  keep counting that exit; a later termination writes a record for the new attempt. Open follow-up
  to-dos of the interview are closed: rescheduling is the follow-up. The platform is not called;
  it is expected to let the candidate rejoin (a platform-side reschedule arrives as interview.scheduled).
- in_progress: refused; terminate it first (progress is saved), then reschedule.
- completed: refused.

In every accepted case the reminders move with the start time, the candidate gets the new time
(templates/notices/rescheduled.*), the HR owner is told when someone else did it, and an audit
event is written, all in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col

from bot.services import notices, outbound, people, reminders, termination
from bot.services.claims import local_text
from bot.services.context import Core
from bot.services.errors import ServiceError, refusal
from storage import repo
from storage.models import Candidate, Interview, InterviewStatus, Notice, Pipeline

log = logging.getLogger(__name__)


class RescheduleError(ServiceError):
    """Why an interview was not rescheduled."""

    code = "reschedule_failed"


class InterviewNotFound(RescheduleError):
    code = "not_found"
    http_status = 404


class BadTime(RescheduleError):
    code = "bad_time"
    http_status = 400


class NotReschedulable(RescheduleError):
    code = "not_reschedulable"


@dataclass
class RescheduleResult:
    interview: Interview
    candidate: Candidate
    previous: datetime | None
    reopened: bool
    notice: Notice


async def reschedule(
    core: Core, *, platform_id: str, new_time: datetime, operator: str, source: str, chat: str | None = None
) -> RescheduleResult:
    if new_time.tzinfo is None:
        raise ValueError("new_time must be timezone-aware")
    now = core.clock.now()
    if new_time <= now:
        raise BadTime(refusal(core, "time_in_past"))
    tz = core.settings.tz
    async with core.sessions() as session:
        interview = await repo.get_interview(session, platform_id=platform_id)
        if interview is None:
            raise InterviewNotFound(refusal(core, "interview_not_found", platform_id=platform_id))
        assert interview.id is not None
        status, previous = interview.status, interview.scheduled_at
        if interview.terminating_by:
            who = await people.display_name(session, interview.terminating_by)
            raise NotReschedulable(refusal(core, "reschedule_terminating", who=who))
        if status == InterviewStatus.in_progress.value:
            raise NotReschedulable(refusal(core, "reschedule_in_progress"))
        if status == InterviewStatus.completed.value:
            raise NotReschedulable(refusal(core, "reschedule_completed"))
        reopened = status == InterviewStatus.terminated.value
        values: dict[str, object] = {"scheduled_at": new_time, "updated_at": now}
        if reopened:
            values.update(
                status=InterviewStatus.scheduled.value,
                attempt=interview.attempt + 1,
                started_at=None,
                last_activity_at=None,
                ended_at=None,
            )
        # Conditional: a termination or another reschedule that got there first wins.
        stmt = (
            update(Interview)
            .where(
                col(Interview.id) == interview.id,
                col(Interview.status) == status,
                col(Interview.attempt) == interview.attempt,
                col(Interview.terminating_by).is_(None),
            )
            .values(**values)
        )
        if (await session.exec(stmt)).rowcount != 1:
            await session.rollback()
            raise NotReschedulable(refusal(core, "reschedule_changed"))
        await session.refresh(interview)
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        assert candidate is not None
        previous_pipeline = candidate.pipeline_status
        if reopened:
            candidate.pipeline_status = Pipeline.pending.value
            candidate.updated_at = now
            for todo in await repo.todos_for_interview(session, interview_id=interview.id):
                if not todo.done:
                    todo.done, todo.done_at, todo.done_by = True, now, operator
        await reminders.sync_reminders(session, core, interview, now)
        await outbound.rescheduled(
            session,
            core,
            interview=interview,
            candidate=candidate,
            previous_scheduled_at=previous,
            reopened=reopened,
            operator=operator,
            source=source,
            now=now,
        )
        await outbound.pipeline_changed(
            session,
            core,
            interview=interview,
            candidate=candidate,
            previous=previous_pipeline,
            operator=operator,
            source=source,
            now=now,
        )
        start_text = local_text(new_time, tz)
        # The answers given so far are "kept" only if the platform saved them when the attempt ended.
        ended = await repo.get_exit(session, interview_id=interview.id) if reopened else None
        saved_on_platform = ended is not None and termination.platform_called(ended.progress_snapshot)
        notice = await notices.notify_candidate(
            session,
            core,
            kind="rescheduled",
            interview=interview,
            candidate=candidate,
            now=now,
            context={
                "start_text": start_text,
                "old_text": local_text(previous, tz),
                "join_url": interview.join_url or "",
                "answered": interview.answered_count,
                "saved_on_platform": saved_on_platform,
            },
            dedupe_key=f"rescheduled:{interview.id}:{int(now.timestamp())}:{int(new_time.timestamp())}",
        )
        if interview.hr_key and interview.hr_key != operator:
            await notices.notify_staff(
                session,
                core,
                kind="hr_rescheduled",
                person_key=interview.hr_key,
                interview=interview,
                now=now,
                text=core.templates.render(
                    "notices/hr_rescheduled.txt.j2",
                    position=interview.position,
                    operator=await people.display_name(session, operator),
                    start_text=start_text,
                    reopened=reopened,
                    **notices.notice_outcome(candidate, interview, core, reader=interview.hr_key),
                ),
                dedupe_key=f"{notice.dedupe_key}:hr",
            )
        repo.audit(
            session,
            at=now,
            actor=operator,
            action="interview.rescheduled",
            interview_id=interview.id,
            chat=chat,
            detail={
                "from": previous.isoformat() if previous else None,
                "to": new_time.isoformat(),
                "source": source,
                "from_status": status,
                "reopened": reopened,
                "attempt": interview.attempt,
            },
        )
        await session.commit()
    core.wake_outbox()
    log.info("interview %s rescheduled to %s by %s (reopened=%s)", platform_id, new_time, operator, reopened)
    return RescheduleResult(
        interview=interview, candidate=candidate, previous=previous, reopened=reopened, notice=notice
    )
