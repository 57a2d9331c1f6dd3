"""The outbox: notices, their delivery attempts, and the claims senders take on them."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, false, func, insert, or_, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from storage.models import AttemptResult, Notice, NoticeAttempt, NoticeStatus
from storage.repos.errors import Conflict
from storage.repos.leases import claimer_gone

# ``session.info`` key: this session added notices (``queued_notices``).
_QUEUED = "queued_notices"


def add_notice(session: AsyncSession, notice: Notice) -> Notice:
    session.add(notice)
    session.info[_QUEUED] = True
    return notice


def queued_notices(session: AsyncSession) -> bool:
    """Whether ``add_notice`` added a notice in this session: after its commit the outbox has work."""
    return bool(session.info.get(_QUEUED))


async def add_notices_and_commit(session: AsyncSession, notices: Sequence[Notice]) -> None:
    """Store ``notices`` and commit; ``Conflict`` (rolled back) if the database refuses them, e.g. a
    dedupe key queued before."""
    session.add_all(list(notices))
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(f"{len(notices)} notice(s) refused") from exc


def _values(notice: Notice) -> dict[str, Any]:
    return {c.name: getattr(notice, c.name) for c in _COLUMNS}


_COLUMNS = [c for c in Notice.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]


async def insert_notices(session: AsyncSession, notices: Sequence[Notice | Mapping[str, Any]]) -> None:
    """Insert new rows (objects, or their column values: ``Notice.values``) in one statement, without
    the ORM's unit of work (which, on SQLite, sends one INSERT per row to learn its id); objects stay
    unsaved. No commit; ``IntegrityError`` propagates."""
    if notices:
        rows = [n if isinstance(n, Mapping) else _values(n) for n in notices]
        await session.exec(insert(Notice), params=rows)


async def notices_for_interview(
    session: AsyncSession, *, interview_id: int, after: int | None = None, limit: int | None = None
) -> Sequence[Notice]:
    """An interview's notices, oldest first; with ``after`` those with a higher id, at most ``limit``."""
    stmt = select(Notice).where(Notice.interview_id == interview_id).order_by(col(Notice.id)).limit(limit)
    if after is not None:
        stmt = stmt.where(col(Notice.id) > after)
    return (await session.exec(stmt)).all()


async def pending_notices(session: AsyncSession, *, interview_id: int, kinds: Sequence[str]) -> Sequence[Notice]:
    """Notices of an interview not yet taken by a sender (pending, including ones waiting to retry)."""
    stmt = (
        select(Notice)
        .where(
            Notice.interview_id == interview_id,
            col(Notice.kind).in_(list(kinds)),
            col(Notice.status) == NoticeStatus.pending.value,
        )
        .order_by(col(Notice.id))
    )
    return (await session.exec(stmt)).all()


async def update_pending_notice(session: AsyncSession, *, notice_id: int, **values: Any) -> bool:
    """Change a notice only while it is still pending (never one a sender has claimed); no commit."""
    stmt = (
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.status) == NoticeStatus.pending.value)
        .values(**values)
    )
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


# What an earlier row of an in-order destination may be for a later one to go: delivered, or never to be.
_SETTLED = (NoticeStatus.sent.value, NoticeStatus.superseded.value, NoticeStatus.cancelled.value)


def _in_order(in_order: Sequence[str]) -> ColumnElement[bool]:
    """True for a row that may go now as far as order goes: its channel is not an in-order one, or
    no earlier row (by id) of its channel and destination is still unsettled (pending, being sent,
    or dead: a dead letter holds the ones after it until it is retried and delivered)."""
    if not in_order:
        return true()
    earlier = aliased(Notice)
    waiting = (
        exists()
        .where(
            col(earlier.channel) == col(Notice.channel),
            col(earlier.destination) == col(Notice.destination),
            col(earlier.id) < col(Notice.id),
            col(earlier.status).not_in(_SETTLED),
        )
        .correlate(Notice)
    )
    return or_(col(Notice.channel).not_in(list(in_order)), ~waiting)


