"""No contact detail reaches a group, in any spelling: the chat path, a DingTalk group callback, and properties."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time

from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.chat.masking import KnownContacts, mask_reply, mask_sensitive
from bot.chat.messages import Reply
from bot.clock import FrozenClock
from bot.services.summary import send_daily_summary
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, eventually, started_interview
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.sched import SH, core_of, notices, send_event

# (as the platform sent it, the national number) for each spelling the probe saw posted in full.
MOBILES = [
    ("+8613987654321", "13987654321"),
    ("139-8765-4321", "13987654321"),
    ("139 1111 2222", "13911112222"),
    ("１３９２２２２３３３３", "13922223333"),
    ("8613955556666", "13955556666"),
    ("(+86)139 4444 5555", "13944445555"),
]


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))


def reads_number(text: str, national: str) -> bool:
    """Whether ``national`` can be read in ``text`` once widths and separators are ignored."""
    folded = unicodedata.normalize("NFKC", text)
    between = r"[\s\-.·/()\[\]]*"
    return re.search(between.join(national), folded) is not None


async def with_candidates(make_client: AppFactory, clock: FrozenClock, **settings: object) -> TestClient:
    client = await make_client(**settings)
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    for n, (mobile, _) in enumerate(MOBILES, 1):
        await started_interview(client, clock, f"iv-{n}", name=f"候选人{n}", mobile=mobile, email=None)
    await started_interview(client, clock, "iv-mail", name="冰冰", mobile="+44 7911 123456", email="bing@例子.中国")
    return client


async def test_group_view_hides_every_mobile_spelling(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await with_candidates(make_client, clock)
    app = client.server.app
    assert app is not None
    group = ChatUser(app, "hr01", chat_id="g1", chat_type="group")
    direct = ChatUser(app, "hr01")
    for n, (mobile, national) in enumerate(MOBILES, 1):
        shown = await direct.says(f"查看 候选人{n}")
        assert mobile in shown  # 1:1 shows the record as stored
        text = await group.says(f"查看 候选人{n}")
        assert f"【候选人{n}】" in text
        assert not reads_number(text, national), text
        assert f"{national[:3]}****{national[-4:]}" in text


async def test_group_view_hides_a_unicode_email_and_a_foreign_number(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await with_candidates(make_client, clock)
    app = client.server.app
    assert app is not None
    text = await ChatUser(app, "hr01", chat_id="g1", chat_type="group").says("查看 冰冰")
    assert "【冰冰】" in text
    assert "bing@" not in text and "b***@例子.中国" in text
    assert "447911123456" not in digits_of(text) and "7911123456" not in digits_of(text)


async def test_contacts_typed_into_a_group_are_not_echoed(make_client: AppFactory, clock: FrozenClock) -> None:
    """Unknown input is quoted back ("没有找到…「…」"): quoted, it is masked too."""
    client = await with_candidates(make_client, clock)
    app = client.server.app
    assert app is not None
    group = ChatUser(app, "hr01", chat_id="g1", chat_type="group")
    for mobile, national in [*MOBILES, ("(+86) 139.8765.4321", "13987654321")]:
        text = await group.says(f"查看 {mobile.replace(' ', '')}")
        assert not reads_number(text, national), text
    text = await group.says("查看 bing@例子.中国")
    assert "bing@" not in text


async def test_dingtalk_group_callback_is_masked(
    make_client: AppFactory, clock: FrozenClock, fake_dingtalk: FakeDingTalk
) -> None:
    fake = fake_dingtalk
    client = await make_client(**fake.settings())
    app = client.server.app
    assert isinstance(app, web.Application)
    await add_person(app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock, hr=("dingtalk", "hr01"), mobile="(+86)139 4444 5555", email="bing@例子.中国")
    resp = await fake.post_callback(client, fake.message("查看 张三", clock), clock)
    assert resp.status == 200

    async def answered() -> bool:
        return len(fake.session_posts) == 1

    await eventually(answered)
    body = fake.session_posts[0]["body"]
    text = str(body)
    assert "张三" in text and "139****5555" in text
    assert not reads_number(text, "13944445555")
    assert "bing@" not in text


# --- properties -------------------------------------------------------------------------------

_FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


@st.composite
def spelled(draw: st.DrawFn, national: str) -> str:
    """``national`` as people and platforms write it: prefixes, separators, full-width digits."""
    prefix = draw(st.sampled_from(["", "+86", "86", "0086", "(+86)", "+86 ", "(86) ", "+86-", "（+86）"]))
    out = []
    for i, digit in enumerate(national):
        out.append(_FULLWIDTH[digit] if draw(st.booleans()) else digit)
        if i < len(national) - 1:
            out.append(draw(st.sampled_from(["", "", "", " ", "-", ".", "\u3000", " - "])))
    return prefix + "".join(out)


mobiles = st.from_regex(r"\A1[3-9][0-9]{9}\Z")
# Surrounding text that cannot itself continue the number (a digit next to it would be another number).
words = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=12)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), national=mobiles, before=words, after=words)
def test_known_mobile_never_survives_group_masking(data: st.DataObject, national: str, before: str, after: str) -> None:
    stored = data.draw(spelled(national), label="stored")
    written = data.draw(spelled(national), label="written")
    known = KnownContacts({stored})
    reply = mask_reply(Reply(f"{before}{written}{after}", title=written), known)
    assert not reads_number(reply.text, national), reply.text
    assert not reads_number(reply.title, national), reply.title


@settings(max_examples=300, deadline=None)
@given(data=st.data(), national=mobiles, before=words, after=words)
def test_any_mainland_mobile_is_masked_without_knowing_it(
    data: st.DataObject, national: str, before: str, after: str
) -> None:
    written = data.draw(spelled(national), label="written")
    masked = mask_sensitive(f"{before} {written} {after}")
    assert not reads_number(masked, national), masked


@settings(max_examples=200, deadline=None)
@given(
    local=st.from_regex(r"\A[a-z][a-z0-9._]{0,10}\Z"),
    domain=st.sampled_from(["例子.中国", "example.com", "公司.cn", "mail.corp.com.cn"]),
    upper=st.booleans(),
)
def test_known_email_never_survives_group_masking(local: str, domain: str, upper: bool) -> None:
    email = f"{local}@{domain}"
    written = email.upper() if upper else email
    punycode = f"{local}@{domain.encode('idna').decode()}"
    known = KnownContacts({email})
    for text in (f"邮箱{written}已通知", f"邮箱 {punycode}", f"{written.replace('@', '＠')}"):
        masked = mask_sensitive(text, known).casefold()
        assert f"{local}@" not in masked and f"{local}＠" not in masked, masked


def test_ordinary_numbers_and_ids_are_left_alone() -> None:
    text = "编号 iv-20261125001,共 12 场,2026-12-01 14:00,已作答 3 题"
    assert mask_sensitive(text, KnownContacts({"13800001234"})) == text


async def test_daily_summary_to_group_robots_is_masked(make_client: AppFactory, clock: FrozenClock) -> None:
    """The robots post to groups: a stuck interview's candidate whose name carries their number is masked."""
    client = await make_client(
        wecom_robot_key="robot-key",
        wecom_api_base="http://127.0.0.1:9",  # nothing listens: the robot rows stay in the outbox
        dingtalk_robot_webhook="http://127.0.0.1:9/robot/send?access_token=t",
    )
    core = core_of(client)
    day = clock.now().astimezone(SH).date()
    clock.set(datetime.combine(day, time(8, 0), SH))
    # A platform that puts contact details into the name; one foreign number only the record tells us about.
    await send_event(client, clock, "interview.started", "iv-a", name="赵六 (+86)139 4444 5555", mobile="13944445555")
    await send_event(client, clock, "interview.started", "iv-b", name="钱七 07911 123456", mobile="+44 7911 123456")
    clock.set(datetime.combine(day, time(18, 5), SH))
    outcome = await send_daily_summary(core, day=day)
    assert sorted(outcome.sent) == ["robot:dingtalk_robot", "robot:wecom_robot"]
    bodies = [n.body for n in await notices(core, kind="daily_summary") if n.payload.get("msgtype") == "markdown"]
    assert len(bodies) == 2
    for body in bodies:
        assert "iv-a 赵六" in body and "iv-b 钱七" in body
        assert not reads_number(body, "13944445555") and "139****5555" in body
        assert "7911123456" not in digits_of(body) and "****3456" in body
