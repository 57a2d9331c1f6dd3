"""The same 确认 processed a second time, as after a crash cut its first processing off: the
sender is told what really happened, never 没有等待你确认的操作, and nothing is done twice."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import select

from bot.chat.messages import IncomingMessage
from bot.clock import FrozenClock
from bot.keys import CORE, DISPATCHER
from bot.services import prompts
from storage import repo
from storage.models import Notice
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


async def rescheduled_notices(app: web.Application) -> list[Notice]:
    async with app[CORE].sessions() as session:
        return list((await session.exec(select(Notice).where(Notice.kind == "rescheduled"))).all())


async def test_a_reschedule_confirmed_again_is_reported_not_repeated(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    assert (await post_event(client, clock, event("interview.scheduled", occurred_at=clock.now()))).status == 200
    await ChatUser(app, "hr01").say("重新安排 张三 后天上午10点")
    msg = confirm_message("m-confirm-3")
    first = await texts(app, msg)
    assert "已将 张三 的面试" in first
    again = await texts(app, msg)
    assert "已将 张三 的面试" in again and "没有等待你确认" not in again
    assert first.splitlines()[0] == again.splitlines()[0]  # the same time, stated the same way
    assert len(await rescheduled_notices(app)) == 1  # the candidate is told once


async def test_a_reschedule_cut_off_before_it_was_made_is_made_when_confirmed_again(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    assert (await post_event(client, clock, event("interview.scheduled", occurred_at=clock.now()))).status == 200
    await ChatUser(app, "hr01").say("重新安排 张三 后天上午10点")  # not the interview's present time
    # The first processing of this 确认 closed the prompt, then the process died.
    taken = await prompts.take(
        app[CORE],
        requester="wecom:hr01",
        chat_id="hr01",
        actions=["reschedule"],
        state=prompts.ActionState.confirmed,
        by="wecom:m-confirm-4",
    )
    assert taken is not None and await rescheduled_notices(app) == []
    assert "已将 张三 的面试" in await texts(app, confirm_message("m-confirm-4"))
    assert len(await rescheduled_notices(app)) == 1
