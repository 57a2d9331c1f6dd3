"""Interviews shared with an HR who does not own them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InterviewShare


async def share_interview_and_commit(
    session: AsyncSession, *, interview_id: int, person_key: str, shared_by: str, now: datetime
) -> bool:
    """Share once and commit; False if it was shared with that person already."""
    session.add(InterviewShare(interview_id=interview_id, person_key=person_key, shared_by=shared_by, created_at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True
