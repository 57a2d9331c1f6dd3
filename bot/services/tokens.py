"""Access tokens shared by replicas (the ``shared_token`` table), for ``bot.channels.tokens.TokenCache``.

The cache (memory, single flight, invalidation) is the channels' part; reading, storing and
expiring the shared row is this one's, so channels reach storage only through services.
"""

from __future__ import annotations

from datetime import datetime

from storage import repo
from storage.db import SessionMaker


async def shared(sessions: SessionMaker, *, key: str) -> tuple[str, datetime] | None:
    """The stored token of ``key`` and when it expires, or None."""
    async with sessions() as session:
        row = await repo.get_shared_token(session, key=key)
        return (row.value, row.expires_at) if row is not None else None


async def store(sessions: SessionMaker, *, key: str, value: str, expires_at: datetime, now: datetime) -> None:
    """Keep a new token for every replica (a concurrent store by another replica wins harmlessly)."""
    async with sessions() as session:
        await repo.store_shared_token_and_commit(session, key=key, value=value, expires_at=expires_at, now=now)


async def expire(sessions: SessionMaker, *, key: str, value: str, now: datetime) -> None:
    """Expire ``value`` if it is still the stored token of ``key`` (a newer one is left alone)."""
    async with sessions() as session:
        await repo.expire_shared_token_and_commit(session, key=key, value=value, now=now)
