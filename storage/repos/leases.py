"""Named leases shared by replicas (one holder at a time, until it stops renewing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, update
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


# Every serving process holds one lease named ``replica:<boot id>`` (held by its worker id, renewed
# like any lease: ``bot.services.leases.heartbeat``); its claims on work rows live as long as it does.
REPLICA_LEASE = "replica:"


async def prune_replica_leases_and_commit(session: AsyncSession, *, now: datetime) -> int:
    """Forget the replica leases that have expired (their processes are gone either way: a missing
    lease and an expired one mean the same to ``claimer_gone``). Commits; how many were removed."""
    stmt = delete(Lease).where(col(Lease.name).startswith(REPLICA_LEASE), col(Lease.expires_at) < now)
    removed = int((await session.exec(stmt)).rowcount or 0)
    await session.commit()
    return removed


def claimer_gone(claimed_by: Any, *, now: datetime, me: str | None) -> ColumnElement[bool]:
    """The one rule for "is the claimer of this row alive", as a SQL condition on a ``claimed_by``
    column: true when the row is claimed by a process other than ``me`` whose replica lease is
    missing or expired (it was killed, or stopped and gave its lease up). A claim is a worker id
    (``<instance>/<boot>``) or a run token of one (``<worker id>#<nonce>``). A process never
    judges its own claims by this rule (its clock may move in tests; it knows its own runs)."""
    holder = col(Lease.holder)
    alive = exists().where(
        col(Lease.name).startswith(REPLICA_LEASE),
        col(Lease.expires_at) >= now,
        or_(
            holder == claimed_by,
            func.substr(claimed_by, 1, func.length(holder) + 1) == holder.concat("#"),
        ),
    )
    gone = and_(claimed_by.is_not(None), ~alive)
    if me is not None:
        gone = and_(
            gone,
            claimed_by != me,
            func.substr(claimed_by, 1, len(me) + 1) != f"{me}#",
        )
    return gone
