"""Per-destination pacing shared by replicas: one ``pace_mark`` row per paced send."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import PaceMark

# The first key of PostgreSQL's two-key advisory locks taken for pacing (the second is the
# destination's hash), apart from the single-key lock migrations take.
PACE_LOCK_CLASS = 15_0013


async def take_pace_slot(session: AsyncSession, *, destination: str, limit: int, window: float, now: datetime) -> float:
    """Reserve a send to ``destination`` at ``now`` if fewer than ``limit`` were made in the last
    ``window`` seconds: 0.0, and a mark added to the session's transaction (no commit). Otherwise
    the seconds until the oldest send in the window leaves it, and nothing added.

    On PostgreSQL the check and the mark hold a transaction-scoped advisory lock on the
    destination until the caller commits, so replicas checking at once take turns. SQLite has one
    writer per database and is one process's database; the caller serialises its own tasks."""
    if session.get_bind().dialect.name == "postgresql":
        await session.exec(select(func.pg_advisory_xact_lock(PACE_LOCK_CLASS, func.hashtext(destination))))
    since = now - timedelta(seconds=window)
    stmt = (
        select(PaceMark.at)
        .where(PaceMark.destination == destination, col(PaceMark.at) > since)
        .order_by(col(PaceMark.at))
    )
    times = (await session.exec(stmt)).all()
    if len(times) >= limit:
        return max(0.001, window - (now - times[-limit]).total_seconds())
    session.add(PaceMark(destination=destination, at=now))
    return 0.0


async def purge_pace_marks_and_commit(session: AsyncSession, *, before: datetime) -> None:
    await session.exec(delete(PaceMark).where(col(PaceMark.at) < before))
    await session.commit()
