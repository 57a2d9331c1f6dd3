"""Stored chat messages are processed in batches (``bot.intake.ChatIntake`` on the intake's one
worker rule): one claim and one completion transaction for many messages, without losing what one
message changed for the next, without a second reply after a crash, and beside callbacks still
arriving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import event
from sqlmodel import col, select

from bot.channels.wecom.chat import WeComChat
from bot.channels.wecom.parse import parse_app_xml
from bot.channels.wecom.webhook import WECOM
from bot.clock import FrozenClock
from bot.keys import BACKGROUND, CORE, ENGINE, OUTBOX
from storage.models import IntakeItem, Notice
from tests.chat import add_person
from tests.conftest import AppFactory, eventually, started_interview
from tests.fakes.wecom_api import FakeWeCom, WeComSide, text_xml, wecom_settings


async def wecom_app(make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom) -> web.Application:
    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    return app


async def held_chat(app: web.Application) -> WeComChat:
    """The app's WeCom chat with its worker stopped: what is stored waits until the test runs a batch."""
    chat = app[WECOM].chat
    assert chat is not None
    await chat.intake.worker.stop(5)
    return chat


async def store(chat: WeComChat, *texts: str, first_id: int = 100) -> None:
    """Store messages from hr01 as a callback does, without processing them yet."""
    for n, text in enumerate(texts):
        envelope = parse_app_xml(text_xml("hr01", text, first_id + n))
        assert envelope is not None
        assert await chat.receive(envelope, source="app")


async def items(app: web.Application) -> list[IntakeItem]:
    """The stored WeCom messages."""
    stmt = select(IntakeItem).where(IntakeItem.source == "wecom").order_by(col(IntakeItem.id))
    async with app[CORE].sessions() as session:
        return list((await session.exec(stmt)).all())


async def notices(app: web.Application, kind: str) -> list[Notice]:
    async with app[CORE].sessions() as session:
        return list((await session.exec(select(Notice).where(Notice.kind == kind).order_by(col(Notice.id)))).all())


def reply_to(replies: list[Notice], msg_id: int) -> list[Notice]:
    return [r for r in replies if (r.dedupe_key or "").startswith(f"reply:wecom:msg:{msg_id}:")]


async def test_what_a_message_changes_is_seen_by_the_next_one_in_its_batch(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """终止面试 张三 (no reason) opens a numbered pick; the 1 after it, in the same batch, answers it.
    (Had the batch kept 'no open question' from before the first message, 1 would be an unknown command.)"""
    app = await wecom_app(make_client, clock, fake_wecom)
    chat = await held_chat(app)
    await store(chat, "终止面试 张三", "1")
    assert await chat.intake.worker.once() == 2  # one claim, one batch
    replies = await notices(app, "reply")
    [pick] = reply_to(replies, 100)
    [answer] = reply_to(replies, 101)
    assert "1." in pick.body or "1 " in pick.body or "1、" in pick.body, pick.body
    assert "没有看懂" not in answer.body and "张三" in answer.body, answer.body
    assert {i.status for i in await items(app)} == {"done"}


async def test_a_reply_queued_by_an_earlier_try_is_not_queued_again_and_the_rest_of_the_batch_is_answered(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    app = await wecom_app(make_client, clock, fake_wecom)
    chat = await held_chat(app)
    await store(chat, "帮助", "帮助", "帮助")
    # An earlier try of the second message queued its reply and then the process died.
    core = app[CORE]
    earlier = Notice(
        kind="reply",
        channel="wecom",
        recipient="hr01",
        body="earlier try",
        payload={"audience": "staff"},
        destination="wecom:user:hr01",
        dedupe_key="reply:wecom:msg:101:0",
        next_attempt_at=clock.now() + timedelta(days=1),
        created_at=clock.now(),
    )
    async with core.sessions() as session:
        session.add(earlier)
        await session.commit()
    caplog.set_level(logging.WARNING)
    assert await chat.intake.worker.once() == 3
    assert "one by one" in caplog.text
    replies = await notices(app, "reply")
    assert [r.body for r in reply_to(replies, 101)] == ["earlier try"]  # replied to at most once
    assert all("可用命令" in r.body for m in (100, 102) for r in reply_to(replies, m))
    assert len(reply_to(replies, 100)) == len(reply_to(replies, 102)) == 1
    assert [(i.status, i.attempts) for i in await items(app)] == [("done", 1)] * 3


async def test_a_paced_member_s_other_replies_wait_without_being_claimed_one_by_one(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """35 replies to one member: 30 go out (WeCom allows 30 a minute); the pass that finds the 31st
    paced puts the other four back with it, so they are not claimed and put back again one by one."""
    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    side = WeComSide()
    ts = int(clock.now().timestamp())
    for n in range(35):
        path, body = side.app_post(text_xml("hr01", "帮助", 700 + n), timestamp=ts)
        assert (await client.post(path, data=body)).status == 200

    async def paced() -> bool:
        replies = await notices(app, "reply")
        later = [r for r in replies if r.status == "pending" and r.next_attempt_at > clock.now()]
        return len(replies) == 35 and sum(r.status == "sent" for r in replies) == 30 and len(later) == 5

    await eventually(paced, timeout=20)
    waiting = [r for r in await notices(app, "reply") if r.status == "pending"]
    assert len(waiting) == 5
    assert {r.next_attempt_at for r in waiting} == {clock.now() + timedelta(seconds=60)}
    assert sum(r.claimed_by is not None for r in waiting) == 1  # only the one found paced was claimed
    assert len(fake_wecom.sent("message/send")) == 30


async def test_a_pass_that_finds_a_member_paced_claims_none_of_their_other_replies(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """35 replies due to one member: a pass sends 30, claims the 31st, finds the member paced and puts
    the other four off with it; it does not go on to claim each of them (a write and a commit each)
    only to find it no longer due."""
    app = await wecom_app(make_client, clock, fake_wecom)
    loop = next(task for task in app[BACKGROUND] if task.get_name() == "outbox")
    loop.cancel()  # this test runs the outbox's passes itself
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    chat = await held_chat(app)
    await store(chat, *["帮助"] * 35, first_id=800)
    assert await chat.intake.worker.once() == 35
    claims: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE notice SET status") and "claimed_by" in statement:
            claims.append(statement)

    engine = app[ENGINE].sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await app[OUTBOX].run_once() == 30
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(claims) == 31
    waiting = [r for r in await notices(app, "reply") if r.status == "pending"]
    assert len(waiting) == 5
    assert {r.next_attempt_at for r in waiting} == {clock.now() + timedelta(seconds=60)}
    assert len(fake_wecom.sent("message/send")) == 30
