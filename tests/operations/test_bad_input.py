"""Issue 11: every bad input is a 4xx decided before any expensive work, and changes nothing.

Each case was a 500 (or a silently swallowed message) before; run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from bot.keys import PLATFORM_INTAKE
from storage.models import IntakeItem
from tests.chat import add_person
from tests.conftest import (
    ADMIN_TOKEN,
    AppFactory,
    admin_headers,
    event,
    eventually,
    post_event,
    sign,
    started_interview,
)
from tests.fakes.dingtalk_api import APP_SECRET, FakeDingTalk, ms, reference_sign
from tests.fakes.wecom_api import BOT_AES_KEY, BOT_TOKEN, FakeWeCom, WeComSide, aibot_text, text_xml, wecom_settings
from tests.rawhttp import raw_request, row_counts
from tests.rows import rows
from tests.serve import run_cli_on

DEEP_JSON = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


@pytest.fixture
async def fake_ding() -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def client(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, fake_ding: FakeDingTalk
) -> TestClient:
    """Every channel on, an HR on each, and an interview in progress owned by the DingTalk HR."""
    client = await make_client(**wecom_settings(fake_wecom), **fake_ding.settings())
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock, hr=("dingtalk", "hr01"))
    return client


def app_of(client: TestClient) -> Any:
    assert client.server.app is not None
    return client.server.app


async def status_of(client: TestClient) -> str:
    resp = await client.get("/api/interviews/iv-1", headers=admin_headers())
    return str((await resp.json())["status"])


def ding_headers(clock: FrozenClock, age_ms: int = 0) -> list[tuple[bytes, bytes]]:
    stamp = str(ms(clock) - age_ms)
    return [(b"timestamp", stamp.encode()), (b"sign", reference_sign(APP_SECRET, stamp).encode())]


# --- without credentials ------------------------------------------------------------------


async def test_unsigned_bad_input_is_refused_before_any_work(client: TestClient, clock: FrozenClock) -> None:
    before = await row_counts(app_of(client))
    ts = int(clock.now().timestamp())
    json_ct = (b"Content-Type", b"application/json")
    cases: list[tuple[str, str, list[tuple[bytes, bytes]], bytes, int]] = [
        # deep JSON on the AI bot callback: parsed (bounded) before the signature check
        ("POST", f"/wecom/bot/callback?msg_signature=x&timestamp={ts}&nonce=1", [json_ct], DEEP_JSON, 400),
        ("POST", f"/wecom/bot/callback?msg_signature=x&timestamp={ts}&nonce=1", [json_ct], DEEP_OBJECT, 400),
        ("POST", f"/wecom/callback?msg_signature=x&timestamp={ts}&nonce=1", [], b"<a>" * 20_000, 400),
        # a 0xFF byte or non-ASCII in DingTalk's sign header
        ("POST", "/dingtalk/callback", [(b"timestamp", str(ms(clock)).encode()), (b"sign", b"\xff\xfe")], b"{}", 401),
        ("POST", "/dingtalk/callback", [(b"timestamp", str(ms(clock)).encode()), (b"sign", "签".encode())], b"{}", 401),
        # a non-ASCII or 0xFF X-Bot-Signature
        (
            "POST",
            "/api/platform/events",
            [(b"X-Bot-Timestamp", str(ts).encode()), (b"X-Bot-Signature", "签名".encode()), json_ct],
            b"{}",
            401,
        ),
        (
            "POST",
            "/api/platform/events",
            [(b"X-Bot-Timestamp", str(ts).encode()), (b"X-Bot-Signature", b"\xff" * 64), json_ct],
            b"{}",
            401,
        ),
        # 0xFF or non-ASCII in Authorization on the admin API
        ("GET", "/api/interviews", [(b"Authorization", b"Bearer \xff\xfe")], b"", 401),
        ("GET", "/api/interviews", [(b"Authorization", f"Bearer {ADMIN_TOKEN}令".encode())], b"", 401),
    ]
    for method, path, headers, body, expected in cases:
        status, answer = await raw_request(client, method, path, headers, body)
        assert status == expected, (path, headers, status, answer[:200])
    assert await row_counts(app_of(client)) == before


# --- with credentials: deep structures -----------------------------------------------------


async def test_deep_json_is_a_400_on_every_endpoint(client: TestClient, clock: FrozenClock) -> None:
    before = await row_counts(app_of(client))
    for body in (DEEP_JSON, DEEP_OBJECT, json.dumps({**event("interview.activity"), "data": {"x": [[[[[[[[]]]]]]]]}})):
        raw = body if isinstance(body, bytes) else body.encode()
        deep_data = not isinstance(body, bytes)
        resp = await client.post("/api/platform/events", data=raw, headers=sign(raw, int(clock.now().timestamp())))
        if deep_data:  # eight levels is fine: the limit is 32
            assert resp.status == 200, await resp.text()
            await client.app[PLATFORM_INTAKE].settled()
            continue
        assert resp.status == 400
        assert (await resp.json())["error"] == "too_deep"
        resp = await client.post("/api/interviews/iv-1/terminate", data=raw, headers=admin_headers())
        assert resp.status == 400
        assert (await resp.json())["error"] == "too_deep"
        status, _ = await raw_request(client, "POST", "/dingtalk/callback", ding_headers(clock), raw)
        assert status == 400
    after = await row_counts(app_of(client))
    grown = {"platform_event": before["platform_event"] + 1, "intake_item": before["intake_item"] + 1}
    assert after == {**before, **grown}
    assert await status_of(client) == "in_progress"


async def test_deep_xml_and_json_inside_wecom_messages(client: TestClient, clock: FrozenClock) -> None:
    before = await row_counts(app_of(client))
    ts = int(clock.now().timestamp())
    deep = "<a>" * 20_000 + "</a>" * 20_000
    xml = text_xml("hr01", "x", 7001).replace("<Content><![CDATA[x]]></Content>", f"<Content>{deep}</Content>")
    path, body = WeComSide().app_post(xml, timestamp=ts)
    assert (await client.post(path, data=body)).status == 400

    bot = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    payload = aibot_text("hr01", "帮助", msgid="deep-1", response_url="http://127.0.0.1:9/r")
    payload["text"]["extra"] = json.loads("[" * 200 + "]" * 200)
    path, body = bot.bot_post(payload, timestamp=ts)
    assert (await client.post(path, data=body)).status == 400
    assert await row_counts(app_of(client)) == before


# --- with credentials: values the database or Python cannot hold -----------------------------


async def test_nul_and_unencodable_text_is_refused(
    client: TestClient, clock: FrozenClock, fake_ding: FakeDingTalk
) -> None:
    before = await row_counts(app_of(client))
    for changes in (
        {"name": "张\u0000三"},
        {"position": "Java\u0000"},
        {"event_id": "ev\u0000"},
    ):
        payload = event("interview.scheduled", "iv-2")
        if "name" in changes:
            payload["interview"]["candidate"]["name"] = changes["name"]
        elif "position" in changes:
            payload["interview"]["position"] = changes["position"]
        else:
            payload["event_id"] = changes["event_id"]
        resp = await post_event(client, clock, payload)
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"] == "nul_character"
    raw = json.dumps(event("interview.scheduled", "iv-2"), ensure_ascii=False).replace("张三", "\\ud800").encode()
    resp = await client.post("/api/platform/events", data=raw, headers=sign(raw, int(clock.now().timestamp())))
    assert (resp.status, (await resp.json())["error"]) == (400, "malformed_text")
    raw = json.dumps(event("interview.scheduled", "iv-2", data={"x": float("nan")})).encode()
    resp = await client.post("/api/platform/events", data=raw, headers=sign(raw, int(clock.now().timestamp())))
    assert (resp.status, (await resp.json())["error"]) == (400, "malformed_json")

    for field in ("operator", "detail"):
        body = {"reason": "候选人放弃", field: "x\u0000y"}
        resp = await client.post("/api/interviews/iv-1/terminate", json=body, headers=admin_headers())
        assert (resp.status, (await resp.json())["error"]) == (400, "nul_character")
    assert (await client.get("/api/interviews/iv%001", headers=admin_headers())).status == 404
    assert (await client.get("/api/notices?kind=a%00", headers=admin_headers())).status == 400

    resp = await fake_ding.post_callback(client, fake_ding.message("终止面试 张\u0000三", clock), clock)
    assert (resp.status, (await resp.json())["error"]) == (400, "malformed_callback")
    assert await row_counts(app_of(client)) == before
    assert await status_of(client) == "in_progress"


async def test_overlong_ids_and_bad_numbers_are_refused(
    client: TestClient, clock: FrozenClock, fake_ding: FakeDingTalk
) -> None:
    before = await row_counts(app_of(client))
    for changes in (
        {"msgId": "m" * 400},
        {"senderStaffId": "s" * 1000},
        {"conversationId": "c" * 1000},
        {"sessionWebhookExpiredTime": "abc"},
        {"sessionWebhookExpiredTime": {"a": 1}},
        {"sessionWebhookExpiredTime": "9" * 5000},
    ):
        body = {**fake_ding.message("终止面试 张三 候选人放弃", clock), **changes}
        resp = await fake_ding.post_callback(client, body, clock)
        assert resp.status == 400, (changes, await resp.text())
        assert (await resp.json())["error"] == "malformed_callback"

    ts = int(clock.now().timestamp())
    path, body = WeComSide().app_post(text_xml("hr01", "帮助", int("9" * 400)), timestamp=ts)
    assert (await client.post(path, data=body)).status == 400
    path, body = WeComSide().app_post(text_xml("u" * 1000, "帮助", 7002), timestamp=ts)
    assert (await client.post(path, data=body)).status == 400
    bot = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    path, body = bot.bot_post(aibot_text("hr01", "帮助", msgid="b" * 400, response_url="http://x/r"), timestamp=ts)
    assert (await client.post(path, data=body)).status == 400
    assert await row_counts(app_of(client)) == before


async def test_datetimes_out_of_range(client: TestClient, clock: FrozenClock) -> None:
    before = await row_counts(app_of(client))
    for occurred in ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"):
        payload = event("interview.activity")
        payload["occurred_at"] = occurred
        resp = await post_event(client, clock, payload)
        assert (resp.status, (await resp.json())["error"]) == (422, "invalid_event")
    for scheduled in ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"):
        payload = event("interview.scheduled", "iv-3")
        payload["interview"]["scheduled_at"] = scheduled
        resp = await post_event(client, clock, payload)
        assert resp.status == 422
    for start, end in (("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")):
        resp = await client.get(f"/api/reports/exits?from={start}&to={end}", headers=admin_headers())
        assert (resp.status, (await resp.json())["error"]) == (400, "bad_date")
    assert await row_counts(app_of(client)) == before


async def test_cli_report_refuses_dates_out_of_range(clean_db: str) -> None:
    code, _out, err = await run_cli_on(clean_db, "report", "exits", "--from", "0001-01-01", "--to", "0001-01-02")
    assert code == 2
    assert "--from" in err and "Traceback" not in err


async def test_far_future_event_is_refused_and_keeps_the_idle_timeout(client: TestClient, clock: FrozenClock) -> None:
    before = await row_counts(app_of(client))
    for when in ("9999-12-31T23:00:00+00:00", (clock.now() + timedelta(minutes=6)).isoformat()):
        payload = event("interview.activity", occurred_at=clock.now())
        payload["occurred_at"] = when
        resp = await post_event(client, clock, payload)
        assert resp.status == 422, await resp.text()
        assert "occurred_at" in json.dumps(await resp.json(), ensure_ascii=False)
    assert await row_counts(app_of(client)) == before
    # A platform clock a little ahead of ours is fine.
    resp = await post_event(client, clock, event("interview.activity", occurred_at=clock.now() + timedelta(minutes=4)))
    assert resp.status == 200


# --- messages without ids --------------------------------------------------------------------


async def test_wecom_texts_without_msgid_are_each_processed(
    client: TestClient, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    ts = int(clock.now().timestamp())
    side = WeComSide()
    for n, text in enumerate(("帮助", "待办")):
        xml = text_xml("hr01", text, 1, create_time=1700000000 + n).replace("<MsgId>1</MsgId>", "")
        path, body = side.app_post(xml, timestamp=ts)
        assert (await client.post(path, data=body)).status == 200
    # A redelivery of the second one is still a duplicate.
    xml = text_xml("hr01", "待办", 1, create_time=1700000001).replace("<MsgId>1</MsgId>", "")
    path, body = side.app_post(xml, timestamp=ts)
    assert (await client.post(path, data=body)).status == 200
    assert len(await rows(app_of(client), IntakeItem, source="wecom")) == 2


async def test_ai_bot_message_without_msgid_is_processed(client: TestClient, clock: FrozenClock) -> None:
    bot = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    payload = aibot_text("hr01", "帮助", msgid="x", response_url="http://127.0.0.1:9/r")
    del payload["msgid"]
    path, body = bot.bot_post(payload, timestamp=int(clock.now().timestamp()))
    assert (await client.post(path, data=body)).status == 200
    assert len(await rows(app_of(client), IntakeItem, source="wecom")) == 1


# --- DingTalk: a signed timestamp does not carry any body ----------------------------------------


async def test_dingtalk_forged_body_with_an_old_or_reused_pair_is_refused(
    client: TestClient, clock: FrozenClock, fake_ding: FakeDingTalk
) -> None:
    app = app_of(client)
    before = await row_counts(app)
    # A pair captured 50 minutes ago (DingTalk itself would accept it for an hour), a new body.
    forged = fake_ding.message("终止面试 张三 候选人放弃", clock, msg_id="forged-1")
    old = ms(clock) - 50 * 60 * 1000
    assert (await fake_ding.post_callback(client, forged, clock, timestamp=old)).status == 401
    # A body for another robot.
    other = {**fake_ding.message("终止面试 张三 候选人放弃", clock), "robotCode": "someone-else"}
    assert (await fake_ding.post_callback(client, other, clock)).status == 401
    assert await row_counts(app) == before

    # A fresh genuine message, then its pair reused with another msgId.
    stamp = ms(clock) - 1000
    genuine = fake_ding.message("待办", clock, msg_id="genuine-1")
    assert (await fake_ding.post_callback(client, genuine, clock, timestamp=stamp)).status == 200
    assert (await fake_ding.post_callback(client, genuine, clock, timestamp=stamp)).status == 200  # redelivery

    async def answered() -> bool:
        return len(fake_ding.session_posts) == 1

    await eventually(answered)
    after_genuine = await row_counts(app)
    reused = fake_ding.message("终止面试 张三 候选人放弃", clock, msg_id="forged-2")
    assert (await fake_ding.post_callback(client, reused, clock, timestamp=stamp)).status == 401
    confirm = fake_ding.message("确认", clock, msg_id="forged-3")
    assert (await fake_ding.post_callback(client, confirm, clock, timestamp=stamp)).status == 401
    assert await row_counts(app) == after_genuine
    assert after_genuine["intake_item"] == before["intake_item"] + 1
    assert await status_of(client) == "in_progress"
