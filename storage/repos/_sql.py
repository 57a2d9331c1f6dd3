"""SQL helpers shared by the repositories."""

from __future__ import annotations

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
    bind = session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(model).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)
