"""Stored chat messages are processed in batches (``bot.intake.BatchWork``): one claim and one
completion transaction for many messages, without losing what one message changed for the next,
without a second reply after a crash, and beside callbacks still arriving."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from aiohttp import web
from sqlmodel import col, select

from bot.channels.wecom.parse import parse_app_xml
from bot.channels.wecom.webhook import WECOM
from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import Notice
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


async def store(app: web.Application, *texts: str, first_id: int = 100) -> list[int]:
    """Store messages from hr01 as a callback does, without processing them yet."""
    inbox = app[WECOM].inbox
    assert inbox is not None
    ids = []
    for n, text in enumerate(texts):
        inbound = parse_app_xml(text_xml("hr01", text, first_id + n))
        assert inbound is not None
        row_id = await inbox.accept(inbound, source="app")
        assert row_id is not None
        ids.append(row_id)
    return ids


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
    inbox = app[WECOM].inbox
    assert inbox is not None
    ids = await store(app, "终止面试 张三", "1")
    await inbox.work.run_batch(ids)
    replies = await notices(app, "reply")
    [pick] = reply_to(replies, 100)
    [answer] = reply_to(replies, 101)
    assert "1." in pick.body or "1 " in pick.body or "1、" in pick.body, pick.body
    assert "没有看懂" not in answer.body and "张三" in answer.body, answer.body
    assert {r.status for r in await notices(app, "inbound")} == {"sent"}


async def test_a_reply_queued_by_an_earlier_try_is_not_queued_again_and_the_rest_of_the_batch_is_answered(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    app = await wecom_app(make_client, clock, fake_wecom)
    inbox = app[WECOM].inbox
    assert inbox is not None
    ids = await store(app, "帮助", "帮助", "帮助")
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
    await inbox.work.run_batch(ids)
    assert "one by one" in caplog.text
    replies = await notices(app, "reply")
    assert [r.body for r in reply_to(replies, 101)] == ["earlier try"]  # replied to at most once
    assert all("可用命令" in r.body for m in (100, 102) for r in reply_to(replies, m))
    assert len(reply_to(replies, 100)) == len(reply_to(replies, 102)) == 1
    inbound = await notices(app, "inbound")
    assert [(r.status, r.attempts) for r in inbound] == [("sent", 1)] * 3


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
