"""HR to-dos."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Interview, Todo


async def todos_for_interview(
    session: AsyncSession, *, interview_id: int, after: int | None = None, limit: int | None = None
) -> Sequence[Todo]:
    """An interview's to-dos, oldest first; with ``after`` those with a higher id, at most ``limit``."""
    stmt = select(Todo).where(Todo.interview_id == interview_id).order_by(col(Todo.id)).limit(limit)
    if after is not None:
        stmt = stmt.where(col(Todo.id) > after)
    return (await session.exec(stmt)).all()


async def open_todos(session: AsyncSession, *, assignee: str | None = None) -> Sequence[Todo]:
    stmt = select(Todo).where(col(Todo.done).is_(False)).order_by(col(Todo.id))
    if assignee is not None:
        stmt = stmt.where(Todo.assignee == assignee)
    return (await session.exec(stmt)).all()


async def open_todos_with_interviews(
    session: AsyncSession, *, assignee: str
) -> Sequence[tuple[Todo, Interview | None]]:
    """An assignee's open to-dos, each with its interview (None for to-dos about no interview)."""
    stmt = (
        select(Todo, Interview)
        .outerjoin(Interview, col(Interview.id) == col(Todo.interview_id))
        .where(col(Todo.done).is_(False), Todo.assignee == assignee)
        .order_by(col(Todo.id))
    )
    return [(todo, interview) for todo, interview in (await session.exec(stmt)).all()]


async def finish_todo(
    session: AsyncSession, *, todo_id: int, assignee: str | None, now: datetime, by: str | None = None
) -> bool:
    """Mark an open to-do done by ``by`` (only the assignee's, unless ``assignee`` is None); not committed."""
    stmt = (
        update(Todo)
        .where(col(Todo.id) == todo_id, col(Todo.done).is_(False))
        .values(done=True, done_at=now, done_by=by)
    )
    if assignee is not None:
        stmt = stmt.where(col(Todo.assignee) == assignee)
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


async def finish_todos_by_ref(session: AsyncSession, *, ref: str, by: str, now: datetime) -> list[Todo]:
    """Mark every open to-do about ``ref`` done by ``by``; the ones closed (not committed)."""
    stmt = select(Todo).where(Todo.ref == ref, col(Todo.done).is_(False)).order_by(col(Todo.id))
    closed: list[Todo] = []
    for todo in (await session.exec(stmt)).all():
        assert todo.id is not None
        if await finish_todo(session, todo_id=todo.id, assignee=None, now=now, by=by):
            todo.done, todo.done_at, todo.done_by = True, now, by
            closed.append(todo)
    return closed


async def open_todo_counts(session: AsyncSession) -> list[tuple[str, int]]:
    """(assignee, open to-dos), most first."""
    n = func.count().label("n")
    stmt = (
        select(Todo.assignee, n)
        .where(col(Todo.done).is_(False))
        .group_by(col(Todo.assignee))
        .order_by(n.desc(), col(Todo.assignee))
    )
    return [(assignee, int(count)) for assignee, count in (await session.exec(stmt)).all()]
