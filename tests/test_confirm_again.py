"""The same 确认 processed a second time, as after a crash cut its first processing off: the
sender is told what really happened, never 没有等待你确认的操作, and nothing is done twice."""

from __future__ import annotations

from aiohttp import web

from bot.chat.messages import IncomingMessage
from bot.clock import FrozenClock
from bot.keys import CORE, DISPATCHER
from storage import repo
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, event, post_event, started_interview


def confirm_message(msg_id: str) -> IncomingMessage:
    return IncomingMessage(
        platform="wecom", sender_id="hr01", chat_id="hr01", chat_type="direct", text="确认", msg_id=msg_id
    )


async def texts(app: web.Application, msg: IncomingMessage) -> str:
    return "\n".join(r.text for r in await app[DISPATCHER].handle(msg))


async def test_a_terminate_confirmed_again_reports_the_termination(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    await ChatUser(app, "hr01").say("终止面试 张三 候选人放弃")
    msg = confirm_message("m-confirm-1")
    assert "已终止" in await texts(app, msg)
    again = await texts(app, msg)
    assert "没有等待你确认" not in again and "王小姐" in again and "终止" in again
    async with app[CORE].sessions() as session:
        interview = await repo.get_interview(session, platform_id="iv-1")
        assert interview is not None and interview.id is not None
        assert len(await repo.exits_for_interview(session, interview_id=interview.id)) == 1
    # Another 确认 (a new message) still has nothing to confirm.
    assert "没有等待你确认的操作" in await texts(app, confirm_message("m-confirm-2"))


async def test_a_reschedule_confirmed_again_is_not_repeated(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    assert (await post_event(client, clock, event("interview.scheduled", occurred_at=clock.now()))).status == 200
    await ChatUser(app, "hr01").say("重新安排 张三 明天下午2点")
    msg = confirm_message("m-confirm-3")
    assert "已将 张三 的面试" in await texts(app, msg)
    again = await texts(app, msg)
    assert "之前已收到" in again and "查看" in again and "没有等待你确认" not in again
