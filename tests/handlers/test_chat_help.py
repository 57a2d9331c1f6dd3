"""Who may do what, told plainly: unregistered people learn their id, hints and 帮助 show only allowed commands."""

from __future__ import annotations

from aiohttp import web

from bot.clock import FrozenClock
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory


async def team(make_client: AppFactory) -> web.Application:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await add_person(app, "mgr01", "刘经理", "manager")
    await add_person(app, "root", "管理员", "admin")
    return app


async def test_unregistered_people_are_told_their_id_per_platform(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await team(make_client)
    reply = await ChatUser(app, "zhangwei07").says("终止面试 张三")
    assert reply.startswith("你还没有登记,企业微信账号 zhangwei07;请把它发给管理员")
    assert "授权 zhangwei07 HR" in reply  # what the admin types
    assert "你还没有登记,钉钉 userId 0345" in await ChatUser(app, "0345", platform="dingtalk").says("帮助")
    assert "你还没有登记" in await ChatUser(app, "zhangwei07").says("随便说点什么")
    # Registered but lacking the role: 没有权限, not 没有登记.
    refused = await ChatUser(app, "hr01").says("统计 今天")
    assert "没有使用该命令的权限" in refused and "登记" not in refused


async def test_typo_hints_name_only_commands_the_asker_may_use(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await team(make_client)
    # 统记 sounds like 统计: a manager gets the statistics, an HR is refused without naming them.
    assert "退出统计" in await ChatUser(app, "mgr01").says("统记")
    hr_hint = await ChatUser(app, "hr01").says("统记")
    assert "统计" not in hr_hint
    assert "你是不是想输入「授权」" in await ChatUser(app, "root").says("受权")
    assert "授权" not in await ChatUser(app, "mgr01").says("受权")


async def test_a_lone_question_mark_gets_help(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await team(make_client)
    hr = ChatUser(app, "hr01")
    full = await hr.says("帮助")
    assert full.startswith("可用命令:")
    for text in ("?", "？", "@面试助手 ？", "??"):
        assert await hr.says(text) == full


async def test_help_describes_each_command_in_one_line(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await team(make_client)
    text = await ChatUser(app, "root").says("帮助")
    lines = [line for line in text.splitlines() if line.startswith("· ")]
    assert len(lines) >= 14
    for line in lines:
        _usage, sep, about = line.partition(":")
        assert sep and len(about) > 4, line  # a description, not just the usage
    assert "· 终止面试 <姓名或面试编号> [原因]:提前结束一场面试:先保存作答,确认后终止并通知候选人" in text
    assert "(例:终止面试 张三 候选人放弃)" in text
    hr_text = await ChatUser(app, "hr01").says("帮助")
    assert "统计" not in hr_text and "授权" not in hr_text and "共享" not in hr_text
