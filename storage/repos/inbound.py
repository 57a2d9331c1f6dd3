"""Inbound chat dedupe: message keys taken in, and DingTalk callback signs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DingTalkSign, InboundMessage
from storage.repos._sql import insert_or_nothing
from storage.repos.errors import Conflict


async def claim_inbound_and_commit(session: AsyncSession, *, platform: str, dedupe_key: str, now: datetime) -> bool:
    """Record an inbound message key and commit (with whatever else the session holds). False if it
    was seen before (a redelivery); any other refusal of the database (e.g. a row stored with it
    that conflicts) is raised as ``Conflict``, never taken for a redelivery."""
    session.add(InboundMessage(platform=platform, dedupe_key=dedupe_key, received_at=now))
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        same = (InboundMessage.platform == platform) & (InboundMessage.dedupe_key == dedupe_key)
        seen = await session.exec(select(InboundMessage.id).where(same))
        if seen.first() is None:
            raise Conflict(f"{platform} message {dedupe_key[:80]} refused") from exc
        return False
    return True


async def note_inbound(session: AsyncSession, *, platform: str, dedupe_key: str, now: datetime) -> bool:
    """Record an inbound message key (not committed); False if it was seen before (a redelivery)."""
    values = {"platform": platform, "dedupe_key": dedupe_key, "received_at": now}
    return await insert_or_nothing(session, InboundMessage, values, conflict=("platform", "dedupe_key"))


async def seen_inbound_keys(session: AsyncSession, *, platform: str, dedupe_keys: Iterable[str]) -> set[str]:
    """Which of ``dedupe_keys`` were taken in before on ``platform``."""
    stmt = select(InboundMessage.dedupe_key).where(
        InboundMessage.platform == platform, col(InboundMessage.dedupe_key).in_(list(dedupe_keys))
    )
    return set((await session.exec(stmt)).all())


def add_inbound(session: AsyncSession, *, platform: str, dedupe_key: str, now: datetime) -> None:
    """Record an inbound message key known to be new (not committed)."""
    session.add(InboundMessage(platform=platform, dedupe_key=dedupe_key, received_at=now))


async def insert_inbound(session: AsyncSession, *, platform: str, dedupe_keys: Sequence[str], now: datetime) -> None:
    """Record inbound message keys known to be new, in one statement (not committed)."""
    if dedupe_keys:
        rows = [{"platform": platform, "dedupe_key": key, "received_at": now} for key in dedupe_keys]
        await session.exec(insert(InboundMessage), params=rows)


async def dingtalk_sign_owner(session: AsyncSession, *, sign: str) -> str | None:
    """The msgId a DingTalk sign was first accepted for, or None if it is new.

    A sign covers a timestamp, so an old row can never match a fresh request: old rows are only
    clutter, removed by the daily housekeeping (``purge_dingtalk_signs_and_commit``), not on the ack
    path. The binding itself is stored with the callback, in the intake's transaction.
    """
    bound = await session.get(DingTalkSign, sign)
    return bound.msg_id if bound is not None else None


async def purge_dingtalk_signs_and_commit(session: AsyncSession, *, before: datetime) -> None:
    """Forget signs seen before ``before`` and commit."""
    await session.exec(delete(DingTalkSign).where(col(DingTalkSign.seen_at) < before))
    await session.commit()
