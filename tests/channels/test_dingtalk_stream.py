"""DingTalk Stream mode: the SDK's handler fed real frames, and the connection's life cycle
against a fake gateway (connections/open + WebSocket) on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from dingtalk_stream import CallbackMessage, ChatbotMessage
from sqlmodel import select

from bot.channels.dingtalk import STREAM
from bot.clock import FrozenClock
from bot.keys import BACKGROUND, CORE
from storage.models import IntakeItem
from tests.chat import add_person
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.dingtalk_api import SAMPLES, FakeDingTalk


@pytest.fixture
async def fake(clock: FrozenClock) -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk(clock=clock)
    await fake.start()
    yield fake
    await fake.close()


async def stream_app(make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk) -> TestClient:
    client = await make_client(**fake.settings(dingtalk_mode="stream"))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock, hr=("dingtalk", "hr01"))
    return client


def system_frame(topic: str, message_id: str, data: dict[str, Any]) -> dict[str, Any]:
    headers = {"topic": topic, "messageId": message_id, "contentType": "application/json", "time": "1700000000000"}
    return {"specVersion": "1.0", "type": "SYSTEM", "headers": headers, "data": json.dumps(data)}


async def idle(app: web.Application) -> None:
    """Wait until no DingTalk message is being stored (Stream mode stores them beside the ack)."""

    async def done() -> bool:
        return not [t for t in app[BACKGROUND] if t.get_name() == "intake-receive:dingtalk"]

    await eventually(done)


async def test_handler_acks_real_frames_and_runs_the_flow(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    fake.open_status = 503  # no gateway here: frames go straight to the SDK handler
    client = await stream_app(make_client, clock, fake)
    app = client.server.app
    handler = app[STREAM].client.callback_handler_map[ChatbotMessage.TOPIC]

    body = fake.message(" 终止面试 张三 候选人放弃", clock, msg_id="msg-s1")
    ack = await handler.raw_process(CallbackMessage.from_dict(fake.frame(body, "m-1")))
    assert ack.to_dict() == SAMPLES["stream_ack"]  # acked before any processing

    # DingTalk may push the same message again under a new frame id: acked, taken in once.
    again = await handler.raw_process(CallbackMessage.from_dict(fake.frame(body, "m-2")))
    assert again.code == 200
    await idle(app)
    async with app[CORE].sessions() as session:
        assert len((await session.exec(select(IntakeItem).where(IntakeItem.source == "dingtalk"))).all()) == 1

    async def prompted() -> bool:
        return len(fake.session_posts) == 1

    await eventually(prompted)
    assert fake.session_posts[0]["body"]["msgtype"] == "actionCard"

    confirm = fake.message("确认", clock, msg_id="msg-s2")
    await handler.raw_process(CallbackMessage.from_dict(fake.frame(confirm, "m-3")))

    async def replied() -> bool:
        return len(fake.session_posts) == 2

    await eventually(replied)
    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert detail["status"] == "terminated"
    assert detail["exit"]["operator"] == "dingtalk:hr01"
    assert "已终止 张三 的面试" in fake.session_posts[1]["body"]["text"]["content"]
    # hr01 is the operator and the HR owner: one message, no second HR notice.
    assert [n for n in detail["notices"] if n["kind"] == "hr_terminated"] == []


async def test_connection_acks_pings_reconnects_and_stops_promptly(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await stream_app(make_client, clock, fake)
    app = client.server.app
    await fake.wait_connected()
    assert fake.open_bodies[0]["clientId"] == "dingappkey123"
    assert fake.open_bodies[0]["subscriptions"] == [{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]
    assert (await client.post("/dingtalk/callback", data=b"{}")).status == 404  # no HTTP route in stream mode

    await fake.push(fake.frame(fake.message(" 帮助", clock), "m-1"))

    async def acked() -> bool:
        return any(a["headers"].get("messageId") == "m-1" for a in fake.acks)

    await eventually(acked)
    assert fake.acks[0] == SAMPLES["stream_ack"]

    async def answered() -> bool:
        return len(fake.session_posts) == 1

    await eventually(answered)
    assert "终止面试" in json.dumps(fake.session_posts[0]["body"], ensure_ascii=False)

    await fake.push(system_frame("ping", "p-1", {"opaque": "xyz"}))

    async def ponged() -> bool:
        return any(a["headers"].get("messageId") == "p-1" for a in fake.acks)

    await eventually(ponged)
    pong = next(a for a in fake.acks if a["headers"].get("messageId") == "p-1")
    assert pong["code"] == 200 and json.loads(pong["data"]) == {"opaque": "xyz"}

    # DingTalk rotates connections: "disconnect" → a new ticket and a new socket, at once.
    await fake.push(system_frame("disconnect", "d-1", {"reason": "connection is expired"}))
    await fake.wait_connected(2)
    assert fake.open_calls == 2 and app[STREAM].connections == 2

    # Still working on the new connection.
    await fake.push(fake.frame(fake.message("帮助", clock), "m-2"))

    async def answered_again() -> bool:
        return len(fake.session_posts) == 2

    await eventually(answered_again)
    await idle(app)
    async with app[CORE].sessions() as session:
        jobs = (await session.exec(select(IntakeItem).where(IntakeItem.source == "dingtalk"))).all()
    assert [j.status for j in jobs] == ["done", "done"]

    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 2.0

    async def closed() -> bool:
        return fake.sockets == []

    await eventually(closed)


async def test_failing_gateway_backs_off_and_shutdown_is_prompt(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    fake.open_status = 503
    client = await make_client(**fake.settings(dingtalk_mode="stream"))
    app = client.server.app

    async def tried() -> bool:
        return fake.open_calls >= 1

    await eventually(tried)
    assert (await client.get("/healthz")).status == 200  # the app runs while DingTalk is away
    assert app[STREAM].connections == 0
    assert fake.open_calls == 1  # backing off, not hammering the gateway

    started = time.monotonic()
    await client.close()  # while the loop sleeps in its backoff
    assert time.monotonic() - started < 1.0


async def test_unreachable_gateway_does_not_block_startup_or_shutdown(make_client: AppFactory) -> None:
    # Nothing listens on port 9 of loopback: the connect step fails fast.
    started = time.monotonic()
    client = await make_client(
        dingtalk_mode="stream",
        dingtalk_app_key="k",
        dingtalk_app_secret="s",
        dingtalk_api_base="http://127.0.0.1:9",
        dingtalk_oapi_base="http://127.0.0.1:9",
    )
    assert (await client.get("/healthz")).status == 200
    await client.close()
    assert time.monotonic() - started < 3.0
