"""The mapping from our exit reasons to a recruiting system's stages and termination reasons."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AtsReasonMap


async def ats_mappings(session: AsyncSession, *, system: str) -> Sequence[AtsReasonMap]:
    stmt = select(AtsReasonMap).where(AtsReasonMap.system == system).order_by(col(AtsReasonMap.reason_code))
    return (await session.exec(stmt)).all()


async def get_ats_mapping(session: AsyncSession, *, system: str, reason_code: str) -> AtsReasonMap | None:
    return await session.get(AtsReasonMap, (system, reason_code))


async def put_ats_mapping(session: AsyncSession, row: AtsReasonMap) -> AtsReasonMap:
    """Insert or replace the mapping of ``(row.system, row.reason_code)`` (not committed)."""
    found = await session.get(AtsReasonMap, (row.system, row.reason_code))
    if found is None:
        session.add(row)
        return row
    for name in ("action", "stage_id", "termination_type", "termination_reason_ids", "updated_by", "updated_at"):
        setattr(found, name, getattr(row, name))
    return found
