"""A confirmation's buttons name their prompt (确认 #<id> / 取消 #<id>): a press answers that
prompt and no other, and a press on a prompt no longer open says why and changes nothing."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import select

from bot.chat.messages import IncomingMessage, prompt_ref
from bot.clock import FrozenClock
from bot.keys import CORE, DISPATCHER
from storage.models import ExitRecord, Interview, PendingAction
from tests.chat import ChatUser, add_person, prompt_id
from tests.conftest import AppFactory, event, post_event, started_interview

EXPIRED = "这个确认已过期(超过5分钟),没有执行。如需继续,请重新发起。"


async def status_of(app: web.Application, platform_id: str = "iv-1") -> str:
    async with app[CORE].sessions() as session:
        row = (await session.exec(select(Interview).where(Interview.platform_id == platform_id))).one()
        return row.status


async def exits(app: web.Application) -> int:
    async with app[CORE].sessions() as session:
        return len((await session.exec(select(ExitRecord))).all())


async def state_of(app: web.Application, action_id: int) -> str:
    async with app[CORE].sessions() as session:
        row = await session.get(PendingAction, action_id)
        assert row is not None
        return row.state


async def two_interviews(make_client: AppFactory, clock: FrozenClock) -> web.Application:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await add_person(app, "boss", "陈经理", "manager")
    await started_interview(client, clock)
    await started_interview(client, clock, "iv-2", name="李四", mobile="13900002222", email="lisi@example.com")
    return app


def test_the_press_format_is_recognised_and_nothing_else() -> None:
    assert prompt_ref("#123") == 123 and prompt_ref(" #7 ") == 7 and prompt_ref("42") == 42
    assert prompt_ref("") is None and prompt_ref("#") is None and prompt_ref("张三") is None
    assert prompt_ref("#12 #13") is None and prompt_ref("#-1") is None


async def test_a_press_on_an_older_card_answers_that_prompt_not_the_newest(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    app = await two_interviews(make_client, clock)
    hr = ChatUser(app, "hr01")
    [first] = await hr.say("终止面试 张三 候选人放弃")
    [second] = await hr.say("终止面试 李四 系统故障")
    assert first.buttons[0][1] != second.buttons[0][1]
    # The HR scrolls up and presses 确认终止 on 张三's card.
    assert "已终止 张三 的面试" in await hr.says(first.buttons[0][1])
    assert await status_of(app, "iv-1") == "terminated"
    assert await status_of(app, "iv-2") == "in_progress"
    # 李四's prompt is still open and answered by its own button (or a bare 确认).
    assert "已终止 李四 的面试" in await hr.says("确认")


async def test_a_late_press_says_it_expired_and_changes_nothing(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await two_interviews(make_client, clock)
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("终止面试 张三 候选人放弃")
    tied = await prompt_id(app)
    clock.advance(seconds=301)
    assert await hr.says(prompt.buttons[0][1]) == EXPIRED
    assert await hr.says(prompt.buttons[1][1]) == EXPIRED  # 取消 pressed late: the same answer
    assert await status_of(app) == "in_progress" and await exits(app) == 0
    assert await state_of(app, tied) == "open"  # expired by its time, never closed by a late press


async def test_a_second_press_says_it_was_confirmed_and_does_not_repeat(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    app = await two_interviews(make_client, clock)
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("终止面试 张三 候选人放弃")
    confirm, cancel = (command for _, command in prompt.buttons)
    assert "已终止 张三 的面试" in await hr.says(confirm)
    again = await hr.says(confirm)  # pressed again (a new message)
    assert again.startswith("这个操作已经确认过了")
    assert "张三" in again and "Java后端工程师" in again and "候选人放弃" in again and "不会重复执行" in again
    late_cancel = await hr.says(cancel)
    assert late_cancel.startswith("这个操作已经确认过了") and "不能取消" in late_cancel
    assert await exits(app) == 1 and await status_of(app) == "terminated"


async def test_a_press_after_cancel_says_it_was_cancelled(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await two_interviews(make_client, clock)
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("终止面试 张三 候选人放弃")
    confirm, cancel = (command for _, command in prompt.buttons)
    assert "已取消" in await hr.says(cancel)
    assert await hr.says(confirm) == "这个操作已取消,没有执行。如需继续,请重新发起。"
    assert await hr.says(cancel) == "这个操作已取消。"
    assert await status_of(app) == "in_progress" and await exits(app) == 0


async def test_someone_elses_press_changes_nothing(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await two_interviews(make_client, clock)
    hr = ChatUser(app, "hr01", chat_id="group-1", chat_type="group")
    boss = ChatUser(app, "boss", chat_id="group-1", chat_type="group")
    [prompt] = await hr.say("终止面试 张三 候选人放弃")
    tied = await prompt_id(app)
    confirm, cancel = (command for _, command in prompt.buttons)
    # A colleague in the same group presses the card's buttons: neither is theirs.
    assert "这个确认不是发给你的" in await boss.says(confirm)
    assert "这个确认不是发给你的" in await boss.says(cancel)
    # The requester pressing it in another chat (their 1:1) does not reach the group's prompt either.
    assert "这个确认不是发给你的" in await ChatUser(app, "hr01").says(confirm)
    assert await state_of(app, tied) == "open" and await status_of(app) == "in_progress"
    assert "已终止 张三 的面试" in await hr.says(confirm)


async def test_a_reschedule_card_is_tied_to_its_prompt_too(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    assert (await post_event(client, clock, event("interview.scheduled", occurred_at=clock.now()))).status == 200
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("重新安排 张三 后天上午10点")
    tied = await prompt_id(app, "reschedule")
    assert [command for _, command in prompt.buttons] == [f"确认 #{tied}", f"取消 #{tied}"]
    assert "已将 张三 的面试" in await hr.says(prompt.buttons[0][1])
    again = await hr.says(prompt.buttons[0][1])
    assert again.startswith("这个操作已经确认过了:把 张三") and "10:00" in again


async def test_the_same_press_processed_again_after_a_crash_keeps_its_replay(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    """The same message (same id) processed twice is a crash replay, not a second press: a
    termination reports what was done (its Confirm.again), it does not say 已经确认过了."""
    app = await two_interviews(make_client, clock)
    [prompt] = await ChatUser(app, "hr01").say("终止面试 张三 候选人放弃")
    msg = IncomingMessage(
        platform="wecom", sender_id="hr01", chat_id="hr01", chat_type="direct", text=prompt.buttons[0][1], msg_id="c-1"
    )
    first = "\n".join(r.text for r in await app[DISPATCHER].handle(msg))
    again = "\n".join(r.text for r in await app[DISPATCHER].handle(msg))
    assert "已终止 张三 的面试" in first
    assert "已经确认过了" not in again and "终止" in again
    assert await exits(app) == 1
