"""DingTalk HTTP receive mode end to end: the real app, a real database, a fake DingTalk on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from bot.channels.dingtalk.parse import parse_callback
from bot.channels.dingtalk.sign import dingtalk_sign, verify_callback
from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import IntakeItem, Notice, SharedToken
from tests.chat import prompt_id
from tests.conftest import AppFactory, eventually
from tests.dingtalk import hr_app
from tests.fakes.dingtalk_api import APP_SECRET, SAMPLES, FakeDingTalk, ms, reference_sign
from tests.interviews import interview_detail
from tests.rows import rows


@pytest.fixture
async def fake(clock: FrozenClock) -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk(clock=clock)
    await fake.start()
    yield fake
    await fake.close()


def clicked(button: dict[str, str]) -> str:
    """What DingTalk sends into the chat when a dtmd://…sendMessage link is clicked."""
    url = button.get("actionURL") or button.get("singleURL") or ""
    assert url.startswith("dtmd://dingtalkclient/sendMessage?")
    return parse_qs(urlsplit(url).query)["content"][0]


def test_sign_matches_the_documented_algorithm() -> None:
    for ts in ("1690362101894", "1700000000000"):
        assert dingtalk_sign(APP_SECRET, ts) == reference_sign(APP_SECRET, ts)
    now = 1_700_000_000_000
    good = reference_sign(APP_SECRET, str(now))
    assert verify_callback(APP_SECRET, str(now), good, now_ms=now + 3_599_000) is None
    assert verify_callback(APP_SECRET, str(now), good, now_ms=now + 3_601_000) == "stale timestamp"
    assert verify_callback(APP_SECRET, str(now), good, now_ms=now - 3_601_000) == "stale timestamp"
    assert verify_callback(APP_SECRET, str(now), good[:-2] + "A=", now_ms=now) == "bad sign"
    assert verify_callback(APP_SECRET, None, good, now_ms=now) is not None
    assert verify_callback(APP_SECRET, "soon", good, now_ms=now) == "bad timestamp"


def test_parse_the_documented_group_callback() -> None:
    msg = parse_callback(SAMPLES["http_callback_body"])
    assert msg.platform == "dingtalk"
    assert msg.text == "终止面试 张三 候选人放弃"  # the leading space left by the @mention is gone
    assert msg.sender_id == "hr01" and msg.sender_key == "dingtalk:hr01"
    assert msg.chat_type == "group"
    assert msg.chat_id == "cidBqzDsw1N8pD4m3e5VvYqYQ=="
    assert msg.msg_id == "msgOVRsYXbzGBXfPmfPc/Fn0tA=="
    assert msg.reply_hint["session_webhook"].startswith("https://oapi.dingtalk.com/robot/sendBySession")
    assert msg.reply_hint["session_webhook_expires_ms"] == 1690367502152
    assert msg.reply_hint["robot_code"] == "dingappkey123"

    direct = parse_callback({**SAMPLES["http_callback_body"], "conversationType": "1", "text": {"content": "  确认"}})
    assert direct.chat_type == "direct" and direct.chat_id == "hr01" and direct.text == "确认"


