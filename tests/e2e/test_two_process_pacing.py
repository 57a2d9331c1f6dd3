"""Two real service processes on one PostgreSQL share WeCom's pacing of 30 messages a minute to one
member: 40 messages queued for hr01 → exactly 30 reach WeCom in the first minute, whichever
replica sends them, and the other 10 wait for the window (each process alone would send 30).

PostgreSQL only (SQLite is one process's database), as tests/e2e/test_two_process.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.clock import SystemClock
from storage.db import create_engine, session_maker
from storage.models import Notice
from tests.fakes import wecom_api
from tests.fakes.smtp import free_port
from tests.fakes.wecom_api import FakeWeCom
from tests.serve import Service, service_env, stop_all, wait_healthy

pytestmark = pytest.mark.skipif(
    make_url(os.environ.get("BOT_TEST_DATABASE_URL") or "sqlite://").get_backend_name() != "postgresql",
    reason="needs PostgreSQL shared by two processes (set BOT_TEST_DATABASE_URL=postgresql+asyncpg://…)",
)

QUEUED = 40
LIMIT = 30  # WeCom: 30 app messages a minute to one member (bot.channels.wecom.sender)


async def queue_messages(url: str, numbers: range) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    async with session_maker(engine)() as session:
        for n in numbers:
            session.add(
                Notice(
                    kind="hr_notice",
                    channel="wecom",
                    recipient="hr01",
                    body=f"第 {n} 条通知",
                    payload={"audience": "staff", "msgtype": "text"},
                    destination="wecom:user:hr01",
                    dedupe_key=f"pacing-{n}",
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        await session.commit()
    await engine.dispose()


async def notices(url: str) -> list[Notice]:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        found = list((await session.exec(select(Notice))).all())
    await engine.dispose()
    return found


async def wait_sent(fake: FakeWeCom, count: int, deadline: float) -> None:
    while len(fake.sent("message/send")) < count:
        assert time.monotonic() < deadline, f"only {len(fake.sent('message/send'))} of {count} sent"
        await asyncio.sleep(0.1)


async def test_two_replicas_together_send_thirty_a_minute_to_one_member(clean_db: str, tmp_path: Path) -> None:
    """Replica A sends the first 20 of the minute; B (A paused, so that B is the one to claim)
    may then send only 10 of the next 20; A, resumed, sends nothing more either."""
    fake = FakeWeCom(clock=SystemClock())
    await fake.start()
    env = service_env(
        clean_db,
        WECOM_CORP_ID=wecom_api.CORP_ID,
        WECOM_AGENT_ID=str(wecom_api.AGENT_ID),
        WECOM_SECRET=wecom_api.SECRET,
        WECOM_TOKEN=wecom_api.TOKEN,
        WECOM_AES_KEY=wecom_api.AES_KEY,
        WECOM_API_BASE=fake.base_url,
        BOT_OUTBOX_POLL_SECONDS="0.1",
    )
    ports = [free_port(), free_port()]
    names = [f"replica-{port}" for port in ports]
    services: list[Service] = []

    def start(n: int) -> None:
        services.append(Service(env, tmp_path / f"bot{n}.log", port=ports[n], instance=names[n]))

    first = QUEUED // 2
    try:
        deadline = time.monotonic() + 40
        start(0)
        await wait_healthy(ports[:1], deadline)
        await queue_messages(clean_db, range(first))
        await wait_sent(fake, first, deadline)
        services[0].pause()
        start(1)
        await wait_healthy(ports[1:], deadline)
        await queue_messages(clean_db, range(first, QUEUED))
        await wait_sent(fake, LIMIT, deadline)
        services[0].resume()
        # Both keep polling (every 0.1 s) for a while: nothing more goes out inside the minute.
        await asyncio.sleep(3)  # the window of the negative check, not a wait for something to happen
        assert len(fake.sent("message/send")) == LIMIT
        rows = await notices(clean_db)
        by_status = Counter(r.status for r in rows)
        assert by_status == {"sent": LIMIT, "pending": QUEUED - LIMIT}, by_status
        sent_at = sorted(r.sent_at for r in rows if r.sent_at is not None)
        waiting = [r.next_attempt_at for r in rows if r.status == "pending"]
        # The rest wait until the first send of the window is a minute old.
        assert min(waiting) >= sent_at[0].replace(microsecond=0)
        assert (min(waiting) - min(r.created_at for r in rows)).total_seconds() > 50
        senders = Counter((r.claimed_by or "").split("/")[0] for r in rows if r.status == "sent")
        assert senders == {names[0]: first, names[1]: LIMIT - first}, senders
    finally:
        stop_all(services)
        await fake.close()
    for service in services:
        assert "Traceback" not in service.output()
