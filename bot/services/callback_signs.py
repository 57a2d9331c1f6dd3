"""The replay guard of HTTP callbacks whose signature covers only a timestamp (DingTalk's HTTP mode):
a sign is accepted for one message only.

The binding (a ``DingTalkSign`` row) is stored with the message, in the intake's transaction (its
extra rows), so two messages racing with one sign cannot both be taken in; this module answers
whom a sign was bound to, and forgets old signs (a sign covers a timestamp, so an old one can never
match a fresh request).
"""

from __future__ import annotations

from datetime import datetime

from bot.services.context import Core
from storage import repo


async def owner(core: Core, *, sign: str) -> str | None:
    """The message id ``sign`` was first accepted for, or None if it is new."""
    async with core.sessions() as session:
        return await repo.callback_sign_owner(session, sign=sign)


async def purge(core: Core, *, before: datetime) -> None:
    """Forget the signs seen before ``before`` (housekeeping)."""
    async with core.sessions() as session:
        await repo.purge_callback_signs_and_commit(session, before=before)
