"""kill -9 in the middle of a termination, then a restart: the job resumes from its last step.

A real `python -m bot serve` process takes the HR's 终止面试 / 确认 through the DingTalk HTTP callback
(fake DingTalk on loopback) and calls a fake platform that does the work but never answers the
chosen call. The test kills the process there, restarts it and checks the outcome: one exit record,
one candidate notice, one termination on the platform (the same idempotency keys were sent
again), and the HR told in chat. The time from restart to the completed termination is printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import func, select

from bot.clock import FrozenClock
from storage.db import create_engine, session_maker
from storage.models import ExitRecord, Interview, JobState, Notice, Person, TerminationJob
from tests.conftest import NO_ENV_FILE, PLATFORM_SECRET, event, eventually, sign
from tests.fakes.dingtalk_api import APP_KEY, APP_SECRET, FakeDingTalk, reference_sign
from tests.fakes.platform import FakePlatform
from tests.fakes.smtp import SmtpServer, free_port
from tests.interviews import stored_in_progress
from tests.serve import Service


@pytest.fixture
async def dingtalk() -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk()
    await fake.start()
    yield fake
    await fake.close()


async def post_event(http: aiohttp.ClientSession, service: Service, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode()
    async with http.post(
        f"{service.url}/api/platform/events", data=body, headers=sign(body, int(time.time()))
    ) as resp:  # the service runs on wall time
        assert resp.status == 200, await resp.text()


async def say(http: aiohttp.ClientSession, service: Service, dingtalk: FakeDingTalk, text: str) -> None:
    """HR hr01 writes to the robot in a 1:1 chat (DingTalk HTTP callback, signed like DingTalk does)."""
    body = dingtalk.message(text, FrozenClock(datetime.now(UTC)), group=False)
    ts = str(int(time.time() * 1000))
    headers = {"timestamp": ts, "sign": reference_sign(APP_SECRET, ts), "Content-Type": "application/json"}
    async with http.post(f"{service.url}/dingtalk/callback", data=json.dumps(body), headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def db_state(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        interview = (await session.exec(select(Interview).where(Interview.platform_id == "iv-1"))).one()
        jobs = (await session.exec(select(TerminationJob))).all()
        exits = (await session.exec(select(func.count()).select_from(ExitRecord))).one()
        notices = (await session.exec(select(Notice).where(Notice.kind == "terminated"))).all()
        outcome = (await session.exec(select(Notice).where(Notice.kind == "termination_outcome"))).all()
    await engine.dispose()
    return {
        "status": interview.status,
        "terminating_by": interview.terminating_by,
        "jobs": [(j.state, j.resumed) for j in jobs],
        "exits": int(exits),
        "candidate_notices": len(notices),
        "outcome_notices": len(outcome),
    }


async def seed_hr(url: str) -> None:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        now = datetime.now(UTC)
        session.add(Person(platform="dingtalk", user_id="hr01", name="王小姐", role="hr", created_at=now))
        await session.commit()
    await engine.dispose()


@pytest.mark.parametrize("killed_during", ["save", "terminate"])
async def test_kill9_during_platform_call_resumes_after_restart(
    killed_during: str,
    clean_db: str,
    fake_platform: FakePlatform,
    dingtalk: FakeDingTalk,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    await seed_hr(clean_db)
    assert fake_platform.server is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_", "PLAT"))}
    env.update(NO_ENV_FILE)
    env.update(
        BOT_DATABASE_URL=clean_db,
        PLATFORM_WEBHOOK_SECRET=PLATFORM_SECRET,
        PLATFORM_API_BASE=str(fake_platform.server.make_url("")),
        DINGTALK_APP_KEY=APP_KEY,
        DINGTALK_APP_SECRET=APP_SECRET,
        DINGTALK_API_BASE=dingtalk.base,
        DINGTALK_OAPI_BASE=dingtalk.base,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_FROM="hr-bot@example.com",
        BOT_SWEEP_INTERVAL_SECONDS="0.2",
        BOT_OUTBOX_POLL_SECONDS="0.2",
        # The service runs on the real clock while the events carry the test clock's dates, so
        # the interview would look idle for months: the idle sweep must not race the HR's 确认.
        BOT_IDLE_TIMEOUT_SECONDS="0",
        BOT_PORT=str(free_port()),
    )
    port = int(env["BOT_PORT"])
    fake_platform.hang_on = killed_during
    service = Service(env, tmp_path / "bot1.log", port=port)
    try:
        await service.healthy(timeout=20)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for kind in ("interview.scheduled", "interview.started"):
                await post_event(http, service, event(kind, hr=("dingtalk", "hr01")))
            answer = event("interview.answer_saved", hr=("dingtalk", "hr01"), data={"question_no": 1})
            await post_event(http, service, answer)

            # Accepted is stored, not yet applied: the HR's command waits for the saved answer (else it
            # could find no interview, or a scheduled one).
            async def applied() -> bool:
                return await stored_in_progress(clean_db, answered=1)

            await eventually(applied, 20, "the start and the answer were not applied")

            await say(http, service, dingtalk, "终止面试 张三 候选人放弃")

            async def prompted() -> bool:
                return len(dingtalk.session_posts) == 1

            await eventually(prompted, 30, "the confirmation prompt")
            await say(http, service, dingtalk, "确认")
            await asyncio.wait_for(fake_platform.hanging.wait(), timeout=10)

        service.kill9()  # the platform did the work; the bot never heard back
        fake_platform.hang_on = None
        before = await db_state(clean_db)
        assert before["status"] == "in_progress" and before["exits"] == 0
        assert before["jobs"] == [(JobState.saving if killed_during == "save" else JobState.terminating, False)]

        started = time.monotonic()
        service = Service(env, tmp_path / "bot2.log", port=port)
        await service.healthy(timeout=20)
        healthy = time.monotonic() - started

        async def terminated() -> bool:
            return (await db_state(clean_db))["status"] == "terminated"

        await eventually(terminated, 30, "the resumed termination")
        recovery = time.monotonic() - started
        print(  # noqa: T201 - the figure for the report, shown with -s
            f"recovery after kill -9 during {killed_during}: {recovery:.2f} s from restart ({healthy:.2f} s to healthy)"
        )

        def termination_mails() -> list[str]:
            # The candidate's interview guide may have gone before the kill (its reminder is due at
            # once: the events carry the test clock's dates); the termination mail goes exactly once.
            return [str(m["Subject"]) for m in smtp.messages if "已终止" in str(m["Subject"])]

        def outcome_texts() -> list[str]:
            texts = [s["param"]["content"] for s in dingtalk.batch_sends]
            return [t for t in texts if "你此前发起的终止操作" in t]

        async def hr_told() -> bool:
            return len(outcome_texts()) == 1 and len(termination_mails()) == 1

        await eventually(hr_told, 30, "the HR's outcome message and the candidate's email")

        # The 确认 cut off by the kill is processed again after the restart: its answer is about the
        # termination (under way or done), not 没有等待你确认的操作.
        async def confirm_answered() -> bool:
            return len(dingtalk.session_posts) >= 2

        await eventually(confirm_answered, 30, "the answer to the 确认 processed again")
        answers = [json.dumps(p["body"], ensure_ascii=False) for p in dingtalk.session_posts[1:]]
        assert not any("没有等待你确认" in a for a in answers), answers
        assert any("终止" in a for a in answers), answers
        text = outcome_texts()[0]
        assert "现已完成" in text and "已终止 张三 的面试" in text and "候选人放弃" in text
        assert all(s["userIds"] == ["hr01"] for s in dingtalk.batch_sends)

        # Several more sweeps: nothing happens twice.
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            await asyncio.sleep(0.1)
        after = await db_state(clean_db)
        assert after == {
            "status": "terminated",
            "terminating_by": None,
            "jobs": [(JobState.done, True)],
            "exits": 1,
            "candidate_notices": 1,
            "outcome_notices": 1,
        }
        assert len(termination_mails()) == 1
        assert fake_platform.terminated == ["iv-1"]  # terminated on the platform once
        keys = {(action, key) for action, _, key in fake_platform.keys}
        assert keys == {("save", "save-1"), ("terminate", "terminate-1")}  # retries repeated the same keys
        assert fake_platform.actions().count("save") == (2 if killed_during == "save" else 1)
        assert "resuming termination job 1" in service.output()
        assert "Traceback" not in service.output(), service.output()[-3000:]
    finally:
        service.stop()
