"""Names from outside are text on every channel (issue 22): a candidate whose name and position,
sent in a signed platform event, are markdown links, HTML, mention tags and card JSON
metacharacters shows them as plain visible text in the confirmation card or markdown reply on
WeCom (app, AI bot by HTTP and by long connection), DingTalk (a group chat) and Feishu, in the
daily summary posted by every group robot, and as escaped HTML in mail.

"Plain visible text" is checked twice: nothing a platform reads as markup is left (a link's
``](http``, ``<at``, ``<@all>``, ``<a href``, ``@所有人``, ``**``), and the text a person reads is
the name character for character once fullwidth forms are folded (NFKC, as ``bot.chat.markup``
promises). Fields a platform shows as plain text (WeCom template card texts, Feishu
``plain_text``) carry the name exactly, quotes, backslashes and braces included.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from markupsafe import escape

from bot.clock import FrozenClock
from bot.services.summary import send_daily_summary
from tests.chat import add_person
from tests.conftest import SHANGHAI, AppFactory, admin_headers, event, eventually, post_event
from tests.fakes.dingtalk_api import ROBOT_SECRET, FakeDingTalk
from tests.fakes.feishu_api import FakeFeishu
from tests.fakes.smtp import SmtpServer
from tests.fakes.wecom_aibot_ws import FakeAiBotGateway
from tests.fakes.wecom_api import BOT_AES_KEY, BOT_TOKEN, FakeWeCom, WeComSide, aibot_text, text_xml, wecom_settings
from tests.sched import core_of

NAME = "[点此重新预约](http://evil.example)<at id=all></at><@all>@所有人"
POSITION = '<a href="http://evil.example">改约</a> **急招** "引号" \\ {大括号} <at user_id="all"></at>'
LIVE = ("](http://evil", "<at", "<@all>", "<a href", "@所有人", "**急招**")


def assert_plain(shown: str, *values: str) -> None:
    """No markup left that a platform would act on, and every value readable as typed."""
    for bit in LIVE:
        assert bit not in shown, (bit, shown)
    folded = unicodedata.normalize("NFKC", shown)
    for value in values:
        assert value in folded, (value, shown)


async def hostile_interview(
    client: TestClient, clock: FrozenClock, hr: tuple[str, str], interview_id: str = "iv-1"
) -> None:
    """Scheduled and started by signed platform events, with the hostile name and position."""
    for kind in ("interview.scheduled", "interview.started"):
        payload = event(kind, interview_id, name=NAME, hr=hr, occurred_at=clock.now())
        payload["interview"]["position"] = POSITION
        resp = await post_event(client, clock, payload)
        assert resp.status == 200, await resp.text()


async def test_wecom_app_card_and_text_reply(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    await hostile_interview(client, clock, ("wecom", "hr01"))
    side = WeComSide()
    ts = int(clock.now().timestamp())
    path, body = side.app_post(text_xml("hr01", "终止面试 iv-1 候选人放弃", 2001), timestamp=ts)
    assert (await client.post(path, data=body)).status == 200

    async def card_sent() -> bool:
        return any(m["msgtype"] == "template_card" for m in fake_wecom.sent("message/send"))

    await eventually(card_sent)
    [card] = [m["template_card"] for m in fake_wecom.sent("message/send")]
    # A template card's texts are plain text on WeCom: the values arrive exactly, JSON intact.
    assert f"候选人:{NAME}" in card["sub_title_text"] and f"岗位:{POSITION}" in card["sub_title_text"]

    path, body = side.app_post(text_xml("hr01", "确认", 2002), timestamp=ts + 5)
    assert (await client.post(path, data=body)).status == 200

    async def told() -> bool:
        return any(m["msgtype"] == "text" for m in fake_wecom.sent("message/send"))

    await eventually(told)
    [text] = [m["text"]["content"] for m in fake_wecom.sent("message/send") if m["msgtype"] == "text"]
    # App text messages read <a href> links and nothing else: no tag survives, the name reads as sent.
    assert "<" not in text and ">" not in text
    assert f"已终止 {NAME} 的面试" in unicodedata.normalize("NFKC", text)


async def test_wecom_ai_bot_single_chat_markdown(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    await hostile_interview(client, clock, ("wecom", "hr01"))
    side = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    ask = aibot_text("hr01", "终止面试 iv-1 候选人放弃", msgid="CAIQ-h1", response_url=fake_wecom.response_url("c1"))
    path, body = side.bot_post(ask, timestamp=int(clock.now().timestamp()))
    assert (await client.post(path, data=body)).status == 200

    async def answered() -> bool:
        return len(fake_wecom.sent("aibot/response")) == 1

    await eventually(answered)
    [prompt] = fake_wecom.sent("aibot/response")
    assert prompt["msgtype"] == "markdown"
    assert_plain(prompt["markdown"]["content"], f"候选人:{NAME}", f"岗位:{POSITION}")


async def test_wecom_ai_bot_long_connection_card_stream_and_push(
    make_client: AppFactory, clock: FrozenClock, gateway: FakeAiBotGateway
) -> None:
    client = await make_client(**gateway.settings())
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    await hostile_interview(client, clock, ("wecom", "hr01"))
    await gateway.wait_subscribed()
    await gateway.message("hr01", "终止面试 iv-1 候选人放弃", msgid="h-1")

    async def said(n: int) -> bool:
        return len(gateway.said) >= n

    await eventually(lambda: said(1))
    card = gateway.said[0]["body"]["template_card"]
    assert f"候选人:{NAME}" in card["sub_title_text"] and f"岗位:{POSITION}" in card["sub_title_text"]
    await gateway.message("hr01", "确认", msgid="h-2")
    await eventually(lambda: said(2))
    assert gateway.said[1]["body"]["msgtype"] == "stream"  # a stream's content is markdown
    assert_plain(gateway.content(gateway.said[1]), f"已终止 {NAME} 的面试")

    # A staff notice pushed as markdown (HR hr01 told of an admin's termination) is text too.
    await hostile_interview(client, clock, ("wecom", "hr01"), "iv-2")
    resp = await client.post("/api/interviews/iv-2/terminate", json={"reason": "系统故障"}, headers=admin_headers())
    assert resp.status == 200, await resp.text()

    async def pushed() -> bool:
        return any(f["body"]["chatid"] == "hr01" for f in gateway.sends)

    await eventually(pushed)
    [to_hr] = [f for f in gateway.sends if f["body"]["chatid"] == "hr01"]
    assert to_hr["body"]["msgtype"] == "markdown"
    assert_plain(gateway.content(to_hr), NAME)


@pytest.fixture
async def dingtalk(clock: FrozenClock) -> AsyncIterator[FakeDingTalk]:
    """The DingTalk fake on the test clock (its robot checks a signed timestamp against it)."""
    fake = FakeDingTalk(clock=clock)
    await fake.start()
    yield fake
    await fake.close()


async def test_dingtalk_action_card_direct_and_in_a_group(
    make_client: AppFactory, clock: FrozenClock, dingtalk: FakeDingTalk
) -> None:
    client = await make_client(**dingtalk.settings())
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await hostile_interview(client, clock, ("dingtalk", "hr01"))
    ask = dingtalk.message("终止面试 iv-1 候选人放弃", clock, group=False)
    assert (await dingtalk.post_callback(client, ask, clock)).status == 200

    async def prompted(n: int) -> bool:
        return len(dingtalk.session_posts) == n

    await eventually(lambda: prompted(1))
    prompt = dingtalk.session_posts[0]["body"]
    assert prompt["msgtype"] == "actionCard"
    assert_plain(prompt["actionCard"]["text"], f"候选人:{NAME}", f"岗位:{POSITION}")
    assert [b["title"] for b in prompt["actionCard"]["btns"]] == ["确认终止", "取消"]

    # In a group the reply is masked (links are for 1:1 chats) and what is left is text as well.
    ask = dingtalk.message(" 终止面试 iv-1 候选人放弃", clock)
    assert (await dingtalk.post_callback(client, ask, clock)).status == 200
    await eventually(lambda: prompted(2))
    group = dingtalk.session_posts[1]["body"]
    assert group["at"]["atUserIds"] == ["hr01"]
    assert_plain(group["actionCard"]["text"], "候选人:[点此重新预约](")


async def test_dingtalk_help_request_with_a_very_long_hostile_reason(
    make_client: AppFactory, clock: FrozenClock, dingtalk: FakeDingTalk
) -> None:
    """A candidate's help text (up to 500 characters from the platform) reaches HR as an ActionCard
    whose markdown shows all of it as text."""
    client = await make_client(**dingtalk.settings())
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await hostile_interview(client, clock, ("dingtalk", "hr01"))
    reason = ("摄像头坏了[点此重新预约](http://evil.example)<at id=all></at>@所有人 " * 10)[:500]
    payload = event(
        "interview.help_requested", name=NAME, hr=("dingtalk", "hr01"), occurred_at=clock.now(), data={"reason": reason}
    )
    payload["interview"]["position"] = POSITION
    resp = await post_event(client, clock, payload)
    assert resp.status == 200, await resp.text()

    async def sent() -> bool:
        return len(dingtalk.batch_sends) == 1

    await eventually(sent)
    [send] = dingtalk.batch_sends
    assert send["userIds"] == ["hr01"] and send["msgKey"].startswith("sampleActionCard")
    param = json.loads(send["msgParam"])  # the card's JSON, a string inside the request's JSON
    assert_plain(param["text"], NAME, POSITION, f"原因:{reason.strip()}")


async def test_feishu_card_and_text_reply(make_client: AppFactory, clock: FrozenClock, fake_feishu: FakeFeishu) -> None:
    client = await make_client(**fake_feishu.settings())
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="feishu")
    await hostile_interview(client, clock, ("feishu", "hr01"))
    assert (await fake_feishu.post(client, fake_feishu.message("终止面试 iv-1 候选人放弃"))).status == 200

    async def shown(n: int) -> bool:
        return len(fake_feishu.messages) >= n

    await eventually(lambda: shown(1))
    prompt = fake_feishu.messages[0]
    assert prompt["msg_type"] == "interactive"
    [div] = [e for e in prompt["content"]["elements"] if e["tag"] == "div"]
    assert div["text"]["tag"] == "plain_text"  # Feishu shows it as typed
    assert f"候选人:{NAME}" in div["text"]["content"] and f"岗位:{POSITION}" in div["text"]["content"]

    assert (await fake_feishu.post(client, fake_feishu.message("确认"))).status == 200
    await eventually(lambda: shown(2))
    done = fake_feishu.messages[1]
    assert done["msg_type"] == "text"  # text messages read <at user_id="all"> and links
    assert_plain(done["content"]["text"], f"已终止 {NAME} 的面试")


async def test_mail_html_is_escaped(make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer) -> None:
    client = await make_client()
    await hostile_interview(client, clock, ("wecom", "hr01"))
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200, await resp.text()

    async def mailed() -> bool:
        return len(smtp.messages) == 1

    await eventually(mailed)
    html_part = smtp.messages[0].get_body(preferencelist=("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    assert str(escape(NAME)) in html and str(escape(POSITION)) in html
    assert "<at" not in html and "<a href" not in html
    text_part = smtp.messages[0].get_body(preferencelist=("plain",))
    assert text_part is not None and NAME in str(text_part.get_content())  # plain text: as sent


async def test_daily_summary_on_every_robot_and_in_a_manager_chat(
    make_client: AppFactory,
    clock: FrozenClock,
    fake_wecom: FakeWeCom,
    dingtalk: FakeDingTalk,
    fake_feishu: FakeFeishu,
) -> None:
    client = await make_client(
        **wecom_settings(fake_wecom),
        dingtalk_robot_webhook=dingtalk.robot_webhook(),
        dingtalk_robot_secret=ROBOT_SECRET,
        **fake_feishu.settings(feishu_summary_chat_id="oc_summary"),
        public_base_url="https://bot.example.com",
    )
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", NAME[:32], "hr")  # an HR name from an import, hostile too
    await add_person(client.server.app, "mgr1", "周经理", "manager")
    await hostile_interview(client, clock, ("wecom", "hr01"))  # still running: listed as stuck
    clock.set(clock.now() + timedelta(hours=10))
    day = clock.now().astimezone(SHANGHAI).date()
    outcome = await send_daily_summary(core_of(client), day=day)
    assert sorted(outcome.sent) == ["robot:dingtalk_robot", "robot:feishu_group", "robot:wecom_robot", "wecom:mgr1"]

    async def posted() -> bool:
        robots = [m for m in fake_wecom.sent("webhook/send") if m["msgtype"] == "markdown"]
        cards = [m for m in fake_feishu.messages if m["msg_type"] == "interactive"]
        texts = [m for m in fake_wecom.sent("message/send") if m.get("touser") == "mgr1"]
        return bool(robots and dingtalk.robot_posts and cards and texts)

    await eventually(posted)
    stuck = f"iv-1 {NAME}({POSITION})"
    [wecom] = [m["markdown"]["content"] for m in fake_wecom.sent("webhook/send") if m["msgtype"] == "markdown"]
    [dingtalk] = [m["markdown"]["text"] for m in dingtalk.robot_posts if m["msgtype"] == "markdown"]
    [card] = [m["content"] for m in fake_feishu.messages if m["msg_type"] == "interactive"]
    [feishu] = [e["content"] for e in card["elements"] if e["tag"] == "markdown"]
    for markdown in (wecom, dingtalk, feishu):
        assert_plain(markdown, stuck, f"HR:{NAME[:32]}")
        # The summary's own markup is still markup.
        assert f"### {day} 面试退出日报" in markdown and "**仍在进行超过" in markdown
        assert "[网页后台统计](https://bot.example.com/console/stats?" in markdown
    [to_manager] = [m for m in fake_wecom.sent("message/send") if m.get("touser") == "mgr1"]
    assert to_manager["msgtype"] == "text" and "<" not in to_manager["text"]["content"]
    assert stuck in unicodedata.normalize("NFKC", to_manager["text"]["content"])
