"""kill -9 of a real service (`python -m bot serve`) after an exit was recorded, while its outbound
event is on the wire (the receiver holds the request): the restarted process of the same instance
sends it again with the same Idempotency-Key, so the receiver has it once, and nothing is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import col, select

from storage.db import create_engine, session_maker
from storage.models import Notice, NoticeAttempt
from tests.conftest import ADMIN_TOKEN, NO_ENV_FILE, PLATFORM_SECRET, event, sign
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.serve import Service

SECRET = "crash-webhook-secret"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    fake = WebhookReceiver(secrets={"erp": SECRET})  # the real clock, as the service's
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def processes() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for process in started:
        process.stop(signal.SIGTERM)


async def outbound_rows(url: str) -> list[tuple[Notice, list[str]]]:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        rows = (
            await session.exec(select(Notice).where(Notice.kind == "outbound_event").order_by(col(Notice.id)))
        ).all()
        out = []
        for row in rows:
            tries = select(NoticeAttempt).where(NoticeAttempt.notice_id == row.id).order_by(col(NoticeAttempt.seq))
            out.append((row, [a.result for a in (await session.exec(tries)).all()]))
    await engine.dispose()
    return out


async def until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_kill_9_between_the_exit_and_its_delivery_loses_nothing_and_repeats_only_the_key(
    clean_db: str, receiver: WebhookReceiver, processes: list[Service], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_", "FEISHU_"))}
    env.update(NO_ENV_FILE)
    env.update(
        BOT_DATABASE_URL=clean_db,
        BOT_ADMIN_TOKEN=ADMIN_TOKEN,
        PLATFORM_WEBHOOK_SECRET=PLATFORM_SECRET,
        BOT_WEBHOOK_URLS=receiver.url("erp"),
        BOT_WEBHOOK_SECRET=SECRET,
        BOT_INSTANCE_ID="webhook-crash-replica",
        BOT_OUTBOX_POLL_SECONDS="0.1",
        BOT_SWEEP_INTERVAL_SECONDS="3600",
    )
    first = Service(env, tmp_path / "bot.log")
    processes.append(first)
    await first.healthy()
    async with aiohttp.ClientSession() as http:
        for kind in ("interview.scheduled", "interview.started"):
            body = json.dumps(event(kind, "iv-1")).encode()
            async with http.post(
                f"{first.url}/api/platform/events", data=body, headers=sign(body, int(time.time()))
            ) as resp:
                assert resp.status == 200, await resp.text()

        async def started_heard() -> bool:
            return len(receiver.delivered("erp", "candidate.pipeline_status_changed")) == 1

        await until(started_heard, "the start's event never arrived")
        receiver.hang = "interview.terminated"  # taken in, never answered: the process dies first
        async with http.post(
            f"{first.url}/api/interviews/iv-1/terminate",
            json={"reason": "candidate_quit"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as resp:
            assert resp.status == 200, await resp.text()

    async def on_the_wire() -> bool:
        return len(receiver.tries("erp", "interview.terminated")) == 1

    await until(on_the_wire, "the exit's event was never sent")
    first.kill9()
    [_, (row, tries)] = await outbound_rows(clean_db)
    assert row.status == "sending" and tries == ["started"]
    receiver.hang = None

    restarted = time.monotonic()
    second = Service(env, tmp_path / "bot.log")
    processes.append(second)
    await second.healthy()

    async def resolved() -> bool:
        return (await outbound_rows(clean_db))[1][0].status == "sent"

    await until(resolved, "the cut-off event was not sent again")
    print(f"outbound event resent {time.monotonic() - restarted:.2f} s after the restart")  # noqa: T201
    [(start_row, start_tries), (row, tries)] = await outbound_rows(clean_db)
    assert tries == ["cut_off", "sent"] and start_tries == ["sent"]
    sent = receiver.tries("erp", "interview.terminated")
    assert len(sent) == 2 and sent[0].key == sent[1].key == row.payload["event_id"]  # the same key twice
    assert sent[0].body == sent[1].body  # the same event, byte for byte the same JSON
    assert receiver.seen["erp"] == {start_row.payload["event_id"], row.payload["event_id"]}  # once each, after dedupe
    assert receiver.refused == []
    await asyncio.sleep(0.5)  # not an awaited effect: a window (a few outbox polls) in which nothing more is sent
    assert len(receiver.requests) == 3
