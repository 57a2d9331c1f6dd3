"""Exit records: why, when and by whom an interview ended early."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ExitRecord


async def get_exit(session: AsyncSession, *, interview_id: int) -> ExitRecord | None:
    """The latest exit of an interview (a rescheduled one may have ended more than once)."""
    stmt = select(ExitRecord).where(ExitRecord.interview_id == interview_id).order_by(col(ExitRecord.attempt).desc())
    return (await session.exec(stmt)).first()


async def exits_between(session: AsyncSession, *, start: datetime, end: datetime) -> Sequence[ExitRecord]:
    stmt = select(ExitRecord).where(ExitRecord.at >= start, ExitRecord.at < end).order_by(col(ExitRecord.at))
    return (await session.exec(stmt)).all()


async def exit_counts(session: AsyncSession, *, start: datetime, end: datetime) -> list[tuple[str, str, int]]:
    """(reason, source, count) of exits in [start, end), counted by the database."""
    stmt = (
        select(ExitRecord.reason, ExitRecord.source, func.count())
        .where(col(ExitRecord.at) >= start, col(ExitRecord.at) < end)
        .group_by(col(ExitRecord.reason), col(ExitRecord.source))
    )
    return [(reason, source, int(n)) for reason, source, n in (await session.exec(stmt)).all()]


async def exits_for_interview(session: AsyncSession, *, interview_id: int) -> Sequence[ExitRecord]:
    """Every exit of an interview, one per attempt, oldest first."""
    stmt = select(ExitRecord).where(ExitRecord.interview_id == interview_id).order_by(col(ExitRecord.attempt))
    return (await session.exec(stmt)).all()
