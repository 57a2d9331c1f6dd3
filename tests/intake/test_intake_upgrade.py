"""Upgrading a database whose chat messages still wait in the outbox (before migration 0021): every
open message becomes an intake item, processed after the upgrade, and nothing is lost or doubled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlmodel import col, select

from storage.db import alembic_config, create_engine, migrate, session_maker
from storage.models import IntakeItem, Notice, NoticeAttempt

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MSG = {"platform": "wecom", "sender_id": "hr01", "chat_id": "hr01", "chat_type": "direct", "text": "帮助"}


def work_row(key: str, status: str, *, attempts: int = 0, error: str | None = None) -> Notice:
    """An inbound work row as the outbox intake stored it."""
    return Notice(
        kind="inbound",
        channel="wecom_inbox",
        recipient="hr01",
        body="帮助",
        payload={"audience": "internal", "source": "app", "msg": {**MSG, "msg_id": key}, "card": {}},
        destination="wecom_inbox",
        dedupe_key=f"inbound:{key}",
        status=status,
        attempts=attempts,
        last_error=error,
        next_attempt_at=AT,
        created_at=AT,
    )


def test_open_chat_work_rows_move_into_the_intake(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    command.upgrade(alembic_config(url), "0020")

    async def seed() -> None:
        engine = create_engine(url)
        async with session_maker(engine)() as session:
            rows = [
                work_row("wecom:msg:1", "pending"),  # stored, not processed yet
                work_row("wecom:msg:2", "sending", attempts=1, error="KeyError: x"),  # being retried
                work_row("dingtalk:d-3", "sent", attempts=1),  # processed
                work_row("feishu:msg:om_4", "dead", attempts=4, error="RuntimeError: boom"),  # given up on
            ]
            rows[2].payload = {"audience": "internal", "callback": {"msgId": "d-3"}}
            reply = Notice(
                kind="reply",
                channel="wecom",
                recipient="hr01",
                body="可用命令",
                destination="wecom:user:hr01",
                dedupe_key="reply:wecom:msg:0:0",
                next_attempt_at=AT,
                created_at=AT,
            )
            session.add_all([*rows, reply])
            await session.commit()
            session.add(NoticeAttempt(notice_id=rows[1].id or 0, channel="wecom_inbox", idem_key="x", started_at=AT))
            await session.commit()
        await engine.dispose()

    async def read() -> tuple[list[IntakeItem], list[Notice]]:
        engine = create_engine(url)
        async with session_maker(engine)() as session:
            items = list((await session.exec(select(IntakeItem).order_by(col(IntakeItem.id)))).all())
            notices = list((await session.exec(select(Notice))).all())
        await engine.dispose()
        return items, notices

    asyncio.run(seed())
    migrate(url)
    items, notices = asyncio.run(read())
    assert [(i.source, i.key, i.order_key, i.status, i.attempts, i.last_error) for i in items] == [
        ("wecom", "msg:1", "hr01", "received", 0, None),
        ("wecom", "msg:2", "hr01", "received", 1, "KeyError: x"),
        ("feishu", "msg:om_4", "hr01", "failed", 4, "RuntimeError: boom"),
    ]
    assert all(i.claimed_by is None and i.claimed_until is None for i in items)  # due at once
    assert items[0].payload == {"source": "app", "msg": {**MSG, "msg_id": "wecom:msg:1"}, "card": {}}
    assert [n.kind for n in notices] == ["reply"]  # the outbox keeps only messages we send