async def due_notice_ids(
    session: AsyncSession,
    *,
    now: datetime,
    channels: Sequence[str],
    limit: int,
    worker: str | None = None,
    in_order: Sequence[str] = (),
) -> list[int]:
    """Rows of ``channels`` due for ``worker`` (see ``_due``), the longest waiting first; on the
    ``in_order`` channels only a destination's first unsettled row (see ``_in_order``)."""
    due = await due_notices(session, now=now, channels=channels, limit=limit, worker=worker, in_order=in_order)
    return [notice_id for notice_id, _, _ in due]


async def due_notices(
    session: AsyncSession,
    *,
    now: datetime,
    channels: Sequence[str],
    limit: int,
    worker: str | None = None,
    in_order: Sequence[str] = (),
) -> list[tuple[int, str, str]]:
    """``due_notice_ids`` with each row's channel and destination: (id, channel, destination)."""
    stmt = _due_statement(tuple(channels), worker, tuple(in_order))
    found = (await session.exec(stmt, params={"now": now, "limit": limit})).all()
    return [(i, c, d) for i, c, d in found if i is not None]


@functools.lru_cache(maxsize=64)
def _due_statement(
    channels: tuple[str, ...], worker: str | None, in_order: tuple[str, ...]
) -> Select[int | None, str, str]:
    """``due_notices``' statement, built once per worker and set of channels, with ``now`` and
    ``limit`` bound at each run: the outbox polls it every ``BOT_OUTBOX_POLL_SECONDS`` (0.05 s in the
    tests), and building the expression with ``claimer_gone``'s subquery each time was 5-15 % of
    the handler tests' CPU."""
    now = bindparam("now", type_=Notice.__table__.c.next_attempt_at.type)  # type: ignore[attr-defined]
    return (
        select(Notice.id, Notice.channel, Notice.destination)
        .where(
            or_(false(), *(col(Notice.channel) == channel for channel in channels)),
            _due(now, worker),  # type: ignore[arg-type]  # a bound datetime
            _in_order(in_order),
        )
        .order_by(col(Notice.next_attempt_at), col(Notice.id))
        .limit(bindparam("limit"))
    )


def _due(now: datetime, worker: str | None) -> ColumnElement[bool]:
    """Rows a worker may claim now: pending and due; being sent but their lock expired; or being
    sent by a process that is gone (``leases.claimer_gone``: its replica lease expired)."""
    pending, sending = (
        col(Notice.status) == NoticeStatus.pending.value,
        col(Notice.status) == NoticeStatus.sending.value,
    )
    gone = claimer_gone(col(Notice.claimed_by), now=now, me=worker)
    return or_(
        pending & (col(Notice.next_attempt_at) <= now),
        sending & (col(Notice.locked_until) < now),
        sending & gone,
    )


