"""Named leases shared by replicas (one holder at a time, until it stops renewing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Lease
from storage.repos._sql import insert_or_nothing


async def hold_lease_and_commit(
    session: AsyncSession, *, name: str, holder: str, now: datetime, until: datetime
) -> bool:
    """Take the lease, or renew it when ``holder`` has it; True when ``holder`` holds it until
    ``until``. Someone else's lease is taken only once it has expired. Commits."""
    values = {"name": name, "holder": holder, "expires_at": until, "acquired_at": now}
    if await insert_or_nothing(session, Lease, values, conflict=["name"]):
        await session.commit()
        return True
    stmt = (
        update(Lease)
        .where(col(Lease.name) == name, or_(col(Lease.holder) == holder, col(Lease.expires_at) < now))
        .values(holder=holder, expires_at=until)
    )
    won = bool((await session.exec(stmt)).rowcount == 1)
    await session.commit()
    return won


async def release_lease_and_commit(session: AsyncSession, *, name: str, holder: str) -> None:
    """Give the lease up (only ``holder``'s), so a standby replica takes it at once. Commits."""
    await session.exec(delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))
    await session.commit()


async def get_lease(session: AsyncSession, *, name: str) -> Lease | None:
    return await session.get(Lease, name, populate_existing=True)
