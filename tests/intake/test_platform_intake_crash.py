"""kill -9 of a real service (`python -m bot serve`) with platform events stored and not yet applied,
and in the middle of applying a batch; the restarted instance applies every accepted event, once.

Runs on SQLite and PostgreSQL (one process at a time on the database)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from storage.db import create_engine
from tests.conftest import event, eventually, sign
from tests.faults import Faults
from tests.serve import Service, service_env

INSTANCE = "intake-crash-replica"


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop(signal.SIGTERM)


def answers(n_interviews: int, per_interview: int) -> list[dict[str, object]]:
    """Each interview started, then answers saved and heartbeats, at real (signable) times."""
    now = datetime.now(UTC)
    out: list[dict[str, object]] = []
    for i in range(n_interviews):
        iv = f"crash-{i}"
        out.append(event("interview.started", iv, event_id=f"{iv}:start", occurred_at=now))
        for q in range(1, per_interview + 1):
            data = {"question_no": q, "media_url": f"oss://a/{i}/{q}.mp4"}
            out.append(event("interview.answer_saved", iv, event_id=f"{iv}:q{q}", occurred_at=now, data=data))
            out.append(event("interview.activity", iv, event_id=f"{iv}:beat{q}", occurred_at=now))
    return out


async def post_all(url: str, payloads: list[dict[str, object]], *, again: bool = False) -> None:
    """Post signed events 16 at a time; each must be accepted (or, ``again``, found a duplicate)."""
    ok = {"accepted", "duplicate"} if again else {"accepted"}
    async with aiohttp.ClientSession() as http:
        slots = asyncio.Semaphore(16)

        async def one(payload: dict[str, object]) -> None:
            body = json.dumps(payload, ensure_ascii=False).encode()
            async with (
                slots,
                http.post(f"{url}/api/platform/events", data=body, headers=sign(body, int(time.time()))) as r,
            ):
                assert r.status == 200 and (await r.json())["status"] in ok

        await asyncio.gather(*(one(p) for p in payloads))


async def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM intake_item),"
                        " (SELECT count(*) FROM intake_item WHERE status = 'done'),"
                        " (SELECT count(*) FROM platform_event),"
                        " (SELECT count(*) FROM audit_event WHERE action = 'interview.answer_saved'),"
                        " (SELECT count(DISTINCT CAST(detail AS TEXT)) FROM audit_event"
                        "  WHERE action = 'interview.answer_saved'),"
                        " (SELECT count(*) FROM interview WHERE status = 'in_progress'),"
                        " (SELECT count(*) FROM intake_item WHERE status = 'processing')"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    names = ("stored", "done", "recorded", "answer_audits", "distinct_audits", "in_progress", "processing")
    return dict(zip(names, row, strict=True))


async def failed_tries(url: str) -> int:
    """Intake items the worker tried to apply and failed (an error recorded)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = text("SELECT count(*) FROM intake_item WHERE last_error IS NOT NULL")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


def expect_all_once(found: dict[str, int], payloads: list[dict[str, object]], n_interviews: int) -> None:
    answers_saved = sum(1 for p in payloads if p["type"] == "interview.answer_saved")
    assert found == {
        "stored": len(payloads),
        "done": len(payloads),
        "recorded": len(payloads),  # each event applied once: one row per event id
        "answer_audits": answers_saved,  # ... and its effects once: one audit per answer saved
        "distinct_audits": answers_saved,
        "in_progress": n_interviews,
        "processing": 0,
    }


async def test_events_stored_but_not_applied_when_killed_are_applied_once_after_the_restart(
    clean_db: str, faults: Faults, services: list[Service], tmp_path: Path
) -> None:
    env = service_env(clean_db, BOT_SWEEP_INTERVAL_SECONDS="3600")
    # The database refuses to record applied events: what is stored cannot be applied yet.
    await faults.install("platform_event")
    await faults.arm("platform_event")
    first = Service(env, tmp_path / "serve.log", instance=INSTANCE)
    services.append(first)
    await first.healthy()
    payloads = answers(3, 2)
    await post_all(first.url, payloads)

    async def stored() -> bool:
        found = await counts(clean_db)
        return found["stored"] == len(payloads) and found["done"] == 0

    await eventually(stored, 10, "events stored")
    assert (await counts(clean_db))["recorded"] == 0

    async def tried_and_failed() -> bool:
        return await failed_tries(clean_db) > 0

    await eventually(tried_and_failed, 10, "the worker did not try (and fail) to apply them")
    first.kill9()
    await faults.disarm("platform_event")

    second = Service(env, tmp_path / "serve.log", instance=INSTANCE)
    services.append(second)
    await second.healthy()

    async def applied() -> bool:
        return (await counts(clean_db))["done"] == len(payloads)

    await eventually(applied, 30, "stored events applied after the restart")
    expect_all_once(await counts(clean_db), payloads, 3)


async def test_a_batch_cut_off_by_kill_9_is_applied_once_after_the_restart(
    clean_db: str, services: list[Service], tmp_path: Path
) -> None:
    env = service_env(clean_db, BOT_SWEEP_INTERVAL_SECONDS="3600")
    first = Service(env, tmp_path / "serve.log", instance=INSTANCE)
    services.append(first)
    await first.healthy()
    payloads = answers(40, 6)  # 520 events, most of them applied with the interview locked
    posting = asyncio.create_task(post_all(first.url, payloads))

    async def midway() -> bool:
        return (await counts(clean_db))["done"] >= 50

    await eventually(midway, 30, "some events applied")
    first.kill9()
    await asyncio.gather(posting, return_exceptions=True)  # answers cut off by the kill
    at_kill = await counts(clean_db)
    assert at_kill["done"] < len(payloads), at_kill  # killed with work left

    second = Service(env, tmp_path / "serve.log", instance=INSTANCE)
    services.append(second)
    await second.healthy()
    # The platform sends again whatever it had no answer for; we send everything: duplicates are found.
    await post_all(second.url, payloads, again=True)

    async def applied() -> bool:
        return (await counts(clean_db))["done"] == len(payloads)

    await eventually(applied, 60, "every event applied after the restart")
    expect_all_once(await counts(clean_db), payloads, 40)
    if at_kill["processing"]:  # a batch was claimed when the process died: taken over at the restart
        assert "taking over" in second.output()
