"""Candidates' 求助: HR prompt, 确认终止 / 协助继续, reminder and escalation, and the three policies."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services.help_requests import sweep_help_requests
from storage.models import AuditEvent, Notice, PendingAction
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, event, eventually, post_event, started_interview
from tests.fakes.platform import FakePlatform
from tests.interviews import ask_help, interview_detail


async def setup(make_client: AppFactory, clock: FrozenClock, **settings: object) -> tuple[TestClient, web.Application]:
    client = await make_client(**settings)
    app = client.server.app
    assert app is not None
    app[CORE].staff_channels.add("wecom")  # as when the WeCom app is configured: staff prompts become notices
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    await add_person(app, "boss", "陈经理", "manager")
    return client, app


async def staff_notices(app: web.Application, kind: str) -> list[Notice]:
    async with app[CORE].sessions() as session:
        return list((await session.exec(select(Notice).where(Notice.kind == kind))).all())


async def test_hr_confirms_candidate_exit(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await ask_help(client, clock)
    [prompt] = await staff_notices(app, "help_requested")
    assert prompt.recipient == "hr01"
    assert "希望结束面试" in prompt.body and "网络卡顿" in prompt.body
    assert [b[0] for b in prompt.payload["reply"]["buttons"]] == ["确认终止", "协助继续", "重新安排"]
    assert (await interview_detail(client))["status"] == "in_progress"

    hr = ChatUser(app, "hr01")
    assert "已按候选人请求终止 张三 的面试,原因:系统故障" in await hr.says("确认终止")
    body = await interview_detail(client)
    assert body["status"] == "terminated"
    assert body["exit"]["source"] == "candidate_request"
    assert body["exit"]["operator"] == "wecom:hr01"
    assert "没有等待你处理的候选人求助" in await hr.says("确认终止")


async def test_hr_assists_and_interview_continues(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await ask_help(client, clock, reason="不会操作", wants_exit=False)
    hr = ChatUser(app, "hr01")
    assert "协助其继续面试" in await hr.says("协助继续")
    assert (await interview_detail(client))["status"] == "in_progress"
    async with app[CORE].sessions() as session:
        assist = (await session.exec(select(AuditEvent).where(AuditEvent.action == "help.assist"))).all()
    assert [a.actor for a in assist] == ["wecom:hr01"]
    # Answered: no reminder later.
    clock.advance(minutes=11)
    await sweep_help_requests(app[CORE])
    assert await staff_notices(app, "help_reminder") == []


async def test_unanswered_request_reminds_once_then_goes_to_managers(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    await ask_help(client, clock)
    core = app[CORE]
    clock.advance(minutes=9)
    await sweep_help_requests(core)
    assert await staff_notices(app, "help_reminder") == []

    clock.advance(minutes=2)
    await sweep_help_requests(core)
    await sweep_help_requests(core)  # twice: still one reminder
    reminders = await staff_notices(app, "help_reminder")
    assert [(n.recipient, "已等待 11 分钟" in n.body) for n in reminders] == [("hr01", True)]

    clock.advance(minutes=10)
    await sweep_help_requests(core)
    await sweep_help_requests(core)
    prompts = await staff_notices(app, "help_requested")
    assert sorted(n.recipient for n in prompts) == ["boss", "hr01"]
    boss_prompt = next(n for n in prompts if n.recipient == "boss")
    assert "已转给经理" in boss_prompt.body

    # The manager answers; the HR owner is then told it was handled.
    boss = ChatUser(app, "boss")
    assert "已按候选人请求终止" in await boss.says("确认终止")
    assert "没有等待你处理的候选人求助" in await ChatUser(app, "hr01").says("确认终止")
    async with core.sessions() as session:
        still_open = (
            await session.exec(
                select(PendingAction).where(PendingAction.action == "help_request", PendingAction.state == "open")
            )
        ).all()
    assert still_open == []


async def test_self_policy_ends_at_once_and_retries_when_platform_fails(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client, app = await setup(
        make_client,
        clock,
        candidate_exit_policy="self",
        platform_api_base=str(fake_platform.server.make_url("")),
    )
    fake_platform.save_status = 503
    await ask_help(client, clock, reason="不想面了")

    async def released() -> bool:  # tried, failed, and handed back for the sweep to retry
        async with app[CORE].sessions() as session:
            row = (await session.exec(select(PendingAction).where(PendingAction.action == "candidate_exit"))).one()
        return fake_platform.actions().count("save") >= 3 and row.state == "open"

    await eventually(released)
    assert (await interview_detail(client))["status"] == "in_progress"  # save failed: not terminated

    fake_platform.save_status = 200
    await sweep_help_requests(app[CORE])
    body = await interview_detail(client)
    assert body["status"] == "terminated"
    assert body["exit"]["reason"] == "候选人放弃"
    assert body["exit"]["operator"] == "candidate"
    assert body["exit"]["source"] == "candidate_request"
    assert await staff_notices(app, "help_requested") == []  # HR not asked, only told of the exit


async def test_deny_policy_tells_candidate_to_contact_hr(
    make_client: AppFactory, clock: FrozenClock, smtp: object
) -> None:
    client, app = await setup(make_client, clock, candidate_exit_policy="deny")
    await ask_help(client, clock)
    body = await interview_detail(client)
    assert body["status"] == "in_progress"
    kinds = [n["kind"] for n in body["notices"]]
    assert "help_contact_hr" in kinds
    contact = next(n for n in body["notices"] if n["kind"] == "help_contact_hr")
    assert "结束面试需要HR确认" in contact["body"]
    assert "如有任何疑问,欢迎联系您的负责HR 王小姐。" in contact["body"]
    assert len(await staff_notices(app, "help_requested")) == 1


async def test_candidate_words_name_the_reason_and_are_kept(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await ask_help(client, clock, reason="摄像头打不开,想先退出")
    hr = ChatUser(app, "hr01")
    assert "已按候选人请求终止 张三 的面试,原因:系统故障" in await hr.says("确认终止")
    body = await interview_detail(client)
    assert (body["exit"]["reason_code"], body["exit"]["detail"]) == ("system_failure", "摄像头打不开,想先退出")
    assert body["candidate"]["pipeline_status"] == "需要重新面试"
    # The operator is the HR owner: one message (the reply), no separate HR notice; 查看 shows the words.
    assert await staff_notices(app, "hr_terminated") == []
    shown = await hr.says("查看 张三")
    assert "退出:系统故障" in shown and "说明:摄像头打不开,想先退出" in shown


async def test_unmatched_candidate_words_make_hr_pick_a_reason(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await ask_help(client, clock, reason="家里来客人了")
    hr = ChatUser(app, "hr01")
    listed = await hr.says("确认终止")
    assert "候选人说「家里来客人了」,对应不到已有原因。请选择终止原因" in listed
    assert "1. 候选人放弃" in listed and "6. 其他" in listed
    assert (await interview_detail(client))["status"] == "in_progress"  # nothing ended on a guess

    # 取消 drops the pick, not the candidate's request: it is still there to answer.
    assert "已取消" in await hr.says("取消")
    assert (await interview_detail(client))["status"] == "in_progress"
    await hr.says("确认终止")
    assert "没有这个原因" in await hr.says("9")
    assert "已按候选人请求终止 张三 的面试,原因:候选人放弃" in await hr.says("1")
    body = await interview_detail(client)
    assert (body["exit"]["reason"], body["exit"]["detail"]) == ("候选人放弃", "家里来客人了")
    assert body["exit"]["source"] == "candidate_request" and body["exit"]["operator"] == "wecom:hr01"
    assert "没有等待你处理的候选人求助" in await hr.says("确认终止")


async def test_self_policy_records_other_with_the_words_when_nothing_fits(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, _ = await setup(make_client, clock, candidate_exit_policy="self")
    await ask_help(client, clock, reason="家里来客人了")

    async def ended() -> bool:
        return (await interview_detail(client))["status"] == "terminated"

    await eventually(ended)
    body = await interview_detail(client)
    assert (body["exit"]["reason"], body["exit"]["detail"]) == ("其他", "家里来客人了")
    assert body["exit"]["operator"] == "candidate"
    assert body["candidate"]["pipeline_status"] == "需要重新面试"


async def test_a_request_for_an_interview_without_hr_owner_goes_to_the_managers_at_once(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    app[CORE].staff_channels.add("wecom")
    await started_interview(client, clock, hr=None)  # the platform named no HR owner
    await add_person(app, "boss", "陈经理", "manager")
    payload = event(
        "interview.help_requested", data={"reason": "网络卡顿", "wants_exit": True}, occurred_at=clock.now(), hr=None
    )
    assert (await post_event(client, clock, payload)).status == 200
    prompts = await staff_notices(app, "help_requested")
    assert [n.recipient for n in prompts] == ["boss"]  # nobody waits for a reminder that cannot come
    assert "确认终止" in prompts[0].body
    assert "已按候选人请求终止" in await ChatUser(app, "boss").says("确认终止")
    assert (await interview_detail(client))["status"] == "terminated"


async def interview_status(client: TestClient, platform_id: str) -> str:
    body = await (await client.get(f"/api/interviews/{platform_id}", headers=admin_headers())).json()
    return str(body["status"])


async def test_several_open_requests_are_listed_and_the_hr_picks_one(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock, "iv-2", name="李四", mobile="13900002222", email="lisi@example.com")
    await ask_help(client, clock, reason="网络卡顿")
    payload = event(
        "interview.help_requested",
        "iv-2",
        name="李四",
        mobile="13900002222",
        email="lisi@example.com",
        data={"reason": "不想面了", "wants_exit": True},
        occurred_at=clock.now(),
    )
    assert (await post_event(client, clock, payload)).status == 200

    hr = ChatUser(app, "hr01")
    listed = await hr.says("确认终止")
    assert "你有 2 条候选人求助" in listed
    assert "1. 张三 Java后端工程师" in listed and "「网络卡顿」" in listed
    assert "2. 李四 Java后端工程师" in listed and "「不想面了」" in listed
    # Nothing ends before the HR picks; a number out of range is asked again.
    assert await interview_status(client, "iv-1") == "in_progress"
    assert await interview_status(client, "iv-2") == "in_progress"
    assert "请回复 1 到 2" in await hr.says("3")

    assert "已按候选人请求终止 李四 的面试,原因:候选人放弃" in await hr.says("2")
    assert await interview_status(client, "iv-2") == "terminated"
    assert await interview_status(client, "iv-1") == "in_progress"
    # One left: 确认终止 ends it at once, as with a single request.
    assert "已按候选人请求终止 张三 的面试,原因:系统故障" in await hr.says("确认终止")
    assert await interview_status(client, "iv-1") == "terminated"
    assert "没有等待你处理的候选人求助" in await hr.says("确认终止")


async def test_a_request_answered_elsewhere_while_the_hr_picks_is_not_ended_twice(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock, "iv-2", name="李四", mobile="13900002222", email="lisi@example.com")
    await ask_help(client, clock, reason="网络卡顿")
    payload = event(
        "interview.help_requested",
        "iv-2",
        name="李四",
        mobile="13900002222",
        email="lisi@example.com",
        data={"reason": "不想面了", "wants_exit": True},
        occurred_at=clock.now(),
    )
    assert (await post_event(client, clock, payload)).status == 200
    hr = ChatUser(app, "hr01")
    assert "你有 2 条候选人求助" in await hr.says("确认终止")
    # Meanwhile 李四's request is answered another way (协助继续 takes the newest request).
    assert "协助其继续面试" in await hr.says("协助继续")
    assert "这条求助已被他人处理" in await hr.says("2")
    assert await interview_status(client, "iv-2") == "in_progress"
    assert await interview_status(client, "iv-1") == "in_progress"
