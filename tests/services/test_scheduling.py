"""Rescheduling: moves the start and the reminders, reopens a terminated interview as a new attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot import jobs
from bot.clock import FrozenClock
from bot.services import scheduling
from bot.services.reports import exit_report
from storage import repo
from tests.conftest import DEFAULT_SCHEDULED_AT, AppFactory, admin_headers, eventually
from tests.fakes.smtp import SmtpServer
from tests.sched import core_of, interview, mail_text, notices, reminders, send_event, subjects

START = DEFAULT_SCHEDULED_AT
NEW = START + timedelta(days=1, hours=20, minutes=30)  # two days later at 10:30


async def test_reschedule_a_scheduled_interview(make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer) -> None:
    clock.set(START - timedelta(hours=3))
    client = await make_client()
    core = core_of(client)
    core.staff_channels.add("wecom")
    await send_event(client, clock, "interview.scheduled", at=START)
    assert await jobs.sweep_reminders(core) == 1

    result = await scheduling.reschedule(
        core, platform_id="iv-1", new_time=NEW, operator="wecom:lead", source="chat", chat="wecom:direct:lead"
    )
    assert not result.reopened and result.previous == START
    rows = await reminders(core)
    assert rows["before_1h"].due_at == NEW - timedelta(hours=1) and rows["at_start"].due_at == NEW

    clock.set(START)
    assert await jobs.sweep_reminders(core) == 0
    clock.set(NEW)
    assert await jobs.sweep_reminders(core) == 2  # before_1h and at_start, both at their new times

    async def mailed() -> bool:
        return len(smtp.messages) == 4

    await eventually(mailed)
    assert subjects(smtp)[1] == f"【测试科技】AI面试时间已调整为 {NEW:%Y-%m-%d %H:%M}"
    text = mail_text(smtp, 1)
    assert f"重新安排在 {NEW:%Y-%m-%d %H:%M}(原定 {START:%Y-%m-%d %H:%M})" in text
    assert "https://interview.example.com/j/iv-1" in text
    hr = await notices(core, kind="hr_rescheduled")
    assert [(n.recipient, n.body) for n in hr] == [
        (
            "hr01",
            f"张三(Java后端工程师)的AI面试已由 wecom:lead 重新安排在 {NEW:%Y-%m-%d %H:%M}。\n"  # lead is not registered
            "已安排通过邮件通知候选人;送达情况可用「查看 张三」查看。",
        )
    ]
    async with core.sessions() as session:
        events = await repo.audit_for_interview(session, interview_id=result.interview.id or 0)
    moved = next(e for e in events if e.action == "interview.rescheduled")
    assert moved.actor == "wecom:lead" and moved.chat == "wecom:direct:lead"
    assert moved.detail["to"] == NEW.isoformat() and moved.detail["source"] == "chat"


async def test_reschedule_reopens_a_terminated_interview(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START)
    client = await make_client(idle_timeout_seconds=600)
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", at=START)
    await send_event(client, clock, "interview.started", at=START)
    await send_event(client, clock, "interview.answer_saved", data={"question_no": 1})
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "网络卡顿"}, headers=admin_headers())
    assert resp.status == 200

    result = await scheduling.reschedule(core, platform_id="iv-1", new_time=NEW, operator="wecom:hr01", source="chat")
    assert result.reopened
    iv = await interview(core)
    assert (iv.status, iv.attempt, iv.scheduled_at, iv.started_at, iv.ended_at) == ("scheduled", 2, NEW, None, None)
    assert iv.answered_count == 1  # answers kept
    assert result.candidate.pipeline_status == "待面试"
    # No platform connected: nobody saved the answer, so the candidate is not told it was kept.
    assert "作答已保存" not in result.notice.body
    async with core.sessions() as session:
        assert all(t.done for t in await repo.todos_for_interview(session, interview_id=iv.id or 0))
    assert await notices(core, kind="hr_rescheduled") == []  # the HR owner did it

    # The new attempt runs and times out: a second exit, counted separately.
    clock.set(NEW)
    await send_event(client, clock, "interview.started", at=NEW)
    clock.advance(seconds=601)
    assert await jobs.sweep_idle(core) == 1
    async with core.sessions() as session:
        latest = await repo.get_exit(session, interview_id=iv.id or 0)
    assert latest is not None and (latest.attempt, latest.reason) == (2, "超时未操作")
    report = await exit_report(core, start=START.date(), end=NEW.date())
    assert report.total == 2 and report.by_reason["系统故障"] == 1 and report.by_reason["超时未操作"] == 1
    assert len(await notices(core, kind="terminated")) == 2  # one per attempt


async def test_reschedule_refusals(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(START)
    client = await make_client()
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", "iv-run", at=START)
    await send_event(client, clock, "interview.started", "iv-run", at=START)
    await send_event(client, clock, "interview.scheduled", "iv-done", at=START)
    await send_event(client, clock, "interview.started", "iv-done", at=START)
    await send_event(client, clock, "interview.completed", "iv-done", at=START)
    cases = [
        ("iv-run", NEW, scheduling.NotReschedulable, "请先终止面试"),
        ("iv-done", NEW, scheduling.NotReschedulable, "已完成"),
        ("iv-none", NEW, scheduling.InterviewNotFound, "找不到面试"),
        ("iv-run", START - timedelta(hours=1), scheduling.BadTime, "必须晚于现在"),
    ]
    for platform_id, when, error, message in cases:
        with pytest.raises(error) as info:
            await scheduling.reschedule(core, platform_id=platform_id, new_time=when, operator="x", source="chat")
        assert message in info.value.message
    assert (await interview(core, "iv-run")).scheduled_at == START
