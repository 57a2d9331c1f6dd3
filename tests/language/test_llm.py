"""The optional language model (bot/language/llm.py) against a fake OpenAI-compatible endpoint.

The fake (tests/fakes/openai_compat.py) is first checked with the official ``openai`` client, so the
wire format ``propose`` is tested against is the real one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletion
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from bot.language import llm
from bot.language.intents import CandidateRef, Intent, Kind
from bot.services.context import Core
from bot.templating import Templates
from storage.db import create_engine, session_maker
from storage.models import AuditEvent
from tests.chat import ChatUser, add_person
from tests.conftest import CLOCK_START, make_settings, started_interview
from tests.fakes.openai_compat import FakeChatCompletions, ToolCall
from tests.interviews import status_of

KEY = "sk-test-key"
MODEL = "test-model"
HR = "wecom:hr01"
CHAT = "wecom:hr01"


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatCompletions]:
    server = FakeChatCompletions(api_key=KEY)
    await server.start()
    yield server
    await server.close()


CoreFactory = Callable[..., Core]


@pytest.fixture
async def make_core(clean_db: str, clock: FrozenClock, fake: FakeChatCompletions) -> AsyncIterator[CoreFactory]:
    """A Core on the test database and clock whose language model is the fake (overrides: settings)."""
    engine = create_engine(clean_db)

    def factory(**overrides: Any) -> Core:
        values: dict[str, Any] = {"llm_base_url": fake.url, "llm_model": MODEL, "llm_api_key": KEY}
        values.update(overrides)
        settings = make_settings(clean_db, **values)
        return Core(settings=settings, sessions=session_maker(engine), clock=clock, templates=Templates())

    yield factory
    await engine.dispose()


async def audit_rows(core: Core) -> list[AuditEvent]:
    async with core.sessions() as session:
        return list((await session.exec(select(AuditEvent).where(AuditEvent.action == llm.AUDIT_ACTION))).all())


def counted(core: Core, outcome: str) -> float:
    value = core.metrics.registry.get_sample_value("bot_llm_proposals_total", {"outcome": outcome})
    return value or 0.0


# --- the fake speaks the real wire format -----------------------------------------------------


async def test_the_official_client_reads_the_fakes_tool_call(fake: FakeChatCompletions) -> None:
    fake.answer = ToolCall.of("reschedule", candidate="张三", time="明天下午3点")
    client = openai.AsyncOpenAI(base_url=fake.url, api_key=KEY, max_retries=0)
    try:
        completion = await client.chat.completions.create(  # type: ignore[call-overload]
            model=MODEL,
            messages=[{"role": "user", "content": "张三改到明天下午3点"}],
            tools=list(llm.TOOLS),
            tool_choice="auto",
            temperature=0,
        )
    finally:
        await client.close()
    assert isinstance(completion, ChatCompletion)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "reschedule"
    assert json.loads(call.function.arguments) == {"candidate": "张三", "time": "明天下午3点"}
    assert completion.usage is not None and completion.usage.total_tokens > completion.usage.completion_tokens
    # What the SDK sent is what the fake recorded: our tool definitions went through unchanged.
    assert fake.requests[0]["tools"] == json.loads(json.dumps(llm.TOOLS))


async def test_the_official_client_raises_authentication_error_on_a_wrong_key(fake: FakeChatCompletions) -> None:
    client = openai.AsyncOpenAI(base_url=fake.url, api_key="sk-wrong", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert fake.rejected == 1 and fake.requests == []


async def test_the_fake_refuses_a_request_without_messages_as_openai_does(fake: FakeChatCompletions) -> None:
    client = openai.AsyncOpenAI(base_url=fake.url, api_key=KEY, max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="", messages=[])
    finally:
        await client.close()
    assert caught.value.status_code == 400
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with http.post(fake.url + "/chat/completions", data=b"{not json", headers=headers) as response:
            assert response.status == 400
            assert set((await response.json())["error"]) == {"message", "type", "param", "code"}


# --- proposals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "call", "expected"),
    [
        (
            "张三那个面试先停了吧,网络太差,改到明天下午3点",
            ToolCall.of("terminate_reschedule", candidate="张三", reason="网络太差", time="明天下午3点"),
            Intent(
                kind=Kind.terminate_reschedule,
                refs=(CandidateRef(text="张三"),),
                words="网络太差",
                time_text="明天下午3点",
            ),
        ),
        (
            "麻烦把李四的面试挪到周五上午十点",
            ToolCall.of("reschedule", candidate="李四", time="周五上午十点"),
            Intent(kind=Kind.reschedule, refs=(CandidateRef(text="李四"),), time_text="周五上午十点"),
        ),
        (
            "王五 不想面了 帮忙结束一下",
            ToolCall.of("terminate", candidate="王五", reason=""),
            Intent(kind=Kind.terminate, refs=(CandidateRef(text="王五"),)),
        ),
        (
            "看看赵六面到哪了",
            ToolCall.of("show", candidate="赵六"),
            Intent(kind=Kind.show, refs=(CandidateRef(text="赵六"),)),
        ),
        ("这周退出的情况给我看看", ToolCall.of("stats", period="本周"), Intent(kind=Kind.stats, args="本周")),
        ("现在谁在面", ToolCall("in_progress"), Intent(kind=Kind.in_progress)),
        ("我还有啥没处理的", ToolCall("todos", ""), Intent(kind=Kind.todos)),
    ],
)
async def test_propose_turns_the_tool_call_into_an_llm_intent(
    make_core: CoreFactory, fake: FakeChatCompletions, text: str, call: ToolCall, expected: Intent
) -> None:
    core = make_core()
    fake.answer = call
    intent = await llm.propose(core, text, actor=HR, chat=CHAT)
    assert intent == Intent(
        kind=expected.kind,
        refs=expected.refs,
        words=expected.words,
        time_text=expected.time_text,
        args=expected.args,
        reason_code=None,
        source="llm",
        sure=0.5,
        notes=(f"proposed by {MODEL}",),
    )
    assert not intent.is_action or intent.sure < 1.0
    (request,) = fake.requests
    assert request["model"] == MODEL and request["tool_choice"] == "auto" and request["temperature"] == 0
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][1]["content"] == text
    names = {t["function"]["name"] for t in request["tools"]}
    assert names == {"terminate", "reschedule", "terminate_reschedule", "in_progress", "show", "stats", "todos", "help"}
    assert all(t["type"] == "function" for t in request["tools"])


async def test_each_use_is_audited_on_the_test_clock_without_the_message(
    make_core: CoreFactory, fake: FakeChatCompletions
) -> None:
    core = make_core()
    fake.answer = ToolCall.of("terminate", candidate="张三", reason="候选人说网络太差")
    text = "张三的面试停一下,候选人说网络太差"
    assert await llm.propose(core, text, actor=HR, chat="wecom:group-1") is not None
    (row,) = await audit_rows(core)
    assert (row.actor, row.chat, row.interview_id) == (HR, "wecom:group-1", None)
    assert row.at.replace(tzinfo=CLOCK_START.tzinfo) == CLOCK_START
    assert set(row.detail) == {"model", "kind", "outcome", "elapsed_ms"}
    assert row.detail["model"] == MODEL and row.detail["kind"] == "terminate" and row.detail["outcome"] == "ok"
    assert isinstance(row.detail["elapsed_ms"], int) and row.detail["elapsed_ms"] >= 0
    assert "张三" not in json.dumps(row.detail, ensure_ascii=False)
    assert counted(core, "ok") == 1


async def test_no_settings_no_request_and_no_audit(make_core: CoreFactory, fake: FakeChatCompletions) -> None:
    fake.answer = ToolCall.of("terminate", candidate="张三", reason="")
    for missing in ("llm_base_url", "llm_model", "llm_api_key"):
        core = make_core(**{missing: None})
        assert not core.settings.llm_enabled
        assert await llm.propose(core, "张三的面试停掉", actor=HR, chat=CHAT) is None
        assert await audit_rows(core) == []
    core = make_core(llm_api_key="")
    assert await llm.propose(core, "张三的面试停掉", actor=HR, chat=CHAT) is None
    assert fake.requests == [] and fake.rejected == 0
    # By default (no BOT_LLM_* at all) it is off.
    assert not make_core(llm_base_url=None, llm_model=None, llm_api_key=None).settings.llm_enabled


async def test_a_slow_model_times_out_within_the_timeout(make_core: CoreFactory, fake: FakeChatCompletions) -> None:
    core = make_core(llm_timeout_seconds=0.3)
    fake.answer = ToolCall.of("terminate", candidate="张三", reason="")
    fake.delay = 10
    started = time.monotonic()
    assert await llm.propose(core, "张三的面试停掉", actor=HR, chat=CHAT) is None
    elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 1.5
    (row,) = await audit_rows(core)
    assert row.detail["outcome"] == "timeout" and row.detail["kind"] is None
    assert counted(core, "timeout") == 1


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (ToolCall("terminate", '{"candidate": "张三", "reason": '), "arguments are not JSON"),
        (ToolCall("terminate", '["张三"]'), "arguments are not an object"),
        (ToolCall("terminate", '{"candidate": 3, "reason": ""}'), "argument candidate is not a string"),
        (ToolCall("reschedule", '{"candidate": "张三"}'), "argument time missing"),
        (ToolCall.of("delete_everything", candidate="张三"), "unknown function"),
        (ToolCall.of("terminate", candidate="李四", reason=""), "candidate not in the message"),
        (ToolCall.of("terminate", candidate="[phone]", reason=""), "candidate not in the message"),
        (ToolCall.of("stats", period="去年"), "unknown period"),
        (ToolCall.of("terminate", candidate="张" * 41, reason=""), "argument candidate too long"),
        ("我不确定你想做什么。", "no tool call"),
    ],
)
async def test_anything_but_a_usable_tool_call_is_no_proposal(
    make_core: CoreFactory, fake: FakeChatCompletions, answer: ToolCall | str, why: str
) -> None:
    core = make_core()
    fake.answer = answer
    assert await llm.propose(core, "张三的面试停掉 [phone]", actor=HR, chat=CHAT) is None
    (row,) = await audit_rows(core)
    assert row.detail["outcome"] == "no_proposal" and row.detail["kind"] is None
    assert row.detail["why"].startswith(why)


async def test_a_name_in_scope_may_be_proposed_though_not_typed(
    make_core: CoreFactory, fake: FakeChatCompletions
) -> None:
    core = make_core()
    fake.answer = ToolCall.of("show", candidate="李四")
    intent = await llm.propose(core, "那个产品经理面得怎么样", actor=HR, chat=CHAT, names=["李四", "王五"])
    assert intent is not None and intent.refs == (CandidateRef(text="李四"),)
    assert "李四, 王五" in fake.requests[0]["messages"][0]["content"]


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ({"status": 500}, "HTTP 500"),
        ({"status": 429}, "HTTP 429"),
        ({"raw_body": b"<html>bad gateway</html>"}, "response is not JSON"),
        ({"raw_body": b'{"choices": []}'}, "response has no choices[0].message"),
        ({"raw_body": b'{"choices": [{"message": {"content": "' + b"x" * (70 * 1024) + b'"}}]}'}, "response larger"),
    ],
)
async def test_a_failing_endpoint_is_no_proposal_and_no_exception(
    make_core: CoreFactory, fake: FakeChatCompletions, setup: dict[str, Any], why: str
) -> None:
    core = make_core()
    fake.answer = ToolCall.of("terminate", candidate="张三", reason="")
    for name, value in setup.items():
        setattr(fake, name, value)
    assert await llm.propose(core, "张三的面试停掉", actor=HR, chat=CHAT) is None
    (row,) = await audit_rows(core)
    assert row.detail["outcome"] == "error" and row.detail["why"].startswith(why)
    assert counted(core, "error") == 1


async def test_a_wrong_key_is_an_error(make_core: CoreFactory, fake: FakeChatCompletions) -> None:
    core = make_core(llm_api_key="sk-wrong")
    fake.answer = ToolCall.of("terminate", candidate="张三", reason="")
    assert await llm.propose(core, "张三的面试停掉", actor=HR, chat=CHAT) is None
    assert fake.rejected == 1
    (row,) = await audit_rows(core)
    assert (row.detail["outcome"], row.detail["why"]) == ("error", "HTTP 401")


async def test_an_unreachable_endpoint_is_an_error(make_core: CoreFactory, fake: FakeChatCompletions) -> None:
    core = make_core()
    await fake.close()  # nothing listens at that port any more
    assert await llm.propose(core, "张三的面试停掉", actor=HR, chat=CHAT) is None
    (row,) = await audit_rows(core)
    assert row.detail["outcome"] == "error"


async def test_the_apps_http_session_is_used_when_given(make_core: CoreFactory, fake: FakeChatCompletions) -> None:
    core = make_core()
    fake.answer = ToolCall.of("show", candidate="张三")
    async with aiohttp.ClientSession(headers={"X-Shared-Session": "yes"}) as http:
        intent = await llm.propose(core, "张三怎么样了", actor=HR, chat=CHAT, http=http)
        assert not http.closed
    assert intent is not None and intent.kind is Kind.show
    assert len(fake.requests) == 1


# --- privacy ----------------------------------------------------------------------------------

CONTACTS = {
    "13812345678": "张三 13812345678 的面试停掉,改到明天下午3点",
    "13912345678": "他的手机 +86 139-1234-5678",
    "13712345678": "全角 １３７１２３４５６７８",
    "13612345678": "(+86) 136 1234 5678",
    "01062345678": "座机 010-62345678",
    "057188888888": "(0571) 8888 8888",
    "11010119900307123": "身份证 11010119900307123X",
    "6222020200112233445": "卡号6222020200112233445",
}
EMAILS = ("zhang.san@example.com", "zhangsan＠example.cn", "lisi (at) corp.example.org")


async def test_the_model_never_receives_phone_numbers_or_emails(
    make_core: CoreFactory, fake: FakeChatCompletions
) -> None:
    core = make_core()
    fake.answer = ToolCall.of("terminate_reschedule", candidate="张三", reason="", time="明天下午3点")
    text = ",".join([*CONTACTS.values(), *(f"邮箱 {e}" for e in EMAILS)])
    names = ["张三", "李四 13512345678", "wangwu@example.com"]
    intent = await llm.propose(core, text, actor=HR, chat=CHAT, names=names)
    assert intent is not None and intent.time_text == "明天下午3点"  # the times survive the masking
    (raw,) = fake.raw
    (request,) = fake.requests
    sent = " ".join(m["content"] for m in request["messages"])
    digits = re.sub(r"\D", "", sent)
    for number in [*CONTACTS, "13512345678"]:
        assert number not in digits, number
        assert number.encode() not in re.sub(rb"\D", b"", raw)
    assert "@" not in sent and "＠" not in sent and "(at)" not in sent and b"@" not in raw
    assert "example" not in sent and "zhang" not in sent
    assert "[phone]" in sent and "[email]" in sent and "[number]" in sent
    assert "张三" in sent and "李四" in sent  # names in scope are sent, their contacts are not


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("张三 13812345678 明天下午3点", "张三 [phone] 明天下午3点"),
        ("3月12日14:00 或 2026-03-12 14:30 或 20260312", "3月12日14:00 或 2026-03-12 14:30 或 20260312"),
        ("400-800-1234 找 HR", "[phone] 找 HR"),
        ("QQ 12345678", "QQ [number]"),
        ("第2轮 面试 30分钟", "第2轮 面试 30分钟"),
        ("链接 https://meet.example.com/j/abc?token=1 打不开", "链接 [link] 打不开"),
        ("bing@例子.中国 明天", "[email] 明天"),
    ],
)
def test_mask_for_model(text: str, masked: str) -> None:
    assert llm.mask_for_model(text) == masked


# --- through the chat path: the model proposes, HR confirms -----------------------------------


async def test_a_message_outside_the_rules_becomes_a_proposal_hr_must_confirm(
    make_client: Any, clock: FrozenClock, fake: FakeChatCompletions
) -> None:
    client = await make_client(llm_base_url=fake.url, llm_model=MODEL, llm_api_key=KEY)
    app = client.server.app
    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock)
    hr = ChatUser(app, "hr01")
    fake.answer = ToolCall.of("terminate", candidate="张三", reason="网络卡顿")
    text = "那位同学电脑彻底罢工了,你处理掉"  # no name, position or command word: the rules place nothing
    [prompt] = await hr.say(text)
    assert prompt.kind == "confirm" and "语言模型" in prompt.text
    assert "候选人:张三" in prompt.text and "系统故障" in prompt.text
    assert await status_of(app) == "in_progress"  # a proposal changes nothing
    (request,) = fake.requests
    assert "张三" in str(request["messages"])  # the names in scope, never contacts
    assert "13800001234" not in str(request) and "zhangsan@example.com" not in str(request)
    assert "已终止 张三 的面试" in await hr.says("确认")
    assert await status_of(app) == "terminated"


async def test_a_model_that_times_out_leaves_the_bot_as_it_is_without_one(
    make_client: Any, clock: FrozenClock, fake: FakeChatCompletions
) -> None:
    client = await make_client(llm_base_url=fake.url, llm_model=MODEL, llm_api_key=KEY, llm_timeout_seconds=0.3)
    app = client.server.app
    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock)
    fake.answer = ToolCall.of("terminate", candidate="张三", reason="网络卡顿")
    fake.delay = 5
    text = "那位同学电脑彻底罢工了,你处理掉"
    with_model = await ChatUser(app, "hr01").says(text)
    assert "没有看懂" in with_model
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(AuditEvent).where(AuditEvent.action == "llm.proposed"))).all()
    assert [r.detail["outcome"] for r in rows] == ["timeout"]
