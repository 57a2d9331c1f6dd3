"""Every reply is true: what HR is told about the candidate's notice is what the outbox will do.

Through the real chat path (tests/chat.py) and the real WeCom app channel (the fake WeCom API),
asserting the text people read.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlmodel import select

from bot import jobs
from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import Notice
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, event, eventually, post_event, started_interview
from tests.fakes.sms_providers import FakeSmsProviders, sms_settings
from tests.fakes.wecom_api import FakeWeCom, wecom_settings


async def team(make_client: AppFactory, clock: FrozenClock, **settings: object) -> web.Application:
    client = await make_client(**settings)
    await started_interview(client, clock)
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await add_person(app, "mgr01", "刘经理", "manager")
    return app


async def terminate(user: ChatUser) -> str:
    await user.say("终止面试 张三 候选人放弃")
    return await user.says("确认")


async def candidate_notices(app: web.Application, kind: str) -> list[Notice]:
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(Notice).where(Notice.kind == kind))).all()
    return list(rows)


async def test_no_channel_reaches_the_candidate_says_so_and_makes_the_todo_at_once(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    app = await team(make_client, clock, smtp_host=None)  # no SMTP, no SMS, no kf
    hr = ChatUser(app, "hr01")
    reply = await terminate(hr)
    assert "已通知候选人" not in reply
    assert "无法通知候选人:没有可用的通知渠道(候选人没有微信客服会话、短信未配置、邮件未配置)" in reply
    assert "你的待办里有「联系候选人张三:通知未送达」,请直接联系候选人" in reply
    # The to-do exists now, not after retries that would never come.
    assert "联系候选人张三:通知未送达" in await hr.says("待办")
    # The notice is a dead letter, not pending forever.
    [notice] = await candidate_notices(app, "terminated")
    assert notice.status == "dead" and notice.channel == "none"
    shown = await hr.says("查看 张三")
    assert "通知:面试终止通知 · 无可用渠道 · 未送达" in shown
    assert "没有可用的通知渠道" in shown
    # Names and Chinese labels, never raw codes or ids.
    assert "终止面试(王小姐)" in shown and "保存作答(面试平台)" in shown
    assert "wecom:" not in shown and "terminated" not in shown and "dead" not in shown


async def test_queued_channel_and_fallbacks_are_named(
    make_client: AppFactory, clock: FrozenClock, sms_fake: FakeSmsProviders
) -> None:
    app = await team(make_client, clock, **sms_settings(sms_fake, "aliyun"))
    reply = await terminate(ChatUser(app, "hr01"))
    assert "已安排通过短信通知候选人,发送不成功时改用邮件;送达情况可用「查看 张三」查看" in reply
    assert "跟进待办已加到你的「待办」" in reply
    [notice] = await candidate_notices(app, "terminated")
    assert notice.channel == "sms" and [c for c, _ in notice.payload["plan"]] == ["sms", "email"]


async def test_email_only_when_sms_is_not_configured(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await team(make_client, clock)
    reply = await terminate(ChatUser(app, "hr01"))
    assert "已安排通过邮件通知候选人;送达情况可用「查看 张三」查看" in reply
    assert "改用" not in reply


async def test_owner_who_operates_gets_one_message_and_others_get_names_not_ids(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    app = await team(make_client, clock, **wecom_settings(fake_wecom))
    hr = ChatUser(app, "hr01")
    await hr.say("终止面试 张三 候选人放弃")  # both ask at once; the manager confirms first
    manager = ChatUser(app, "mgr01")
    reply = await terminate(manager)
    assert "已为负责 HR 创建跟进待办" in reply
    # The HR owner (not the operator) is told, by name and in Chinese labels.
    [row] = await candidate_notices(app, "hr_terminated")
    assert "操作人:刘经理,来源:聊天命令" in row.body
    assert "已安排通过邮件通知候选人" in row.body
    assert "wecom:" not in row.body and "chat" not in row.body

    async def sent() -> bool:
        return any("面试已终止:张三" in str(m) for m in fake_wecom.sent("message/send"))

    await eventually(sent)
    # The slower confirmation names the operator, not their id.
    assert "该面试已被 刘经理 终止,无需重复操作" in await hr.says("确认")


async def test_timeout_notice_to_hr_tells_the_truth_about_the_candidate(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    app = await team(make_client, clock, smtp_host=None, idle_timeout_seconds=600, **wecom_settings(fake_wecom))
    clock.advance(seconds=601)
    assert await jobs.sweep_idle(app[CORE]) == 1
    [row] = await candidate_notices(app, "hr_terminated")
    assert "操作人:系统,来源:超时自动终止" in row.body
    assert "无法通知候选人:没有可用的通知渠道" in row.body
    assert "你的待办里有「联系候选人张三:通知未送达」" in row.body


async def test_help_request_reply_tells_the_truth(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(smtp_host=None)
    await started_interview(client, clock)
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    payload = event(
        "interview.help_requested", data={"reason": "网络卡顿", "wants_exit": True}, occurred_at=clock.now()
    )
    assert (await post_event(client, clock, payload)).status == 200
    reply = await ChatUser(app, "hr01").says("确认终止")
    assert "已按候选人请求终止 张三 的面试" in reply
    assert "无法通知候选人:没有可用的通知渠道" in reply


async def test_reschedule_reply_tells_the_truth(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(smtp_host=None)
    await started_interview(client, clock)
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    hr = ChatUser(app, "hr01")
    await terminate(hr)
    day = (clock.now().astimezone(app[CORE].settings.tz) + timedelta(days=2)).date()
    prompt = await hr.says(f"重新安排 张三 {day.year}年{day.month}月{day.day}日 15:00")
    assert "请确认重新安排" in prompt
    reply = await hr.says("确认")
    assert "重新开放面试" in reply
    assert "已通知候选人" not in reply
    assert "无法通知候选人:没有可用的通知渠道" in reply
    assert "你的待办里有「联系候选人张三:通知未送达」" in reply
    assert "提醒也无法发给候选人" in reply and "提醒会按新时间发送" not in reply


async def test_one_undelivered_todo_however_many_notices_cannot_go(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(smtp_host=None, candidate_exit_policy="deny")
    await started_interview(client, clock)
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    # deny: the candidate is told to contact HR (a notice that cannot go); then HR ends the interview (another).
    payload = event("interview.help_requested", data={"reason": "想退出", "wants_exit": True}, occurred_at=clock.now())
    assert (await post_event(client, clock, payload)).status == 200
    hr = ChatUser(app, "hr01")
    assert "无法通知候选人" in await terminate(hr)
    async with app[CORE].sessions() as session:
        dead = (await session.exec(select(Notice).where(Notice.status == "dead"))).all()
    assert sorted(n.kind for n in dead) == ["help_contact_hr", "terminated"]
    assert (await hr.says("待办")).count("联系候选人张三:通知未送达") == 1
