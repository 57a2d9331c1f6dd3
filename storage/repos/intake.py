"""Inbound items (``intake_item``): stored before they are answered, claimed in arrival order,
finished exactly once. Platform events today (source ``platform``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import INTAKE_OPEN_STATUSES, IntakeItem, IntakeStatus
from storage.repos.leases import claimer_gone

# PostgreSQL advisory lock taken by a claim, so two replicas' claims see each other's (order per key).
_CLAIM_LOCK = 0x1A7A4E


async def insert_intake_items(
    session: AsyncSession, *, source: str, items: Sequence[dict[str, Any]], now: datetime
) -> set[str]:
    """``INSERT … ON CONFLICT DO NOTHING`` of items (``key``, ``order_key``, ``payload``) in one
    statement; the keys that were new (the others were stored before: duplicates). Not committed."""
    if not items:
        return set()
    bind = session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    rows = [
        {
            "source": source,
            "key": item["key"],
            "order_key": item["order_key"],
            "payload": item["payload"],
            "status": IntakeStatus.received.value,
            "received_at": now,
            "attempts": 0,
        }
        for item in items
    ]
    stmt = (
        dialect.insert(IntakeItem)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["source", "key"])
        .returning(col(IntakeItem.key))
    )
    return set((await session.exec(stmt)).scalars().all())


async def claim_intake_and_commit(
    session: AsyncSession, *, source: str, worker: str, now: datetime, until: datetime, limit: int
) -> list[IntakeItem]:
    """Claim up to ``limit`` items due now, oldest first, and commit; sorted by id.

    Due: received and past its retry time, or processing under a claim that expired or whose
    claimer is gone (``leases.claimer_gone``: its replica lease expired, so a killed replica's items
    are taken within about BOT_LEASE_SECONDS). An item is left while an item of the same
    ``order_key`` is held by a live claim or waits for its retry, so the items of one subject are
    processed in order, by one worker at a time.
    """
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        await (await session.connection()).execute(select(func.pg_advisory_xact_lock(_CLAIM_LOCK)))
    orphaned = and_(
        table.c.status == IntakeStatus.processing.value, claimer_gone(table.c.claimed_by, now=now, me=worker)
    )
    due = or_(table.c.claimed_until.is_(None), table.c.claimed_until < now, orphaned)
    busy = (
        select(table.c.order_key)
        .where(
            table.c.source == source,
            table.c.status.in_(INTAKE_OPEN_STATUSES),
            table.c.claimed_until >= now,
            ~orphaned,
        )
        .scalar_subquery()
    )
    ids = (
        select(table.c.id)
        .where(
            table.c.source == source,
            table.c.status.in_(INTAKE_OPEN_STATUSES),
            due,
            table.c.order_key.not_in(busy),
        )
        .order_by(table.c.id)
        .limit(limit)
        .scalar_subquery()
    )
    stmt = (
        update(table)
        .where(table.c.id.in_(ids))
        .values(
            status=IntakeStatus.processing.value,
            claimed_by=worker,
            claimed_until=until,
            attempts=table.c.attempts + 1,
        )
        .returning(*table.c)
    )
    rows = (await session.exec(stmt)).mappings().all()
    await session.commit()
    return sorted((IntakeItem(**dict(row)) for row in rows), key=lambda item: item.id or 0)


async def finish_intake(session: AsyncSession, *, ids: Sequence[int], worker: str, now: datetime) -> int:
    """Mark claimed items done (not committed); how many were still this worker's (fewer: the
    claim was lost to another worker, and the transaction must not commit)."""
    if not ids:
        return 0
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    stmt = (
        update(table)
        .where(
            table.c.id.in_(list(ids)),
            table.c.claimed_by == worker,
            table.c.status == IntakeStatus.processing.value,
        )
        .values(status=IntakeStatus.done.value, done_at=now, claimed_until=None, last_error=None)
    )
    result = await session.exec(stmt)
    return int(result.rowcount)


async def retry_intake_and_commit(
    session: AsyncSession, *, item_id: int, worker: str, error: str, retry_at: datetime | None
) -> None:
    """A try failed: back to received until ``retry_at``, or failed for good when it is None; commit."""
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    status = IntakeStatus.failed if retry_at is None else IntakeStatus.received
    stmt = (
        update(table)
        .where(table.c.id == item_id, table.c.claimed_by == worker, table.c.status == IntakeStatus.processing.value)
        .values(status=status.value, claimed_until=retry_at, last_error=error[:1000])
    )
    await session.exec(stmt)
    await session.commit()


async def release_intake_and_commit(session: AsyncSession, *, ids: Sequence[int], worker: str) -> None:
    """Give claimed items back untried (shutting down): due again at once; commit."""
    if not ids:
        return
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    stmt = (
        update(table)
        .where(
            table.c.id.in_(list(ids)),
            table.c.claimed_by == worker,
            table.c.status == IntakeStatus.processing.value,
        )
        .values(status=IntakeStatus.received.value, claimed_until=None, attempts=table.c.attempts - 1)
    )
    await session.exec(stmt)
    await session.commit()


async def take_over_intake_and_commit(session: AsyncSession, *, source: str, owners: Sequence[str]) -> int:
    """Items claimed by processes known to be gone (``owners``' exact ``claimed_by``, or a prefix
    ending in ``/``: an instance's earlier boots) become due at once; commit; how many."""
    if not owners:
        return 0
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    gone = or_(
        *(
            table.c.claimed_by.startswith(owner, autoescape=True)
            if owner.endswith("/")
            else table.c.claimed_by == owner
            for owner in owners
        )
    )
    stmt = (
        update(table)
        .where(table.c.source == source, table.c.status == IntakeStatus.processing.value, gone)
        .values(status=IntakeStatus.received.value, claimed_until=None)
    )
    result = await session.exec(stmt)
    await session.commit()
    return int(result.rowcount)


async def intake_backlog(session: AsyncSession, *, source: str) -> int:
    """Items stored and not yet processed (received or processing)."""
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    stmt = select(func.count()).where(table.c.source == source, table.c.status.in_(INTAKE_OPEN_STATUSES))
    return int((await (await session.connection()).execute(stmt)).scalar_one())


async def intake_items(session: AsyncSession, *, source: str, status: str | None = None) -> Sequence[IntakeItem]:
    stmt = sm_select(IntakeItem).where(col(IntakeItem.source) == source).order_by(col(IntakeItem.id))
    if status is not None:
        stmt = stmt.where(col(IntakeItem.status) == status)
    return (await session.exec(stmt)).all()


async def purge_intake_and_commit(session: AsyncSession, *, before: datetime) -> None:
    """Forget items done before ``before`` (what was applied stays recorded where it was applied)."""
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    stmt = delete(table).where(and_(table.c.status == IntakeStatus.done.value, table.c.done_at < before))
    await session.exec(stmt)
    await session.commit()
