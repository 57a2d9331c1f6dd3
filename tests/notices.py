"""Notices as the database holds them: the one termination notice and its attempts, waiting for its
status, and a dead notice made by hand for the console's retry."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlmodel import col, select

from bot.keys import CORE
from bot.services.context import Core
from storage.models import Notice, NoticeAttempt, NoticeStatus
from tests.conftest import eventually


async def the_notice(app: web.Application) -> Notice:
    """The single ``terminated`` notice."""
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(Notice).where(Notice.kind == "terminated"))).all()
    assert len(rows) == 1
    return rows[0]


async def attempts(app: web.Application) -> list[NoticeAttempt]:
    async with app[CORE].sessions() as session:
        return list((await session.exec(select(NoticeAttempt).order_by(col(NoticeAttempt.id)))).all())


async def wait_status(app: web.Application, status: str) -> Notice:
    """The single ``terminated`` notice once it has reached ``status``."""

    async def reached() -> bool:
        return (await the_notice(app)).status == status

    await eventually(reached)
    return await the_notice(app)


async def dead_notice(
    core: Core, *, result: str = "rejected", status: str = NoticeStatus.dead.value, due_in: timedelta = timedelta(0)
) -> Notice:
    """An email notice that failed three times (one attempt recorded), as the outbox leaves it."""
    now = core.clock.now()
    async with core.sessions() as session:
        notice = Notice(
            kind="terminated",
            channel="email",
            recipient="a@example.com",
            body="x",
            status=status,
            attempts=3,
            next_attempt_at=now + due_in,
            created_at=now,
            last_error="SMTP 550",
        )
        session.add(notice)
        await session.flush()
        assert notice.id is not None
        session.add(
            NoticeAttempt(
                notice_id=notice.id,
                channel="email",
                seq=1,
                recipient="a@example.com",
                idem_key="k",
                result=result,
                error="SMTP 550",
                started_at=now,
                finished_at=now,
            )
        )
        await session.commit()
        await session.refresh(notice)
        return notice
