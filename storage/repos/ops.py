"""What an operator's metrics read from the database: outbox backlog and dead rows (the intake's
items are counted by ``storage.repos.intake.intake_counts``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Notice, NoticeStatus

WAITING = (NoticeStatus.pending.value, NoticeStatus.sending.value)


@dataclass
class OutboxCounts:
    pending_by_channel: dict[str, int] = field(default_factory=dict)  # rows waiting or being sent, by channel
    dead: int = 0  # rows given up on


async def outbox_counts(session: AsyncSession) -> OutboxCounts:
    """One grouped query over the rows that are waiting or dead."""
    stmt = (
        select(Notice.status, Notice.channel, func.count())
        .where(col(Notice.status).in_([*WAITING, NoticeStatus.dead.value]))
        .group_by(col(Notice.status), col(Notice.channel))
    )
    counts = OutboxCounts()
    for status, channel, n in (await session.exec(stmt)).all():
        if status == NoticeStatus.dead.value:
            counts.dead += n
        else:
            counts.pending_by_channel[channel] = counts.pending_by_channel.get(channel, 0) + n
    return counts
