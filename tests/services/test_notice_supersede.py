"""A newer candidate notice replaces pending ones it outdates: the candidate hears the latest once."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services.reminders import sweep_reminders
from storage import repo
from storage.models import AuditEvent, Notice
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, event, eventually, post_event
from tests.fakes.smtp import SmtpServer, free_port

TZ = ZoneInfo("Asia/Shanghai")


def day_at(clock: FrozenClock, days: int, hour: int, minute: int) -> datetime:
    today = clock.now().astimezone(TZ).date()
    return datetime.combine(today + timedelta(days=days), time(hour, minute), TZ)


def typed(when: datetime) -> str:
    return f"{when.year}年{when.month}月{when.day}日 {when:%H:%M}"


def day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d")


async def candidate_notices(app: web.Application) -> list[Notice]:
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(Notice).order_by(col(Notice.id)))).all()
    return [n for n in rows if n.payload.get("audience") == "candidate"]


async def outbox_idle(app: web.Application, *, taken: int | None = None) -> None:
    """Wait until the outbox has tried every pending notice once (SMTP is down: each backs off
    until the frozen clock moves), so nothing is mid-send when the test acts."""

    async def idle() -> bool:
        rows = await candidate_notices(app)
        mine = [n for n in rows if n.id != taken]  # ``taken``: being sent by another worker
        return all(n.status != "sending" and (n.status != "pending" or n.attempts >= 1) for n in mine)

    await eventually(idle)


async def schedule(client: TestClient, clock: FrozenClock, at: datetime) -> None:
    payload: dict[str, Any] = event("interview.scheduled", occurred_at=clock.now())
    payload["interview"]["scheduled_at"] = at.isoformat()
    resp = await post_event(client, clock, payload)
    assert resp.status == 200, await resp.text()


async def reschedule(hr: ChatUser, when: datetime) -> str:
    [reply] = await hr.say(f"重新安排 张三 {typed(when)}")
    if reply.kind == "confirm":  # when 重新安排 asks before it notifies the candidate
        [reply] = await hr.say("确认")
    return reply.text


async def test_six_reschedules_send_one_notice_with_the_latest_time(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    port = free_port()  # SMTP is down while HR reschedules: every notice waits in the outbox
    client = await make_client(smtp_port=port)
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    first = day_at(clock, 2, 9, 0)
    await schedule(client, clock, first)
    assert await sweep_reminders(app[CORE]) == 1  # the operation guide, due at once
    await outbox_idle(app)
    hr = ChatUser(app, "hr01")
    times = [day_at(clock, 3 + k, 10, k) for k in range(6)]
    for when in times:
        assert day(when) in await reschedule(hr, when)
        await outbox_idle(app)

    rows = await candidate_notices(app)
    assert sorted((n.kind, n.status) for n in rows) == sorted(
        [("guide", "pending"), ("rescheduled", "pending")] + [("rescheduled", "superseded")] * 5
    )
    async with app[CORE].sessions() as session:
        audits = (await session.exec(select(AuditEvent).where(AuditEvent.action == "notice.superseded"))).all()
    assert len(audits) == 5
    shown = await hr.says("查看 张三")
    assert "另有 5 条未发出的旧通知已被更新的通知取代" in shown
    await client.close()

    smtp = SmtpServer(port=port)  # SMTP is back; the service starts again
    smtp.start()
    try:
        clock.advance(minutes=5)
        client = await make_client(smtp_port=port)
        app = client.server.app
        assert app is not None

        async def delivered() -> bool:
            rows = await candidate_notices(app)
            return all(n.status in ("sent", "superseded") for n in rows) and len(smtp.messages) == 2

        await eventually(delivered)
        by_subject = {str(m["Subject"]): m.get_body(("plain",)).get_content() for m in smtp.messages}  # type: ignore[union-attr]
        [moved] = [body for subject, body in by_subject.items() if "时间已调整" in subject]
        [guide] = [body for subject, body in by_subject.items() if "操作指引" in subject]
        latest = times[-1]
        assert f"已重新安排在 {day(latest)}" in moved and latest.strftime("%H:%M") in moved
        assert f"原定 {day(first)}" in moved  # the time the candidate knew, not one never sent
        assert f"已安排在 {day(latest)}" in guide  # the unsent guide now speaks of the latest time
        for stale in times[:-1]:
            assert day(stale) not in moved and day(stale) not in guide
        detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
        assert [n["status"] for n in detail["notices"] if n["kind"] == "rescheduled"].count("sent") == 1
    finally:
        await client.close()
        smtp.stop()


async def test_termination_supersedes_pending_notices_but_never_one_being_sent(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client(smtp_port=free_port())  # SMTP down
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    start = clock.now() + timedelta(hours=1)
    await schedule(client, clock, start)
    assert await sweep_reminders(app[CORE]) == 2  # the guide, and the reminder an hour before
    await outbox_idle(app)
    hr = ChatUser(app, "hr01")
    first = day_at(clock, 3, 10, 0)
    await reschedule(hr, first)
    await outbox_idle(app)
    kinds = {(n.kind, n.status) for n in await candidate_notices(app)}
    assert kinds == {("guide", "pending"), ("before_1h", "superseded"), ("rescheduled", "pending")}

    # Another replica's worker has just taken the rescheduled notice and is sending it.
    [sending] = [n for n in await candidate_notices(app) if n.kind == "rescheduled"]
    assert sending.id is not None
    async with app[CORE].sessions() as session:
        lock = sending.next_attempt_at + timedelta(minutes=10)
        assert await repo.claim_notice_and_commit(
            session, notice_id=sending.id, now=sending.next_attempt_at, lock_until=lock
        )
    second = day_at(clock, 4, 11, 30)
    await reschedule(hr, second)
    rows = {n.id: n for n in await candidate_notices(app)}
    assert rows[sending.id].status == "sending"  # it goes out as it is: not cancelled mid-send
    [newer] = [n for n in rows.values() if n.kind == "rescheduled" and n.id != sending.id]
    assert f"原定 {day(first)}" in newer.body  # the candidate will have heard of the first new time

    await outbox_idle(app, taken=sending.id)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "流程调整"}, headers=admin_headers())
    assert resp.status == 200
    rows = {n.id: n for n in await candidate_notices(app)}
    assert rows[sending.id].status == "sending"
    assert rows[newer.id].status == "superseded"
    # The guide can no longer help: cancelled with the interview's end (the reminder for the
    # first time was superseded by the new time already).
    # The exit notice is queued: the outbox may be trying it right now (SMTP is down), so it is
    # pending or sending, never superseded.
    others = {
        (n.kind, n.status.replace("sending", "pending")) for n in rows.values() if n.id not in (sending.id, newer.id)
    }
    assert others == {("guide", "cancelled"), ("before_1h", "superseded"), ("terminated", "pending")}
