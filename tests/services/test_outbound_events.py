"""Outbound events to the company's systems: signed, one per endpoint, through the outbox (retries,
dead letters retried in the console, strict order per interview and endpoint), checked by a loopback
receiver that verifies every signature."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from pydantic import TypeAdapter, ValidationError
from sqlmodel import col, select

from bot import jobs
from bot.clock import FrozenClock
from bot.keys import CORE, OUTBOX
from bot.services import outbound, scheduling
from storage import repo
from storage.models import Notice, NoticeAttempt
from tests.chat import ChatUser, add_person, prompt_id
from tests.conftest import (
    AppFactory,
    admin_headers,
    event,
    eventually,
    make_settings,
    post_event,
    started_interview,
)
from tests.console import console_setup, signed_in
from tests.fakes.webhook_receiver import WebhookReceiver

ENV_SECRET = "env-webhook-secret"
ADMIN = admin_headers()
EVENTS: TypeAdapter[outbound.OutboundEvent] = TypeAdapter(outbound.OutboundEvent)


@pytest.fixture
async def receiver(clock: FrozenClock) -> AsyncIterator[WebhookReceiver]:
    fake = WebhookReceiver(secrets={"env": ENV_SECRET}, now=lambda: clock.now().timestamp())
    await fake.start()
    yield fake
    await fake.close()


def webhook_settings(receiver: WebhookReceiver, **extra: object) -> dict[str, object]:
    return {"webhook_urls": receiver.url("env"), "webhook_secret": ENV_SECRET, **extra}


async def add_console_endpoint(client: TestClient, receiver: WebhookReceiver, name: str, *, contacts: bool) -> int:
    """Add an endpoint on the 系统 page as the admin; the secret it shows once goes to the receiver."""
    csrf = await signed_in(client, "root")
    form = {"csrf": csrf, "op": "add", "url": receiver.url(name)}
    if contacts:
        form["include_contacts"] = "on"
    resp = await client.post("/console/system/webhooks", data=form)
    html = await resp.text()
    assert resp.status == 200, html
    secret = re.search(r'<code id="webhook-secret">([0-9a-f]{64})</code>', html)
    endpoint = re.search(r"已添加推送地址 #(\d+)", html)
    assert secret and endpoint, html
    receiver.secrets[name] = secret.group(1)
    page = await (await client.get("/console/system")).text()
    assert receiver.url(name) in page and secret.group(1) not in page  # shown once, never again
    return int(endpoint.group(1))


async def rows(client: TestClient, event_type: str | None = None) -> list[Notice]:
    async with client.app[CORE].sessions() as session:
        stmt = select(Notice).where(Notice.kind == "outbound_event").order_by(col(Notice.id))
        found = (await session.exec(stmt)).all()
    return [n for n in found if event_type is None or n.payload["event_type"] == event_type]


async def attempts(client: TestClient, notice_id: int | None) -> list[str]:
    async with client.app[CORE].sessions() as session:
        stmt = select(NoticeAttempt).where(NoticeAttempt.notice_id == notice_id).order_by(col(NoticeAttempt.seq))
        return [a.result for a in (await session.exec(stmt)).all()]


async def test_a_termination_from_chat_console_and_idle_timeout_each_send_one_event_per_endpoint(
    make_client: AppFactory, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    client, app = await console_setup(make_client, clock, idle_timeout_seconds=600, **webhook_settings(receiver))
    await add_console_endpoint(client, receiver, "crm", contacts=True)
    await started_interview(client, clock, "iv-3", name="王五", hr=("wecom", "hr01"), email="w5@example.com")

    hr = ChatUser(app, "hr01")  # from chat
    await hr.say("终止面试 张三 候选人放弃")
    assert "已终止" in await hr.says(f"确认 #{await prompt_id(app)}")
    csrf = await signed_in(client, "hr02")  # from the console
    data = {"csrf": csrf, "reason": "system_failure", "note": "断线三次"}
    resp = await client.post("/console/interviews/iv-2/terminate", data=data, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    clock.advance(seconds=601)  # from the idle timeout (iv-1 and iv-2 are over: only iv-3)
    assert await jobs.sweep_idle(app[CORE]) == 1

    async def all_delivered() -> bool:
        return all(len(receiver.delivered(e, "interview.terminated")) == 3 for e in ("env", "crm"))

    await eventually(all_delivered, timeout=10)
    assert receiver.refused == []  # every request carried a valid signature
    for endpoint in ("env", "crm"):
        got = receiver.delivered(endpoint, "interview.terminated")
        by_interview = {r.body["interview"]["id"]: r.body for r in got}
        assert sorted(by_interview) == ["iv-1", "iv-2", "iv-3"]  # exactly one each
        chat, console, idle = by_interview["iv-1"], by_interview["iv-2"], by_interview["iv-3"]
        assert (chat["source"], chat["operator"], chat["exit"]["reason"]["code"]) == (
            "chat",
            "wecom:hr01",
            "candidate_quit",
        )
        assert (console["source"], console["operator"], console["exit"]["detail"]) == (
            "console",
            "wecom:hr02",
            "断线三次",
        )
        assert (idle["source"], idle["operator"]) == ("timeout", "system")
        for body in (chat, console, idle):
            event = EVENTS.validate_python(body)  # the published model reads it back
            assert isinstance(event, outbound.InterviewTerminated)
            assert event.exit.reason.outcome == event.pipeline.current == event.candidate.pipeline_status
            assert event.pipeline.previous == "面试中" and event.exit.answered == 2
        # No second event for the pipeline status the exit led to.
        changes = [r.body for r in receiver.delivered(endpoint, "candidate.pipeline_status_changed")]
        starts = 3 if endpoint == "env" else 1  # crm was added after iv-1 and iv-2 had started
        assert [c["pipeline"]["current"] for c in changes] == ["面试中"] * starts
        assert len({r.key for r in receiver.delivered(endpoint)}) == len(receiver.delivered(endpoint))  # no repeats
    # Contacts only where the endpoint is marked to receive them.
    assert receiver.delivered("env", "interview.terminated")[0].body["candidate"]["contacts"] is None
    crm = {r.body["interview"]["id"]: r.body for r in receiver.delivered("crm", "interview.terminated")}
    assert crm["iv-1"]["candidate"]["contacts"] == {"mobile": "13800001234", "email": "zhangsan@example.com"}
    # The same event (one id) went to both endpoints.
    env_ids = {r.body["interview"]["id"]: r.key for r in receiver.delivered("env", "interview.terminated")}
    assert env_ids == {k: v["event_id"] for k, v in crm.items()}


async def test_a_receiver_failing_three_times_gets_the_event_once_more_and_nothing_else(
    make_client: AppFactory, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    client = await make_client(**webhook_settings(receiver))
    await started_interview(client, clock, "iv-1")
    receiver.fail["interview.terminated"] = 3
    resp = await client.post(
        "/api/interviews/iv-1/terminate", json={"reason": "candidate_quit"}, headers=admin_headers()
    )
    assert resp.status == 200, await resp.text()
    for tried in (1, 2, 3, 4):

        async def reached(n: int = tried) -> bool:
            # The receiver counts a try when it arrives; the outbox records it once the answer is back.
            # The clock moves only after that, else the retry would be set 60 s past the moved clock.
            if len(receiver.tries("env", "interview.terminated")) != n:
                return False
            row = await rows(client, "interview.terminated")
            return len(row) == 1 and row[0].attempts == n

        await eventually(reached)
        clock.advance(seconds=60)  # past any backoff (base 1 s in tests)
    outbox = client.app[OUTBOX]
    for _ in range(3):
        clock.advance(seconds=3600)
        await outbox.run_once()
    tries = receiver.tries("env", "interview.terminated")
    assert [t.status for t in tries] == [500, 500, 500, 200]  # once more, and nothing else
    assert len({t.key for t in tries}) == 1 and len({t.body["event_id"] for t in tries}) == 1
    [row] = await rows(client, "interview.terminated")
    assert row.status == "sent" and row.attempts == 4
    assert await attempts(client, row.id) == ["failed", "failed", "failed", "sent"]


async def test_a_receiver_down_for_the_whole_retry_window_leaves_a_dead_letter_that_retry_delivers_in_order(
    make_client: AppFactory, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    client, app = await console_setup(make_client, clock, webhook_max_attempts=3, **webhook_settings(receiver))

    async def starts_delivered() -> bool:
        return len(receiver.delivered("env", "candidate.pipeline_status_changed")) == 2

    await eventually(starts_delivered)
    receiver.down = True
    resp = await client.post(
        "/api/interviews/iv-1/terminate", json={"reason": "candidate_quit"}, headers=admin_headers()
    )
    assert resp.status == 200, await resp.text()

    async def dead() -> bool:
        clock.advance(seconds=5)
        return [r.status for r in await rows(client, "interview.terminated")] == ["dead"]

    await eventually(dead, timeout=10)
    [row] = await rows(client, "interview.terminated")
    assert await attempts(client, row.id) == ["failed", "failed", "rejected"]
    # The same interview's next events wait behind the dead letter (never sent before it).
    await scheduling.reschedule(
        app[CORE], platform_id="iv-1", new_time=clock.now() + timedelta(days=2), operator="wecom:hr01", source="chat"
    )
    receiver.down = False
    for _ in range(3):
        clock.advance(seconds=60)
        await app[OUTBOX].run_once()
    assert len(receiver.delivered("env")) == 2  # the starts only
    assert [r.status for r in await rows(client, "interview.rescheduled")] == ["pending"]

    csrf = await signed_in(client, "root")
    page = await (await client.get("/console/notices")).text()
    assert f'action="/console/notices/{row.id}/retry"' in page and "公司系统(事件推送)" in page
    resp = await client.post(f"/console/notices/{row.id}/retry", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303, await resp.text()

    async def caught_up() -> bool:
        return len(receiver.delivered("env")) == 5

    await eventually(caught_up)
    iv1 = [r for r in receiver.delivered("env") if r.body["interview"]["id"] == "iv-1"][1:]
    assert [r.event_type for r in iv1] == [
        "interview.terminated",
        "interview.rescheduled",
        "candidate.pipeline_status_changed",
    ]
    assert iv1[0].key == row.payload["event_id"]  # the same event, recognisable as such
    assert (iv1[2].body["pipeline"]["previous"], iv1[2].body["pipeline"]["current"]) == ("未完成", "待面试")
    assert receiver.refused == []


async def test_endpoints_are_managed_on_the_system_page(
    make_client: AppFactory, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    client = await make_client()
    await started_interview(client, clock, "iv-1")
    await add_person(client.app, "root", "管理员甲", "admin")
    endpoint = await add_console_endpoint(client, receiver, "crm", contacts=False)
    csrf = await signed_in(client, "root")
    bad = await client.post("/console/system/webhooks", data={"csrf": csrf, "op": "add", "url": "ftp://x"})
    assert bad.status == 409 and "推送地址须以 http:// 或 https:// 开头" in await bad.text()
    missing = await client.post("/console/system/webhooks", data={"csrf": csrf, "op": "delete", "id": "999"})
    assert missing.status == 404 and "没有编号为 999 的推送地址" in await missing.text()
    assert len(outbound_list := await outbound.list_endpoints(client.app[CORE])) == 1 and outbound_list[0].enabled

    off = await client.post("/console/system/webhooks", data={"csrf": csrf, "op": "disable", "id": str(endpoint)})
    assert off.status == 200 and "已停用" in await off.text()
    resp = await client.post(
        "/api/interviews/iv-1/terminate", json={"reason": "candidate_quit"}, headers=admin_headers()
    )
    assert resp.status == 200
    assert await rows(client) == []  # a disabled endpoint gets nothing new

    on = await client.post("/console/system/webhooks", data={"csrf": csrf, "op": "enable", "id": str(endpoint)})
    assert on.status == 200
    gone = await client.post("/console/system/webhooks", data={"csrf": csrf, "op": "delete", "id": str(endpoint)})
    assert gone.status == 200 and receiver.url("crm") not in await gone.text()
    assert await outbound.list_endpoints(client.app[CORE]) == []


async def test_a_help_request_is_an_event_and_a_platform_completion_a_pipeline_change(
    make_client: AppFactory, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    client = await make_client(**webhook_settings(receiver, webhook_include_contacts=True))
    await started_interview(client, clock, "iv-1")
    payload = event("interview.help_requested", "iv-1", data={"reason": "摄像头打不开", "wants_exit": True})
    assert (await post_event(client, clock, payload)).status == 200
    assert (await post_event(client, clock, event("interview.completed", "iv-1"))).status == 200

    async def all_in() -> bool:
        return len(receiver.delivered("env")) == 3

    await eventually(all_in)
    start, help_asked, done = (r.body for r in receiver.delivered("env"))
    assert (start["type"], help_asked["type"], done["type"]) == (
        "candidate.pipeline_status_changed",
        "interview.help_requested",
        "candidate.pipeline_status_changed",
    )
    assert help_asked["help"] == {"reason": "摄像头打不开", "wants_exit": True}
    assert (help_asked["operator"], help_asked["source"]) == ("candidate", "candidate")
    assert (
        done["pipeline"] == {"previous": "面试中", "current": "已完成"} and done["interview"]["status"] == "completed"
    )
    assert done["candidate"]["contacts"] == {"mobile": "13800001234", "email": "zhangsan@example.com"}
    for body in (start, help_asked, done):
        EVENTS.validate_python(body)


def test_webhook_urls_need_a_secret_and_must_be_http_urls(clean_db: str) -> None:
    with pytest.raises(ValidationError, match="BOT_WEBHOOK_SECRET is not"):
        make_settings(clean_db, webhook_urls="https://erp.example.com/hook")
    with pytest.raises(ValidationError, match="not an http"):
        make_settings(clean_db, webhook_urls="erp.example.com/hook", webhook_secret="s")
    two = make_settings(clean_db, webhook_urls=" https://a.example.com/h , http://b.example.com/h ", webhook_secret="s")
    assert two.webhook_url_list == ["https://a.example.com/h", "http://b.example.com/h"]


async def test_a_replica_cannot_claim_an_event_while_an_earlier_one_of_its_destination_is_unsettled(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    """What keeps order across replicas: the claim itself refuses row n+1 while row n is pending,
    being sent or dead, whatever list of due rows a worker acted on."""
    client = await make_client()
    core = client.app[CORE]
    now = clock.now() + timedelta(hours=1)  # not due for the app's own worker, which runs at clock.now()

    def row(destination: str) -> Notice:
        return Notice(
            kind="outbound_event",
            channel="webhook",
            recipient="https://erp.example.com/hook",
            body="{}",
            destination=destination,
            next_attempt_at=now,
            created_at=now,
        )

    async with core.sessions() as session:
        first, second = row("webhook:ep-1:interview:1"), row("webhook:ep-1:interview:1")
        other = row("webhook:ep-1:interview:2")
        session.add_all([first, second, other])
        await session.commit()
        ids = [first.id, second.id, other.id]
    assert all(isinstance(i, int) for i in ids)
    lock = now + timedelta(minutes=2)

    async def claim(notice_id: int | None) -> bool:
        assert notice_id is not None
        async with core.sessions() as session:
            return await repo.claim_notice_and_commit(
                session, notice_id=notice_id, now=now, lock_until=lock, in_order=["webhook"]
            )

    async def set_status(notice_id: int | None, status: str) -> None:
        async with core.sessions() as session:
            notice = await session.get(Notice, notice_id)
            assert notice is not None
            notice.status = status
            await session.commit()

    async with core.sessions() as session:
        due = await repo.due_notice_ids(session, now=now, channels=["webhook"], limit=10, in_order=["webhook"])
    assert due == [ids[0], ids[2]]  # the second of interview 1 waits
    assert not await claim(ids[1])
    assert await claim(ids[0]) and await claim(ids[2])
    assert not await claim(ids[1])  # the first is being sent
    await set_status(ids[0], "dead")
    assert not await claim(ids[1])  # a dead letter holds the ones after it
    await set_status(ids[0], "sent")
    assert await claim(ids[1])


async def test_a_refusal_is_a_dead_letter_at_once(
    make_client: AppFactory, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    client = await make_client(**webhook_settings(receiver))
    receiver.refuse["candidate.pipeline_status_changed"] = 422  # the receiver rejects what it got
    await started_interview(client, clock, "iv-1")

    async def refused() -> bool:
        return [r.status for r in await rows(client, "candidate.pipeline_status_changed")] == ["dead"]

    await eventually(refused)
    [dead] = await rows(client, "candidate.pipeline_status_changed")
    assert await attempts(client, dead.id) == ["rejected"] and "HTTP 422" in (dead.last_error or "")
    assert len(receiver.tries("env", "candidate.pipeline_status_changed")) == 1  # not retried by itself
