"""One interview's history, a page at a time, newest first (keyset paging, never an offset).

Every row of the timeline has a key ``(at, kind order, id)``: its time, the rank of its kind among
things at the same moment (``KINDS``), and its row id. A page is the ``limit`` rows with the
largest keys below a cursor (the key of the oldest row already shown), so a page costs the same
at the 10th and the 10,000th row, whatever is added meanwhile, and no row is shown twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEvent, ExitRecord, Notice, PlatformEvent, Reminder, Todo

# The order of kinds at the same moment (an event before the audit it caused, and so on).
KINDS = ("event", "audit", "exit", "todo", "notice", "reminder")


@dataclass(frozen=True, order=True)
class Key:
    """Where a row sits in the timeline; the cursor of the page after it is its key."""

    at: datetime
    rank: int
    id: int


@dataclass
class Row:
    kind: str
    key: Key
    item: Any


def _source(kind: str, *, interview_id: int, platform_id: str) -> tuple[Any, Any, ColumnElement[bool]]:
    """(model, time column, which rows are this interview's) for one kind."""
    if kind == "event":
        when = func.coalesce(col(PlatformEvent.occurred_at), col(PlatformEvent.received_at))
        return PlatformEvent, when, col(PlatformEvent.interview_platform_id) == platform_id
    model: Any
    model, at = {
        "audit": (AuditEvent, AuditEvent.at),
        "exit": (ExitRecord, ExitRecord.at),
        "todo": (Todo, Todo.created_at),
        "notice": (Notice, Notice.created_at),
        "reminder": (Reminder, Reminder.due_at),
    }[kind]
    return model, col(at), col(model.interview_id) == interview_id


def _before(kind: str, when: Any, row_id: Any, cursor: Key) -> ColumnElement[bool]:
    """Rows of ``kind`` whose key is below ``cursor``."""
    rank = KINDS.index(kind)
    same_moment = true() if rank < cursor.rank else (row_id < cursor.id if rank == cursor.rank else false())
    return or_(when < cursor.at, and_(when == cursor.at, same_moment))


async def timeline_page(
    session: AsyncSession, *, interview_id: int, platform_id: str, before: Key | None, limit: int
) -> tuple[list[Row], Key | None]:
    """The ``limit`` newest rows of one interview's timeline below ``before`` (None: the newest),
    newest first, and the cursor of the next (older) page, or None when there is none."""
    rows: list[Row] = []
    for kind in KINDS:
        model, when, mine = _source(kind, interview_id=interview_id, platform_id=platform_id)
        row_id = col(model.id)
        stmt = select(model).where(mine)
        if before is not None:
            stmt = stmt.where(_before(kind, when, row_id, before))
        stmt = stmt.order_by(when.desc(), row_id.desc()).limit(limit + 1)
        for item in (await session.exec(stmt)).all():
            rows.append(Row(kind, Key(_time(kind, item), KINDS.index(kind), item.id), item))
    rows.sort(key=lambda r: r.key, reverse=True)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].key if more and rows else None)


def _time(kind: str, item: Any) -> datetime:
    value = (item.occurred_at or item.received_at) if kind == "event" else getattr(item, _TIME[kind])
    assert isinstance(value, datetime)
    return value


_TIME = {"audit": "at", "exit": "at", "todo": "created_at", "notice": "created_at", "reminder": "due_at"}