async def claim_notice_and_commit(
    session: AsyncSession,
    *,
    notice_id: int,
    now: datetime,
    lock_until: datetime,
    worker: str | None = None,
    in_order: Sequence[str] = (),
) -> bool:
    """Conditionally take one due notice and commit; only one worker (of any replica) wins. A row
    of an ``in_order`` channel is not taken while an earlier one of its destination is unsettled."""
    due = _due(now, worker)
    stmt = (
        update(Notice)
        .where(col(Notice.id) == notice_id, due, _in_order(in_order))
        .values(status=NoticeStatus.sending.value, locked_until=lock_until, claimed_by=worker)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def defer_destination(session: AsyncSession, *, channel: str, destination: str, until: datetime) -> None:
    """Pending rows of ``channel`` to ``destination`` due before ``until`` become due at ``until``
    (their order kept: ties go by id). No commit."""
    stmt = (
        update(Notice)
        .where(
            col(Notice.channel) == channel,
            col(Notice.destination) == destination,
            col(Notice.status) == NoticeStatus.pending.value,
            col(Notice.next_attempt_at) < until,
        )
        .values(next_attempt_at=until)
    )
    await session.exec(stmt)


async def last_attempt(session: AsyncSession, *, notice_id: int, channel: str) -> NoticeAttempt | None:
    stmt = (
        select(NoticeAttempt)
        .where(NoticeAttempt.notice_id == notice_id, NoticeAttempt.channel == channel)
        .order_by(col(NoticeAttempt.seq).desc())
        .limit(1)
    )
    return (await session.exec(stmt)).first()


async def attempts_for_notices(session: AsyncSession, *, notice_ids: Sequence[int]) -> dict[int, list[NoticeAttempt]]:
    out: dict[int, list[NoticeAttempt]] = {i: [] for i in notice_ids}
    if not notice_ids:
        return out
    stmt = (
        select(NoticeAttempt)
        .where(col(NoticeAttempt.notice_id).in_(list(notice_ids)))
        .order_by(col(NoticeAttempt.started_at), col(NoticeAttempt.id))
    )
    for attempt in (await session.exec(stmt)).all():
        out[attempt.notice_id].append(attempt)
    return out


async def list_notices(
    session: AsyncSession,
    *,
    status: str | None = None,
    kind: str | None = None,
    before: int | None = None,
    limit: int = 200,
) -> Sequence[Notice]:
    """Outbox rows, newest (highest id) first, those with an id below ``before``."""
    stmt = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(col(Notice.id) < before)
    if status:
        stmt = stmt.where(Notice.status == status)
    if kind:
        stmt = stmt.where(Notice.kind == kind)
    return (await session.exec(stmt)).all()


async def existing_dedupe_keys(session: AsyncSession, *, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    found = await session.exec(select(Notice.dedupe_key).where(col(Notice.dedupe_key).in_(list(keys))))
    return {k for k in found.all() if k is not None}


async def notice_exists(session: AsyncSession, *, dedupe_key: str) -> bool:
    return (await session.exec(select(Notice.id).where(Notice.dedupe_key == dedupe_key))).first() is not None


async def notices_with_status(session: AsyncSession, *, statuses: Sequence[str], limit: int = 200) -> Sequence[Notice]:
    """Notices in these statuses, newest first."""
    stmt = select(Notice).where(col(Notice.status).in_(list(statuses))).order_by(col(Notice.id).desc()).limit(limit)
    return (await session.exec(stmt)).all()


async def requeue_dead_notice(session: AsyncSession, *, notice_id: int, now: datetime) -> bool:
    """Put a dead notice back to pending, due now, its attempts kept; False unless it was dead. No commit."""
    stmt = (
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.status) == NoticeStatus.dead.value)
        .values(status=NoticeStatus.pending.value, next_attempt_at=now, locked_until=None)
    )
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


async def backlog_by_channel(session: AsyncSession) -> dict[str, int]:
    """Notices waiting or being sent (pending, sending), counted by channel."""
    stmt = (
        select(Notice.channel, func.count())
        .where(col(Notice.status).in_([NoticeStatus.pending.value, NoticeStatus.sending.value]))
        .group_by(col(Notice.channel))
    )
    return {channel: int(n) for channel, n in (await session.exec(stmt)).all()}


PROBLEM_RESULTS = (AttemptResult.failed, AttemptResult.rejected, AttemptResult.unknown)


async def recent_failed_attempts(session: AsyncSession, *, limit: int = 20) -> Sequence[NoticeAttempt]:
    """The newest delivery attempts that failed, were rejected or ended unknown."""
    stmt = (
        select(NoticeAttempt)
        .where(
            col(NoticeAttempt.result).in_(
                [AttemptResult.failed.value, AttemptResult.rejected.value, AttemptResult.unknown.value]
            )
        )
        .order_by(col(NoticeAttempt.started_at).desc(), col(NoticeAttempt.id).desc())
        .limit(limit)
    )
    return (await session.exec(stmt)).all()
