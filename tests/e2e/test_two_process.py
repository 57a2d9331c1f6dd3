"""Two real service processes (`python -m bot serve`) on one PostgreSQL, sweeping every 0.2 s:
each due reminder and each manager's daily summary is queued once and mailed once.

SQLite is one process's database, so this runs only when BOT_TEST_DATABASE_URL is PostgreSQL
(as .ci/run does on its second pass).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import col, func, select

from storage.db import create_engine, session_maker
from storage.models import Candidate, Interview, Notice, Person, Reminder
from tests.conftest import NO_ENV_FILE
from tests.fakes.smtp import SmtpServer
from tests.serve import Service, stop_all, wait_healthy

pytestmark = pytest.mark.skipif(
    make_url(os.environ.get("BOT_TEST_DATABASE_URL") or "sqlite://").get_backend_name() != "postgresql",
    reason="needs PostgreSQL shared by two processes (set BOT_TEST_DATABASE_URL=postgresql+asyncpg://…)",
)

INTERVIEWS = 20
KINDS = ("guide", "before_1h")
MANAGERS = 3
EXPECTED = INTERVIEWS * len(KINDS) + MANAGERS


async def seed(url: str) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    async with session_maker(engine)() as session:
        for n in range(INTERVIEWS):
            candidate = Candidate(name=f"候选人{n}", email=f"c{n}@example.com", created_at=now, updated_at=now)
            session.add(candidate)
            await session.flush()
            assert candidate.id is not None
            interview = Interview(
                platform_id=f"iv-{n}",
                candidate_id=candidate.id,
                position="测试岗位",
                scheduled_at=now + timedelta(minutes=50),
                created_at=now,
                updated_at=now,
            )
            session.add(interview)
            await session.flush()
            assert interview.id is not None
            for kind in KINDS:  # due already when the services start
                session.add(Reminder(interview_id=interview.id, kind=kind, due_at=now, created_at=now, updated_at=now))
        for n in range(MANAGERS):
            session.add(
                Person(
                    platform="dingtalk",
                    user_id=f"mgr{n}",
                    name=f"经理{n}",
                    role="manager",
                    email=f"mgr{n}@example.com",
                    created_at=now,
                )
            )
        await session.commit()
    await engine.dispose()


async def counts(url: str) -> tuple[int, int, int]:
    """(notices, notices sent, reminders still pending or claimed)."""
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        total = (await session.exec(select(func.count()).select_from(Notice))).one()
        sent = (await session.exec(select(func.count()).select_from(Notice).where(Notice.status == "sent"))).one()
        open_ = await session.exec(
            select(func.count()).select_from(Reminder).where(col(Reminder.state).in_(["pending", "claimed"]))
        )
        result = (int(total), int(sent), int(open_.one()))
    await engine.dispose()
    return result


async def test_two_processes_send_each_reminder_and_summary_once(
    clean_db: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    await seed(clean_db)
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_", "FEISHU_"))
    }
    base.update(NO_ENV_FILE)
    base.update(
        BOT_DATABASE_URL=clean_db,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_FROM="hr-bot@example.com",
        BOT_SWEEP_INTERVAL_SECONDS="0.2",
        BOT_OUTBOX_POLL_SECONDS="0.2",
        BOT_DAILY_SUMMARY_AT="00:00",  # today's summary is due at once
    )
    services = [Service(base, tmp_path / f"bot{n}.log") for n in range(2)]
    try:
        deadline = time.monotonic() + 25
        await wait_healthy([s.port for s in services], deadline)
        while (await counts(clean_db))[1] < EXPECTED or len(smtp.messages) < EXPECTED:
            assert time.monotonic() < deadline, f"only {await counts(clean_db)} after 25 s"
            await asyncio.sleep(0.1)
        # Keep both running through several more sweeps: nothing is sent a second time.
        settle = time.monotonic() + 1.5
        while time.monotonic() < settle:
            await asyncio.sleep(0.1)
        assert await counts(clean_db) == (EXPECTED, EXPECTED, 0)
    finally:
        stop_all(services)

    mails = Counter((str(m["To"]), str(m["Subject"])) for m in smtp.messages)
    assert len(smtp.messages) == EXPECTED
    assert max(mails.values()) == 1, [k for k, v in mails.items() if v > 1]
    summaries = [to for to, subject in mails if "面试退出日报" in subject]
    assert sorted(summaries) == [f"mgr{n}@example.com" for n in range(MANAGERS)]
    text = [s.output() for s in services]
    for out in text:
        assert "scheduled: sweeps every 0.2s" in out
        assert "Traceback" not in out, out[-3000:]
    queued = [out.count("reminder ") for out in text]
    print(f"reminder log lines per process: {queued}")  # noqa: T201 - shown with -s: both took a share
