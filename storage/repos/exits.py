"""Exit records: why, when and by whom an interview ended early."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEvent, Candidate, ExitRecord, Interview
from storage.repos.interviews import in_scope_of


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


async def exits_with_interviews(
    session: AsyncSession, *, start: datetime, end: datetime, hr_key: str | None = None
) -> list[tuple[ExitRecord, Interview, Candidate]]:
    """Exits in [start, end) with their interview and candidate, oldest first; with ``hr_key``
    only those of interviews that HR owns or that are shared with them."""
    stmt = (
        select(ExitRecord, Interview, Candidate)
        .join(Interview, col(Interview.id) == col(ExitRecord.interview_id))
        .join(Candidate, col(Candidate.id) == col(Interview.candidate_id))
        .where(col(ExitRecord.at) >= start, col(ExitRecord.at) < end)
        .order_by(col(ExitRecord.at), col(ExitRecord.id))
    )
    if hr_key is not None:
        stmt = stmt.where(in_scope_of(hr_key))
    return [(e, i, c) for e, i, c in (await session.exec(stmt)).all()]


async def termination_audits(session: AsyncSession, *, interview_ids: list[int]) -> Sequence[AuditEvent]:
    """The ``interview.terminated`` audit events of these interviews (they record the pipeline outcome)."""
    if not interview_ids:
        return []
    stmt = select(AuditEvent).where(
        col(AuditEvent.action) == "interview.terminated", col(AuditEvent.interview_id).in_(interview_ids)
    )
    return (await session.exec(stmt)).all()
