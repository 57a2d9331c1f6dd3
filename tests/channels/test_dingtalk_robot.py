"""The custom group robot (自定义机器人) with 加签: signing, pacing and the 10-minute block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlmodel import col, select

from bot.channels.dingtalk.sender import robot_notice
from bot.clock import FrozenClock
from bot.keys import CORE, OUTBOX
from storage.models import Notice
from tests.conftest import AppFactory, eventually
from tests.fakes.dingtalk_api import ROBOT_SECRET, FakeDingTalk, reference_sign


@pytest.fixture
async def fake(clock: FrozenClock) -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk(clock=clock)
    await fake.start()
    yield fake
    await fake.close()


async def robot_app(make_client: AppFactory, fake: FakeDingTalk) -> web.Application:
    # The custom robot works on its own, without the internal app's key and secret.
    client = await make_client(dingtalk_robot_webhook=fake.robot_webhook(), dingtalk_robot_secret=ROBOT_SECRET)
    assert client.server.app is not None
    return client.server.app


async def queue(app: web.Application, fake: FakeDingTalk, *texts: str) -> None:
    core = app[CORE]
    async with core.sessions() as session:
        for text in texts:
            session.add(robot_notice(fake.robot_webhook(), kind="robot_test", text=text, now=core.clock.now()))
        await session.commit()
    core.wake_outbox()


async def notices(app: web.Application) -> list[Notice]:
    async with app[CORE].sessions() as session:
        stmt = select(Notice).where(Notice.channel == "dingtalk_robot").order_by(col(Notice.id))
        return list((await session.exec(stmt)).all())


def awkward_moment(clock: FrozenClock) -> int:
    """A millisecond whose sign has '+', '/' and '=' in it: all must be URL-encoded exactly once."""
    start = int(clock.now().timestamp() * 1000)
    for ts in range(start, start + 10_000):
        sign = reference_sign(ROBOT_SECRET, str(ts))
        if "+" in sign and "/" in sign:
            clock.set(datetime.fromtimestamp(ts / 1000, tz=UTC))
            return ts
    raise AssertionError("no such moment")


async def test_throttled_post_is_deferred_ten_minutes_then_sent(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    app = await robot_app(make_client, fake)
    ts = awkward_moment(clock)
    fake.robot_throttle = 1  # "send too fast, exceed 20 times per minute"
    await queue(app, fake, "今日面试退出 3 人")

    async def deferred() -> bool:
        [row] = await notices(app)
        return row.attempts == 1 and row.status == "pending"

    await eventually(deferred)
    [row] = await notices(app)
    assert "130101" in (row.last_error or "")
    assert row.next_attempt_at - clock.now() == timedelta(seconds=600)
    assert fake.robot_posts == [] and fake.robot_sign_failures == 0
    # The sign went out URL-encoded once ('+' as %2B), not twice (%252B).
    query = fake.robot_raw_queries[0]
    assert f"timestamp={ts}" in query and "access_token=robot-access-token" in query
    assert "%2B" in query and "%25" not in query

    clock.advance(seconds=599)
    assert await app[OUTBOX].run_once() == 0  # still blocked: not even tried
    assert fake.robot_calls == 1

    clock.advance(seconds=2)
    app[CORE].wake_outbox()

    async def sent() -> bool:
        [row] = await notices(app)
        return row.status == "sent"

    await eventually(sent)
    assert fake.robot_posts == [{"msgtype": "text", "text": {"content": "今日面试退出 3 人"}}]
    assert fake.robot_sign_failures == 0


async def test_posts_are_paced_at_twenty_a_minute(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    app = await robot_app(make_client, fake)
    await queue(app, fake, *(f"消息{n}" for n in range(21)))

    async def twenty_sent() -> bool:
        rows = await notices(app)
        return sum(r.status == "sent" for r in rows) == 20 and rows[-1].next_attempt_at > clock.now()

    await eventually(twenty_sent)
    assert len(fake.robot_posts) == 20 and fake.robot_calls == 20  # the 21st was never tried early

    clock.advance(seconds=61)
    app[CORE].wake_outbox()

    async def all_sent() -> bool:
        return all(r.status == "sent" for r in await notices(app))

    await eventually(all_sent)
    assert fake.robot_posts[-1]["text"]["content"] == "消息20"


async def test_a_wrong_secret_is_a_permanent_failure(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await make_client(dingtalk_robot_webhook=fake.robot_webhook(), dingtalk_robot_secret="SECwrong")
    app = client.server.app
    assert app is not None
    await queue(app, fake, "你好")

    async def dead() -> bool:
        [row] = await notices(app)
        return row.status == "dead"

    await eventually(dead)
    [row] = await notices(app)
    assert "sign not match" in (row.last_error or "") and row.attempts == 1


async def test_markdown_posts_keep_their_markdown(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    app = await robot_app(make_client, fake)
    text = "### 面试退出日报\n- 候选人放弃:**2**\n- 系统故障:**1**"
    core = app[CORE]
    async with core.sessions() as session:
        notice = robot_notice(
            fake.robot_webhook(), kind="daily_summary", text=text, title="日报", markdown=True, now=clock.now()
        )
        session.add(notice)
        await session.commit()
    core.wake_outbox()

    async def posted() -> bool:
        return len(fake.robot_posts) == 1

    await eventually(posted)
    assert fake.robot_posts[0] == {"msgtype": "markdown", "markdown": {"title": "日报", "text": text}}
