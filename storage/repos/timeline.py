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

from sqlalchemy import ColumnElement, literal, tuple_
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
        # Every event has occurred_at (required since events are validated; 0017 filled in older rows).
        return PlatformEvent, col(PlatformEvent.occurred_at), col(PlatformEvent.interview_platform_id) == platform_id
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
    """Rows of ``kind`` whose key is below ``cursor``, in a form an index on (interview, time, id)
    answers by a range scan: a row value comparison, not an OR."""
    rank = KINDS.index(kind)
    if rank < cursor.rank:
        return when <= cursor.at
    if rank > cursor.rank:
        return when < cursor.at
    return tuple_(when, row_id) < tuple_(literal(cursor.at, type_=when.type), literal(cursor.id))


async def timeline_page(
    session: AsyncSession, *, interview_id: int, platform_id: str, before: Key | None, limit: int
) -> tuple[list[Row], Key | None]:
    """The ``limit`` newest rows of one interview's timeline below ``before`` (None: the newest),
    newest first, and the cursor of the next (older) page, or None when there is none."""
    # First only the keys (read from the (interview, time, id) indexes), then the rows shown.
    keys: list[tuple[Key, str]] = []
    for kind in KINDS:
        model, when, mine = _source(kind, interview_id=interview_id, platform_id=platform_id)
        row_id = col(model.id)
        stmt = select(when, row_id).where(mine)
        if before is not None:
            stmt = stmt.where(_before(kind, when, row_id, before))
        stmt = stmt.order_by(when.desc(), row_id.desc()).limit(limit + 1)
        rank = KINDS.index(kind)
        keys += [(Key(at, rank, found_id), kind) for at, found_id in (await session.exec(stmt)).all()]
    keys.sort(reverse=True)
    more = len(keys) > limit
    keys = keys[:limit]
    rows: list[Row] = []
    for kind in KINDS:
        ids = [key.id for key, k in keys if k == kind]
        if ids:
            model = _source(kind, interview_id=interview_id, platform_id=platform_id)[0]
            found = {item.id: item for item in (await session.exec(select(model).where(col(model.id).in_(ids)))).all()}
            rows += [Row(kind, key, found[key.id]) for key, k in keys if k == kind and key.id in found]
    rows.sort(key=lambda r: r.key, reverse=True)
    return rows, (keys[-1][0] if more and keys else None)
