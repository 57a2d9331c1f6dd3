"""A first try without a vendor: ``python -m bot demo`` and ``events send`` against the real running
service, ``/`` sending a browser to the console, and what start-up and 后台 say about addresses."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, or_
from sqlmodel import col, select

from bot.clock import FrozenClock
from storage.db import create_engine, session_maker
from storage.models import (
    AuditEvent,
    Candidate,
    ExitRecord,
    Interview,
    Notice,
    PendingAction,
    PlatformEvent,
    Reminder,
    Todo,
)
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, event
from tests.fakes.smtp import SmtpServer
from tests.fakes.wecom_api import FakeWeCom, wecom_settings
from tests.serve import run_cli, running_service, service_env

TABLES: tuple[Any, ...] = (Interview, Candidate, PlatformEvent, Notice, AuditEvent, Todo, PendingAction, Reminder)


async def counts(database_url: str, *, besides: int | None = None) -> dict[str, int]:
    """Rows per table; ``besides``: leave out the notices of that interview (the running service's
    own reminder sweep may queue one for the real interview at any moment)."""
    engine = create_engine(database_url)
    try:
        async with session_maker(engine)() as session:
            found = {t.__tablename__: (await session.exec(select(func.count()).select_from(t))).one() for t in TABLES}
            if besides is not None:  # one statement: the sweep may queue one between two (a count of -1)
                others = or_(col(Notice.interview_id).is_(None), col(Notice.interview_id) != besides)
                found["notice"] = (await session.exec(select(func.count()).select_from(Notice).where(others))).one()
            return found
    finally:
        await engine.dispose()


async def rows(database_url: str, model: Any, *where: Any) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with session_maker(engine)() as session:
            return list((await session.exec(select(model).where(*where))).all())
    finally:
        await engine.dispose()


@pytest.mark.timeout(180)  # ten command-line runs beside a running service
async def test_demo_terminate_by_chat_mail_then_remove_only_the_demo(
    clean_db: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    env = service_env(clean_db, smtp, BOT_OUTBOX_POLL_SECONDS="0.2")
    async with running_service(env, tmp_path) as service:
        env["BOT_PORT"] = service.url.rsplit(":", 1)[1]  # the CLI finds the service at BOT_HOST:BOT_PORT
        # A real interview, sent by events send, as a vendor would.
        real = event("interview.scheduled", "iv-real")
        real["occurred_at"] = real["interview"]["scheduled_at"] = "2026-01-05T10:00:00+08:00"
        (tmp_path / "real.json").write_text(json.dumps(real, ensure_ascii=False), encoding="utf-8")
        code, out, err = await run_cli(env, "events", "send", "real.json", cwd=tmp_path)
        assert code == 0, err
        assert "HTTP 200" in out and '"status": "accepted"' in out
        code, _, err = await run_cli(
            env,
            "people",
            "add",
            "--platform",
            "wecom",
            "--user-id",
            "hr01",
            "--name",
            "王小姐",
            "--role",
            "hr",
            cwd=tmp_path,
        )
        assert code == 0, err
        [real_row] = await rows(clean_db, Interview, Interview.platform_id == "iv-real")
        before = await counts(clean_db, besides=real_row.id)

        code, out, err = await run_cli(env, "demo", "--hr", "wecom:hr01", cwd=tmp_path)
        assert code == 0, err
        assert (
            "示例数据" in out and "demo-1001" in out and "林小雨" in out and "python -m bot chat --as wecom:hr01" in out
        )
        assert "people add" not in out  # the HR is registered already
        demo = await rows(clean_db, Interview, col(Interview.platform_id).startswith("demo-"))
        assert {i.platform_id: i.status for i in demo} == {
            "demo-1001": "in_progress",
            "demo-1002": "in_progress",
            "demo-1003": "in_progress",
            "demo-1004": "scheduled",
        }
        assert all(i.hr_key == "wecom:hr01" for i in demo)
        assert len(await rows(clean_db, Todo, Todo.assignee == "wecom:hr01")) >= 1  # the help request's to-do
        # Posted again: the same events are duplicates, nothing new.
        code, out, _ = await run_cli(env, "demo", "--hr", "wecom:hr01", cwd=tmp_path)
        assert code == 0 and "新事件 0 个" in out
        assert len(await rows(clean_db, Interview, col(Interview.platform_id).startswith("demo-"))) == 4

        code, out, err = await run_cli(
            env,
            "chat",
            "--as",
            "wecom:hr01",
            stdin="进行中\n终止面试 林小雨 网络问题\n确认\n",
            cwd=tmp_path,
        )
        assert code == 0, err
        assert "林小雨" in out and "已终止 林小雨 的面试" in out

        async def mailed() -> bool:
            return any(m["To"] == "demo.linxiaoyu@example.com" for m in smtp.messages)

        deadline = asyncio.get_running_loop().time() + 20
        while not await mailed():
            assert asyncio.get_running_loop().time() < deadline, [m["To"] for m in smtp.messages]
            await asyncio.sleep(0.1)
        assert len(await rows(clean_db, ExitRecord)) == 1

        code, out, err = await run_cli(env, "demo", "--remove", cwd=tmp_path)
        assert code == 0, err
        assert "面试 4 场" in out and "其他数据未改动" in out
    assert await rows(clean_db, Interview, col(Interview.platform_id).startswith("demo-")) == []
    assert (
        await rows(clean_db, Candidate, col(Candidate.email).endswith("@example.com"), Candidate.name == "林小雨") == []
    )
    assert await rows(clean_db, ExitRecord) == []
    after = await counts(clean_db, besides=real_row.id)
    assert after == before, (before, after, [(n.kind, n.interview_id) for n in await rows(clean_db, Notice)])
    [real_after] = await rows(clean_db, Interview, Interview.platform_id == "iv-real")
    assert real_after.model_dump() == real_row.model_dump()
    assert len(await rows(clean_db, AuditEvent, AuditEvent.action == "person.added")) == 1
    # Removed once, there is nothing left to remove.
    code, out, _ = await run_cli(env, "demo", "--remove", cwd=tmp_path)
    assert code == 0 and "没有示例数据" in out


async def test_demo_and_events_send_refuse_clearly(clean_db: str, tmp_path: Path) -> None:
    env = service_env(clean_db)
    env.pop("PLATFORM_WEBHOOK_SECRET")
    code, out, err = await run_cli(env, "demo", cwd=tmp_path)
    assert code == 2 and "PLATFORM_WEBHOOK_SECRET" in err and "没有设置" in err and "已通过" not in out
    assert await rows(clean_db, Interview) == []

    env = service_env(clean_db, BOT_PORT="9")  # nothing listens there
    code, _, err = await run_cli(env, "demo", cwd=tmp_path)
    assert code == 1 and "连不上服务 http://127.0.0.1:9" in err and "python -m bot serve" in err
    assert await rows(clean_db, Interview) == []

    (tmp_path / "broken.json").write_text('{"type": ', encoding="utf-8")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    code, _, err = await run_cli(env, "events", "send", "broken.json", cwd=tmp_path)
    assert code == 2 and "不是有效的 JSON" in err
    code, _, err = await run_cli(env, "events", "send", "list.json", cwd=tmp_path)
    assert code == 2 and "JSON 对象" in err
    code, _, err = await run_cli(env, "events", "send", "missing.json", cwd=tmp_path)
    assert code == 2 and "无法读取 missing.json" in err


async def test_events_send_shows_a_refusal(clean_db: str, tmp_path: Path) -> None:
    env = service_env(clean_db)
    async with running_service(env, tmp_path) as service:
        env["BOT_PORT"] = service.url.rsplit(":", 1)[1]
        (tmp_path / "odd.json").write_text('{"type": "interview.exploded"}', encoding="utf-8")
        code, out, _ = await run_cli(env, "events", "send", "odd.json", cwd=tmp_path)
        assert code == 1 and "HTTP 400" in out and "unknown_event_type" in out
        code, out, err = await run_cli(
            {**env, "PLATFORM_WEBHOOK_SECRET": "not-the-one"},
            "events",
            "send",
            "odd.json",
            cwd=tmp_path,
        )
        assert code == 1 and "HTTP 401" in out and "PLATFORM_WEBHOOK_SECRET" in err


async def test_root_sends_a_browser_to_the_console(make_client: AppFactory) -> None:
    client = await make_client()
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    page = await client.get("/")
    assert page.url.path == "/console/welcome" and "后台" in await page.text()


async def test_startup_names_the_console_and_the_next_step(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await make_client(port=8123)
    said = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert "web console: http://127.0.0.1:8123/console" in said
    [step] = [s for s in said if s.startswith("no chat channel is configured")]
    assert "python -m bot demo" in step and "python -m bot console-link" in step
    assert not [s for s in said if "BOT_PUBLIC_BASE_URL" in s]  # nothing is sent in chat: no warning


async def test_a_chat_channel_without_a_public_address_warns_and_links_say_so(
    make_client: AppFactory, fake_wecom: FakeWeCom, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        client = await make_client(**wecom_settings(fake_wecom), port=8124)
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.app" and r.levelno == logging.WARNING]
    assert any("BOT_PUBLIC_BASE_URL is not set" in w and "http://127.0.0.1:8124/console" in w for w in warnings)
    assert not [r for r in caplog.records if r.getMessage().startswith("no chat channel")]
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    reply = await ChatUser(app, "hr01").says("后台")
    assert "http://127.0.0.1:8124/console/login?token=" in reply
    assert "只能在运行本服务的电脑上打开" in reply and "BOT_PUBLIC_BASE_URL" in reply


async def test_with_a_public_address_links_use_it_and_nothing_warns(
    make_client: AppFactory, fake_wecom: FakeWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        client = await make_client(**wecom_settings(fake_wecom), public_base_url="https://hr.example.com")
    said = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert "web console: https://hr.example.com/console" in said
    assert not [s for s in said if "BOT_PUBLIC_BASE_URL is not set" in s]
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    reply = await ChatUser(app, "hr01").says("后台")
    assert "https://hr.example.com/console/login?token=" in reply and "只能在" not in reply


async def test_console_link_says_when_it_opens_only_here(clean_db: str, tmp_path: Path) -> None:
    env = service_env(clean_db)
    code, _, err = await run_cli(
        env,
        "people",
        "add",
        "--platform",
        "wecom",
        "--user-id",
        "hr01",
        "--name",
        "王小姐",
        "--role",
        "hr",
        cwd=tmp_path,
    )
    assert code == 0, err
    code, out, err = await run_cli(env, "console-link", "--platform", "wecom", "--user-id", "hr01", cwd=tmp_path)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[-1].startswith("http://127.0.0.1:8080/console/login?token=")  # the link stays last
    assert any("BOT_PUBLIC_BASE_URL" in line and "这台电脑" in line for line in lines[:-1])
