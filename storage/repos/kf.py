"""WeChat customer service (kf): sync cursors, conversations, and the lookups that answer a customer."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Candidate, Interview, KfConversation, KfCursor


async def kf_cursor(session: AsyncSession, *, open_kfid: str) -> str:
    """The stored sync_msg cursor of a kf account, or "" before its first sync."""
    row = await session.get(KfCursor, open_kfid)
    return row.cursor if row else ""


async def save_kf_cursor_and_commit(session: AsyncSession, *, open_kfid: str, cursor: str, now: datetime) -> None:
    """Store the sync_msg cursor of a kf account and commit."""
    row = await session.get(KfCursor, open_kfid)
    if row is None:
        session.add(KfCursor(open_kfid=open_kfid, cursor=cursor, updated_at=now))
    else:
        row.cursor, row.updated_at = cursor, now
    await session.commit()


async def kf_conversation(session: AsyncSession, *, external_userid: str) -> KfConversation | None:
    result: KfConversation | None = (
        await session.exec(select(KfConversation).where(KfConversation.external_userid == external_userid))
    ).first()
    return result


def add_kf_conversation(session: AsyncSession, conversation: KfConversation) -> KfConversation:
    session.add(conversation)
    return conversation


async def count_kf_reply_and_commit(session: AsyncSession, conversation: KfConversation) -> None:
    """Count one more answer in the conversation's 48 h window and commit."""
    conversation.replies_in_window += 1
    await session.commit()


async def latest_candidate_by_mobile(session: AsyncSession, *, mobile: str) -> Candidate | None:
    """The most recently created candidate with this mobile number."""
    stmt = select(Candidate).where(Candidate.mobile == mobile).order_by(col(Candidate.id).desc()).limit(1)
    result: Candidate | None = (await session.exec(stmt)).first()
    return result


async def latest_interview_of(session: AsyncSession, *, candidate_id: int | None) -> Interview | None:
    """The candidate's most recently created interview."""
    stmt = select(Interview).where(Interview.candidate_id == candidate_id).order_by(col(Interview.id).desc()).limit(1)
    result: Interview | None = (await session.exec(stmt)).first()
    return result
