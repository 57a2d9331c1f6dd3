"""Bursts of chat callbacks: acks stay fast, nothing answers 5xx, every command is answered, and a
processing error is retried rather than turned into a lost command."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.clock import FrozenClock
from storage.models import Notice
from tests.conftest import AppFactory, eventually
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.test_dingtalk_http import hr_app, rows

BURST = 100
CONCURRENT = 20


@pytest.fixture
async def fake() -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk()
    await fake.start()
    yield fake
    await fake.close()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def test_dingtalk_burst_is_acked_fast_and_every_command_answered(
    make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    assert app is not None
    commands = ["进行中", "查看 张三", "帮助", "待办"]
    bodies = [fake.message(commands[n % len(commands)], clock, msg_id=f"burst-{n}") for n in range(BURST)]
    gate = asyncio.Semaphore(CONCURRENT)
    latencies: list[float] = []
    statuses: list[int] = []

    async def post(body: dict[str, object]) -> None:
        async with gate:
            started = time.perf_counter()
            resp = await fake.post_callback(client, body, clock)  # type: ignore[arg-type]
            latencies.append(time.perf_counter() - started)
            statuses.append(resp.status)

    await asyncio.gather(*(post(b) for b in bodies))
    assert statuses == [200] * BURST
    ack_p99 = p99(latencies)
    print(f"DingTalk burst of {BURST} ({CONCURRENT} at a time): ack p99 {ack_p99 * 1000:.0f} ms")  # noqa: T201
    assert ack_p99 < 0.5

    async def all_answered() -> bool:
        return len(fake.session_posts) >= BURST

    await eventually(all_answered, timeout=60)
    texts = [p["body"].get("text", {}).get("content", "") or str(p["body"]) for p in fake.session_posts]
    assert len(texts) == BURST
    assert not [t for t in texts if "处理时出错" in t]
    inbound = await rows(app, Notice, kind="inbound")
    assert len(inbound) == BURST and {r.status for r in inbound} == {"sent"}
