"""Two real service processes (`python -m bot serve`) on one PostgreSQL with the WeCom AI bot's
long connection configured against the fake gateway: one connection at a time (the lease),
kill -9 the holder and the other connects within a minute, every message answered once.

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

from storage.db import create_engine, session_maker
from storage.models import Lease, NoticeAttempt, Person
from tests.conftest import NO_ENV_FILE
from tests.fakes.wecom_aibot_ws import BOT_ID, FakeAiBotGateway
from tests.serve import Service, stop_all, wait_healthy

pytestmark = pytest.mark.skipif(
    make_url(os.environ.get("BOT_TEST_DATABASE_URL") or "sqlite://").get_backend_name() != "postgresql",
    reason="needs PostgreSQL shared by two processes (set BOT_TEST_DATABASE_URL=postgresql+asyncpg://…)",
)

# A short lease (BOT_LEASE_SECONDS; 30 s by default): the takeover waits for the dead holder's
# lease to expire, then for the standby's next try (every third of the lease).
LEASE_SECONDS = 6
TAKEOVER_LIMIT = 30.0


async def seed(url: str) -> None:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        session.add(Person(platform="wecom", user_id="hr01", name="王小姐", role="hr", created_at=datetime.now(UTC)))
        await session.commit()
    await engine.dispose()


async def lease_holder(url: str) -> str:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        lease = (await session.exec(select(Lease).where(Lease.name == f"wecom_aibot:{BOT_ID}"))).one()
    await engine.dispose()
    return lease.holder


async def failed_attempts(url: str) -> list[str | None]:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        rows = (await session.exec(select(NoticeAttempt).where(NoticeAttempt.result != "sent"))).all()
    await engine.dispose()
    return [a.error for a in rows]


async def send_all(gateway: FakeAiBotGateway, first: int, last: int) -> dict[str, str]:
    """Messages first..last-1, each also redelivered under a new req_id; req_id → msgid."""
    sent: dict[str, str] = {}
    for n in range(first, last):
        for _ in range(2):
            sent[await gateway.message("hr01", "帮助", msgid=f"m-{n}")] = f"m-{n}"
    return sent


async def answered(gateway: FakeAiBotGateway, sent: dict[str, str], count: int, deadline: float) -> None:
    while len(gateway.said) < count:
        assert time.monotonic() < deadline, f"only {len(gateway.said)} of {count} answers"
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # a window in which a second answer would come (it must not)
    per_message = Counter(sent.get(f["headers"]["req_id"], "pushed") for f in gateway.said)
    assert len(gateway.said) == count and max(per_message.values()) == 1, per_message


@pytest.mark.timeout(180)
async def test_two_processes_hold_one_connection_and_answer_each_message_once(
    clean_db: str, gateway: FakeAiBotGateway, tmp_path: Path
) -> None:
    await seed(clean_db)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_"))}
    base.update(NO_ENV_FILE)
    base.update(
        BOT_DATABASE_URL=clean_db,
        BOT_OUTBOX_POLL_SECONDS="0.2",
        BOT_LEASE_SECONDS=str(LEASE_SECONDS),
        WECOM_BOT_ID=BOT_ID,
        WECOM_BOT_SECRET=gateway.secret,
        WECOM_BOT_WS_URL=gateway.url,
    )
    services = {f"replica{n}": Service(base, tmp_path / f"bot{n}.log", instance=f"replica{n}") for n in range(2)}
    logs = [s.log for s in services.values()]
    try:
        await wait_healthy([s.port for s in services.values()], time.monotonic() + 25)
        await gateway.wait_subscribed(timeout=25)
        await asyncio.sleep(2.0)  # a window for the other one to try the lease and stand by (no sign of it to poll)
        assert len(gateway.subscribes) == 1 and gateway.max_live == 1

        sent = await send_all(gateway, 0, 10)
        await answered(gateway, sent, 10, time.monotonic() + 20)

        holder = (await lease_holder(clean_db)).split("/")[0]
        services.pop(holder).kill9()
        killed = time.monotonic()
        await gateway.wait_subscribed(2, timeout=TAKEOVER_LIMIT)
        took = time.monotonic() - killed
        print(f"takeover after kill -9: {took:.1f}s")  # noqa: T201 - shown with -s
        assert took < TAKEOVER_LIMIT
        assert (await lease_holder(clean_db)).split("/")[0] != holder

        sent.update(await send_all(gateway, 10, 20))
        await answered(gateway, sent, 20, time.monotonic() + 20)
        assert gateway.max_live == 1 and len(gateway.subscribes) == 2
        # The standby never tried to send what only the holder's connection can.
        assert await failed_attempts(clean_db) == []
    finally:
        stop_all(services.values())
    for log in logs:
        out = log.read_text(errors="replace")
        assert "Traceback" not in out, out[-3000:]
