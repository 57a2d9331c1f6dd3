"""Colleagues known to the bot."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Person


async def get_person(session: AsyncSession, *, platform: str, user_id: str) -> Person | None:
    result = await session.exec(select(Person).where(Person.platform == platform, Person.user_id == user_id))
    return result.first()


async def list_people(session: AsyncSession, *, role: str | None = None) -> Sequence[Person]:
    stmt = select(Person).order_by(col(Person.platform), col(Person.user_id))
    if role:
        stmt = stmt.where(Person.role == role)
    return (await session.exec(stmt)).all()


async def people_named(session: AsyncSession, *, platform: str, name_or_id: str) -> Sequence[Person]:
    stmt = select(Person).where(
        Person.platform == platform, or_(col(Person.name) == name_or_id, col(Person.user_id) == name_or_id)
    )
    return (await session.exec(stmt)).all()
