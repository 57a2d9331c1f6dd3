"""Platform events applied (keyed by event id so redeliveries apply once)."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import PlatformEvent


async def platform_event_seen(session: AsyncSession, *, event_id: str) -> bool:
    found = await session.exec(select(PlatformEvent.id).where(PlatformEvent.event_id == event_id))
    return found.first() is not None
