"""Lookups remembered while one batch of chat messages is processed (``bot.intake.ChatIntake.run_batch``).

The dispatcher looks up the sender (``people.get``) and their open question (``prompts.latest_open``)
for every message; in a batch of one person's messages these answers repeat. Inside
``remembering()`` they are kept, and forgotten as soon as any session in the batch commits (a
handler that registers someone, opens or closes a question, or writes anything else): what a
message changed is seen by the next one. Only answers that cannot go stale with time are kept: a
person, and the absence of an open question (a question found open may expire, so it is read
again). A change made meanwhile by another replica or another request (the admin API) is seen from
the next batch on, as if the rest of this batch had come a moment earlier. Outside a batch nothing
is remembered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

# The batch being processed in this task and the tasks it started: (its owner, what it remembers).
_BATCH: ContextVar[tuple[Lookups, dict[Hashable, Any]] | None] = ContextVar("lookup_batch", default=None)


class Lookups:
    """One app's remembered lookups (``Core.lookups``). Its sessions call ``forget`` after every
    commit (``storage.db.session_maker(after_commit=…)``); another app in the same process, with
    sessions of its own, neither sees nor clears what this one remembers."""

    @contextmanager
    def remembering(self) -> Iterator[None]:
        """Remember lookups until the block ends (tasks started inside share what is remembered)."""
        token = _BATCH.set((self, {}))
        try:
            yield
        finally:
            _BATCH.reset(token)

    def _memo(self) -> dict[Hashable, Any] | None:
        batch = _BATCH.get()
        return batch[1] if batch is not None and batch[0] is self else None

    async def lookup(self, key: Hashable, load: Callable[[], Awaitable[T]], *, keep: Callable[[T], bool]) -> T:
        """``load()``, or what it returned before in this batch; kept only when ``keep(value)``."""
        memo = self._memo()
        if memo is None:
            return await load()
        if key in memo:
            return memo[key]
        value = await load()
        if keep(value) and self._memo() is memo:
            memo[key] = value
        return value

    def forget(self) -> None:
        memo = self._memo()
        if memo:
            memo.clear()
