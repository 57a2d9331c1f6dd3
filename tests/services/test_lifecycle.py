"""What closes with a 求助 and what ends with an interview: the HR's to-do for a 求助 closes when it
is answered (by chat, by a manager after escalation, or when the interview ends), and an ended
interview's reminders and pending guide/reminder notices are cancelled and shown so."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot import jobs
from bot.channels import registry
from bot.clock import FrozenClock
from bot.services import people
from bot.services.context import Core
from bot.services.help_requests import sweep_help_requests
from bot.services.summary import build_summary
from storage.models import AuditEvent, Notice
from tests.chat import ChatUser, add_person
from tests.conftest import DEFAULT_SCHEDULED_AT, AppFactory, admin_headers, event, eventually, post_event
from tests.console import signed_in
from tests.fakes.smtp import SmtpServer, free_port
from tests.sched import SH, core_of, reminders, send_event

HELP_TITLE = "候选人张三希望结束面试:网络卡顿"


async def detail(client: TestClient) -> dict:
    resp = await client.get("/api/interviews/iv-1", headers=admin_headers())
    assert resp.status == 200
    return await resp.json()


async def help_setup(make_client: AppFactory, clock: FrozenClock, **settings: object) -> tuple[TestClient, Core]:
    client = await make_client(**settings)
    core = core_of(client)
    core.staff_channels.add("wecom")
    await send_event(client, clock, "interview.scheduled")
    await send_event(client, clock, "interview.started")
    await add_person(client.server.app, "hr01", "王小姐", "hr")  # type: ignore[arg-type]
    await add_person(client.server.app, "boss", "陈经理", "manager")  # type: ignore[arg-type]
    payload = event(
        "interview.help_requested",
        event_id="help-1",
        data={"reason": "网络卡顿", "wants_exit": True},
        occurred_at=clock.now(),
    )
    assert (await post_event(client, clock, payload)).status == 200
    return client, core


def today(clock: FrozenClock) -> date:
    return clock.now().astimezone(SH).date()


async def todo_audits(core: Core) -> list[AuditEvent]:
    async with core.sessions() as session:
        stmt = select(AuditEvent).where(AuditEvent.action == "todo.done").order_by(col(AuditEvent.id))
        return list((await session.exec(stmt)).all())


@pytest.mark.parametrize(
    ("answer", "still_open"),
    [
        # 确认终止 ends the interview: the follow-up to-do of the termination is what remains.
        (("确认终止",), ["跟进候选人张三的面试"]),
        (("协助继续",), []),
        # 重新安排 ends the attempt and books it again: nothing is left to follow up.
        (("重新安排 明天上午10:30", "确认"), []),
    ],
    ids=["confirm_exit", "assist", "reschedule"],
)
async def test_answering_a_help_request_closes_its_todo(
    make_client: AppFactory, clock: FrozenClock, answer: tuple[str, ...], still_open: list[str]
) -> None:
    client, core = await help_setup(make_client, clock)
    before = await detail(client)
    assert [(t["title"], t["done"]) for t in before["todos"]] == [(HELP_TITLE, False)]
    assert (await build_summary(core, day=today(clock))).followups == [{"owner": "王小姐", "count": 1}]

    hr = ChatUser(client.server.app, "hr01")  # type: ignore[arg-type]
    for text in answer:
        await hr.says(text)

    todos = {t["title"]: t for t in (await detail(client))["todos"]}
    closed = todos[HELP_TITLE]
    assert (closed["done"], closed["done_by"]) == (True, "wecom:hr01")
    assert closed["done_at"] is not None
    assert sorted(title for title, t in todos.items() if not t["done"]) == still_open
    summary = await build_summary(core, day=today(clock))
    assert summary.followups_total == len(still_open)
    [audit] = [a for a in await todo_audits(core) if a.detail.get("source") == "help_request"]
    assert (audit.actor, audit.detail["todo"], audit.detail["key"]) == ("wecom:hr01", closed["id"], "help-1")


async def test_a_manager_answering_after_escalation_closes_the_hr_todo(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, core = await help_setup(make_client, clock)
    clock.advance(minutes=11)
    await sweep_help_requests(core)
    clock.advance(minutes=10)
    await sweep_help_requests(core)  # escalated to 陈经理
    assert "协助其继续面试" in await ChatUser(client.server.app, "boss").says("协助继续")  # type: ignore[arg-type]
    [todo] = (await detail(client))["todos"]
    assert (todo["title"], todo["done"], todo["done_by"]) == (HELP_TITLE, True, "wecom:boss")
    assert (await build_summary(core, day=today(clock))).followups_total == 0
    # The HR owner has nothing left to answer.
    assert "没有等待你处理的候选人求助" in await ChatUser(client.server.app, "hr01").says("协助继续")  # type: ignore[arg-type]


async def test_a_help_request_left_open_closes_when_the_interview_times_out(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, core = await help_setup(make_client, clock, idle_timeout_seconds=600)
    clock.advance(seconds=601)
    assert await jobs.sweep_idle(core) == 1
    todos = {t["title"]: t for t in (await detail(client))["todos"]}
    assert (todos[HELP_TITLE]["done"], todos[HELP_TITLE]["done_by"]) == (True, "system")
    # What is left is the follow-up of the ended interview, not the 求助 nobody can answer any more.
    assert [t for t, row in todos.items() if not row["done"]] == ["跟进候选人张三的面试"]
    assert (await build_summary(core, day=today(clock))).followups_total == 1
    assert "没有等待你处理的候选人求助" in await ChatUser(client.server.app, "hr01").says("确认终止")  # type: ignore[arg-type]
    # No reminder or escalation about it later.
    clock.advance(minutes=30)
    await sweep_help_requests(core)
    async with core.sessions() as session:
        later = (await session.exec(select(Notice).where(col(Notice.kind).in_(["help_reminder"])))).all()
    assert later == []


async def pending_reminder_notices(make_client: AppFactory, clock: FrozenClock) -> tuple[TestClient, Core]:
    """An interview whose operation guide and 30-minute reminders are queued but not out yet (the
    mail server is down, the HR's chat notice waits for its channel), with reminders still ahead."""
    clock.set(DEFAULT_SCHEDULED_AT - timedelta(hours=3))
    # Idle for longer than the timeout by the time the 30-minute reminder is out; the idle sweep
    # runs only where a test calls it.
    client = await make_client(smtp_port=free_port(), idle_timeout_seconds=29 * 60)
    core = core_of(client)
    core.staff_channels.add("wecom")
    await add_person(client.server.app, "hr01", "王小姐", "hr")  # type: ignore[arg-type]
    await send_event(client, clock, "interview.scheduled")
    assert await jobs.sweep_reminders(core) == 1  # the guide
    # Started early (a platform allows it): before_1h and at_start are still ahead.
    await send_event(client, clock, "interview.started")
    clock.advance(minutes=30)
    assert await jobs.sweep_reminders(core) == 1  # after_30m, to the candidate and the HR

    async def tried() -> bool:  # each candidate mail tried and failed once: waiting to retry
        async with core.sessions() as session:
            rows = (await session.exec(select(Notice))).all()
        by_kind = {n.kind: n for n in rows}
        return (
            {"guide", "after_30m", "hr_after_30m"} <= set(by_kind)
            and all(by_kind[k].attempts >= 1 for k in ("guide", "after_30m"))
            and all(n.status == "pending" for n in rows)
        )

    await eventually(tried)
    rows = await reminders(core)
    assert {k: r.state for k, r in rows.items()} == {
        "guide": "sent",
        "before_1h": "pending",
        "at_start": "pending",
        "after_30m": "sent",
    }
    return client, core


async def end_by_chat(client: TestClient, clock: FrozenClock) -> None:
    hr = ChatUser(client.server.app, "hr01")  # type: ignore[arg-type]
    await hr.says("终止面试 张三 候选人放弃")
    assert "已终止 张三 的面试" in await hr.says("确认")


async def end_by_idle_timeout(client: TestClient, clock: FrozenClock) -> None:
    assert await jobs.sweep_idle(core_of(client)) == 1


async def end_by_completion(client: TestClient, clock: FrozenClock) -> None:
    await send_event(client, clock, "interview.completed")


@pytest.mark.parametrize(
    ("end", "status"),
    [(end_by_chat, "terminated"), (end_by_idle_timeout, "terminated"), (end_by_completion, "completed")],
    ids=["chat", "idle_timeout", "completed"],
)
async def test_an_ended_interview_cancels_its_reminders_and_shows_them_cancelled(
    make_client: AppFactory, clock: FrozenClock, end: object, status: str
) -> None:
    client, core = await pending_reminder_notices(make_client, clock)
    await end(client, clock)  # type: ignore[operator]

    body = await detail(client)
    assert body["status"] == status
    states = {n["kind"]: n["status"] for n in body["notices"]}
    assert {k: states[k] for k in ("guide", "after_30m", "hr_after_30m")} == dict.fromkeys(
        ("guide", "after_30m", "hr_after_30m"), "cancelled"
    )
    if status == "terminated":
        assert states["terminated"] in ("pending", "sending")  # the termination notice itself still goes
    rows = await reminders(core)
    assert {k: (r.state, r.note) for k, r in rows.items() if k in ("before_1h", "at_start")} == dict.fromkeys(
        ("before_1h", "at_start"), ("cancelled", f"interview {status}")
    )
    # Later sweeps send nothing for it.
    clock.set(DEFAULT_SCHEDULED_AT + timedelta(minutes=1))
    assert await jobs.sweep_reminders(core) == 0

    # The console's timeline says so, in Chinese.
    await signed_in(client, "hr01")
    page = await (await client.get("/console/interviews/iv-1")).text()
    assert "开始前1小时提醒 · 已取消" in page and "开始提醒 · 已取消" in page
    assert "操作指引 · 邮件 · 已取消" in page and "作答30分钟提醒 · 邮件 · 已取消" in page
    assert "· 待发送" not in page


async def test_a_terminated_interview_booked_again_gets_its_reminders_planned_anew(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    clock.set(DEFAULT_SCHEDULED_AT - timedelta(hours=3))
    client = await make_client()
    core = core_of(client)
    await add_person(client.server.app, "hr01", "王小姐", "hr")  # type: ignore[arg-type]
    await send_event(client, clock, "interview.scheduled")  # guide due now, not swept yet
    hr = ChatUser(client.server.app, "hr01")  # type: ignore[arg-type]
    await hr.says("终止面试 张三 流程调整")
    assert "已终止 张三 的面试" in await hr.says("确认")
    assert {r.state for r in (await reminders(core)).values()} == {"cancelled"}

    # Booked again at the very time it had: the same due times, planned again all the same.
    await hr.says(f"重新安排 张三 {DEFAULT_SCHEDULED_AT.astimezone(SH):%m月%d日%H:%M}")
    assert "并重新开放面试" in await hr.says("确认")
    rows = await reminders(core)
    assert {k: r.state for k, r in rows.items()} == dict.fromkeys(("guide", "before_1h", "at_start"), "pending")
    assert rows["at_start"].due_at == DEFAULT_SCHEDULED_AT
    assert await jobs.sweep_reminders(core) == 1  # the guide goes out for the new booking


# --- HR notices when the HR's chat is not connected -------------------------------------------


async def hr_by_email_only(make_client: AppFactory, clock: FrozenClock, **settings: object) -> tuple[TestClient, Core]:
    """The HR owner is on WeCom, which this service has no app for; they have an email address."""
    client = await make_client(**settings)
    core = core_of(client)
    assert "wecom" not in core.staff_channels
    await people.register(
        core, platform="wecom", user_id="hr01", role="hr", actor="cli", name="王小姐", email="wang@example.com"
    )
    await send_event(client, clock, "interview.scheduled")
    await send_event(client, clock, "interview.started")
    return client, core


def mails_to(smtp: SmtpServer, address: str) -> list[tuple[str, str]]:
    return [
        (str(m["Subject"]), str(m.get_body(preferencelist=("plain",)).get_content()))  # type: ignore[union-attr]
        for m in smtp.messages
        if str(m["To"]) == address
    ]


async def test_a_help_request_reaches_an_hr_without_chat_by_email(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    client, core = await hr_by_email_only(make_client, clock, public_base_url="https://bot.example.com")
    payload = event(
        "interview.help_requested",
        event_id="help-1",
        data={"reason": "网络卡顿", "wants_exit": True},
        occurred_at=clock.now(),
    )
    assert (await post_event(client, clock, payload)).status == 200

    async def mailed() -> bool:
        return len(mails_to(smtp, "wang@example.com")) == 1

    await eventually(mailed)
    [(subject, body)] = mails_to(smtp, "wang@example.com")
    assert subject == "【测试科技】求助提示"
    assert body.startswith("王小姐,你好:") and "张三" in body and "网络卡顿" in body
    # Why it came by mail, and where to act on it: a reply to the mail would go nowhere.
    assert "你的企业微信账号还没有接入面试退出助手" in body and "回复这封邮件不会被处理" in body
    assert "https://bot.example.com/console" in body
    # The to-do is still there, as before.
    assert [t["title"] for t in (await detail(client))["todos"]] == [HELP_TITLE]

    # Unanswered: the reminder goes the same way, once.
    clock.advance(minutes=11)
    await sweep_help_requests(core)
    await sweep_help_requests(core)

    async def reminded() -> bool:
        return len(mails_to(smtp, "wang@example.com")) == 2

    await eventually(reminded)
    assert mails_to(smtp, "wang@example.com")[1][0] == "【测试科技】求助提醒"


async def test_an_idle_timeout_reaches_an_hr_without_chat_by_email(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    _, core = await hr_by_email_only(make_client, clock, idle_timeout_seconds=600)
    clock.advance(seconds=601)
    assert await jobs.sweep_idle(core) == 1

    async def mailed() -> bool:
        return len(mails_to(smtp, "wang@example.com")) == 1

    await eventually(mailed)
    [(subject, body)] = mails_to(smtp, "wang@example.com")
    assert subject == "【测试科技】终止通知(HR)"
    assert "面试已终止:张三(Java后端工程师)" in body and "超时未操作" in body
    # No console address is configured: the mail does not invent one.
    assert "登录链接可向管理员索取" in body and "http" not in body
    # The candidate's own mail went too, to the candidate.
    assert any(s == "【测试科技】您的AI面试已终止" for s, _ in mails_to(smtp, "zhangsan@example.com"))


async def test_an_hr_without_chat_or_email_gets_no_notice_row(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(idle_timeout_seconds=600)
    core = core_of(client)
    await add_person(client.server.app, "hr01", "王小姐", "hr")  # type: ignore[arg-type]
    await send_event(client, clock, "interview.scheduled")
    await send_event(client, clock, "interview.started")
    clock.advance(seconds=601)
    assert await jobs.sweep_idle(core) == 1
    async with core.sessions() as session:
        staff = (await session.exec(select(Notice).where(Notice.kind == "hr_terminated"))).all()
    assert staff == []
    assert [t["title"] for t in (await detail(client))["todos"]] == ["跟进候选人张三的面试"]


def test_startup_summary_says_where_hr_notices_go() -> None:
    base = {"database_url": "sqlite+aiosqlite:///:memory:"}
    nothing = registry.startup_summary(registry.load_settings(_env_file=None, **base))
    assert "| HR notices can go by: NONE (HR get only to-dos in the console) |" in nothing
    mail = registry.startup_summary(
        registry.load_settings(_env_file=None, smtp_host="127.0.0.1", smtp_from="bot@example.com", **base)
    )
    assert "| HR notices can go by: email (HR with an address) |" in mail
