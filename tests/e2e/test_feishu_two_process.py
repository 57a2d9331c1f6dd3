"""Two real service processes (`python -m bot serve`) on one PostgreSQL, both in Feishu
long-connection mode against one fake Feishu: one connection at a time (a database lease), every
message processed once, and the standby takes the connection over within a minute when the holder
dies (SIGKILL: no clean release of the lease).

SQLite is one process's database, so this runs only when BOT_TEST_DATABASE_URL is PostgreSQL.
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

from storage.db import create_engine, session_maker
from storage.models import Person
from tests.conftest import eventually
from tests.fakes.feishu_api import FakeFeishu
from tests.serve import Service, service_env, stop_all, wait_healthy

pytestmark = pytest.mark.skipif(
    make_url(os.environ.get("BOT_TEST_DATABASE_URL") or "sqlite://").get_backend_name() != "postgresql",
    reason="needs PostgreSQL shared by two processes (set BOT_TEST_DATABASE_URL=postgresql+asyncpg://…)",
)

BEFORE, AFTER = 12, 8  # messages before and after the holder dies
# A short lease (BOT_LEASE_SECONDS; 30 s by default): the takeover waits for the dead holder's
# lease to expire, then for the standby's next try (every third of the lease).
LEASE_SECONDS = 6
TAKEOVER_SECONDS = 30


@pytest.fixture
def fake(fake_feishu: FakeFeishu) -> FakeFeishu:
    return fake_feishu


async def seed(url: str) -> None:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        session.add(Person(platform="feishu", user_id="hr01", name="王小姐", role="hr", created_at=datetime.now(UTC)))
        await session.commit()
    await engine.dispose()


@pytest.mark.timeout(180)  # the takeover waits for the dead holder's lease to expire
async def test_two_processes_hold_one_connection_and_process_each_message_once(
    clean_db: str, fake: FakeFeishu, tmp_path: Path
) -> None:
    await seed(clean_db)
    env = service_env(
        clean_db,
        FEISHU_MODE="ws",
        FEISHU_APP_ID="cli_a1b2c3d4e5f6",
        FEISHU_APP_SECRET="feishu-app-secret-for-tests",
        FEISHU_API_BASE=fake.base,
        BOT_OUTBOX_POLL_SECONDS="0.2",
        BOT_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    services: list[Service] = []
    try:
        services.append(Service(env, tmp_path / "bot0.log"))
        await wait_healthy([services[0].port], time.monotonic() + 40)
        await eventually(lambda: len(fake.sockets) == 1, 20, "the first process to connect")
        services.append(Service(env, tmp_path / "bot1.log"))
        await wait_healthy([services[1].port], time.monotonic() + 40)
        # A window for the second replica to try the lease (its first try is at start) and not connect;
        # a standby leaves no sign of having tried to poll for.
        await asyncio.sleep(1.5)
        assert fake.connections == 1 and len(fake.sockets) == 1

        sent: list[str] = []
        for n in range(BEFORE):
            body = fake.message("帮助", message_id=f"om_before{n:03d}")
            sent.append(body["event"]["message"]["message_id"])
            assert (await fake.answer_to(await fake.push(body)))["payload"]["code"] == 200
            if n == 0:  # a redelivery of the first: acknowledged, processed once
                assert (await fake.answer_to(await fake.push(body)))["payload"]["code"] == 200
        await eventually(lambda: len(fake.messages) >= BEFORE, 30, f"{BEFORE} replies")

        services[0].kill9()  # the holder dies without releasing its lease
        died = time.monotonic()
        await eventually(
            lambda: fake.connections == 2 and len(fake.sockets) == 1, TAKEOVER_SECONDS, "the standby to take over"
        )
        took = time.monotonic() - died
        print(f"the standby took the Feishu connection over {took:.1f}s after the holder died")  # noqa: T201

        for n in range(AFTER):
            body = fake.message("帮助", message_id=f"om_after{n:03d}")
            sent.append(body["event"]["message"]["message_id"])
            assert (await fake.answer_to(await fake.push(body)))["payload"]["code"] == 200
        await eventually(lambda: len(fake.messages) >= BEFORE + AFTER, 30, f"{BEFORE + AFTER} replies")
        await asyncio.sleep(1.0)  # a window in which nothing more must come, not a wait for something
        assert fake.connections == 2 and fake.most_open == 1  # never two connections at once
    finally:
        stop_all(services, timeout=15)

    replies = Counter(m["reply_to"] for m in fake.messages)
    assert sorted(replies) == sorted(sent)
    assert max(replies.values()) == 1, [k for k, v in replies.items() if v > 1]
    for service in services[1:]:
        assert "Traceback" not in service.output()
