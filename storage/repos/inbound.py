"""Keys of things taken in once (``inbound_message``: e.g. the help request a kf message opened), and
the callback signs of the HTTP callbacks that sign only a timestamp (DingTalk's replay guard).

Chat messages themselves are deduplicated by their intake item (``storage.repos.intake``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import DingTalkSign, InboundMessage
from storage.repos._sql import insert_or_nothing


async def note_inbound(session: AsyncSession, *, platform: str, dedupe_key: str, now: datetime) -> bool:
    """Record an inbound message key (not committed); False if it was seen before (a redelivery)."""
    values = {"platform": platform, "dedupe_key": dedupe_key, "received_at": now}
    return await insert_or_nothing(session, InboundMessage, values, conflict=("platform", "dedupe_key"))


async def callback_sign_owner(session: AsyncSession, *, sign: str) -> str | None:
    """The msgId a DingTalk sign was first accepted for, or None if it is new.

    A sign covers a timestamp, so an old row can never match a fresh request: old rows are only
    clutter, removed by the daily housekeeping (``purge_callback_signs_and_commit``), not on the ack
    path. The binding itself is stored with the callback, in the intake's transaction.
    """
    bound = await session.get(DingTalkSign, sign)
    return bound.msg_id if bound is not None else None


async def purge_callback_signs_and_commit(session: AsyncSession, *, before: datetime) -> None:
    """Forget signs seen before ``before`` and commit."""
    await session.exec(delete(DingTalkSign).where(col(DingTalkSign.seen_at) < before))
    await session.commit()
