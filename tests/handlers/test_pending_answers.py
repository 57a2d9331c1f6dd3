"""An open question's answer is matched before command names; a command word still is a command."""

from __future__ import annotations

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import ExitReason
from tests.chat import ChatUser, staffed_interview
from tests.conftest import AppFactory
from tests.interviews import status_of


async def test_a_reason_answer_that_starts_with_a_command_name_answers_the_question(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    app = await staffed_interview(make_client, clock)
    core = app[CORE]
    async with core.sessions() as session:
        # An admin-added reason whose name starts with the command 完成 (and one with 查看).
        session.add(ExitReason(code="low_completion", name="完成度低", outcome="未完成", sort_order=20))
        session.add(ExitReason(code="no_questions", name="查看不到题目", outcome="需要重新面试", sort_order=21))
        await session.commit()
    hr = ChatUser(app, "hr01")
    listed = await hr.says("终止面试 张三")
    assert "完成度低" in listed
    [prompt] = await hr.say("完成度低")  # not 完成 <待办编号>
    assert prompt.kind == "confirm" and "完成度低" in prompt.text
    assert "面试继续进行" in await hr.says("取消")

    await hr.says("终止面试 张三")
    [prompt] = await hr.say("查看不到题目")  # not 查看 <姓名>
    assert prompt.kind == "confirm" and "查看不到题目" in prompt.text
    assert "已终止 张三 的面试" in await hr.says("确认")
    assert await status_of(app) == "terminated"


async def test_a_command_word_still_wins_over_an_open_question(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01")
    assert "1. 候选人放弃" in await hr.says("终止面试 张三")
    # 查看 with a space is the command, the question stays open; then a number answers it.
    assert "【张三】" in await hr.says("查看 张三")
    assert "用法:完成" in await hr.says("完成")
    [prompt] = await hr.say("1")
    assert prompt.kind == "confirm" and "候选人放弃" in prompt.text
