"""Termination jobs, durable from before the first platform call until the exit record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OPEN_JOB_STATES, TerminationJob
from storage.repos.leases import claimer_gone


async def open_termination_jobs(
    session: AsyncSession, *, limit: int, now: datetime, me: str | None = None
) -> list[tuple[TerminationJob, bool]]:
    """Unfinished jobs, oldest first, each with whether its claimer is gone (``leases.claimer_gone``:
    another process whose replica lease expired); the caller decides which it may take over."""
    gone = claimer_gone(col(TerminationJob.claimed_by), now=now, me=me).label("claimer_gone")
    stmt = (
        select(TerminationJob, gone)
        .where(col(TerminationJob.state).in_(OPEN_JOB_STATES))
        .order_by(col(TerminationJob.id))
        .limit(limit)
    )
    return [(job, bool(dead)) for job, dead in (await session.exec(stmt)).all()]


async def take_over_job_and_commit(
    session: AsyncSession, *, job_id: int, previous: str | None, claimed_by: str, until: datetime, now: datetime
) -> bool:
    """Move a job's claim from ``previous`` to ``claimed_by`` and commit; True if this caller won."""
    owner = col(TerminationJob.claimed_by)
    stmt = (
        update(TerminationJob)
        .where(
            col(TerminationJob.id) == job_id,
            col(TerminationJob.state).in_(OPEN_JOB_STATES),
            owner.is_(None) if previous is None else owner == previous,
        )
        .values(claimed_by=claimed_by, claimed_until=until, resumed=True, updated_at=now)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def advance_job(
    session: AsyncSession,
    *,
    job_id: int,
    claimed_by: str,
    from_state: str,
    until: datetime,
    now: datetime,
    **values: Any,
) -> bool:
    """Record a step's result, only while this caller holds the claim (not committed)."""
    stmt = (
        update(TerminationJob)
        .where(
            col(TerminationJob.id) == job_id,
            col(TerminationJob.claimed_by) == claimed_by,
            col(TerminationJob.state) == from_state,
        )
        .values(claimed_until=until, updated_at=now, **values)
    )
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)
