"""The platform events API: signatures, freshness, parsing, dedupe, state changes."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from tests.conftest import CLOCK_START, AppFactory, admin_headers, event, post_event, sign


async def interview_json(client: TestClient, interview_id: str = "iv-1") -> dict:
    resp = await client.get(f"/api/interviews/{interview_id}", headers=admin_headers())
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_lifecycle_moves_status_and_pipeline(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    resp = await post_event(client, clock, event("interview.scheduled"))
    assert resp.status == 200
    body = await interview_json(client)
    assert body["status"] == "scheduled"
    assert body["candidate"]["pipeline_status"] == "待面试"
    assert body["hr"] == "wecom:hr01"

    await post_event(client, clock, event("interview.started"))
    body = await interview_json(client)
    assert body["status"] == "in_progress"
    assert body["candidate"]["pipeline_status"] == "面试中"
    assert body["started_at"] is not None

    for q in (2, 1, 2):  # out of order and repeated: kept sorted, one entry per question
        payload = event("interview.answer_saved", data={"question_no": q, "media_url": f"oss://x/{q}.mp4"})
        assert (await post_event(client, clock, payload)).status == 200
    body = await interview_json(client)
    assert [a["question_no"] for a in body["progress"]["answered"]] == [1, 2]
    assert body["answered"] == 2

    await post_event(client, clock, event("interview.completed"))
    body = await interview_json(client)
    assert body["status"] == "completed"
    assert body["candidate"]["pipeline_status"] == "已完成"

    # Events after the end do not reopen the interview.
    await post_event(client, clock, event("interview.started"))
    assert (await interview_json(client))["status"] == "completed"


async def test_same_event_id_applies_once(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await post_event(client, clock, event("interview.scheduled"))
    payload = event("interview.answer_saved", event_id="ev-dup", data={"question_no": 1, "media_url": "oss://a"})
    first = await post_event(client, clock, payload)
    assert (await first.json())["status"] == "accepted"
    # A redelivery with different content must not be applied either.
    payload["data"] = {"question_no": 9, "media_url": "oss://other"}
    second = await post_event(client, clock, payload)
    assert second.status == 200
    assert (await second.json())["status"] == "duplicate"
    body = await interview_json(client)
    assert [a["question_no"] for a in body["progress"]["answered"]] == [1]


async def test_bad_signature_stale_and_unsigned_are_rejected(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    body = json.dumps(event("interview.scheduled")).encode()
    now = int(clock.now().timestamp())

    unsigned = await client.post("/api/platform/events", data=body)
    assert unsigned.status == 401

    wrong_secret = await client.post("/api/platform/events", data=body, headers=sign(body, now, secret="nope"))
    assert wrong_secret.status == 401

    tampered = await client.post("/api/platform/events", data=body + b" ", headers=sign(body, now))
    assert tampered.status == 401

    stale = await client.post("/api/platform/events", data=body, headers=sign(body, now - 301))
    assert stale.status == 401
    assert "stale" in (await stale.json())["message"]

    future = await client.post("/api/platform/events", data=body, headers=sign(body, now + 301))
    assert future.status == 401

    garbage_ts = sign(body, now)
    garbage_ts["X-Bot-Timestamp"] = "abc"
    assert (await client.post("/api/platform/events", data=body, headers=garbage_ts)).status == 401

    # Nothing was recorded by any of them.
    resp = await client.get("/api/interviews", headers=admin_headers())
    assert (await resp.json())["interviews"] == []

    # Within the window it is accepted.
    ok = await client.post("/api/platform/events", data=body, headers=sign(body, now - 299))
    assert ok.status == 200


async def test_replayed_signed_request_is_applied_once(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    body = json.dumps(event("interview.scheduled", event_id="ev-replay")).encode()
    headers = sign(body, int(clock.now().timestamp()))
    first = await client.post("/api/platform/events", data=body, headers=headers)
    assert (await first.json())["status"] == "accepted"
    again = await client.post("/api/platform/events", data=body, headers=headers)
    assert (await again.json())["status"] == "duplicate"


async def test_malformed_and_unknown_events_change_nothing(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()

    async def send_raw(raw: bytes) -> tuple[int, dict]:
        resp = await client.post("/api/platform/events", data=raw, headers=sign(raw, int(clock.now().timestamp())))
        return resp.status, await resp.json()

    status, body = await send_raw(b"{not json")
    assert (status, body["error"]) == (400, "malformed_json")
    status, body = await send_raw(b"[1, 2]")
    assert (status, body["error"]) == (400, "malformed_json")
    status, body = await send_raw(json.dumps(event("interview.exploded")).encode())
    assert (status, body["error"]) == (400, "unknown_event_type")
    missing = event("interview.scheduled")
    del missing["interview"]["candidate"]
    status, body = await send_raw(json.dumps(missing).encode())
    assert (status, body["error"]) == (422, "invalid_event")
    naive = event("interview.scheduled")
    naive["occurred_at"] = CLOCK_START.replace(tzinfo=None).isoformat()
    status, body = await send_raw(json.dumps(naive).encode())
    assert status == 422
    bad_answer = event("interview.answer_saved", data={"question_no": "first"})
    status, body = await send_raw(json.dumps(bad_answer).encode())
    assert status == 422

    resp = await client.get("/api/interviews", headers=admin_headers())
    assert (await resp.json())["interviews"] == []


async def test_oversized_body_is_refused(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(max_body_bytes=4096)
    payload = event("interview.scheduled")
    payload["data"] = {"junk": "x" * 10_000}
    body = json.dumps(payload).encode()
    resp = await client.post("/api/platform/events", data=body, headers=sign(body, int(clock.now().timestamp())))
    assert resp.status == 413


async def test_help_request_becomes_hr_todo(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await post_event(client, clock, event("interview.started"))
    payload = event("interview.help_requested", data={"reason": "摄像头打不开", "wants_exit": True})
    assert (await post_event(client, clock, payload)).status == 200
    body = await interview_json(client)
    assert body["todos"] == [
        {
            "id": body["todos"][0]["id"],
            "assignee": "wecom:hr01",
            "title": "候选人张三希望结束面试:摄像头打不开",
            "done": False,
            "done_at": None,
            "done_by": None,
        }
    ]


async def test_events_disabled_without_secret(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(platform_webhook_secret=None)
    resp = await post_event(client, clock, event("interview.scheduled"))
    assert resp.status == 503
    health = await client.get("/healthz")
    assert health.status == 200
