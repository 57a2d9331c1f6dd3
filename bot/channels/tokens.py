"""One access-token cache for every channel whose API needs a token.

The token is kept in memory and in the ``shared_token`` table (``bot.services.tokens``) until
shortly before it expires, so replicas reuse one token instead of stampeding the platform's token
endpoint. Refreshes are
single-flight per process (an ``asyncio.Lock``); a refresh first re-reads the table, so it takes
a token another replica just stored. ``invalidate`` drops a token the platform refused, here and
in the table (only if it is still the current one), under the same lock.

The channel supplies only ``fetch``: how to ask its platform for a new token and when it expires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.services import tokens
from storage.db import SessionMaker

# Returns the new token and when the platform says it expires.
FetchToken = Callable[[], Awaitable[tuple[str, datetime]]]


class TokenCache:
    def __init__(
        self,
        *,
        key: str,
        fetch: FetchToken,
        sessions: SessionMaker,
        clock: Clock,
        margin: timedelta = timedelta(0),
    ) -> None:
        self.key = key  # the shared_token row, e.g. "wecom:<corp>:<agent>"
        self._fetch = fetch
        self._sessions = sessions
        self._clock = clock
        self._margin = margin  # refresh this long before the stored expiry
        self._token: tuple[str, datetime] | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, expires_at: datetime) -> bool:
        return expires_at - self._margin > self._clock.now()

    async def get(self) -> str:
        cached = self._token
        if cached and self._fresh(cached[1]):
            return cached[0]
        async with self._lock:  # single flight: one fetch, the other callers reuse it
            cached = self._token
            if cached and self._fresh(cached[1]):
                return cached[0]
            stored = await tokens.shared(self._sessions, key=self.key)
            if stored is not None and self._fresh(stored[1]):
                self._token = stored
                return stored[0]
            value, expires_at = await self._fetch()
            await tokens.store(self._sessions, key=self.key, value=value, expires_at=expires_at, now=self._clock.now())
            self._token = (value, expires_at)
            return value

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` (only if it is still the current one), here and in the shared table."""
        async with self._lock:
            if self._token and self._token[0] == token:
                self._token = None
            await tokens.expire(self._sessions, key=self.key, value=token, now=self._clock.now())
