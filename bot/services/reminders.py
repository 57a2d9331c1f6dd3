"""Candidate reminders as rows with due times: planned from the interview, claimed and sent by sweeps.

Kinds and when they are due (offsets from settings):

- ``guide``      right after scheduling: the operation guide; never moved.
- ``before_1h``  BOT_REMINDER_BEFORE_SECONDS before the start, while still scheduled.
- ``at_start``   at the start time, while still scheduled.
- ``after_30m``  BOT_REMINDER_AFTER_START_SECONDS after the candidate started, while still in progress
  (to the HR owner as well).

``sync_reminders`` creates or moves the rows whenever the schedule changes (idempotent); a row
whose time is already past when it is planned is cancelled, so an interview booked less than an
hour ahead gets only the reminders still ahead of it. ``sweep_reminders`` claims due rows with a
conditional update (one replica wins), re-checks the interview's status and queues the notice with
a key derived from the row and its due time, so even a takeover after a crash cannot send twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import notices
from bot.services.claims import CLAIM_FOR, local_text
from bot.services.context import Core
from bot.services.lifecycle import ended_note
from storage import repo
from storage.models import Interview, InterviewStatus, Reminder, ReminderKind, ReminderState

log = logging.getLogger(__name__)

ENDED_NOTES = frozenset(ended_note(s) for s in (InterviewStatus.terminated, InterviewStatus.completed))

# A reminder planned this late is still sent (an event may arrive a little after its time).
LATE_GRACE = timedelta(seconds=60)

# The interview status in which each kind still makes sense; otherwise it is cancelled when due.
SEND_WHILE = {
    ReminderKind.guide.value: InterviewStatus.scheduled.value,
    ReminderKind.before_start.value: InterviewStatus.scheduled.value,
    ReminderKind.at_start.value: InterviewStatus.scheduled.value,
    ReminderKind.after_start.value: InterviewStatus.in_progress.value,
}


def planned(core: Core, interview: Interview, existing: Mapping[str, Reminder], now: datetime) -> dict[str, datetime]:
    """When each reminder that applies to the interview in its current state is due."""
    s = core.settings
    due: dict[str, datetime] = {}
    if interview.status == InterviewStatus.scheduled.value and interview.scheduled_at is not None:
        guide = existing.get(ReminderKind.guide.value)
        # A guide withdrawn when the interview ended goes out again for the new booking.
        due[ReminderKind.guide.value] = guide.due_at if guide and not _ended(guide) else now
        due[ReminderKind.before_start.value] = interview.scheduled_at - timedelta(seconds=s.reminder_before_seconds)
        due[ReminderKind.at_start.value] = interview.scheduled_at
    if interview.status == InterviewStatus.in_progress.value and interview.started_at is not None:
        due[ReminderKind.after_start.value] = interview.started_at + timedelta(seconds=s.reminder_after_start_seconds)
    return due


async def sync_reminders(
    session: AsyncSession,
    core: Core,
    interview: Interview,
    now: datetime,
    *,
    existing: Mapping[str, Reminder] | None = None,
) -> dict[str, Reminder]:
    """Create or move the interview's reminder rows to match its schedule (in the caller's
    transaction); its reminder rows by kind afterwards. ``existing``: its rows as the caller knows
    them in this transaction (read when not given)."""
    assert interview.id is not None
    if existing is None:
        existing = await repo.reminders_for_interview(session, interview_id=interview.id)
    rows = dict(existing)
    for kind, due_at in planned(core, interview, existing, now).items():
        row = existing.get(kind)
        if row is not None and row.due_at == due_at and not _ended(row):
            continue
        if row is None:
            row = Reminder(interview_id=interview.id, kind=kind, due_at=due_at, created_at=now, updated_at=now)
        late = due_at < now - LATE_GRACE
        row.due_at = due_at
        row.state = ReminderState.cancelled.value if late else ReminderState.pending.value
        row.note = "planned after its time" if late else ""
        row.claimed_by = row.claimed_until = None
        row.updated_at = now
        session.add(row)
        rows[kind] = row
    return rows


def _ended(row: Reminder) -> bool:
    """Cancelled because its interview ended (``bot.services.lifecycle``): planned again on a reopen."""
    return row.state == ReminderState.cancelled.value and row.note in ENDED_NOTES


async def sweep_reminders(core: Core, *, limit: int = 200) -> int:
    """Send the reminders that are due; returns how many notices were queued."""
    now = core.clock.now()
    worker = core.worker_id
    async with core.sessions() as session:
        ids = await repo.due_reminder_ids(session, now=now, limit=limit, me=worker)
    queued = 0
    for reminder_id in ids:
        async with core.sessions() as session:
            won = await repo.claim_reminder_and_commit(
                session, reminder_id=reminder_id, worker=worker, now=now, until=now + CLAIM_FOR
            )
            if won:
                queued += await _fire(session, core, reminder_id, worker, now)
    if queued:
        core.wake_outbox()
    return queued


async def _fire(session: AsyncSession, core: Core, reminder_id: int, worker: str, now: datetime) -> int:
    row = await session.get(Reminder, reminder_id)
    # Moved by a reschedule between our claim and now: the new due time decides.
    if row is None or row.state != ReminderState.claimed.value or row.claimed_by != worker:
        return 0
    # Lock the interview (PostgreSQL) so a termination committing now is seen before we send.
    stmt = select(Interview).where(Interview.id == row.interview_id).with_for_update()
    interview = (await session.exec(stmt)).one()
    candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
    assert candidate is not None
    row.claimed_by = row.claimed_until = None
    row.updated_at = now
    if interview.status != SEND_WHILE[row.kind]:
        row.state, row.note = ReminderState.cancelled.value, ended_note(interview.status)
        await session.commit()
        log.info("reminder %s (%s) for %s cancelled: %s", row.id, row.kind, interview.platform_id, row.note)
        return 0
    key = f"reminder:{row.id}:{interview.attempt}:{int(row.due_at.timestamp())}"
    tz = core.settings.tz
    await notices.notify_candidate(
        session,
        core,
        kind=row.kind,
        interview=interview,
        candidate=candidate,
        now=now,
        context={"start_text": local_text(interview.scheduled_at, tz), "join_url": interview.join_url or ""},
        dedupe_key=key,
    )
    if row.kind == ReminderKind.after_start.value:
        text = core.templates.render(
            "notices/hr_after_30m.txt.j2",
            candidate_name=candidate.name,
            position=interview.position,
            answered=interview.answered_count,
        )
        await notices.notify_staff(
            session,
            core,
            kind="hr_after_30m",
            person_key=interview.hr_key,
            interview=interview,
            now=now,
            text=text,
            dedupe_key=f"{key}:hr",
        )
    row.state, row.note = ReminderState.sent.value, ""
    try:
        await session.commit()
    except IntegrityError:  # queued before by a replica whose claim expired: it was sent once
        await session.rollback()
        await _mark(session, reminder_id, ReminderState.sent.value, now)
        return 0
    log.info("reminder %s (%s) queued for %s", row.id, row.kind, interview.platform_id)
    return 1


async def _mark(session: AsyncSession, reminder_id: int, state: str, now: datetime) -> None:
    row = await session.get(Reminder, reminder_id)
    if row is not None:
        row.state, row.claimed_by, row.claimed_until, row.updated_at = state, None, None, now
        await session.commit()
