"""GET /metrics and GET /readyz scraped while things go wrong: a stuck intake (received messages
pile up unprocessed), a message given up on, a dropped DingTalk Stream connection, a schema behind the
code. The numbers are read with prometheus-client's own text parser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.clock import FrozenClock
from bot.intake_worker import MAX_ATTEMPTS, retry_delay
from bot.keys import CORE, ENGINE
from storage.db import schema_head
from storage.models import IntakeItem
from tests.conftest import ADMIN_TOKEN, AppFactory, admin_headers, eventually
from tests.dingtalk import hr_app
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.faults import Faults
from tests.rows import rows

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def fake(clock: FrozenClock) -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk(clock=clock)
    await fake.start()
    yield fake
    await fake.close()


async def scrape(client: TestClient, token: str = ADMIN_TOKEN) -> Samples:
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_need_the_metrics_token_or_else_the_admin_token(make_client: AppFactory) -> None:
    client = await make_client()
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    samples = await scrape(client)  # the admin token, as BOT_METRICS_TOKEN is not set
    assert value(samples, "bot_inbound_pending") == 0

    async def swept() -> bool:  # the terminations sweep runs once at start-up, and is timed
        timed = await scrape(client)
        return value(timed, "bot_scheduler_sweep_seconds_count", sweep="sweep.terminations") == 1

    await eventually(swept)
    await client.close()

    client = await make_client(metrics_token="scrape-only")
    await scrape(client, "scrape-only")
    assert (await client.get("/metrics", headers=admin_headers())).status == 401  # its own token only
    await client.close()

    client = await make_client(admin_token=None)
    assert (await client.get("/metrics", headers=admin_headers())).status == 503  # off: no token at all


async def test_a_stuck_intake_shows_as_pending_inbound_then_drains(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk, faults: Faults
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    assert app is not None
    app[CORE].metrics.db_ttl = 3600  # cached until the test says otherwise (a loaded machine is slow)
    before = await scrape(client)
    assert value(before, "bot_inbound_pending") == 0
    # Processing fails at the database (a trigger refuses the confirmation row): received
    # messages are stored and acked, but stay unprocessed.
    await faults.install("pending_action")
    await faults.arm("pending_action")
    for n in range(3):
        body = fake.message("终止面试 张三 候选人放弃", clock, msg_id=f"stuck-{n}")
        assert (await fake.post_callback(client, body, clock)).status == 200
    again = fake.message("终止面试 张三 候选人放弃", clock, msg_id="stuck-0")
    assert (await fake.post_callback(client, again, clock)).status == 200  # a redelivery
    forged = fake.message("帮助", clock, msg_id="forged")
    assert (await fake.post_callback(client, forged, clock, secret="not-the-secret")).status == 401

    async def first_failed_once() -> bool:
        # One sender's messages are processed in order: the two after it wait for the first's retry.
        found = sorted(await rows(app, IntakeItem, source="dingtalk"), key=lambda r: r.id)
        return [(r.status, r.attempts) for r in found] == [("received", 1), ("received", 0), ("received", 0)]

    await eventually(first_failed_once)

    async def counted() -> bool:  # counters move once the try is recorded
        return value(await scrape(client), "bot_intake_items_total", source="dingtalk", result="retried") == 1

    await eventually(counted)
    cached = await scrape(client)
    assert value(cached, "bot_inbound_pending") == 0  # the database gauges are cached a few seconds
    assert value(cached, "bot_callbacks_total", platform="dingtalk", result="accepted") == 3  # counters are not
    assert value(cached, "bot_callbacks_total", platform="dingtalk", result="duplicate") == 1
    assert value(cached, "bot_callbacks_total", platform="dingtalk", result="rejected") == 1
    assert value(cached, "bot_intake_items_total", source="dingtalk", result="retried") == 1

    app[CORE].metrics.db_ttl = 0  # no waiting out the cache in a test
    stuck = await scrape(client)
    assert value(stuck, "bot_inbound_pending") == 3
    assert value(stuck, "bot_notices_dead") == 0

    await faults.disarm("pending_action")
    clock.advance(seconds=retry_delay(1).total_seconds() + 1)  # past the retry backoff

    async def answered() -> bool:
        return len(fake.session_posts) == 3

    await eventually(answered)

    async def replies_marked_sent() -> bool:  # the fake records a post before we mark the row sent
        return value(await scrape(client), "bot_outbox_pending", channel="dingtalk") == 0

    await eventually(replies_marked_sent)
    drained = await scrape(client)
    assert value(drained, "bot_inbound_pending") == 0
    assert value(drained, "bot_intake_items_total", source="dingtalk", result="done") == 3
    assert value(drained, "bot_notice_attempts_total", channel="dingtalk", result="sent") == 3  # the replies
    assert value(drained, "bot_command_duration_seconds_count", command="终止面试") == 4  # 1 failed run, 3 good


async def test_a_message_given_up_on_and_a_reply_in_flight_show_in_the_gauges(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk, faults: Faults
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    assert app is not None
    app[CORE].metrics.db_ttl = 0
    fake.hang_session = True  # DingTalk holds the reply's send: the apology waits in the outbox
    await faults.install("pending_action")
    await faults.arm("pending_action")
    body = fake.message("终止面试 张三 候选人放弃", clock, msg_id="doomed")
    assert (await fake.post_callback(client, body, clock)).status == 200

    async def failed() -> bool:
        [row] = await rows(app, IntakeItem, source="dingtalk")
        if row.status == "received":
            clock.advance(seconds=retry_delay(MAX_ATTEMPTS).total_seconds() + 1)
        return row.status == "failed"

    await eventually(failed, timeout=30)

    async def counted() -> bool:
        samples = await scrape(client)
        return value(samples, "bot_intake_items_total", source="dingtalk", result="failed") == 1

    await eventually(counted)
    samples = await scrape(client)
    assert value(samples, "bot_intake_failed", source="dingtalk") == 1
    assert value(samples, "bot_notices_dead") == 0
    assert value(samples, "bot_inbound_pending") == 0
    assert value(samples, "bot_intake_items_total", source="dingtalk", result="retried") == MAX_ATTEMPTS - 1

    async def reply_in_flight() -> bool:
        return len(fake.session_posts) == 1

    await eventually(reply_in_flight)
    assert value(await scrape(client), "bot_outbox_pending", channel="dingtalk") == 1
    fake.released.set()

    async def reply_sent() -> bool:
        return value(await scrape(client), "bot_notice_attempts_total", channel="dingtalk", result="sent") == 1

    await eventually(reply_sent)
    assert value(await scrape(client), "bot_outbox_pending", channel="dingtalk") == 0  # counted after the commit
    assert value(await scrape(client), "bot_notices_dead") == 0
    assert value(await scrape(client), "bot_intake_failed", source="dingtalk") == 1


async def test_a_dropped_stream_connection_makes_the_replica_not_ready(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await make_client(**fake.settings(dingtalk_mode="stream"))
    await fake.wait_connected()

    async def ready() -> bool:
        return (await client.get("/readyz")).status == 200

    await eventually(ready)
    body = await (await client.get("/readyz")).json()
    assert body == {"status": "ready", "schema": schema_head(), "connections": {"dingtalk stream": "up"}}
    assert value(await scrape(client), "bot_channel_connected", channel="dingtalk stream") == 1

    fake.open_status = 503  # the gateway goes away and the socket drops
    for ws in list(fake.sockets):
        await ws.close()

    async def not_ready() -> bool:
        return (await client.get("/readyz")).status == 503

    await eventually(not_ready)
    body = await (await client.get("/readyz")).json()
    assert body["not_ready"] == {"dingtalk stream": "connecting"}
    assert value(await scrape(client), "bot_channel_connected", channel="dingtalk stream") == 0
    assert (await client.get("/healthz")).status == 200  # still alive: liveness is not readiness

    fake.open_status = 200  # back: the runner reconnects (after its 1-2 s backoff)
    await eventually(ready, timeout=10)
    assert value(await scrape(client), "bot_channel_connected", channel="dingtalk stream") == 1


async def test_readyz_names_a_schema_behind_the_code(make_client: AppFactory) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    assert (await client.get("/readyz")).status == 200
    head = schema_head()
    async with app[ENGINE].begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0010'"))
    try:
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body["status"] == "not_ready"
        assert body["not_ready"] == {"migrations": f"database at 0010, code expects {head}"}
    finally:
        async with app[ENGINE].begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    await asyncio.sleep(0)
    assert (await client.get("/readyz")).status == 200
