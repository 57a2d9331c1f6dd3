"""Inactivity timeouts: ended by the one termination procedure, cancelled by activity, warned first."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from bot import jobs
from bot.clock import FrozenClock
from storage import repo
from tests.conftest import AppFactory, eventually
from tests.fakes.platform import FakePlatform
from tests.fakes.smtp import SmtpServer
from tests.sched import core_of, interview, mail_text, notices, send_event, subjects


async def start(client: TestClient, clock: FrozenClock, interview_id: str = "iv-1") -> None:
    await send_event(client, clock, "interview.scheduled", interview_id)
    await send_event(client, clock, "interview.started", interview_id)
    await send_event(client, clock, "interview.answer_saved", interview_id, data={"question_no": 1})


async def test_idle_interview_is_terminated_with_the_timeout_reason(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    client = await make_client(idle_timeout_seconds=600)
    core = core_of(client)
    await start(client, clock)
    clock.advance(seconds=599)
    assert await jobs.sweep_idle(core) == 0
    clock.advance(seconds=2)
    assert await jobs.sweep_idle(core) == 1
    assert await jobs.sweep_idle(core) == 0

    iv = await interview(core)
    assert iv.status == "terminated" and iv.id is not None
    async with core.sessions() as session:
        record = await repo.get_exit(session, interview_id=iv.id)
        todos = await repo.todos_for_interview(session, interview_id=iv.id)
        candidate = await repo.get_candidate(session, candidate_id=iv.candidate_id)
    assert record is not None
    assert (record.reason, record.operator, record.source) == ("超时未操作", "system", "timeout")
    assert [a["question_no"] for a in record.progress_snapshot["answered"]] == [1]  # progress saved
    assert candidate is not None and candidate.pipeline_status == "未完成"
    assert [(t.assignee, t.title) for t in todos] == [("wecom:hr01", "跟进候选人张三的面试")]

    async def mailed() -> bool:
        return "【测试科技】您的AI面试已终止" in subjects(smtp)

    await eventually(mailed)
    text = mail_text(smtp, subjects(smtp).index("【测试科技】您的AI面试已终止"))
    assert "由于长时间未操作,您的AI面试已超时终止。" in text
    assert "请联系HR" not in text and "妥善保存" not in text  # no platform saved the answer here


async def test_activity_and_answers_push_the_timeout_back(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(idle_timeout_seconds=600)
    core = core_of(client)
    await start(client, clock)
    clock.advance(seconds=500)
    await send_event(client, clock, "interview.activity")
    clock.advance(seconds=500)
    assert await jobs.sweep_idle(core) == 0
    await send_event(client, clock, "interview.answer_saved", data={"question_no": 2})
    clock.advance(seconds=599)
    assert await jobs.sweep_idle(core) == 0
    assert (await interview(core)).status == "in_progress"
    clock.advance(seconds=2)
    assert await jobs.sweep_idle(core) == 1


async def test_only_in_progress_interviews_time_out(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(idle_timeout_seconds=600)
    core = core_of(client)
    await send_event(client, clock, "interview.scheduled", "iv-waiting")
    await start(client, clock, "iv-done")
    await send_event(client, clock, "interview.completed", "iv-done")
    clock.advance(hours=3)
    assert await jobs.sweep_idle(core) == 0
    assert (await interview(core, "iv-waiting")).status == "scheduled"
    assert (await interview(core, "iv-done")).status == "completed"


async def test_timeouts_can_be_switched_off(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(idle_timeout_seconds=0)
    core = core_of(client)
    await start(client, clock)
    clock.advance(hours=3)
    assert await jobs.sweep_idle(core) == 0


async def test_warning_once_per_idle_stretch_then_termination(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(idle_timeout_seconds=600, idle_warning_fraction=0.5)
    core = core_of(client)
    await start(client, clock)
    clock.advance(seconds=299)
    await jobs.sweep_idle(core)
    assert await notices(core, kind="idle_warning") == []
    clock.advance(seconds=2)
    await jobs.sweep_idle(core)
    await jobs.sweep_idle(core)
    warnings = await notices(core, kind="idle_warning")
    assert len(warnings) == 1
    assert "已有 5 分钟没有操作" in warnings[0].body and "5 分钟内仍无操作" in warnings[0].body

    # Activity starts a new stretch: a new warning later, and no termination yet.
    await send_event(client, clock, "interview.activity")
    clock.advance(seconds=301)
    assert await jobs.sweep_idle(core) == 0
    assert len(await notices(core, kind="idle_warning")) == 2
    clock.advance(seconds=300)
    assert await jobs.sweep_idle(core) == 1
    assert len(await notices(core, kind="idle_warning")) == 2


async def test_platform_failure_leaves_it_running_and_the_next_sweep_retries(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(idle_timeout_seconds=600, platform_api_base=str(fake_platform.server.make_url("")))
    core = core_of(client)
    await start(client, clock)
    clock.advance(seconds=601)
    fake_platform.terminate_status = 400
    assert await jobs.sweep_idle(core) == 0
    assert (await interview(core)).status == "in_progress"
    fake_platform.terminate_status = 200
    assert await jobs.sweep_idle(core) == 1
    assert fake_platform.actions() == ["save", "terminate", "save", "terminate"]
    assert fake_platform.calls[-1][2] == {"reason_code": "idle_timeout", "reason": "超时未操作", "operator": "system"}


async def test_idle_timeout_finds_its_reason_by_code_after_an_admin_renames_it(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client(idle_timeout_seconds=600)
    core = core_of(client)
    async with core.sessions() as session:
        reason = next(r for r in await repo.list_reasons(session) if r.code == "idle_timeout")
        reason.name, reason.synonyms = "候选人长时间无响应", []
        await session.commit()
    await start(client, clock)
    clock.advance(seconds=601)
    assert await jobs.sweep_idle(core) == 1

    iv = await interview(core)
    assert iv.status == "terminated" and iv.id is not None
    async with core.sessions() as session:
        record = await repo.get_exit(session, interview_id=iv.id)
    assert record is not None
    assert (record.reason_code, record.reason, record.source) == ("idle_timeout", "候选人长时间无响应", "timeout")
