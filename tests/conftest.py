"""Shared fixtures: a real database (SQLite or PostgreSQL), a real SMTP server, a fake platform.

BOT_TEST_DATABASE_URL picks the database; by default a SQLite file in a temp folder.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import inspect
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from bot.app import create_app
from bot.channels import registry
from bot.clock import FrozenClock
from bot.keys import PLATFORM_INTAKE
from bot.settings import Settings
from storage import repo
from storage.db import SessionMaker, create_engine, migrate
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.fakes.feishu_api import FakeFeishu
from tests.fakes.platform import FakePlatform
from tests.fakes.sms_providers import FakeSmsProviders
from tests.fakes.smtp import SmtpServer
from tests.fakes.wecom_aibot_ws import FakeAiBotGateway
from tests.fakes.wecom_api import FakeWeCom
from tests.faults import Faults

ADMIN_TOKEN = "test-admin-token"
PLATFORM_SECRET = "test-platform-secret"

SHANGHAI = ZoneInfo("Asia/Shanghai")
# The instant every test starts at (a Tuesday morning in Asia/Shanghai). Tests derive every date
# from it (or from the ``clock`` fixture that starts here), never from the real date.
CLOCK_START = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
# When ``event()`` schedules an interview unless told otherwise: the next day at 14:00 local.
DEFAULT_SCHEDULED_AT = datetime.combine(
    CLOCK_START.astimezone(SHANGHAI).date() + timedelta(days=1), clock_time(14, 0), SHANGHAI
)


# Tests never read a settings file they did not write: not the developer's .env in the checkout
# (filled in after the README's first step, its SMTP server once made a CLI test wait 60 s).
# BOT_ENV_FILE="" turns the file off (bot.channels.registry.env_file); every `python -m bot` a test
# starts inherits it, and helpers that build a child's environment from scratch add NO_ENV_FILE.
NO_ENV_FILE = {registry.ENV_FILE_VARIABLE: ""}
os.environ.update(NO_ENV_FILE)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("BOT_TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db')}/test.db"
    if make_url(url).get_backend_name() == "postgresql":

        async def reset() -> None:
            engine = create_engine(url)
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()

        asyncio.run(reset())
    migrate(url)
    return url


@pytest.fixture
async def clean_db(database_url: str) -> AsyncIterator[str]:
    engine = create_engine(database_url)
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))
    await engine.dispose()
    yield database_url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(CLOCK_START)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def gateway() -> AsyncIterator[FakeAiBotGateway]:
    """A loopback WeCom AI bot long-connection gateway."""
    fake = FakeAiBotGateway()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_wecom(clock: FrozenClock) -> AsyncIterator[FakeWeCom]:
    """A loopback WeCom API on the test clock."""
    fake = FakeWeCom(clock=clock)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_dingtalk() -> AsyncIterator[FakeDingTalk]:
    """A loopback DingTalk API (callbacks are signed with the clock each test passes)."""
    fake = FakeDingTalk()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_feishu() -> AsyncIterator[FakeFeishu]:
    """A loopback Feishu open platform (API, long connection) that also builds signed callbacks."""
    fake = FakeFeishu()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def sms_fake() -> AsyncIterator[FakeSmsProviders]:
    """Loopback Aliyun and Tencent SMS endpoints."""
    fake = FakeSmsProviders()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_platform() -> AsyncIterator[FakePlatform]:
    fake = FakePlatform(secret=PLATFORM_SECRET)
    await fake.start()
    yield fake
    await fake.close()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "platform_webhook_secret": PLATFORM_SECRET,
        "outbox_poll_seconds": 0.05,
        "outbox_base_delay_seconds": 1.0,
        "outbox_max_attempts": 3,
        # Tests run the sweeps themselves after moving the FrozenClock (tests/services/test_reminders.py etc.).
        "sweep_interval_seconds": 3600,
        "company_name": "测试科技",
    }
    values.update(overrides)
    return registry.load_settings(_env_file=None, **values)


AppFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_client(clean_db: str, clock: FrozenClock, smtp: SmtpServer, aiohttp_client: Any) -> AppFactory:
    """Start the real app against the test database; overrides go to Settings.

    ``smtp`` comes before ``aiohttp_client`` so that it is torn down after the app: stopping the
    SMTP server first blocked the loop while an e-mail the app was sending waited for it (2 s)."""

    async def factory(**overrides: Any) -> TestClient:
        overrides.setdefault("smtp_host", "127.0.0.1")
        overrides.setdefault("smtp_port", smtp.port)
        overrides.setdefault("smtp_from", "hr-bot@example.com")
        app = create_app(make_settings(clean_db, **overrides), clock=clock)
        client: TestClient = await aiohttp_client(app)
        return client

    return factory


def sign(body: bytes, ts: int, secret: str = PLATFORM_SECRET) -> dict[str, str]:
    stamp = str(ts)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Bot-Timestamp": stamp, "X-Bot-Signature": mac, "Content-Type": "application/json"}


def event(
    event_type: str,
    interview_id: str = "iv-1",
    *,
    event_id: str | None = None,
    name: str = "张三",
    email: str | None = "zhangsan@example.com",
    mobile: str | None = "13800001234",
    hr: tuple[str, str] | None = ("wecom", "hr01"),
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"{interview_id}:{event_type}:{time.monotonic_ns()}",
        "type": event_type,
        "occurred_at": (occurred_at or CLOCK_START).isoformat(),
        "interview": {
            "id": interview_id,
            "position": "Java后端工程师",
            "scheduled_at": DEFAULT_SCHEDULED_AT.isoformat(),
            "join_url": f"https://interview.example.com/j/{interview_id}",
            "candidate": {"name": name, "mobile": mobile, "email": email},
            "hr": {"platform": hr[0], "user_id": hr[1]} if hr else None,
        },
        "data": data or {},
    }


async def post_event(client: TestClient, clock: FrozenClock, payload: dict[str, Any], *, settle: bool = True) -> Any:
    """Post a signed event; with ``settle`` (default) return once the intake has applied what it stored."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    resp = await client.post("/api/platform/events", data=body, headers=sign(body, int(clock.now().timestamp())))
    if settle and resp.status == 200:
        await client.app[PLATFORM_INTAKE].settled()
    return resp


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 5.0,
    what: str = "condition not reached in time",
    *,
    interval: float = 0.02,
) -> None:
    """Poll until ``check`` (sync or async) holds, for work done by background tasks or other
    processes; fails with ``what`` after ``timeout`` seconds. The one poll helper of the suite."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s: {what}")
        await asyncio.sleep(interval)


async def replica_alive(sessions: SessionMaker, worker: str, *, now: datetime, until: datetime) -> None:
    """Another process ``worker`` (``<instance>/<boot>``) holding its replica lease until ``until``,
    as its heartbeat (``bot.services.leases.heartbeat``) would: its claims are its own until then."""
    boot = worker.rsplit("/", 1)[-1]
    async with sessions() as session:
        assert await repo.hold_lease_and_commit(
            session, name=f"{repo.REPLICA_LEASE}{boot}", holder=worker, now=now, until=until
        )


async def started_interview(client: TestClient, clock: FrozenClock, interview_id: str = "iv-1", **kw: Any) -> None:
    kw.setdefault("occurred_at", clock.now())
    for kind in ("interview.scheduled", "interview.started"):
        resp = await post_event(client, clock, event(kind, interview_id, **kw))
        assert resp.status == 200, await resp.text()
    for q in (1, 2):
        payload = event(
            "interview.answer_saved", interview_id, data={"question_no": q, "media_url": f"oss://a/{q}.mp4"}, **kw
        )
        resp = await post_event(client, clock, payload)
        assert resp.status == 200, await resp.text()


def pytest_collection_finish(session: pytest.Session) -> None:
    """What importing the tests allocated (modules, the SDKs, Hypothesis) is frozen out of the
    collector's sight, so the collection after each test below walks only what tests made since:
    a full walk of everything took about 0.6 s per test, most of the suite's time."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_garbage_after_test() -> Iterator[None]:
    """Collect garbage after every test so a leaked connection or socket is reported by the
    test that leaked it, not by whichever later test happens to trigger the collection. What
    survives the collection (modules a test imported first, caches) is frozen like the imports at
    collection: the next test's collection walks only what it made (a walk of everything the suite
    had imported so far was a tenth of its time)."""
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture
async def faults(clean_db: str) -> AsyncIterator[Faults]:
    """Database faults injected by triggers in the real test database (tests/faults.py)."""
    engine = create_engine(clean_db)
    injected = Faults(engine)
    try:
        yield injected
    finally:
        await injected.remove()
        await engine.dispose()
