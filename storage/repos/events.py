"""Platform events applied (keyed by event id so redeliveries apply once)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import PlatformEvent


async def platform_event_seen(session: AsyncSession, *, event_id: str) -> bool:
    found = await session.exec(select(PlatformEvent.id).where(PlatformEvent.event_id == event_id))
    return found.first() is not None


async def events_for_interview(session: AsyncSession, *, platform_id: str, limit: int = 500) -> Sequence[PlatformEvent]:
    stmt = (
        select(PlatformEvent)
        .where(PlatformEvent.interview_platform_id == platform_id)
        .order_by(col(PlatformEvent.received_at), col(PlatformEvent.id))
        .limit(limit)
    )
    return (await session.exec(stmt)).all()