async def test_terminate_flow_from_a_group_chat(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await hr_app(make_client, clock, fake)

    # The documented sample: group text with the leading space the @mention leaves behind.
    resp = await fake.post_callback(client, fake.message(" 终止面试 张三 候选人放弃", clock), clock)
    assert resp.status == 200
    assert await resp.json() == {"msgtype": "empty"}

    async def prompted() -> bool:
        return len(fake.session_posts) == 1

    await eventually(prompted)
    prompt = fake.session_posts[0]["body"]
    assert prompt["msgtype"] == "actionCard"
    card = prompt["actionCard"]
    assert "张三" in card["text"] and "候选人放弃" in card["text"] and "回复「确认」" in card["text"]
    tied = await prompt_id(client.server.app)
    assert [(b["title"], clicked(b)) for b in card["btns"]] == [
        ("确认终止", f"确认 #{tied}"),
        ("取消", f"取消 #{tied}"),
    ]
    assert prompt["at"]["atUserIds"] == ["hr01"]
    assert (await interview_detail(client))["status"] == "in_progress"

    # Clicking 确认终止 makes DingTalk send "确认 #<id>" into the chat as a new message.
    resp = await fake.post_callback(client, fake.message(clicked(card["btns"][0]), clock), clock)
    assert resp.status == 200

    async def terminated() -> bool:
        return (await interview_detail(client))["status"] == "terminated"

    await eventually(terminated)
    detail = await interview_detail(client)
    assert detail["exit"]["operator"] == "dingtalk:hr01"
    assert detail["exit"]["reason"] == "候选人放弃"
    assert detail["exit"]["source"] == "chat"

    async def replied() -> bool:
        return len(fake.session_posts) == 2

    await eventually(replied)
    # hr01 is the operator and the HR owner: the chat gets the result through the sessionWebhook,
    # and no second 1:1 message tells hr01 what it just did.
    reply = fake.session_posts[1]["body"]["text"]["content"]
    assert "已终止 张三 的面试" in reply
    assert "已安排通过邮件通知候选人" in reply
    assert fake.batch_sends == []
    async with client.server.app[CORE].sessions() as session:
        assert (await session.exec(select(Notice).where(Notice.kind == "hr_terminated"))).all() == []
    assert fake.token_fetches == 0  # replies through the sessionWebhook need no access token


async def test_click_after_the_prompt_expired_says_so_and_changes_nothing(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await hr_app(make_client, clock, fake)
    assert (await fake.post_callback(client, fake.message("终止面试 张三 候选人放弃", clock), clock)).status == 200

    async def prompted() -> bool:
        return len(fake.session_posts) == 1

    await eventually(prompted)
    confirm = clicked(fake.session_posts[0]["body"]["actionCard"]["btns"][0])
    clock.advance(seconds=301)  # past BOT_CONFIRM_TTL (300 s)
    assert (await fake.post_callback(client, fake.message(confirm, clock), clock)).status == 200

    async def replied() -> bool:
        return len(fake.session_posts) == 2

    await eventually(replied)
    expired = "这个确认已过期(超过5分钟),没有执行。如需继续,请重新发起。"
    assert fake.session_posts[1]["body"]["text"]["content"] == expired
    detail = await interview_detail(client)
    assert detail["status"] == "in_progress" and detail["exit"] is None


async def test_bad_sign_and_stale_timestamp_are_rejected(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await hr_app(make_client, clock, fake)
    body = fake.message("终止面试 张三 候选人放弃", clock)

    wrong_secret = await fake.post_callback(client, body, clock, secret="not-the-secret")
    assert wrong_secret.status == 401
    stale = await fake.post_callback(client, body, clock, timestamp=ms(clock) - 3601 * 1000)
    assert stale.status == 401
    future = await fake.post_callback(client, body, clock, timestamp=ms(clock) + 3601 * 1000)
    assert future.status == 401
    unsigned = await client.post("/dingtalk/callback", data=json.dumps(body))
    assert unsigned.status == 401

    assert await rows(client.server.app, IntakeItem, source="dingtalk") == []

    # Older than DINGTALK_SIGN_WINDOW_SECONDS (300 s by default) is refused though DingTalk allows an hour...
    assert (await fake.post_callback(client, body, clock, timestamp=ms(clock) - 301 * 1000)).status == 401
    assert await rows(client.server.app, IntakeItem, source="dingtalk") == []
    # ...within it is fine (DingTalk's clock may be a little off ours).
    ok = await fake.post_callback(client, body, clock, timestamp=ms(clock) - 290 * 1000)
    assert ok.status == 200


async def test_duplicate_msg_id_is_processed_once(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    body = fake.message("终止面试 张三 候选人放弃", clock, msg_id="msg-replayed")
    for _ in range(3):  # a redelivery, and a replay of the captured signed request
        resp = await fake.post_callback(client, body, clock)
        assert resp.status == 200

    [job] = await rows(app, IntakeItem, source="dingtalk")

    async def processed() -> bool:
        [row] = await rows(app, IntakeItem, id=job.id)
        return row.status == "done" and len(fake.session_posts) == 1

    await eventually(processed)
    assert len(await rows(app, Notice, kind="reply")) == 1


async def test_one_sign_taken_by_two_messages_at_once_admits_one(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    """Two messages carrying the same sign race past the owner check: the binding the database
    refuses (``intake.Refused``) turns the loser away, as a replayed sign."""
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    ts = ms(clock) - 1000
    first = fake.message("终止面试 张三 候选人放弃", clock, msg_id="msg-first")
    second = fake.message("终止面试 张三 候选人放弃", clock, msg_id="msg-second")
    answers = await asyncio.gather(
        fake.post_callback(client, first, clock, timestamp=ts), fake.post_callback(client, second, clock, timestamp=ts)
    )
    assert sorted(resp.status for resp in answers) == [200, 401]
    assert len(await rows(app, IntakeItem, source="dingtalk")) == 1


async def test_expired_session_webhook_falls_back_to_the_openapi(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app

    # A group message whose sessionWebhook has (nearly) expired: groupMessages/send.
    body = fake.message("终止面试 张三 候选人放弃", clock, webhook_minutes=0.5)
    assert (await fake.post_callback(client, body, clock)).status == 200

    async def sent_to_group() -> bool:
        return len(fake.group_sends) == 1

    await eventually(sent_to_group)
    card = fake.group_sends[0]
    assert card["openConversationId"] == body["conversationId"]
    assert card["msgKey"] == "sampleActionCard2"
    assert isinstance(card["msgParam"], str)  # a JSON string, as the API wants
    assert card["param"]["actionTitle1"] == "确认终止" and card["param"]["actionTitle2"] == "取消"
    assert clicked({"actionURL": card["param"]["actionURL1"]}) == f"确认 #{await prompt_id(app)}"

    # A 1:1 message answered after its webhook expired (by our clock): oToMessages/batchSend.
    direct = fake.message("取消", clock, group=False)
    clock.advance(minutes=91)
    fake.revoke_tokens()  # and the cached token has been revoked meanwhile: fetched again
    assert (await fake.post_callback(client, direct, clock, timestamp=ms(clock))).status == 200

    async def sent_to_user() -> bool:
        return len(fake.batch_sends) == 1

    await eventually(sent_to_user)
    assert fake.batch_sends[0]["userIds"] == ["hr01"]
    assert fake.batch_sends[0]["param"]["content"] == "没有可以取消的操作。"  # the group prompt is not this chat's
    assert fake.session_posts == []
    assert fake.token_fetches == 2
    [token] = await rows(app, SharedToken)
    assert token.key == "dingtalk:dingappkey123" and token.value == "token-2"


async def test_openapi_throttling_is_retried(make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    fake.api_failures.append((403, {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "message": "请求被限流"}))
    body = fake.message("帮助", clock, group=False, webhook_minutes=0)
    assert (await fake.post_callback(client, body, clock)).status == 200

    async def deferred() -> bool:
        replies = await rows(app, Notice, kind="reply")
        return len(replies) == 1 and replies[0].attempts == 1 and replies[0].status == "pending"

    await eventually(deferred)
    [reply] = await rows(app, Notice, kind="reply")
    assert "QpsLimit" in (reply.last_error or "")
    clock.advance(seconds=3)

    async def delivered() -> bool:
        [row] = await rows(app, Notice, kind="reply")
        return row.status == "sent" and len(fake.batch_sends) == 1

    await eventually(delivered)


async def test_unknown_sender_is_refused_politely(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await hr_app(make_client, clock, fake)
    body = fake.message(" 终止面试 张三 候选人放弃", clock, sender="stranger")
    assert (await fake.post_callback(client, body, clock)).status == 200

    async def refused() -> bool:
        return len(fake.session_posts) == 1

    await eventually(refused)
    assert "你还没有登记,钉钉 userId stranger" in fake.session_posts[0]["body"]["text"]["content"]
    assert (await interview_detail(client))["status"] == "in_progress"


async def test_callback_route_needs_dingtalk_configured(make_client: AppFactory) -> None:
    client = await make_client()
    resp = await client.post("/dingtalk/callback", data=b"{}")
    assert resp.status == 404
