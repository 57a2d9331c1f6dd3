"""WeCom outbound through the real outbox: token refresh, 45009/5xx retries, permanent errors, robot pacing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.channels.wecom.api import WeComApi, WeComError, redact
from bot.channels.wecom.sender import robot_notice
from bot.clock import FrozenClock
from bot.keys import CORE, HTTP
from storage.models import Notice, SharedToken
from tests.chat import add_person
from tests.conftest import AppFactory, eventually
from tests.fakes.wecom_api import AGENT_ID, CORP_ID, SECRET, FakeWeCom, WeComSide, text_xml, wecom_settings


async def start(make_client: AppFactory, fake: FakeWeCom, **overrides: Any) -> tuple[TestClient, web.Application]:
    client = await make_client(**wecom_settings(fake, **overrides))
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    return client, app


async def say(client: TestClient, clock: FrozenClock, text: str, msg_id: int, user: str = "hr01") -> None:
    path, body = WeComSide().app_post(text_xml(user, text, msg_id), timestamp=int(clock.now().timestamp()))
    resp = await client.post(path, data=body)
    assert resp.status == 200


async def replies(app: web.Application) -> list[Notice]:
    async with app[CORE].sessions() as session:
        stmt = select(Notice).where(Notice.kind == "reply").order_by(Notice.id)  # type: ignore[arg-type]
        return list((await session.exec(stmt)).all())


def delivered(fake: FakeWeCom, n: int) -> Any:
    async def check() -> bool:
        return len([c for c in fake.calls if c.path == "message/send"]) >= n

    return check


async def test_expired_token_is_refreshed_once_and_the_call_retried(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await start(make_client, fake_wecom)
    await say(client, clock, "帮助", 1)
    await eventually(delivered(fake_wecom, 1))
    assert fake_wecom.tokens_issued == ["token-1"]

    fake_wecom.expire_tokens()  # WeCom invalidated it early: next call answers 42001
    await say(client, clock, "帮助", 2)

    async def second_delivered() -> bool:
        return [n.status for n in await replies(app)] == ["sent", "sent"]

    await eventually(second_delivered)
    sends = [(c.query["access_token"]) for c in fake_wecom.calls if c.path == "message/send"]
    assert sends == ["token-1", "token-1", "token-2"]  # one refresh, one retry
    assert fake_wecom.tokens_issued == ["token-1", "token-2"]
    async with app[CORE].sessions() as session:
        shared = (await session.exec(select(SharedToken))).one()
    assert shared.value == "token-2"
    assert [n.attempts for n in await replies(app)] == [1, 1]  # the refresh was not a failed attempt

    # Near expiry (by the injected clock) the token is renewed before use.
    clock.advance(seconds=7200 - 60)
    await say(client, clock, "帮助", 3)
    await eventually(delivered(fake_wecom, 4))
    assert fake_wecom.tokens_issued == ["token-1", "token-2", "token-3"]


async def test_token_is_shared_through_the_database(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    _, app = await start(make_client, fake_wecom)
    core = app[CORE]

    def replica() -> WeComApi:
        return WeComApi(
            app[HTTP],
            base_url=fake_wecom.base_url,
            corp_id=CORP_ID,
            agent_id=AGENT_ID,
            secret=SECRET,
            sessions=core.sessions,
            clock=clock,
        )

    first, second = replica(), replica()
    tokens = await asyncio.gather(*(first.token() for _ in range(5)))
    assert set(tokens) == {"token-1"}
    assert await second.token() == "token-1"  # read from shared_token, no gettoken call
    assert len(fake_wecom.sent("gettoken")) == 1


async def test_45009_and_5xx_are_retried_then_delivered(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await start(make_client, fake_wecom)
    fake_wecom.fail_next("message/send", {"errcode": 45009, "errmsg": "api freq out of limit"}, 502)
    await say(client, clock, "帮助", 1)

    async def attempts(n: int) -> bool:
        rows = await replies(app)
        return len(rows) == 1 and rows[0].attempts == n and rows[0].status == "pending"

    await eventually(lambda: attempts(1))
    [row] = await replies(app)
    assert row.last_error is not None and "45009" in row.last_error
    clock.advance(seconds=5)  # past the backoff (base 1 s in tests)
    await eventually(lambda: attempts(2))
    [row] = await replies(app)
    assert row.last_error is not None and "HTTP 502" in row.last_error
    clock.advance(seconds=5)

    async def sent() -> bool:
        rows = await replies(app)
        return rows[0].status == "sent"

    await eventually(sent)
    [row] = await replies(app)
    assert row.attempts == 3
    assert row.provider_id and row.provider_id.startswith("msg-")
    assert len(fake_wecom.sent("message/send")) == 3


async def test_other_errcodes_are_permanent(make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom) -> None:
    client, app = await start(make_client, fake_wecom)
    fake_wecom.fail_next("message/send", {"errcode": 60020, "errmsg": "not allow to access from your ip"})
    await say(client, clock, "帮助", 1)

    async def dead() -> bool:
        rows = await replies(app)
        return len(rows) == 1 and rows[0].status == "dead"

    await eventually(dead)
    [row] = await replies(app)
    assert row.attempts == 1 and row.last_error is not None and "60020" in row.last_error


async def test_group_robot_is_paced_not_dropped(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    _, app = await start(make_client, fake_wecom)
    core = app[CORE]
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    now = clock.now()
    async with core.sessions() as session:
        session.add(robot_notice(kind="test", now=now, text="今日 3 场面试终止", mentioned_mobiles=["13800001111"]))
        session.add(robot_notice(kind="test", now=now, msgtype="markdown", text="**日报**"))
        session.add(robot_notice(kind="test", now=now, msgtype="image", image=png))
        for n in range(22):
            session.add(robot_notice(kind="test", now=now, text=f"消息 {n}"))
        await session.commit()
    core.wake_outbox()

    async def robot_rows() -> list[Notice]:
        async with core.sessions() as session:
            stmt = select(Notice).where(Notice.channel == "wecom_robot")
            return list((await session.exec(stmt)).all())

    async def first_minute_done() -> bool:
        rows = await robot_rows()
        return sum(r.status == "sent" for r in rows) == 20 and all(
            r.status == "sent" or r.next_attempt_at > now for r in rows
        )

    await eventually(first_minute_done)
    assert len(fake_wecom.sent("webhook/send")) == 20  # the 21st..25th wait, they are not sent or dropped
    deferred = [r for r in await robot_rows() if r.status != "sent"]
    assert len(deferred) == 5 and all(r.attempts == 0 and r.status == "pending" for r in deferred)

    clock.advance(seconds=61)
    core.wake_outbox()

    async def all_sent() -> bool:
        return all(r.status == "sent" for r in await robot_rows())

    await eventually(all_sent)
    calls = [c for c in fake_wecom.calls if c.path == "webhook/send"]
    assert len(calls) == 25
    assert all(c.query["key"] == "robot-key-for-tests" for c in calls)
    bodies = [c.body for c in calls]
    assert {
        "msgtype": "text",
        "text": {"content": "今日 3 场面试终止", "mentioned_mobile_list": ["13800001111"]},
    } in bodies
    assert {"msgtype": "markdown", "markdown": {"content": "**日报**"}} in bodies
    [image] = [b for b in bodies if b["msgtype"] == "image"]
    assert base64.b64decode(image["image"]["base64"]) == png
    assert image["image"]["md5"] == hashlib.md5(png).hexdigest()


async def test_error_texts_never_carry_secrets() -> None:
    assert redact("GET /cgi-bin/x?access_token=abc&key=k1 failed") == "GET /cgi-bin/x?access_token=***&key=*** failed"
    err = WeComError("x", errcode=45009, retryable=True)
    assert err.retryable and err.errcode == 45009
