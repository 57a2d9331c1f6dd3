"""Feishu long-connection mode (FEISHU_MODE=ws) against a fake endpoint and WebSocket on loopback
whose frames are the official SDK's protobuf ``Frame``: no public address, the same intake."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.channels import registry
from bot.channels.feishu import LINK
from bot.channels.feishu.frames import Frame, FrameError
from bot.channels.feishu.ws import ping_frame
from bot.clock import FrozenClock
from storage.models import IntakeItem
from tests.chat import add_person
from tests.conftest import AppFactory, eventually, started_interview
from tests.fakes.feishu_api import FakeFeishu
from tests.feishu import buttons, shown
from tests.interviews import interview_detail
from tests.rows import rows


@pytest.fixture
def fake(fake_feishu: FakeFeishu) -> FakeFeishu:
    return fake_feishu


async def ws_app(make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu, **extra: Any) -> TestClient:
    # No verification token or Encrypt Key: the connection itself is authenticated.
    client = await make_client(
        **fake.settings(feishu_mode="ws", feishu_verification_token=None, feishu_encrypt_key=None, **extra)
    )
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="feishu")
    await started_interview(client, clock, hr=("feishu", "hr01"))
    await fake.wait_connected()
    return client


def answer_body(answer: dict[str, Any]) -> Any:
    payload = answer["payload"]
    return json.loads(base64.b64decode(payload["data"])) if "data" in payload else None


async def test_terminate_over_the_long_connection(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await ws_app(make_client, clock, fake)
    app = client.server.app
    assert fake.endpoint_calls == 1 and fake.connections == 1
    assert registry.connections(app) == {"feishu long connection": "up"}
    assert (await client.post("/feishu/callback", data=b"{}")).status == 404  # no HTTP route in ws mode

    ask = fake.message("终止面试 张三 候选人放弃")
    frame_id = await fake.push(ask)
    answer = await fake.answer_to(frame_id)
    assert answer["payload"]["code"] == 200
    assert answer["headers"]["message_id"] == frame_id and "biz_rt" in answer["headers"]
    # Answered only once stored: the dedupe claim and the work row are committed.
    assert len(await rows(app, IntakeItem, source="feishu")) == 1

    await shown(fake, 1)
    prompt = fake.messages[0]
    assert prompt["reply_to"] == ask["event"]["message"]["message_id"]
    click = fake.card_click(buttons(prompt)[0], card_message={"message_id": prompt["message_id"]})
    # A card callback arrives over the connection too, split over two frames here.
    click_id = await fake.push(click, parts=2)
    click_answer = await fake.answer_to(click_id)
    assert click_answer["payload"]["code"] == 200 and answer_body(click_answer) == {}

    async def terminated() -> bool:
        return (await interview_detail(client))["status"] == "terminated"

    await eventually(terminated)
    assert (await interview_detail(client))["exit"]["operator"] == "feishu:hr01"
    await shown(fake, 2)
    assert "已终止 张三 的面试" in fake.messages[1]["content"]["text"]

    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 3.0

    async def closed() -> bool:
        return fake.sockets == []

    await eventually(closed)


async def test_redelivered_event_is_acked_and_processed_once(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await ws_app(make_client, clock, fake)
    app = client.server.app
    body = fake.message("帮助")
    first = await fake.push(body)
    again = await fake.push(body)  # Feishu pushes it again under a new frame id
    assert (await fake.answer_to(first))["payload"]["code"] == 200
    assert (await fake.answer_to(again))["payload"]["code"] == 200
    # An event type we do not handle is acknowledged (not pushed again) and not stored.
    other = {"schema": "2.0", "header": fake.header("im.chat.member.bot.added_v1"), "event": {"chat_id": "oc_1"}}
    assert (await fake.answer_to(await fake.push(other)))["payload"]["code"] == 200

    await shown(fake, 1)
    [job] = await rows(app, IntakeItem, source="feishu")

    async def processed() -> bool:
        [row] = await rows(app, IntakeItem, id=job.id)
        return row.status == "done"

    await eventually(processed)
    assert len(fake.messages) == 1


async def test_pings_dropped_connection_and_reconnect(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    fake.ping_interval = 1  # ClientConfig.PingInterval, in seconds
    client = await ws_app(make_client, clock, fake)

    async def pinged() -> bool:
        return fake.pings >= 1

    await eventually(pinged)
    await fake.sockets[-1].close()  # Feishu drops the connection: we come back
    await fake.wait_connected(2)
    assert fake.endpoint_calls == 2
    frame_id = await fake.push(fake.message("帮助"))
    assert (await fake.answer_to(frame_id))["payload"]["code"] == 200
    await shown(fake, 1)
    await client.close()


async def test_refused_endpoint_backs_off_and_shutdown_is_prompt(make_client: AppFactory, fake: FakeFeishu) -> None:
    fake.endpoint_code = 1000040343  # Feishu's "internal error"
    client = await make_client(**fake.settings(feishu_mode="ws"))
    app = client.server.app

    async def tried() -> bool:
        return fake.endpoint_calls >= 1

    await eventually(tried)
    assert (await client.get("/healthz")).status == 200  # the app runs while Feishu is away
    assert registry.connections(app) == {"feishu long connection": "connecting"}
    assert fake.endpoint_calls == 1 and fake.connections == 0  # backing off, not hammering
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 2.0


async def test_a_second_replica_stands_by(make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu) -> None:
    first = await ws_app(make_client, clock, fake)
    second = await make_client(**fake.settings(feishu_mode="ws"))

    async def decided() -> bool:
        return registry.connections(second.server.app) == {"feishu long connection": "standby"}

    await eventually(decided)
    assert fake.connections == 1 and fake.endpoint_calls == 1
    assert first.server.app[LINK].holding and not second.server.app[LINK].holding


async def test_frame_codec_matches_the_sdk() -> None:
    # Imported in the event loop (see tests/fakes/feishu_api.new_frame).
    from lark_oapi.ws.pb.pbbp2_pb2 import Frame as SdkFrame

    sdk = SdkFrame(SeqID=2**40 + 3, LogID=7, service=-5, method=1, payload=b'\x00{"a": 1}', LogIDNew="log-1")
    for key, value in (("type", "event"), ("message_id", "m-1"), ("sum", "1"), ("标题", "值")):
        h = sdk.headers.add()
        h.key, h.value = key, value
    ours = Frame.decode(sdk.SerializeToString())
    assert (ours.seq_id, ours.log_id, ours.service, ours.method) == (2**40 + 3, 7, -5, 1)
    assert ours.headers == [("type", "event"), ("message_id", "m-1"), ("sum", "1"), ("标题", "值")]
    assert ours.payload == b'\x00{"a": 1}' and ours.log_id_new == "log-1"
    back = SdkFrame()
    back.ParseFromString(ours.encode())
    assert back == sdk
    assert ours.encode() == sdk.SerializeToString()  # the same bytes, field for field
    assert Frame.decode(ping_frame(7).encode()) == ping_frame(7)
    with pytest.raises(FrameError):
        Frame.decode(b"\x08")  # truncated
    with pytest.raises(FrameError):
        Frame.decode(
            SdkFrame(SeqID=1, LogID=1, service=1, method=0).SerializeToString()[:-2]
        )  # a required field cut off
