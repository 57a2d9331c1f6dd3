"""The one token cache channels share (bot/channels/tokens.py), on the real database."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bot.channels.tokens import TokenCache
from bot.clock import FrozenClock
from bot.keys import CORE
from tests.conftest import AppFactory


async def test_replicas_share_one_token_and_invalidate_keeps_a_newer_one(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    assert client.server.app is not None
    sessions = client.server.app[CORE].sessions
    issued: list[str] = []

    async def fetch() -> tuple[str, datetime]:
        await asyncio.sleep(0)  # let the other callers queue up behind the lock
        issued.append(f"t{len(issued) + 1}")
        return issued[-1], clock.now() + timedelta(hours=2)

    def replica() -> TokenCache:
        return TokenCache(key="test:app", fetch=fetch, sessions=sessions, clock=clock, margin=timedelta(minutes=5))

    first, second = replica(), replica()
    assert set(await asyncio.gather(*(first.get() for _ in range(5)))) == {"t1"}
    assert await second.get() == "t1" and issued == ["t1"]  # from the shared row

    await first.invalidate("t1")
    assert await asyncio.gather(first.get(), first.get()) == ["t2", "t2"]  # one refresh for both
    await second.invalidate("t1")  # a stale refusal: the newer token stays, here and in the table
    assert await replica().get() == "t2"

    clock.advance(seconds=2 * 3600 - 4 * 60)  # inside the margin: renewed before use
    assert await first.get() == "t3" and issued == ["t1", "t2", "t3"]
