"""The WeCom AI bot in long-connection mode (only WECOM_BOT_ID / WECOM_BOT_SECRET set, no public
URL) against the fake gateway on loopback: subscribe, the termination round trip with a card
click and with a typed 确认, redelivery, drops and reconnects, a wrong secret, disconnected_event;
and the fake itself checked against the wecom-aibot-sdk client."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.channels import registry
from bot.channels.reconnect import Backoff
from bot.channels.wecom import WECOM
from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services.summary import send_daily_summary
from storage.models import ExitRecord, IntakeItem, Interview, Notice, NoticeAttempt
from tests.chat import add_person, prompt_id
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.smtp import SmtpServer
from tests.fakes.wecom_aibot_ws import BOT_ID, BOT_SECRET, FakeAiBotGateway
from tests.sched import DAY, add_people, at, core_of, exit_at


async def bot_with_hr(make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway, **kw: Any) -> TestClient:
    client = await make_client(**gateway.settings(**kw))
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    return client


async def interview(app: web.Application) -> Interview:
    async with app[CORE].sessions() as session:
        return (await session.exec(select(Interview).where(Interview.platform_id == "iv-1"))).one()


async def said(gateway: FakeAiBotGateway, n: int) -> None:
    async def enough() -> bool:
        return len(gateway.said) >= n

    await eventually(enough)


def link_of(app: web.Application) -> Any:
    longconn = app[WECOM].longconn
    assert longconn is not None
    return longconn


async def test_card_click_round_trip_with_only_bot_id_and_secret(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway, smtp: SmtpServer
) -> None:
    client = await bot_with_hr(make_client, clock, gateway)
    app = client.server.app
    assert app is not None
    await gateway.wait_subscribed()
    assert gateway.subscribes == [{"bot_id": BOT_ID, "secret": BOT_SECRET}]

    async def up() -> bool:
        return registry.connections(app) == {"wecom aibot": "up"}

    await eventually(up)
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["connections"] == {"wecom aibot": "up"}
    # No callback URL is needed in this mode: the AI bot callback answers 503 (not configured).
    assert (await client.post("/wecom/bot/callback", data=b"{}")).status == 503

    req_id = await gateway.message("hr01", "终止面试 张三 候选人放弃", msgid="msg-1")
    await said(gateway, 1)
    [card_frame] = gateway.said
    assert card_frame["cmd"] == "aibot_respond_msg" and card_frame["headers"]["req_id"] == req_id
    card = card_frame["body"]["template_card"]
    assert card_frame["body"]["msgtype"] == "template_card" and card["card_type"] == "button_interaction"
    assert "张三" in card["sub_title_text"] and "候选人放弃" in card["sub_title_text"]
    buttons = {b["text"]: b["key"] for b in card["button_list"]}
    assert set(buttons) == {"确认终止", "取消"}
    assert buttons["确认终止"] == "cmd:" + quote(f"确认 #{await prompt_id(app)}", safe="")

    # WeCom pushes an unanswered message again under a new req_id: taken in once.
    await gateway.message("hr01", "终止面试 张三 候选人放弃", msgid="msg-1")

    def dropped() -> bool:
        duplicate = {"platform": "wecom", "result": "duplicate"}
        return app[CORE].metrics.registry.get_sample_value("bot_callbacks_total", duplicate) == 1

    await eventually(dropped, what="the redelivery was not dropped as a duplicate")
    assert len(gateway.said) == 1
    assert (await interview(app)).status == "in_progress"  # nothing happens before the click

    click_req = await gateway.click("hr01", event_key=buttons["确认终止"], task_id=card["task_id"])

    async def terminated() -> bool:
        return (await interview(app)).status == "terminated"

    await eventually(terminated)
    async with app[CORE].sessions() as session:
        record = (await session.exec(select(ExitRecord))).one()
        keys = sorted(m.key for m in (await session.exec(select(IntakeItem).where(IntakeItem.source == "wecom"))).all())
    assert record.operator == "wecom:hr01" and record.reason == "候选人放弃"
    assert len(keys) == 2 and "aibot:msg-1" in keys

    await said(gateway, 2)
    success = gateway.said[1]
    # A click's req_id takes a card update, not a message: the answer is pushed to the chat.
    assert success["cmd"] == "aibot_send_msg" and success["body"]["chatid"] == "hr01"
    text = gateway.content(success)
    assert "已终止 张三 的面试" in text and "已安排通过邮件通知候选人" in text
    [update] = gateway.updates
    assert update["headers"]["req_id"] == click_req
    assert update["body"]["template_card"]["task_id"] == card["task_id"]

    async def mailed() -> bool:
        return any("zhangsan@example.com" in str(m["To"]) for m in smtp.messages)

    await eventually(mailed)  # the candidate notice
    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert detail["status"] == "terminated"
    assert gateway.rejected == []  # never answered a req_id WeCom would refuse


async def test_typed_confirm_in_a_group_answers_each_message(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await bot_with_hr(make_client, clock, gateway)
    app = client.server.app
    assert app is not None
    first = await gateway.message("hr01", "@面试助手 终止面试 张三 候选人放弃", msgid="g-1", chatid="grp-1")
    await said(gateway, 1)
    assert gateway.said[0]["headers"]["req_id"] == first
    second = await gateway.message("hr01", "@面试助手 确认", msgid="g-2", chatid="grp-1")

    async def terminated() -> bool:
        return (await interview(app)).status == "terminated"

    await eventually(terminated)
    await said(gateway, 2)
    reply = gateway.said[1]
    assert reply["cmd"] == "aibot_respond_msg" and reply["headers"]["req_id"] == second
    assert reply["body"]["msgtype"] == "stream" and reply["body"]["stream"]["finish"] is True
    assert "已终止 张三 的面试" in gateway.content(reply)


async def test_card_click_after_the_prompt_expired_says_so_and_changes_nothing(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await bot_with_hr(make_client, clock, gateway)
    app = client.server.app
    assert app is not None
    await gateway.message("hr01", "终止面试 张三 候选人放弃", msgid="late-1")
    await said(gateway, 1)
    card = gateway.said[0]["body"]["template_card"]
    confirm_key = next(b["key"] for b in card["button_list"] if b["text"] == "确认终止")
    clock.advance(seconds=301)  # past BOT_CONFIRM_TTL (300 s)
    await gateway.click("hr01", event_key=confirm_key, task_id=card["task_id"])
    await said(gateway, 2)
    assert gateway.content(gateway.said[1]) == "这个确认已过期(超过5分钟),没有执行。如需继续,请重新发起。"
    assert (await interview(app)).status == "in_progress"
    async with app[CORE].sessions() as session:
        assert (await session.exec(select(ExitRecord))).all() == []


async def test_dropped_connection_and_silent_gateway_reconnect(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await bot_with_hr(make_client, clock, gateway)
    app = client.server.app
    assert app is not None
    link = link_of(app).link
    await gateway.wait_subscribed()
    link.backoff = Backoff(0.05)
    link.heartbeat_seconds = 0.05

    await gateway.drop()
    await gateway.wait_subscribed(2)
    await gateway.message("hr01", "帮助", msgid="h-1")
    await said(gateway, 1)
    assert "终止面试" in gateway.content(gateway.said[0])

    async def pinged() -> bool:
        return gateway.pings >= 3

    await eventually(pinged)  # the new connection keeps its heartbeat
    gateway.answer_pings = False  # a connection that went quiet is closed and opened again
    await gateway.wait_subscribed(3)
    assert link.connections == 3 and gateway.max_live == 1


async def test_wrong_secret_backs_off_and_the_service_keeps_serving(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await make_client(**gateway.settings(wecom_bot_secret="not-the-secret"))
    app = client.server.app
    assert app is not None

    async def refused() -> bool:
        return gateway.refused >= 1

    await eventually(refused)
    await asyncio.sleep(0.5)  # not waiting for something to happen: a window in which a retry must not come
    assert gateway.refused == 1  # backing off (a minute at first), not hammering WeCom
    assert registry.connections(app) == {"wecom aibot": "connecting"}
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")  # not ready: this replica should hold the connection
    assert ready.status == 503 and (await ready.json())["not_ready"] == {"wecom aibot": "connecting"}
    await add_people(client, ("wecom", "hr01", "王小姐", "hr", None))
    await exit_at(client, clock, 1, at(DAY, 10), "系统故障")  # the admin API and platform events work
    await asyncio.sleep(0.5)  # the notice exists already; a window in which the outbox must not try it
    async with app[CORE].sessions() as session:
        [to_hr] = (await session.exec(select(Notice).where(Notice.kind == "hr_terminated"))).all()
        tried = (await session.exec(select(NoticeAttempt))).all()
    # Nothing can go out without the connection: the HR notice waits for it, with no attempt made.
    assert to_hr.channel == "wecom" and to_hr.status == "pending" and to_hr.attempts == 0
    assert [a for a in tried if a.notice_id == to_hr.id] == []
    started = time.monotonic()
    await client.close()  # while the loop sleeps in its backoff
    assert time.monotonic() - started < 2.0


async def test_disconnected_event_stops_without_a_reconnect_loop(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await bot_with_hr(make_client, clock, gateway)
    app = client.server.app
    assert app is not None
    longconn = link_of(app)
    longconn.link.backoff = Backoff(0.01)
    await gateway.wait_subscribed()
    await gateway.replace()

    async def stopped() -> bool:
        return registry.connections(app) == {"wecom aibot": "stopped"}

    await eventually(stopped)
    await asyncio.sleep(0.5)  # a window (50 backoffs of 0.01 s) in which it must not reconnect
    assert len(gateway.subscribes) == 1 and gateway.live() == []  # it did not come back
    assert longconn.leased.finished and longconn.leased.holding  # the lease stays: no replica fights


async def test_fake_gateway_speaks_to_the_sdk_client(gateway: FakeAiBotGateway) -> None:
    """The wecom-aibot-sdk client (a port of the official SDK) subscribes, gets a message, answers
    it under the callback's req_id, pushes, and stops on disconnected_event."""
    from wecom_aibot_sdk import WSClient

    client = WSClient(BOT_ID, BOT_SECRET, ws_url=gateway.url, heartbeat_interval=50, max_reconnect_attempts=1)
    got: list[dict[str, Any]] = []
    events: list[str] = []

    async def on_text(frame: dict[str, Any]) -> None:
        got.append(frame)
        await client.reply_stream(frame, "s-1", "收到: " + frame["body"]["text"]["content"], finish=True)
        push = {"msgtype": "markdown", "markdown": {"content": "推送"}}
        await client.send_message(frame["body"]["from"]["userid"], push)

    client.on("message.text", on_text)
    client.on("event.disconnected_event", lambda frame: events.append(frame["body"]["event"]["eventtype"]))
    client.on("authenticated", lambda: events.append("authenticated"))
    await client.connect()
    try:
        await gateway.wait_subscribed()
        req_id = await gateway.message("u1", "你好", msgid="sdk-1")
        await said(gateway, 2)
        assert got[0]["body"]["msgid"] == "sdk-1" and got[0]["body"]["chattype"] == "single"
        assert gateway.said[0]["headers"]["req_id"] == req_id
        assert gateway.said[0]["body"]["stream"] == {"id": "s-1", "finish": True, "content": "收到: 你好"}
        assert gateway.said[1]["body"] == {"chatid": "u1", "msgtype": "markdown", "markdown": {"content": "推送"}}

        async def pinged() -> bool:
            return gateway.pings >= 1

        await eventually(pinged)
        await gateway.replace()

        async def told() -> bool:
            return "disconnected_event" in events

        await eventually(told)
        assert events[0] == "authenticated" and not client.is_connected
    finally:
        await client.disconnect()

    wrong = WSClient(BOT_ID, "wrong", ws_url=gateway.url, max_auth_failure_attempts=1)
    errors: list[str] = []
    wrong.on("error", lambda exc: errors.append(str(exc)))
    await wrong.connect()
    try:

        async def refused() -> bool:
            return any("853000" in e for e in errors)

        await eventually(refused)
    finally:
        await wrong.disconnect()
    assert json.dumps(gateway.subscribes[-1]) == json.dumps({"bot_id": BOT_ID, "secret": "wrong"})


