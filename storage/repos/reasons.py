"""Exit reasons (the defaults are seeded by ``storage.seed``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ExitReason, ExitRecord, TerminationJob


async def list_reasons(session: AsyncSession, *, active_only: bool = True) -> Sequence[ExitReason]:
    stmt = select(ExitReason).order_by(col(ExitReason.sort_order), col(ExitReason.id))
    if active_only:
        stmt = stmt.where(col(ExitReason.active).is_(True))
    return (await session.exec(stmt)).all()


async def get_reason(session: AsyncSession, *, code: str) -> ExitReason | None:
    return (await session.exec(select(ExitReason).where(ExitReason.code == code))).first()


async def reason_references(session: AsyncSession, *, code: str) -> tuple[int, int]:
    """How many exit records, and how many termination jobs, refer to the reason ``code``."""
    exits = select(func.count()).select_from(ExitRecord).where(ExitRecord.reason_code == code)
    jobs = select(func.count()).select_from(TerminationJob).where(TerminationJob.reason_code == code)
    return int((await session.exec(exits)).one()), int((await session.exec(jobs)).one())
