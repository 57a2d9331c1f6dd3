"""Outbox delivery: retries with backoff, the dead state, and restarts that lose nothing."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE, OUTBOX
from storage.models import AuditEvent, Notice
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.smtp import SmtpServer, free_port


async def notices(app: web.Application) -> list[Notice]:
    async with app[CORE].sessions() as session:
        return list((await session.exec(select(Notice))).all())


async def test_restart_with_undelivered_notice_delivers_it(
    make_client: AppFactory, clock: FrozenClock, aiohttp_client: Any
) -> None:
    dead_port = free_port()  # nothing listens here: SMTP is "down"
    client = await make_client(smtp_port=dead_port)
    await started_interview(client, clock)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200
    app = client.server.app
    assert app is not None

    async def failed_once() -> bool:
        rows = await notices(app)
        return rows[0].attempts >= 1

    await eventually(failed_once)
    rows = await notices(app)
    assert rows[0].status == "pending"
    assert "SMTP" in (rows[0].last_error or "")
    assert rows[0].next_attempt_at > clock.now()  # backed off, not hammering
    await client.close()  # the service stops with the notice undelivered

    # The SMTP server comes back on that port; a new process starts later.
    smtp = SmtpServer(port=dead_port)
    smtp.start()
    try:
        clock.advance(minutes=5)
        client2 = await make_client(smtp_port=dead_port)

        async def delivered() -> bool:
            return len(smtp.messages) == 1

        await eventually(delivered)
        app2 = client2.server.app
        assert app2 is not None

        async def sent() -> bool:
            return (await notices(app2))[0].status == "sent"

        await eventually(sent)
        assert smtp.messages[0]["To"] == "zhangsan@example.com"
    finally:
        smtp.stop()


async def test_backoff_then_dead_with_audit_and_todo(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(smtp_port=free_port(), outbox_max_attempts=3)
    await started_interview(client, clock)
    await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    app = client.server.app
    assert app is not None
    delays = []
    for attempt in (1, 2, 3):

        async def attempted(n: int = attempt) -> bool:
            return (await notices(app))[0].attempts >= n

        app[OUTBOX].wake()
        await eventually(attempted)
        row = (await notices(app))[0]
        if attempt < 3:
            delays.append((row.next_attempt_at - clock.now()).total_seconds())
            clock.advance(hours=2)
    row = (await notices(app))[0]
    assert row.status == "dead"
    assert row.attempts == 3
    # Exponential: the second delay's range starts where the first one's ends.
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0

    async with app[CORE].sessions() as session:
        audit = (await session.exec(select(AuditEvent).where(AuditEvent.action == "notice.dead"))).all()
    assert len(audit) == 1
    resp = await client.get("/api/notices?status=dead", headers=admin_headers())
    assert [n["id"] for n in (await resp.json())["notices"]] == [row.id]
    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert "联系候选人张三:通知未送达" in [t["title"] for t in detail["todos"]]


async def test_refused_recipient_is_dead_at_once(make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer) -> None:
    smtp.inbox.refuse = 550
    client = await make_client()
    await started_interview(client, clock)
    await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    app = client.server.app
    assert app is not None

    async def dead() -> bool:
        return (await notices(app))[0].status == "dead"

    await eventually(dead)
    assert (await notices(app))[0].attempts == 1
    assert smtp.messages == []


async def test_two_workers_never_send_one_notice_twice(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    import asyncio

    client = await make_client(outbox_poll_seconds=3600)
    await started_interview(client, clock)
    app = client.server.app
    assert app is not None
    outbox = app[OUTBOX]
    await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    results = await asyncio.gather(*(outbox.run_once() for _ in range(5)))
    await eventually(lambda: _true_when(len(smtp.messages) >= 1))
    assert sum(results) <= 1
    assert len(smtp.messages) == 1


async def _true_when(value: bool) -> bool:
    return value
