"""kill -9 of a real service process (`python -m bot serve`) in the middle of sending a staff chat
reply, then a restart of the same instance: the reply is not delivered twice, and the restarted
process takes over the rows of its earlier boot at once (not after the 120 s lock).

Runs on SQLite and PostgreSQL (one process at a time shares the database file)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import select

from bot.clock import FrozenClock
from storage.db import create_engine, session_maker
from storage.models import Notice, NoticeAttempt, Person
from tests.conftest import NO_ENV_FILE, eventually
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.fakes.wecom_api import FakeWeCom, WeComSide, text_xml, wecom_settings
from tests.serve import Service

INSTANCE = "crash-test-replica"


async def seed_hr(url: str, platform: str) -> None:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        session.add(Person(platform=platform, user_id="hr01", name="王小姐", role="hr", created_at=datetime.now(UTC)))
        await session.commit()
    await engine.dispose()


async def replies(url: str) -> list[tuple[Notice, list[NoticeAttempt]]]:
    engine = create_engine(url)
    async with session_maker(engine)() as session:
        rows = (await session.exec(select(Notice).where(Notice.kind == "reply"))).all()
        out = []
        for row in rows:
            tries = (await session.exec(select(NoticeAttempt).where(NoticeAttempt.notice_id == row.id))).all()
            out.append((row, sorted(tries, key=lambda a: a.seq)))
    await engine.dispose()
    return out


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        service.stop(signal.SIGTERM)


def base_env(database_url: str, settings: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_"))}
    env.update(NO_ENV_FILE)
    env.update(BOT_DATABASE_URL=database_url, BOT_OUTBOX_POLL_SECONDS="0.1", BOT_SWEEP_INTERVAL_SECONDS="3600")
    for key, value in settings.items():
        env[key.upper()] = str(value)
    return env


async def test_wecom_reply_cut_off_by_kill_9_is_resent_within_the_dedupe_window_and_shown_once(
    clean_db: str, fake_wecom: FakeWeCom, services: list[Service], tmp_path: Path
) -> None:
    await seed_hr(clean_db, "wecom")
    env = base_env(clean_db, wecom_settings(fake_wecom))
    first = Service(env, tmp_path / "bot.log", instance=INSTANCE)
    services.append(first)
    await first.healthy(timeout=30)

    fake_wecom.hang_sends = True  # WeCom takes the message, then the process dies before the answer
    path, body = WeComSide().app_post(text_xml("hr01", "帮助", 5151), timestamp=int(time.time()))
    async with aiohttp.ClientSession() as http, http.post(first.url + path, data=body) as resp:
        assert resp.status == 200

    async def shown() -> bool:
        return len(fake_wecom.delivered) == 1

    await eventually(shown, 15, "the reply never reached WeCom")
    first.kill9()
    [(row, tries)] = await replies(clean_db)
    assert row.status == "sending" and [t.result for t in tries] == ["started"]
    assert (row.claimed_by or "").startswith(INSTANCE + "/")
    first_boot = row.claimed_by
    fake_wecom.hang_sends = False

    restarted_at = time.monotonic()
    second = Service(env, tmp_path / "bot.log", instance=INSTANCE)
    services.append(second)
    await second.healthy(timeout=30)
    up = time.monotonic() - restarted_at

    async def resolved() -> bool:
        [(row, _)] = await replies(clean_db)
        return row.status == "sent"

    await eventually(resolved, 30, "the cut-off reply was not taken over")
    recovery = time.monotonic() - restarted_at
    print(f"WeCom reply recovered {recovery:.2f} s after the restart, {up:.2f} s of it starting up")  # noqa: T201
    assert recovery < 20
    [(row, tries)] = await replies(clean_db)
    assert [t.result for t in tries] == ["unknown", "sent"]
    assert row.claimed_by != first_boot and (row.claimed_by or "").startswith(INSTANCE + "/")  # the new boot
    assert len(fake_wecom.sent("message/send")) == 2  # sent again, with WeCom's duplicate check on
    assert all(m["enable_duplicate_check"] == 1 for m in fake_wecom.sent("message/send"))
    assert len(fake_wecom.delivered) == 1  # the HR sees the reply once
    assert "可用命令" in fake_wecom.delivered[0]["text"]["content"]


async def test_dingtalk_reply_cut_off_by_kill_9_is_not_resent(
    clean_db: str, fake_dingtalk: FakeDingTalk, services: list[Service], tmp_path: Path
) -> None:
    await seed_hr(clean_db, "dingtalk")
    env = base_env(clean_db, fake_dingtalk.settings())
    first = Service(env, tmp_path / "bot.log", instance=INSTANCE)
    services.append(first)
    await first.healthy(timeout=30)

    fake_dingtalk.hang_session = True
    clock = FrozenClock(datetime.now(UTC))
    async with aiohttp.ClientSession() as http:

        class Client:  # what FakeDingTalk.post_callback needs of a test client
            async def post(self, path: str, **kw: Any) -> Any:
                async with http.post(first.url + path, **kw) as resp:
                    return resp.status

        status = await fake_dingtalk.post_callback(Client(), fake_dingtalk.message("帮助", clock), clock)  # type: ignore[arg-type]
        assert status == 200

    async def shown() -> bool:
        return len(fake_dingtalk.session_posts) == 1

    await eventually(shown, 15, "the reply never reached DingTalk")
    first.kill9()
    fake_dingtalk.hang_session = False

    restarted_at = time.monotonic()
    second = Service(env, tmp_path / "bot.log", instance=INSTANCE)
    services.append(second)
    await second.healthy(timeout=30)
    up = time.monotonic() - restarted_at

    async def resolved() -> bool:
        [(row, _)] = await replies(clean_db)
        return row.status != "sending"

    await eventually(resolved, 30, "the cut-off reply was not taken over")
    recovery = time.monotonic() - restarted_at
    assert recovery < 20
    print(f"DingTalk reply resolved {recovery:.2f} s after the restart, {up:.2f} s of it starting up")  # noqa: T201
    [(row, tries)] = await replies(clean_db)
    # The sessionWebhook has no dedupe: the outcome is unknown and it is not sent again.
    assert row.status == "dead" and [t.result for t in tries] == ["unknown"]
    assert "delivery unknown" in (row.last_error or "")
    await asyncio.sleep(0.3)  # not an awaited effect: a window (a few outbox polls) in which nothing is resent
    assert len(fake_dingtalk.session_posts) == 1
