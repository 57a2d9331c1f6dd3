"""Two real service processes (`python -m bot serve`) on one PostgreSQL, both in Feishu
long-connection mode against one fake Feishu: one connection at a time (a database lease), every
message processed once, and the standby takes the connection over within a minute when the holder
dies (SIGKILL: no clean release of the lease).

SQLite is one process's database, so this runs only when BOT_TEST_DATABASE_URL is PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
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
from tests.fakes.smtp import free_port
from tests.serve import service_env, wait_healthy

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


def start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            env={**env, "BOT_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


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
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"bot{n}.log" for n in range(2)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start(env, ports[0], logs[0]))
        await wait_healthy(ports[:1], time.monotonic() + 40)
        await eventually(lambda: len(fake.sockets) == 1, 20, "the first process to connect")
        procs.append(start(env, ports[1], logs[1]))
        await wait_healthy(ports[1:], time.monotonic() + 40)
        await asyncio.sleep(1.5)  # the second replica has tried the lease by now (its first try is at start)
        assert fake.connections == 1 and len(fake.sockets) == 1

        sent: list[str] = []
        for n in range(BEFORE):
            body = fake.message("帮助", message_id=f"om_before{n:03d}")
            sent.append(body["event"]["message"]["message_id"])
            assert (await fake.answer_to(await fake.push(body)))["payload"]["code"] == 200
            if n == 0:  # a redelivery of the first: acknowledged, processed once
                assert (await fake.answer_to(await fake.push(body)))["payload"]["code"] == 200
        await eventually(lambda: len(fake.messages) >= BEFORE, 30, f"{BEFORE} replies")

        procs[0].send_signal(signal.SIGKILL)  # the holder dies without releasing its lease
        procs[0].wait(timeout=10)
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
        await asyncio.sleep(1.0)  # nothing more comes
        assert fake.connections == 2 and fake.most_open == 1  # never two connections at once
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    replies = Counter(m["reply_to"] for m in fake.messages)
    assert sorted(replies) == sorted(sent)
    assert max(replies.values()) == 1, [k for k, v in replies.items() if v > 1]
    for log in logs[1:]:
        assert "Traceback" not in log.read_text(errors="replace")
