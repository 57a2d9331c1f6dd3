"""Platform events applied (keyed by event id so redeliveries apply once)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OPEN_INTERVIEW_STATUSES, Candidate, Interview, PlatformEvent
from storage.repos._sql import insert_many_or_nothing


async def platform_event_seen(session: AsyncSession, *, event_id: str) -> bool:
    found = await session.exec(select(PlatformEvent.id).where(PlatformEvent.event_id == event_id))
    return found.first() is not None


async def insert_platform_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Record events as applied, in one ``INSERT … ON CONFLICT DO NOTHING``; the event ids that were
    new (the others were applied before). Not committed."""
    return await insert_many_or_nothing(session, PlatformEvent, rows, conflict=["event_id"], returning="event_id")


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


# Rows deleted per transaction by the purges: a day of a fleet's heartbeats is millions of rows.
PURGE_BATCH = 5000


async def purge_heartbeats_and_commit(session: AsyncSession, *, before: datetime, batch: int = PURGE_BATCH) -> int:
    """Forget the heartbeats (``interview.activity``) received before ``before``: they only moved a
    last activity, and their redeliveries come within minutes. Other events stay recorded. Walks the
    table by id (its primary key; ids grow with time), ``batch`` rows per transaction, and stops at
    the first batch with nothing received before ``before``; how many were deleted."""
    table = PlatformEvent.__table__  # type: ignore[attr-defined]
    after, gone = 0, 0
    while True:
        rows = (
            await (await session.connection()).execute(
                sa_select(table.c.id, table.c.type, table.c.received_at)
                .where(table.c.id > after)
                .order_by(table.c.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        old = [row.id for row in rows if row.type == "interview.activity" and row.received_at < before]
        if old:
            await session.exec(delete(table).where(table.c.id.in_(old)))
        await session.commit()
        gone += len(old)
        if all(row.received_at >= before for row in rows):
            break
        after = rows[-1].id
    return gone
