"""The append-only audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEvent


def audit(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    interview_id: int | None = None,
    chat: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(at=at, actor=actor, action=action, interview_id=interview_id, chat=chat, detail=detail or {})
    session.add(event)
    return event


async def audit_for_interview(session: AsyncSession, *, interview_id: int, limit: int = 20) -> Sequence[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.interview_id == interview_id)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
    )
    return (await session.exec(stmt)).all()
