"""Reminders due at a time, claimed by one replica with a conditional update."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Reminder, ReminderState
from storage.repos.leases import claimer_gone


def _left(now: datetime, me: str | None) -> Any:
    """A claim left by a replica that crashed: taken over once it expires, or at once when its
    replica lease is gone (``leases.claimer_gone``, the rule of every claim)."""
    return (col(Reminder.state) == ReminderState.claimed.value) & or_(
        col(Reminder.claimed_until) < now, claimer_gone(col(Reminder.claimed_by), now=now, me=me)
    )


def _due_reminder(now: datetime, me: str | None) -> Any:
    return or_((col(Reminder.state) == ReminderState.pending.value) & (col(Reminder.due_at) <= now), _left(now, me))


async def reminders_for_interview(session: AsyncSession, *, interview_id: int) -> dict[str, Reminder]:
    rows = (await session.exec(select(Reminder).where(Reminder.interview_id == interview_id))).all()
    return {r.kind: r for r in rows}


async def due_reminder_ids(session: AsyncSession, *, now: datetime, limit: int, me: str | None = None) -> list[int]:
    # Two index range scans on (state, due_at) rather than one OR, which PostgreSQL plans as a
    # bitmap scan plus sort even when nothing is due.
    pending = (
        select(Reminder.id)
        .where(col(Reminder.state) == ReminderState.pending.value, col(Reminder.due_at) <= now)
        .order_by(col(Reminder.due_at))
        .limit(limit)
    )
    stale = select(Reminder.id).where(_left(now, me)).limit(limit)
    ids = [*(await session.exec(stale)).all(), *(await session.exec(pending)).all()]
    return [i for i in ids if i is not None][:limit]


async def claim_reminder_and_commit(
    session: AsyncSession, *, reminder_id: int, worker: str, now: datetime, until: datetime
) -> bool:
    """Take one due reminder (pending, or claimed by a replica whose claim expired or that is gone)
    and commit. True if this caller won."""
    stmt = (
        update(Reminder)
        .where(col(Reminder.id) == reminder_id, _due_reminder(now, worker))
        .values(state=ReminderState.claimed.value, claimed_by=worker, claimed_until=until, updated_at=now)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def cancel_pending_reminders(session: AsyncSession, *, interview_id: int, note: str, now: datetime) -> list[str]:
    """Cancel the interview's reminders not yet taken by a sweep; their kinds (not committed).
    One a sweep has claimed re-checks the interview itself before it sends."""
    stmt = (
        select(Reminder)
        .where(Reminder.interview_id == interview_id, col(Reminder.state) == ReminderState.pending.value)
        .order_by(col(Reminder.id))
    )
    kinds: list[str] = []
    for row in (await session.exec(stmt)).all():
        moved = await session.exec(
            update(Reminder)
            .where(col(Reminder.id) == row.id, col(Reminder.state) == ReminderState.pending.value)
            .values(state=ReminderState.cancelled.value, note=note, updated_at=now)
        )
        if moved.rowcount == 1:
            kinds.append(row.kind)
    return kinds
