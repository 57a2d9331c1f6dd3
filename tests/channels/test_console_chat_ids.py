"""The terminal chat (``python -m bot chat``) never reuses a message id: a 确认 in a new session is
a new message, never taken as a redelivery of an earlier session's 确认 (crash replay is keyed on
platform:msg_id), so it changes nothing when nothing is open."""

from __future__ import annotations

import io

from aiohttp import web
from sqlmodel import col, select

from bot.channels.console import run_console
from bot.clock import FrozenClock
from bot.keys import CORE, DISPATCHER
from storage import repo
from storage.models import AuditEvent, Interview, Notice
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, event, post_event


async def session(app: web.Application, *lines: str) -> str:
    """One terminal chat session of wecom:hr01 typing ``lines``, then Ctrl-D; what it printed."""
    out = io.StringIO()
    typed = io.StringIO("".join(f"{x}\n" for x in lines))
    code = await run_console(app[DISPATCHER], platform="wecom", user_id="hr01", stdin=typed, stdout=out)
    assert code == 0
    return out.getvalue()


async def state(app: web.Application) -> tuple[Interview, int, int]:
    """The interview, how many 改期 notices exist, how many audit rows name the HR."""
    async with app[CORE].sessions() as s:
        interview = await repo.get_interview(s, platform_id="iv-1")
        assert interview is not None
        notices = (await s.exec(select(Notice).where(Notice.kind == "rescheduled"))).all()
        audits = (await s.exec(select(AuditEvent).where(col(AuditEvent.actor) == "wecom:hr01"))).all()
    return interview, len(notices), len(audits)


async def test_a_confirm_in_a_new_session_is_not_a_replay_of_the_old_one(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    assert (await post_event(client, clock, event("interview.scheduled", occurred_at=clock.now()))).status == 200

    # Session 1: message 1 asks to reschedule, message 2 confirms it.
    first = await session(app, "重新安排 张三 后天上午10点", "确认")
    assert "已将 张三 的面试" in first
    # Elsewhere (another chat), the interview is moved again.
    await ChatUser(app, "hr01").say("重新安排 张三 大后天下午3点")
    assert "已将 张三 的面试" in (await ChatUser(app, "hr01").say("确认"))[0].text
    before, notices, audits = await state(app)

    # Session 2: its message 2 is again a 确认, with nothing open.
    second = await session(app, "帮助", "确认")
    assert "没有等待你确认的操作" in second
    assert "已将 张三 的面试" not in second
    after, notices_after, audits_after = await state(app)
    assert (after.scheduled_at, after.status, after.attempt) == (before.scheduled_at, before.status, before.attempt)
    assert notices_after == notices  # no new notice to the candidate
    assert audits_after == audits  # nothing audited in the HR's name
