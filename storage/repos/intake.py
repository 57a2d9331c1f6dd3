"""Inbound items (``intake_item``): stored before they are answered, claimed in arrival order,
finished exactly once. Platform events (source ``platform``) and chat messages (source = the
channel's platform name, e.g. ``wecom``, ``wecom_kf``, ``dingtalk``, ``feishu``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import INTAKE_OPEN_STATUSES, IntakeItem, IntakeStatus
from storage.repos._sql import insert_many_or_nothing_keyed
from storage.repos.leases import claimer_gone

# PostgreSQL advisory lock taken by a claim, so two replicas' claims see each other's (order per key).
_CLAIM_LOCK = 0x1A7A4E


async def insert_intake_items(
    session: AsyncSession, *, source: str, items: Sequence[dict[str, Any]], now: datetime
) -> dict[str, int]:
    """``INSERT … ON CONFLICT DO NOTHING`` of items (``key``, ``order_key``, ``payload``, and
    ``done``: applied in this transaction, stored done) in one statement; the keys that were new,
    with the id each was given (the others were stored before: duplicates). Not committed.

    One cached statement with the rows as its parameters (``insert_many_or_nothing``)."""
    rows = [
        {
            "source": source,
            "key": item["key"],
            "order_key": item["order_key"],
            "payload": item["payload"],
            "status": (IntakeStatus.done if item.get("done") else IntakeStatus.received).value,
            "received_at": now,
            "attempts": 0,
            "done_at": now if item.get("done") else None,
        }
        for item in items
    ]
    return await insert_many_or_nothing_keyed(session, IntakeItem, rows, conflict=["source", "key"], returning="key")


async def open_order_keys(session: AsyncSession, *, source: str, order_keys: Sequence[str]) -> set[str]:
    """Which of these order keys have items stored and not yet done (received or processing): an
    item of theirs arriving now must wait its turn behind those."""
    if not order_keys:
        return set()
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    stmt = (
        select(table.c.order_key)
        .where(
            table.c.source == source,
            table.c.status.in_(INTAKE_OPEN_STATUSES),
            table.c.order_key.in_(list(order_keys)),
        )
        .distinct()
    )
    return set((await (await session.connection()).execute(stmt)).scalars().all())


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
        update(IntakeItem)
        .where(col(IntakeItem.id).in_(ids))
        .values(
            status=IntakeStatus.processing.value,
            claimed_by=worker,
            claimed_until=until,
            attempts=table.c.attempts + 1,
        )
        .returning(IntakeItem)
        # The rows come back as loaded items (no per-item constructor): nothing in the session to update.
        .execution_options(synchronize_session=False)
    )
    items = list((await session.exec(stmt)).scalars().all())
    await session.commit()
    return sorted(items, key=lambda item: item.id or 0)


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


async def intake_backlog(session: AsyncSession, *, source: str) -> tuple[int, int]:
    """Items stored and not yet processed (received or processing), and the highest id of any item
    then: an item with a higher id was not stored yet when counted (one with a lower id may still
    have been on its way, uncommitted)."""
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    top = select(func.coalesce(func.max(table.c.id), 0)).scalar_subquery()
    stmt = select(func.count(), top).where(table.c.source == source, table.c.status.in_(INTAKE_OPEN_STATUSES))
    count, highest = (await (await session.connection()).execute(stmt)).one()
    return int(count), int(highest)


async def first_and_last_waiting(session: AsyncSession, *, source: str, now: datetime) -> tuple[int, int] | None:
    """The lowest and highest id of the source's items on their way to being processed: claimed
    (``processing``), or ``received`` and due (an item waiting for a retry after a failure is not);
    None when there are none."""
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    due = or_(
        table.c.status == IntakeStatus.processing.value,
        and_(
            table.c.status == IntakeStatus.received.value,
            or_(table.c.claimed_until.is_(None), table.c.claimed_until <= now),
        ),
    )
    stmt = select(func.min(table.c.id), func.max(table.c.id)).where(table.c.source == source, due)
    low, high = (await (await session.connection()).execute(stmt)).one()
    return None if low is None else (int(low), int(high))


async def intake_page(
    session: AsyncSession,
    *,
    status: str | None = None,
    source: str | None = None,
    before: int | None = None,
    limit: int = 200,
) -> Sequence[IntakeItem]:
    """Items newest (highest id) first, those with an id below ``before``."""
    stmt = sm_select(IntakeItem).order_by(col(IntakeItem.id).desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(col(IntakeItem.id) < before)
    if status:
        stmt = stmt.where(col(IntakeItem.status) == status)
    if source:
        stmt = stmt.where(col(IntakeItem.source) == source)
    return (await session.exec(stmt)).all()


async def failing_intake(
    session: AsyncSession, *, exclude_source: str | None = None, limit: int = 20
) -> Sequence[IntakeItem]:
    """Items whose last try failed and that are not done (waiting for a retry, or failed), newest first."""
    stmt = (
        sm_select(IntakeItem)
        .where(
            col(IntakeItem.last_error).is_not(None),
            col(IntakeItem.status).in_([IntakeStatus.received.value, IntakeStatus.failed.value]),
        )
        .order_by(col(IntakeItem.id).desc())
        .limit(limit)
    )
    if exclude_source:
        stmt = stmt.where(col(IntakeItem.source) != exclude_source)
    return (await session.exec(stmt)).all()


async def intake_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """{(source, status): how many} of the items not done (received, processing, failed), one grouped query."""
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    stmt = (
        select(table.c.source, table.c.status, func.count())
        .where(table.c.status.in_([*INTAKE_OPEN_STATUSES, IntakeStatus.failed.value]))
        .group_by(table.c.source, table.c.status)
    )
    rows = (await (await session.connection()).execute(stmt)).all()
    return {(str(source), str(status)): int(n) for source, status, n in rows}


async def intake_items(session: AsyncSession, *, source: str, status: str | None = None) -> Sequence[IntakeItem]:
    stmt = sm_select(IntakeItem).where(col(IntakeItem.source) == source).order_by(col(IntakeItem.id))
    if status is not None:
        stmt = stmt.where(col(IntakeItem.status) == status)
    return (await session.exec(stmt)).all()


async def purge_intake_and_commit(session: AsyncSession, *, before: datetime, batch: int = 5000) -> int:
    """Forget items done before ``before`` (what was applied stays recorded where it was applied),
    ``batch`` rows per transaction (a week of a fleet's heartbeats is millions); how many."""
    table = IntakeItem.__table__  # type: ignore[attr-defined]
    gone = 0
    while True:
        ids = (
            select(table.c.id)
            .where(table.c.status == IntakeStatus.done.value, table.c.done_at < before)
            .order_by(table.c.id)
            .limit(batch)
            .scalar_subquery()
        )
        result = await session.exec(delete(table).where(table.c.id.in_(ids)))
        await session.commit()
        gone += int(result.rowcount)
        if result.rowcount < batch:
            return gone
