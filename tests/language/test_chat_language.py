"""What HR people write, read by meaning, through the real dispatcher and services: safety first
(a question, a negation or a mention never acts), standalone answers, compound and multiple
requests, and open questions that a new request replaces."""

from __future__ import annotations

from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import ActionState, ExitRecord, PendingAction
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, event, post_event, started_interview
from tests.interviews import ask_help, interview_detail, status_of
from tests.times import in_full, tomorrow_at


async def world(make_client: AppFactory, clock: FrozenClock):  # type: ignore[no-untyped-def]
    """张三 (iv-1) and 贺婷 (iv-2) in progress, both of hr01's."""
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock, "iv-1")
    await started_interview(client, clock, "iv-2", name="贺婷", mobile="13900002222", email="ht@example.com")
    return client, app


async def open_prompts(app, requester: str = "wecom:hr01") -> list[PendingAction]:  # type: ignore[no-untyped-def]
    async with app[CORE].sessions() as session:
        rows = await session.exec(
            select(PendingAction).where(
                PendingAction.requester == requester, PendingAction.state == ActionState.open.value
            )
        )
        return list(rows.all())


async def test_a_sentence_that_starts_with_confirm_does_not_confirm(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("终止面试 贺婷 候选人放弃")
    assert prompt.kind == "confirm" and "贺婷" in prompt.text
    for text in ("确认一下张三是不是还在面?", "确认不了,我得问下经理", "确认一下是贺婷吗", "是吗?"):
        await hr.say(text)
        assert await status_of(app, "iv-2") == "in_progress", text
        assert await status_of(app, "iv-1") == "in_progress", text
        assert [p.action for p in await open_prompts(app)] == ["terminate"], text
    # The question about 张三 is answered as one: his interview, not a confirmation.
    assert "张三" in await hr.says("确认一下张三是不是还在面?")
    # A standalone yes still confirms, in any common wording.
    assert "已终止 贺婷 的面试" in await hr.says("对,停吧")
    assert await status_of(app, "iv-2") == "terminated"


async def test_standalone_yes_and_no(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    for no in ("算了", "不用了", "先不终止了", "等等别停", "否"):
        await hr.say("终止面试 张三 网络卡顿")
        assert "已取消" in await hr.says(no), no
        assert await open_prompts(app) == [], no
    await hr.say("终止面试 张三 网络卡顿")
    assert "已终止 张三 的面试" in await hr.says("嗯嗯")
    assert await status_of(app) == "terminated"


async def test_questions_negations_conditions_and_mentions_never_act(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    for text in (
        "张三的面试要不要终止?",
        "别停张三的",
        "要是张三再掉线就终止吧",
        "张三刚才给我打电话了",
        "怎么终止面试?",
        "不要终止贺婷",
    ):
        reply = await hr.says(text)
        assert await open_prompts(app) == [], (text, reply)
        assert await status_of(app, "iv-1") == "in_progress" and await status_of(app, "iv-2") == "in_progress"
    assert "终止面试" in await hr.says("怎么终止面试?")  # a usage answer


async def test_free_phrasing_finds_candidate_reason_and_words(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    for text in (
        "帮我把张三的面试终止一下,网络太卡了",
        "因为摄像头打不开,张三的面试先停掉",
        "終止面試 張三 網絡卡頓",
        "中止面试:张三,原因:网络卡顿。",
        "「刘经理:张三那场先停了吧」\n- - - - - - - - - - - - - -\n终止面试 张三 网络卡顿",
    ):
        [prompt] = await hr.say(text)
        assert prompt.kind == "confirm", (text, prompt.text)
        assert "候选人:张三" in prompt.text and "系统故障" in prompt.text, text
        [params] = [p.params for p in await open_prompts(app)]
        assert params["platform_id"] == "iv-1" and params["reason"] == "system_failure"
        await hr.says("取消")
    # The HR's own words are kept as 说明.
    [prompt] = await hr.say("帮我把张三的面试终止一下,网络太卡了")
    assert "说明:网络太卡了" in prompt.text


async def test_two_candidates_in_one_request_are_refused_not_folded(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    reply = await hr.says("终止面试 张三 候选人放弃 贺婷 系统故障")
    assert "张三" in reply and "贺婷" in reply and "一次只处理一位" in reply
    assert await open_prompts(app) == []


async def test_compound_terminate_and_reschedule_is_one_prompt(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("张三网络不好,改到明天下午三点重新面")
    expected = tomorrow_at(clock, 15)
    assert prompt.kind == "confirm"
    assert "终止当前面试" in prompt.text and "系统故障" in prompt.text and in_full(expected) in prompt.text
    assert await status_of(app) == "in_progress"
    reply = await hr.says("确认")
    assert in_full(expected) in reply
    body = await interview_detail(client)
    assert body["status"] == "scheduled"
    async with app[CORE].sessions() as session:
        [record] = (await session.exec(select(ExitRecord))).all()
    assert record.reason_code == "system_failure"


async def test_reschedule_of_an_interview_in_progress_offers_both(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    asked = await hr.says("重新安排 张三 明天下午3点")
    assert "正在进行中" in asked and "没有找到" not in asked
    [prompt] = await hr.say("2")  # 系统故障
    assert prompt.kind == "confirm" and "终止当前面试" in prompt.text


async def test_a_new_request_replaces_an_open_question(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    assert "1. 候选人放弃" in await hr.says("终止面试 张三")
    # Not an answer and not a command: the question is repeated, not lost.
    reminder = await hr.says("嗯这个嘛")
    assert "选择终止原因" in reminder and "张三" in reminder
    [prompt] = await hr.say("终止面试 贺婷 网络卡顿")
    assert "已放弃之前" in prompt.text and "贺婷" in prompt.text
    assert [p.action for p in await open_prompts(app)] == ["terminate"]


async def test_wrong_state_is_named_not_not_found(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    await hr.say("终止面试 张三 候选人放弃")
    await hr.say("确认")
    reply = await hr.says("终止 张三 网络卡顿")
    assert "已终止" in reply and "没有找到" not in reply
    # Someone else's candidate, or nobody: not found.
    await post_event(client, clock, event("interview.started", "iv-9", name="王五", hr=("wecom", "hr99")))
    assert "没有找到" in await hr.says("终止 王五 网络卡顿")


async def test_compound_tells_the_candidate_once_with_both(make_client: AppFactory, clock: FrozenClock) -> None:
    """Ended and booked again in one go: one candidate notice says both (the termination's waits
    and is superseded by the new time's, which names the reason)."""
    client, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    await hr.say("张三网络不好,改到明天下午三点重新面")
    await hr.says("确认")
    notices = (await interview_detail(client))["notices"]
    terminated = [n for n in notices if n["kind"] == "terminated"]
    rescheduled = [n for n in notices if n["kind"] == "rescheduled"]
    assert [n["status"] for n in terminated] == ["superseded"]
    [told] = rescheduled
    assert "系统故障" in told["body"] and f"{tomorrow_at(clock, 15):%Y-%m-%d %H:%M}" in told["body"]


async def test_a_plain_yes_never_ends_a_candidates_help_request(make_client: AppFactory, clock: FrozenClock) -> None:
    """A 求助 waits for its HR: 好的 or 对吧 may mean anything, only words that name ending it end it."""
    client, app = await world(make_client, clock)
    await ask_help(client, clock)
    hr = ChatUser(app, "hr01")
    for text in ("好的", "嗯嗯", "对吧", "是嘛"):
        await hr.say(text)
        assert await status_of(app, "iv-1") == "in_progress", text
    assert "已按候选人请求终止" in await hr.says("好的,终止吧")
    assert await status_of(app, "iv-1") == "terminated"


async def test_a_yes_that_is_a_question_does_not_confirm(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await world(make_client, clock)
    hr = ChatUser(app, "hr01")
    await hr.say("终止面试 张三 网络卡顿")
    for text in ("对吧", "是嘛", "好呢?", "确认吗"):
        await hr.say(text)
        assert await status_of(app) == "in_progress", text
    assert [p.action for p in await open_prompts(app)] == ["terminate"]
