"""Lookups remembered while one batch of chat messages is processed (``bot.intake.BatchWork``).

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

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")

_MEMO: ContextVar[dict[Hashable, Any] | None] = ContextVar("lookup_memo", default=None)


@contextmanager
def remembering() -> Iterator[None]:
    """Remember lookups until the block ends (tasks started inside share what is remembered)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


async def lookup(key: Hashable, load: Callable[[], Awaitable[T]], *, keep: Callable[[T], bool]) -> T:
    """``load()``, or what it returned before in this batch; kept only when ``keep(value)``."""
    memo = _MEMO.get()
    if memo is None:
        return await load()
    if key in memo:
        return memo[key]
    value = await load()
    if keep(value) and _MEMO.get() is memo:
        memo[key] = value
    return value


def forget() -> None:
    memo = _MEMO.get()
    if memo:
        memo.clear()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    forget()
