"""Candidate reminders: rows with due times, sent once by sweeps driven by the FrozenClock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot import jobs
from bot.clock import FrozenClock
from bot.services.claims import CLAIM_FOR
from storage import repo
from tests.conftest import DEFAULT_SCHEDULED_AT, AppFactory, admin_headers, eventually, replica_alive
from tests.fakes.smtp import SmtpServer
from tests.sched import core_of, mail_text, notices, reminders, send_event, subjects

START = DEFAULT_SCHEDULED_AT


async def test_each_reminder_fires_once_at_its_time(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    clock.set(START - timedelta(hours=3))
    client = await make_client()
    core = core_of(client)
    core.staff_channels.add("wecom")  # the HR owner's chat is connected (its notice waits in the outbox)
    await send_event(client, clock, "interview.scheduled", at=START)
    rows = await reminders(core)
    assert {k: r.due_at for k, r in rows.items()} == {
        "guide": clock.now(),
        "before_1h": START - timedelta(hours=1),
        "at_start": START,
    }

    # The operation guide goes right away, once.
    assert await jobs.sweep_reminders(core) == 1
    assert await jobs.sweep_reminders(core) == 0

    clock.set(START - timedelta(hours=1, seconds=1))
    assert await jobs.sweep_reminders(core) == 0
    clock.advance(seconds=1)
    assert await jobs.sweep_reminders(core) == 1
    assert await jobs.sweep_reminders(core) == 0

    clock.set(START - timedelta(seconds=1))
    assert await jobs.sweep_reminders(core) == 0
    clock.set(START)
    assert await jobs.sweep_reminders(core) == 1

    # Started two minutes late: "30 minutes in" counts from the start, to candidate and HR.
    clock.advance(minutes=2)
    await send_event(client, clock, "interview.started", at=START)
    clock.advance(minutes=30, seconds=-1)
    assert await jobs.sweep_reminders(core) == 0
    clock.advance(seconds=1)
    assert await jobs.sweep_reminders(core) == 1
    clock.advance(hours=5)
    assert await jobs.sweep_reminders(core) == 0

    async def four_mails() -> bool:
        return len(smtp.messages) == 4

    await eventually(four_mails)
    assert subjects(smtp) == [
        "【测试科技】AI面试操作指引:Java后端工程师",
        f"【测试科技】AI面试将于 {START:%Y-%m-%d %H:%M} 开始",
        "【测试科技】面试即将开始",
        "【测试科技】您已进入面试30分钟",
    ]
    guide = mail_text(smtp, 0)
    assert "https://interview.example.com/j/iv-1" in guide
    assert "摄像头和麦克风" in guide and "网络" in guide and "求助" in guide
    assert "请提前10分钟进入面试页面,检查摄像头、麦克风是否正常" in mail_text(smtp, 1)
    assert "面试即将开始" in mail_text(smtp, 2)
    assert "已进入面试30分钟" in mail_text(smtp, 3)
    hr = await notices(core, kind="hr_after_30m")
    assert [(n.channel, n.recipient) for n in hr] == [("wecom", "hr01")]
    assert "张三(Java后端工程师)已进入面试30分钟" in hr[0].body
    assert {r.state for r in (await reminders(core)).values()} == {"sent"}


async def test_no_reminder_for_a_terminated_interview(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START - timedelta(hours=3))
    client = await make_client()
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", at=START)
    assert await jobs.sweep_reminders(core) == 1  # the guide

    resp = await client.post(
        "/api/interviews/iv-1/terminate", json={"reason": "流程调整", "operator": "lihua"}, headers=admin_headers()
    )
    assert resp.status == 200
    for when in (START - timedelta(hours=1), START, START + timedelta(hours=1)):
        clock.set(when)
        assert await jobs.sweep_reminders(core) == 0
    rows = await reminders(core)
    assert rows["before_1h"].state == rows["at_start"].state == "cancelled"
    assert rows["at_start"].note == "interview terminated"
    assert [n.kind for n in await notices(core)] == ["guide", "terminated"]


async def test_no_reminder_after_completion(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START - timedelta(minutes=5))
    client = await make_client()
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", at=START)
    assert await jobs.sweep_reminders(core) == 1  # the guide
    await send_event(client, clock, "interview.started", at=START)  # started early
    clock.advance(minutes=20)
    await send_event(client, clock, "interview.completed", at=START)
    clock.advance(hours=2)
    assert await jobs.sweep_reminders(core) == 0
    assert [n.kind for n in await notices(core)] == ["guide"]
    assert {k: r.state for k, r in (await reminders(core)).items()} == {
        "guide": "sent",
        "before_1h": "cancelled",
        "at_start": "cancelled",
        "after_30m": "cancelled",
    }


async def test_booked_less_than_an_hour_ahead_gets_only_what_is_ahead(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    clock.set(START - timedelta(minutes=30))
    client = await make_client()
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", at=START)
    rows = await reminders(core)
    assert rows["before_1h"].state == "cancelled"
    assert rows["at_start"].state == "pending"
    assert await jobs.sweep_reminders(core) == 1
    clock.set(START)
    assert await jobs.sweep_reminders(core) == 1
    assert [n.kind for n in await notices(core)] == ["guide", "at_start"]


async def test_platform_reschedule_moves_reminders(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START - timedelta(hours=3))
    client = await make_client()
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", at=START)
    assert await jobs.sweep_reminders(core) == 1
    later = START + timedelta(days=1)
    await send_event(client, clock, "interview.scheduled", at=later)  # the platform moved it

    clock.set(START + timedelta(minutes=1))
    assert await jobs.sweep_reminders(core) == 0  # nothing at the old times
    clock.set(later - timedelta(hours=1))
    assert await jobs.sweep_reminders(core) == 1
    clock.set(later)
    assert await jobs.sweep_reminders(core) == 1
    assert [n.kind for n in await notices(core)] == ["guide", "before_1h", "at_start"]  # guide not repeated


async def test_restart_loses_nothing(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START - timedelta(hours=3))
    client = await make_client()
    await send_event(client, clock, "interview.scheduled", at=START)
    await client.close()  # down before anything was sent

    clock.set(START + timedelta(minutes=10))  # back up after the start time
    client = await make_client()
    core = core_of(client)
    # Everything due while down goes out on the first sweep (the reminders are rows, not jobs).
    assert await jobs.sweep_reminders(core) == 3
    assert [n.kind for n in await notices(core)] == ["guide", "before_1h", "at_start"]


async def test_a_live_replicas_claim_waits_for_its_expiry_and_is_taken_over_once(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    clock.set(START - timedelta(minutes=30))
    client = await make_client()
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", at=START)
    guide = (await reminders(core))["guide"]
    assert guide.id is not None
    other = "replica-b:8080/bbbb"
    now = clock.now()
    await replica_alive(core.sessions, other, now=now, until=now + timedelta(hours=1))
    async with core.sessions() as session:  # another replica claims it and has not sent it yet
        assert await repo.claim_reminder_and_commit(
            session, reminder_id=guide.id, worker=other, now=now, until=now + CLAIM_FOR
        )
    assert await jobs.sweep_reminders(core) == 0  # its claim, while its replica lives
    clock.advance(seconds=CLAIM_FOR.total_seconds() + 1)  # a claim held too long is taken over
    assert await jobs.sweep_reminders(core) == 1
    assert await jobs.sweep_reminders(core) == 0
    assert [n.kind for n in await notices(core)] == ["guide"]


async def test_a_dead_replicas_claim_is_taken_over_at_once(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START - timedelta(minutes=30))
    client = await make_client()
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", at=START)
    guide = (await reminders(core))["guide"]
    assert guide.id is not None
    async with core.sessions() as session:  # a replica claims it and dies before sending: no lease
        now = clock.now()
        assert await repo.claim_reminder_and_commit(
            session, reminder_id=guide.id, worker="replica-c:8080/cccc", now=now, until=now + CLAIM_FOR
        )
    assert await jobs.sweep_reminders(core) == 1  # not two minutes later
    assert await jobs.sweep_reminders(core) == 0
    assert [n.kind for n in await notices(core)] == ["guide"]


async def test_concurrent_sweeps_send_once(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START - timedelta(hours=3))
    client = await make_client()
    core = core_of(client)
    for n in range(10):
        await send_event(client, clock, "interview.scheduled", f"iv-{n}", at=START, email=f"c{n}@example.com")
    clock.set(START)
    counts = await asyncio.gather(*(jobs.sweep_reminders(core) for _ in range(4)))
    assert sum(counts) == 30
    sent = await notices(core)
    assert len(sent) == 30
    assert len({n.dedupe_key for n in sent}) == 30
