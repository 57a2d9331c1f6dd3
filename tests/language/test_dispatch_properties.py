"""Table-driven parsing and property-based checks of the dispatcher (hypothesis)."""

from __future__ import annotations

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import select

from bot.clock import FrozenClock
from bot.dispatcher import Dispatcher
from bot.keys import CORE, DISPATCHER
from bot.language.intents import Kind
from bot.language.normalize import normalize
from bot.language.parse import answer
from storage.models import ExitRecord, Interview, PendingAction
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, started_interview

# (text, intent kind, candidate words or plain arguments): the documented syntax, normalised.
PARSE_TABLE = [
    ("终止面试 张三 候选人放弃", Kind.terminate, "张三"),
    ("终止面试张三 放弃", Kind.terminate, "张三"),
    ("  终止面试\u3000张三\u3000网络卡顿 ", Kind.terminate, "张三"),
    ("@面试助手 结束面试 张三 掉线!", Kind.terminate, "张三"),
    ("停止面试 iv-1 改人工面试。", Kind.terminate, "张三"),
    ("终止 张三", Kind.terminate, "张三"),
    ("确认", Kind.confirm, ""),
    ("确认!", Kind.confirm, ""),
    ("取消。", Kind.cancel, ""),
    ("进行中", Kind.in_progress, ""),
    ("查看 张三", Kind.show, "张三"),
    ("统计 本周", Kind.stats, "本周"),
    ("待办", Kind.todos, ""),
    ("完成 #12", Kind.todo_done, "#12"),
    ("ＨＥＬＰ", Kind.help, ""),  # full-width folded, case-insensitive
    ("终址面试 张三", Kind.terminate, "张三"),  # 终址 sounds like 终止
    ("确认一下张三是不是还在面?", Kind.show, "张三"),  # a question about 张三, not a yes
    ("授权 hr02 HR 赵先生", Kind.authorize, "hr02 HR 赵先生"),
]


@pytest.mark.parametrize(("text", "kind", "args"), PARSE_TABLE)
async def test_parse_table(make_client: AppFactory, clock: FrozenClock, text: str, kind: Kind, args: str) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    dispatcher: Dispatcher = app[DISPATCHER]
    intent = await dispatcher.understand(normalize(text), None, "wecom:hr01")
    assert intent.kind == kind
    if intent.refs:
        assert [ref.text for ref in intent.refs] == [args]
        assert intent.refs[0].platform_ids == ("iv-1",)
    else:
        assert intent.args == args


WORDS = [
    "终止面试",
    "结束面试",
    "终止",
    "确认",
    "取消",
    "查看",
    "进行中",
    "统计",
    "待办",
    "完成",
    "授权",
    "帮助",
    "张三",
    "李四",
    "iv-1",
    "放弃",
    "掉线",
    "1",
    "2",
    "99",
    "本周",
    "#1",
    "@bot",
    "!",
    "。",
    "\u3000",
    " ",
]


@pytest.fixture
async def props_app(make_client: AppFactory, clock: FrozenClock) -> web.Application:
    """One app for all hypothesis examples of a test (fixtures are not reset between examples)."""
    client = await make_client()
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    return app


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(
        st.one_of(
            st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
            st.text(max_size=40),
        ),
        min_size=1,
        max_size=6,
    )
)
async def test_random_text_never_crashes_nor_terminates_without_confirm(
    props_app: web.Application, script: list[str]
) -> None:
    app = props_app
    core = app[CORE]
    hr = ChatUser(app, "hr01")
    for text in script:
        replies = await hr.say(text)
        assert all("处理时出错" not in r.text for r in replies), (text, replies)
        async with core.sessions() as session:
            interview = (await session.exec(select(Interview))).one()
        if interview.status == "terminated":
            # Only a standalone yes (确认, 好的, 是 …) or a pressed button confirms.
            assert answer(normalize(text), "terminate") is True or normalize(text).startswith("确认 "), text
            # Reset for the next example.
            async with core.sessions() as session:
                await session.exec(delete(ExitRecord))  # type: ignore[call-overload]
                await session.exec(delete(PendingAction))  # type: ignore[call-overload]
                row = (await session.exec(select(Interview))).one()
                row.status = "in_progress"
                session.add(row)
                await session.commit()
