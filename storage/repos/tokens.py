"""Access tokens shared by replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import SharedToken


async def get_shared_token(session: AsyncSession, *, key: str) -> SharedToken | None:
    return await session.get(SharedToken, key)


async def store_shared_token_and_commit(
    session: AsyncSession, *, key: str, value: str, expires_at: datetime, now: datetime
) -> None:
    """Upsert and commit; a concurrent insert by another replica wins harmlessly (both are valid)."""
    row = await session.get(SharedToken, key)
    if row is None:
        session.add(SharedToken(key=key, value=value, expires_at=expires_at, updated_at=now))
    else:
        row.value, row.expires_at, row.updated_at = value, expires_at, now
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()


async def expire_shared_token_and_commit(session: AsyncSession, *, key: str, value: str, now: datetime) -> None:
    """Expire ``value`` only if it is still the stored token (a newer one is left alone), and commit."""
    await session.exec(
        update(SharedToken)
        .where(col(SharedToken.key) == key, col(SharedToken.value) == value)
        .values(expires_at=now, updated_at=now)
    )
    await session.commit()
