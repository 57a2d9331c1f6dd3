"""Platform events applied (keyed by event id so redeliveries apply once)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OPEN_INTERVIEW_STATUSES, Candidate, Interview, PlatformEvent


async def platform_event_seen(session: AsyncSession, *, event_id: str) -> bool:
    found = await session.exec(select(PlatformEvent.id).where(PlatformEvent.event_id == event_id))
    return found.first() is not None


async def insert_platform_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Record events as applied, in one ``INSERT … ON CONFLICT DO NOTHING``; the event ids that were
    new (the others were applied before). Not committed."""
    if not rows:
        return set()
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(PlatformEvent)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(col(PlatformEvent.event_id))
    )
    return set((await session.exec(stmt)).scalars().all())


@dataclass(frozen=True)
class InterviewFacts:
    """What an event's interview fields are compared with, to tell a pure heartbeat."""

    status: str
    position: str
    join_url: str | None
    hr: tuple[str | None, str | None]
    scheduled_at: datetime | None
    mobile: str | None
    email: str | None


async def interview_facts(session: AsyncSession, *, platform_ids: Iterable[str]) -> dict[str, InterviewFacts]:
    """The stored fields of these interviews (and their candidates), by platform id; one query."""
    ids = list(platform_ids)
    if not ids:
        return {}
    iv = Interview.__table__  # type: ignore[attr-defined]
    person = Candidate.__table__  # type: ignore[attr-defined]
    stmt = (
        sa_select(
            iv.c.platform_id,
            iv.c.status,
            iv.c.position,
            iv.c.join_url,
            iv.c.hr_platform,
            iv.c.hr_user_id,
            iv.c.scheduled_at,
            person.c.mobile,
            person.c.email,
        )
        .join(person, person.c.id == iv.c.candidate_id)
        .where(iv.c.platform_id.in_(ids))
    )
    return {
        row[0]: InterviewFacts(row[1], row[2], row[3], (row[4], row[5]), row[6], row[7], row[8])
        for row in (await (await session.connection()).execute(stmt)).all()
    }


async def move_last_activity(session: AsyncSession, *, latest: dict[str, datetime], now: datetime) -> None:
    """For each interview (platform id → time): last activity moves forward to the time while the
    interview is open; one statement, executed per interview. Not committed."""
    if not latest:
        return
    table = Interview.__table__  # type: ignore[attr-defined]
    at = bindparam("at", type_=table.c.last_activity_at.type)
    moves = and_(
        # Spelled out (no IN list): an expanding parameter cannot be used with executemany.
        or_(*(table.c.status == status for status in OPEN_INTERVIEW_STATUSES)),
        or_(table.c.last_activity_at.is_(None), table.c.last_activity_at < at),
    )
    stmt = (
        update(table)
        .where(table.c.platform_id == bindparam("pid"))
        .values(
            last_activity_at=case((moves, at), else_=table.c.last_activity_at),
            updated_at=bindparam("now", type_=table.c.updated_at.type),
        )
    )
    params = [{"pid": pid, "at": when, "now": now} for pid, when in sorted(latest.items())]
    connection = await session.connection()
    await connection.execute(stmt, params)
