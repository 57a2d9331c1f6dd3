"""The managers' daily summaries, one per day and recipient."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DailySummary, SummaryState


async def summaries_for_day(session: AsyncSession, *, day: date) -> dict[str, DailySummary]:
    rows = (await session.exec(select(DailySummary).where(DailySummary.day == day))).all()
    return {r.recipient: r for r in rows}


async def claim_summary_and_commit(
    session: AsyncSession, *, day: date, recipient: str, worker: str, now: datetime, until: datetime
) -> bool:
    """Claim the summary for (day, recipient) and commit: insert it, or take over a claim that expired unsent."""
    session.add(DailySummary(day=day, recipient=recipient, claimed_by=worker, claimed_until=until))
    try:
        await session.commit()
        return True
    except IntegrityError:
        await session.rollback()
    stmt = (
        update(DailySummary)
        .where(
            col(DailySummary.day) == day,
            col(DailySummary.recipient) == recipient,
            col(DailySummary.state) == SummaryState.claimed.value,
            col(DailySummary.claimed_until) < now,
        )
        .values(claimed_by=worker, claimed_until=until)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def summary_chart(session: AsyncSession, *, token: str) -> bytes | None:
    found = await session.exec(select(DailySummary.chart_png).where(DailySummary.chart_token == token))
    return found.first()
