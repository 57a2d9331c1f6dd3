"""End to end over WeCom: 终止面试 → card → click 确认 → terminated → HR told, card greyed; AI bot in a group."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import ExitRecord, Interview, Notice
from tests.chat import add_person, prompt_id
from tests.conftest import AppFactory, eventually, started_interview
from tests.fakes.wecom_api import (
    BOT_AES_KEY,
    BOT_TOKEN,
    FakeWeCom,
    WeComSide,
    aibot_text,
    card_click_xml,
    text_xml,
    wecom_settings,
)


async def bot_with_hr(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> tuple[TestClient, web.Application]:
    """The bot wired to the fake WeCom, with 张三's interview in progress and HR hr01 registered."""
    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    return client, app


async def interview(app: web.Application) -> Interview:
    async with app[CORE].sessions() as session:
        return (await session.exec(select(Interview).where(Interview.platform_id == "iv-1"))).one()


async def test_full_flow_card_click_terminates_and_tells_hr(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await bot_with_hr(make_client, clock, fake_wecom)
    side = WeComSide()
    ts = int(clock.now().timestamp())

    path, body = side.app_post(text_xml("hr01", "终止面试 张三 候选人放弃", 1001), timestamp=ts)
    resp = await client.post(path, data=body)
    assert resp.status == 200 and await resp.read() == b""

    async def card_sent() -> bool:
        return any(m["msgtype"] == "template_card" for m in fake_wecom.sent("message/send"))

    await eventually(card_sent)
    [card_msg] = fake_wecom.sent("message/send")
    assert card_msg["touser"] == "hr01" and card_msg["agentid"] == 1000002
    card = card_msg["template_card"]
    assert card["card_type"] == "button_interaction"
    assert "张三" in card["sub_title_text"] and "候选人放弃" in card["sub_title_text"]
    buttons = {b["text"]: b["key"] for b in card["button_list"]}
    assert set(buttons) == {"确认终止", "取消"}
    # Each key names the prompt: a press answers this prompt and no other.
    tied = await prompt_id(app)
    assert buttons == {
        "确认终止": "cmd:" + quote(f"确认 #{tied}", safe=""),
        "取消": "cmd:" + quote(f"取消 #{tied}", safe=""),
    }
    assert (await interview(app)).status == "in_progress"  # nothing happens before the click

    click = card_click_xml("hr01", task_id=card["task_id"], event_key=buttons["确认终止"], response_code="rc-1")
    path, body = side.app_post(click, timestamp=ts + 10)
    assert (await client.post(path, data=body)).status == 200
    # A double click / redelivery of the same click is dropped.
    path, body = side.app_post(click, timestamp=ts + 11)
    assert (await client.post(path, data=body)).status == 200

    async def terminated() -> bool:
        return (await interview(app)).status == "terminated"

    await eventually(terminated)
    async with app[CORE].sessions() as session:
        record = (await session.exec(select(ExitRecord))).one()
    assert record.operator == "wecom:hr01"
    assert record.reason == "候选人放弃"

    async def told_and_updated() -> bool:
        texts = [m["text"]["content"] for m in fake_wecom.sent("message/send") if m["msgtype"] == "text"]
        return len(texts) == 1 and len(fake_wecom.sent("message/update_template_card")) == 1

    await eventually(told_and_updated)
    # hr01 is the operator and the HR owner: one message, the reply to 确认, and no second HR notice.
    [told] = [m["text"]["content"] for m in fake_wecom.sent("message/send") if m["msgtype"] == "text"]
    assert "已终止 张三 的面试" in told
    assert "已安排通过邮件通知候选人" in told
    assert "跟进待办已加到你的「待办」" in told
    async with app[CORE].sessions() as session:
        assert (await session.exec(select(Notice).where(Notice.kind == "hr_terminated"))).all() == []
    [update] = fake_wecom.sent("message/update_template_card")
    assert update == {
        "userids": ["hr01"],
        "agentid": 1000002,
        "response_code": "rc-1",
        "button": {"replace_name": "已确认"},
    }
    # One access token served every call.
    assert len(fake_wecom.sent("gettoken")) == 1
    assert all(c.query.get("access_token") == "token-1" for c in fake_wecom.calls if c.path != "gettoken")


async def test_ai_bot_in_a_group_answers_through_response_url(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await bot_with_hr(make_client, clock, fake_wecom)
    side = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    ts = int(clock.now().timestamp())

    ask = aibot_text(
        "hr01",
        "@面试助手 终止面试 张三 候选人放弃",
        msgid="CAIQ-1",
        response_url=fake_wecom.response_url("code-1"),
        chatid="group-42",
    )
    path, body = side.bot_post(ask, timestamp=ts)
    resp = await client.post(path, data=body)
    assert resp.status == 200 and await resp.read() == b""

    async def answered(n: int) -> bool:
        return len(fake_wecom.sent("aibot/response")) == n

    await eventually(lambda: answered(1))
    [prompt] = fake_wecom.sent("aibot/response")
    assert prompt["msgtype"] == "markdown"
    assert "张三" in prompt["markdown"]["content"] and "确认" in prompt["markdown"]["content"]
    assert fake_wecom.sent("message/send") == []  # nothing went out as an app message

    confirm = aibot_text(
        "hr01", "@面试助手 确认", msgid="CAIQ-2", response_url=fake_wecom.response_url("code-2"), chatid="group-42"
    )
    path, body = side.bot_post(confirm, timestamp=ts + 5)
    assert (await client.post(path, data=body)).status == 200
    await eventually(lambda: answered(2))
    assert "已终止 张三 的面试" in fake_wecom.sent("aibot/response")[1]["markdown"]["content"]
    assert (await interview(app)).status == "terminated"
    urls = [c.query["response_code"] for c in fake_wecom.calls if c.path == "aibot/response"]
    assert urls == ["code-1", "code-2"]  # each response_url used once


async def test_cancel_click_keeps_the_interview_and_greys_the_card(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await bot_with_hr(make_client, clock, fake_wecom)
    side = WeComSide()
    ts = int(clock.now().timestamp())
    path, body = side.app_post(text_xml("hr01", "终止面试 张三 系统故障", 2001), timestamp=ts)
    assert (await client.post(path, data=body)).status == 200

    async def card_sent() -> bool:
        return len(fake_wecom.sent("message/send")) == 1

    await eventually(card_sent)
    card = fake_wecom.sent("message/send")[0]["template_card"]
    cancel_key = next(b["key"] for b in card["button_list"] if b["text"] == "取消")
    click = card_click_xml("hr01", task_id=card["task_id"], event_key=cancel_key, response_code="rc-9")
    path, body = side.app_post(click, timestamp=ts + 3)
    assert (await client.post(path, data=body)).status == 200

    async def done() -> bool:
        return len(fake_wecom.sent("message/send")) == 2 and len(fake_wecom.sent("message/update_template_card")) == 1

    await eventually(done)
    assert "已取消" in fake_wecom.sent("message/send")[1]["text"]["content"]
    assert fake_wecom.sent("message/update_template_card")[0]["button"] == {"replace_name": "已取消"}
    assert (await interview(app)).status == "in_progress"


async def test_ai_bot_one_to_one_stranger_is_refused(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    side = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    msg = aibot_text("stranger", "终止面试 张三 候选人放弃", msgid="m-9", response_url=fake_wecom.response_url("c9"))
    path, body = side.bot_post(msg, timestamp=int(clock.now().timestamp()))
    assert (await client.post(path, data=body)).status == 200

    async def answered() -> bool:
        return len(fake_wecom.sent("aibot/response")) == 1

    await eventually(answered)
    assert "你还没有登记,企业微信账号 stranger" in fake_wecom.sent("aibot/response")[0]["markdown"]["content"]


def test_several_ai_bot_replies_share_one_response_url() -> None:
    from bot.channels.wecom.chat import merge_replies
    from bot.chat.messages import Reply

    merged = merge_replies([Reply("第一段"), Reply("第二段", kind="confirm", buttons=(("确认", "确认"),))])
    assert len(merged) == 1
    assert merged[0].text == "第一段\n\n第二段"
    assert merge_replies([Reply("一")]) == [Reply("一")]


async def test_group_view_is_masked_and_direct_view_is_not(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """The masking rule end to end: 查看 in a group (AI bot) hides contacts, 1:1 (app) shows them."""
    client, _ = await bot_with_hr(make_client, clock, fake_wecom)
    ts = int(clock.now().timestamp())

    bot_side = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    ask = aibot_text(
        "hr01", "@面试助手 查看 张三", msgid="CAIQ-v", response_url=fake_wecom.response_url("v"), chatid="g"
    )
    path, body = bot_side.bot_post(ask, timestamp=ts)
    assert (await client.post(path, data=body)).status == 200

    async def group_answered() -> bool:
        return len(fake_wecom.sent("aibot/response")) == 1

    await eventually(group_answered)
    group_text = fake_wecom.sent("aibot/response")[0]["markdown"]["content"]
    assert "138****1234" in group_text
    assert "13800001234" not in group_text and "zhangsan@example.com" not in group_text

    path, body = WeComSide().app_post(text_xml("hr01", "查看 张三", 2001), timestamp=ts)
    assert (await client.post(path, data=body)).status == 200

    async def direct_answered() -> bool:
        return any("张三" in str(m) for m in fake_wecom.sent("message/send"))

    await eventually(direct_answered)
    direct = next(m for m in fake_wecom.sent("message/send") if "张三" in str(m))
    assert "13800001234" in str(direct) and "zhangsan@example.com" in str(direct)


EXPIRED = "这个确认已过期(超过5分钟),没有执行。如需继续,请重新发起。"


async def test_card_click_after_the_prompt_expired_says_so_and_changes_nothing(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await bot_with_hr(make_client, clock, fake_wecom)
    side = WeComSide()
    ts = int(clock.now().timestamp())
    path, body = side.app_post(text_xml("hr01", "终止面试 张三 候选人放弃", 3001), timestamp=ts)
    assert (await client.post(path, data=body)).status == 200

    async def card_sent() -> bool:
        return len(fake_wecom.sent("message/send")) == 1

    await eventually(card_sent)
    card = fake_wecom.sent("message/send")[0]["template_card"]
    confirm_key = next(b["key"] for b in card["button_list"] if b["text"] == "确认终止")
    clock.advance(seconds=301)  # past BOT_CONFIRM_TTL (300 s)
    click = card_click_xml("hr01", task_id=card["task_id"], event_key=confirm_key, response_code="rc-late")
    path, body = side.app_post(click, timestamp=ts + 301)
    assert (await client.post(path, data=body)).status == 200

    async def answered() -> bool:
        return len(fake_wecom.sent("message/send")) == 2

    await eventually(answered)
    assert fake_wecom.sent("message/send")[1]["text"]["content"] == EXPIRED
    assert (await interview(app)).status == "in_progress"
    async with app[CORE].sessions() as session:
        assert (await session.exec(select(ExitRecord))).all() == []


async def test_a_quoted_reply_in_free_words_over_the_callback_opens_the_right_card(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """WeCom's quoted reply (the quote, a dashed line, the new text), typed freely: the new text is
    read, the card names the candidate and reason, and a typed 「对,停吧」 confirms it."""
    client, app = await bot_with_hr(make_client, clock, fake_wecom)
    side = WeComSide()
    ts = int(clock.now().timestamp())
    text = "「刘经理:张三那场先停了吧」\n- - - - - - - - - - - - - - -\n帮我把张三的面试结束一下,摄像头打不开"
    path, body = side.app_post(text_xml("hr01", text, 2001), timestamp=ts)
    assert (await client.post(path, data=body)).status == 200

    async def card_sent() -> bool:
        return any(m["msgtype"] == "template_card" for m in fake_wecom.sent("message/send"))

    await eventually(card_sent)
    [card_msg] = fake_wecom.sent("message/send")
    assert "张三" in card_msg["template_card"]["sub_title_text"]
    assert "系统故障" in card_msg["template_card"]["sub_title_text"]
    assert (await interview(app)).status == "in_progress"
    # A sentence that merely starts with 确认 changes nothing; a standalone yes confirms.
    path, body = side.app_post(text_xml("hr01", "确认一下张三是不是还在面?", 2002), timestamp=ts + 5)
    assert (await client.post(path, data=body)).status == 200

    async def answered() -> bool:
        return len([m for m in fake_wecom.sent("message/send") if m["msgtype"] == "text"]) == 1

    await eventually(answered)
    assert (await interview(app)).status == "in_progress"
    path, body = side.app_post(text_xml("hr01", "对,停吧", 2003), timestamp=ts + 10)
    assert (await client.post(path, data=body)).status == 200

    async def terminated() -> bool:
        return (await interview(app)).status == "terminated"

    await eventually(terminated)
    async with app[CORE].sessions() as session:
        record = (await session.exec(select(ExitRecord))).one()
    assert record.reason_code == "system_failure" and "摄像头打不开" in record.detail
