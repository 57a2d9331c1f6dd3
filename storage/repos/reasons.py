"""Exit reasons (the defaults are seeded by ``storage.seed``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ExitReason


async def list_reasons(session: AsyncSession, *, active_only: bool = True) -> Sequence[ExitReason]:
    stmt = select(ExitReason).order_by(col(ExitReason.sort_order), col(ExitReason.id))
    if active_only:
        stmt = stmt.where(col(ExitReason.active).is_(True))
    return (await session.exec(stmt)).all()
