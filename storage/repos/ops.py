"""What an operator's metrics read from the database: outbox backlog and dead rows."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Notice, NoticeStatus

WAITING = (NoticeStatus.pending.value, NoticeStatus.sending.value)


@dataclass
class OutboxCounts:
    inbound_pending: int = 0  # received chat messages not processed yet (pending or being processed)
    pending_by_channel: dict[str, int] = field(default_factory=dict)  # other rows waiting, by channel
    dead: int = 0  # rows of any kind given up on


async def outbox_counts(session: AsyncSession, *, inbound_kind: str) -> OutboxCounts:
    """One grouped query over the rows that are waiting or dead."""
    is_inbound = col(Notice.kind) == inbound_kind
    stmt = (
        select(Notice.status, is_inbound, Notice.channel, func.count())
        .where(col(Notice.status).in_([*WAITING, NoticeStatus.dead.value]))
        .group_by(col(Notice.status), is_inbound, col(Notice.channel))
    )
    counts = OutboxCounts()
    for status, inbound, channel, n in (await session.exec(stmt)).all():
        if status == NoticeStatus.dead.value:
            counts.dead += n
        elif inbound:
            counts.inbound_pending += n
        else:
            counts.pending_by_channel[channel] = counts.pending_by_channel.get(channel, 0) + n
    return counts
