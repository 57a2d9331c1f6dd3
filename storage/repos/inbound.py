"""Inbound chat dedupe: message keys taken in, and DingTalk callback signs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DingTalkSign, InboundMessage


async def claim_inbound_and_commit(session: AsyncSession, *, platform: str, dedupe_key: str, now: datetime) -> bool:
    """Record an inbound message key and commit. False if it was seen before (a redelivery); any other
    refusal of the database is raised, never taken for a redelivery."""
    session.add(InboundMessage(platform=platform, dedupe_key=dedupe_key, received_at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        same = (InboundMessage.platform == platform) & (InboundMessage.dedupe_key == dedupe_key)
        seen = await session.exec(select(InboundMessage.id).where(same))
        if seen.first() is None:
            raise
        return False
    return True


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