async def test_staff_notices_and_the_daily_summary_are_pushed(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await make_client(**gateway.settings(wecom_bot_summary_chatid="grp-managers"))
    await gateway.wait_subscribed()
    await add_people(client, ("wecom", "hr01", "王小姐", "hr", None), ("wecom", "mgr1", "周经理", "manager", None))
    await exit_at(client, clock, 1, at(DAY, 10), "系统故障")  # terminated by an admin: HR hr01 is told

    async def hr_told() -> bool:
        return any(f["body"]["chatid"] == "hr01" for f in gateway.sends)

    await eventually(hr_told)
    [to_hr] = [f for f in gateway.sends if f["body"]["chatid"] == "hr01"]
    assert to_hr["body"]["msgtype"] == "markdown" and "候选人1" in gateway.content(to_hr)

    clock.set(at(DAY, 18, 5))
    outcome = await send_daily_summary(core_of(client), day=DAY)
    assert "robot:wecom_aibot_ws" in outcome.sent

    async def posted() -> bool:
        chats = [f["body"]["chatid"] for f in gateway.sends]
        return "grp-managers" in chats and "mgr1" in chats

    await eventually(posted)
    [group] = [f for f in gateway.sends if f["body"]["chatid"] == "grp-managers"]
    assert f"{DAY} 面试退出日报" in gateway.content(group)
    assert gateway.responds == []  # nothing here answered a message: everything was pushed


async def test_a_req_id_wecom_refuses_falls_back_to_a_push(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await bot_with_hr(make_client, clock, gateway)
    assert client.server.app is not None
    gateway.refuse_responds = True  # e.g. the req_id expired on WeCom's side
    await gateway.message("hr01", "帮助", msgid="late-1")
    await said(gateway, 1)
    assert [f["cmd"] for f in gateway.rejected] == ["aibot_respond_msg"]
    [pushed] = gateway.said
    assert pushed["cmd"] == "aibot_send_msg" and pushed["body"]["chatid"] == "hr01"
    assert "终止面试" in gateway.content(pushed)


async def test_a_message_stored_before_a_crash_is_answered_after_the_restart(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await bot_with_hr(make_client, clock, gateway)
    app = client.server.app
    assert app is not None
    await gateway.wait_subscribed()
    chat = app[WECOM].chat
    assert chat is not None
    chat.intake.worker.stopping()  # from here on nothing is processed, as when the process dies after storing
    await gateway.message("hr01", "帮助", msgid="crash-1")

    async def stored() -> bool:
        async with app[CORE].sessions() as session:
            return len((await session.exec(select(IntakeItem).where(IntakeItem.source == "wecom"))).all()) == 1

    await eventually(stored)
    await client.close()
    assert gateway.said == []

    await make_client(**gateway.settings())  # the same instance starts again
    await said(gateway, 1)
    [reply] = gateway.said
    # Its req_id belonged to the old connection: the answer is pushed to the chat instead.
    assert reply["cmd"] == "aibot_send_msg" and reply["body"]["chatid"] == "hr01"
    assert "终止面试" in gateway.content(reply) and gateway.rejected == []
