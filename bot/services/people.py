"""Who someone is, for text people read: an operator key such as ``wecom:hr01`` becomes 刘经理."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from storage import repo
from templates.labels import LABELS


async def display_name(session: AsyncSession, key: str | None) -> str:
    """The registered person's name for ``platform:user_id``; 系统 / 候选人本人 for those operators;
    otherwise the key itself (an admin API operator such as ``lihua``, or someone since removed)."""
    if not key:
        return ""
    known = LABELS["operator"].get(key)
    if known:
        return known
    platform, sep, user_id = key.partition(":")
    if sep:
        person = await repo.get_person(session, platform=platform, user_id=user_id)
        if person is not None:
            return person.name
    return key


async def display_names(session: AsyncSession, keys: Iterable[str | None]) -> dict[str, str]:
    return {key: await display_name(session, key) for key in set(keys) if key}
