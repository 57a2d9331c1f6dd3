"""Claims across tables: the ones an earlier boot of this instance left behind."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DailySummary, Notice, NoticeStatus, Reminder, ReminderState, SummaryState


async def take_over_claims_and_commit(
    session: AsyncSession, *, instance: str, worker: str, now: datetime
) -> dict[str, int]:
    """At start-up: claims held by an earlier boot of this instance (``<instance>/<boot>``) belong to a
    process that is gone, so they expire now instead of when their lock runs out. Claims of other
    instances (replicas that may be alive) are left to expire. Commits."""
    prefix = f"{instance}/"
    taken: dict[str, int] = {}
    for name, stmt in (
        (
            "notices",
            update(Notice)
            .where(
                col(Notice.status) == NoticeStatus.sending.value,
                col(Notice.claimed_by).startswith(prefix, autoescape=True),
                col(Notice.claimed_by) != worker,
            )
            .values(locked_until=now - timedelta(seconds=1)),
        ),
        (
            "reminders",
            update(Reminder)
            .where(
                col(Reminder.state) == ReminderState.claimed.value,
                col(Reminder.claimed_by).startswith(prefix, autoescape=True),
                col(Reminder.claimed_by) != worker,
            )
            .values(claimed_until=now - timedelta(seconds=1)),
        ),
        (
            "summaries",
            update(DailySummary)
            .where(
                col(DailySummary.state) == SummaryState.claimed.value,
                col(DailySummary.claimed_by).startswith(prefix, autoescape=True),
                col(DailySummary.claimed_by) != worker,
            )
            .values(claimed_until=now - timedelta(seconds=1)),
        ),
    ):
        result = await session.exec(stmt)
        taken[name] = int(result.rowcount or 0)
    await session.commit()
    return taken
