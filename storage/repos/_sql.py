"""SQL helpers shared by the repositories."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


async def insert_or_nothing(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any], *, conflict: Sequence[str]
) -> bool:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` (SQLite or PostgreSQL); True if a row was added.

    A concurrent insert of the same key waits for the other transaction and then does nothing,
    instead of failing the whole transaction on the unique constraint. Not committed.
    """
    stmt = _insert_or_nothing(session.get_bind().dialect.name, model, tuple(conflict), None)
    result = await (await session.connection()).execute(stmt, values)
    return bool(result.rowcount == 1)


async def insert_many_or_nothing(
    session: AsyncSession,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    returning: str,
) -> set[Any]:
    """``insert_or_nothing`` for many rows in one statement (SQLAlchemy's "insertmanyvalues": the rows
    are its parameters, so it is built and compiled once per process, not per batch); the
    ``returning`` column of the rows added (the others' keys were taken). Not committed."""
    return set(await insert_many_or_nothing_keyed(session, model, rows, conflict=conflict, returning=returning))


async def insert_many_or_nothing_keyed(
    session: AsyncSession,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str],
    returning: str,
) -> dict[Any, int]:
    """``insert_many_or_nothing``, with the ``id`` each added row was given."""
    if not rows:
        return {}
    stmt = _insert_or_nothing(session.get_bind().dialect.name, model, tuple(conflict), returning)
    return {key: id_ for key, id_ in (await (await session.connection()).execute(stmt, list(rows))).all()}


@functools.cache
def _insert_or_nothing(
    dialect_name: str, model: type[SQLModel], conflict: tuple[str, ...], returning: str | None
) -> Any:
    """The statement, built once per table, key and returned column (its values are parameters, so it
    is also compiled once) instead of a new ``.values(...)`` statement for every row or batch."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = model.__table__  # type: ignore[attr-defined]
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    return stmt if returning is None else stmt.returning(table.c[returning], table.c.id)
