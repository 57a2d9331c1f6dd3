"""Logs an admin can read: the real ``python -m bot serve`` and the real scheduler, their output read back."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.logs import AdminFormatter
from bot.scheduler import Scheduler
from tests.conftest import ADMIN_TOKEN, CLOCK_START, event, eventually, sign
from tests.fakes.smtp import SmtpServer
from tests.serve import running_service, service_env

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}([+-]\d{4}) ")


async def malformed_request(url: str) -> bytes:
    """A request line of 128 KB: aiohttp refuses it and puts the bytes into its exception text."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /" + b"A" * 128 * 1024 + b" HTTP/1.1\r\nHost: bot\r\n\r\n")
    await writer.drain()
    status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return status


async def test_serve_logs_summary_local_times_access_lines_and_bounded_errors(
    clean_db: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    env = service_env(
        clean_db,
        smtp,
        BOT_TIMEZONE="Asia/Kolkata",  # +0530: neither UTC, nor this machine's zone, nor the default
        BOT_ACCESS_LOG="1",
        BOT_SWEEP_INTERVAL_SECONDS="0.1",
    )
    async with running_service(env, tmp_path) as service:
        # The service runs on the system clock, so the platform signs with the real time.
        now = datetime.now(UTC)
        payload = event("interview.scheduled", occurred_at=now)
        payload["interview"]["scheduled_at"] = (now + timedelta(hours=3)).isoformat()
        body = json.dumps(payload, ensure_ascii=False).encode()
        async with aiohttp.ClientSession() as http:
            headers = sign(body, int(now.timestamp()))
            async with http.post(f"{service.url}/api/platform/events", data=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()

            async def guide_mailed() -> bool:  # a reminder sweep ran, then the outbox
                return len(smtp.messages) == 1

            await eventually(guide_mailed, timeout=20)
            query = "msg_signature=QUERYSECRET&timestamp=1&nonce=2"
            async with http.get(f"{service.url}/no-such-page?{query}", headers={"sign": "HEADERSECRET"}) as resp:
                assert resp.status == 404
            bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            for probe in ("/healthz", "/readyz", "/metrics"):  # polled every few seconds: not logged
                async with http.get(f"{service.url}{probe}", headers=bearer) as resp:
                    assert resp.status == 200, probe
            async with http.get(f"{service.url}/metrics") as resp:  # a failing probe still is
                assert resp.status == 401
        assert b" 400 " in await malformed_request(service.url)
    text = service.output()
    lines = text.splitlines()

    summaries = [line for line in lines if " bot.app: enabled: " in line]
    assert len(summaries) == 1, text
    [summary] = summaries
    assert "enabled: admin API, platform events API, email notices |" in summary
    assert "SMS notices (SMS_PROVIDER is not set)" in summary and "WeCom AI bot (WECOM_BOT_TOKEN" in summary
    assert summary.endswith("candidate notices (kf,sms,email) can go by: email")
    assert " disabled: " not in text.replace(summary, "")  # no second list of what is off

    stamped = [m.group(1) for m in map(STAMP.match, lines) if m]
    assert len(stamped) >= 5 and set(stamped) == {"+0530"}, text

    assert "apscheduler" not in text and "Running job" not in text  # ~a sweep each 0.1 s, not a line each

    assert ' bot.access: 127.0.0.1 "POST /api/platform/events" 200 ' in text
    assert ' bot.access: 127.0.0.1 "GET /no-such-page" 404 ' in text
    assert ' bot.access: 127.0.0.1 "GET /metrics" 401 ' in text
    assert "GET /healthz" not in text and "GET /readyz" not in text and '"GET /metrics" 200' not in text
    assert "QUERYSECRET" not in text and "msg_signature" not in text and "HEADERSECRET" not in text

    [refused] = [line for line in lines if "aiohttp.server" in line]
    assert "WARNING aiohttp.server: Error handling request from 127.0.0.1: LineTooLong" in refused
    assert len(refused) < 600 and "Traceback" not in text
    assert len(text) < 10_000  # before: about 128 KB for this one request
    # Ctrl-C: a line when it begins, and the last line once everything is closed.
    assert " INFO bot.app: stopping: finishing the work in flight" in text
    assert re.search(r" INFO bot\.app: stopped after \d+ s$", lines[-1]), lines[-1]


async def test_sweep_runs_are_silent_and_each_failure_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    runs = {"ok": 0, "broken": 0}

    async def sweep() -> None:
        runs["ok"] += 1

    async def broken() -> None:
        runs["broken"] += 1
        raise RuntimeError("database went away")

    scheduler = Scheduler("Asia/Shanghai")
    scheduler.every("sweep.ok", 0.02, sweep)
    scheduler.every("sweep.broken", 0.02, broken)
    scheduler.start()

    async def ran_a_few_times() -> bool:
        failures = [r for r in caplog.records if r.getMessage() == "scheduled job sweep.broken failed"]
        return runs["ok"] >= 3 and len(failures) >= 2

    await eventually(ran_a_few_times)
    await scheduler.shutdown()

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "sweep.broken" in r.getMessage()]

    async def each_failure_logged() -> bool:  # the last run's error event may still be on its way
        return len(failures()) == runs["broken"]

    await eventually(each_failure_logged)  # once per failed run, with its traceback
    assert [r for r in caplog.records if r.name.startswith("apscheduler")] == []
    assert all(r.levelno == logging.ERROR and r.exc_info and "went away" in str(r.exc_info[1]) for r in failures())
    assert not [r for r in caplog.records if "sweep.ok" in r.getMessage()]


def test_records_carry_the_zone_and_are_cut_to_a_bounded_size() -> None:
    formatter = AdminFormatter(ZoneInfo("Asia/Shanghai"))
    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "hello %s", ("admin",), None)
    record.created, record.msecs = CLOCK_START.timestamp() + 0.25, 250.0
    assert formatter.format(record) == "2026-03-10 10:00:00.250+0800 INFO bot.test: hello admin"

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.logging.bounded")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("payload %s", "x" * 100_000)
        try:
            raise ValueError("y" * 100_000)
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert len(out) < 12_000
    assert out.count("more characters not logged") == 2
    assert "Traceback (most recent call last)" in out and "ValueError: yyyy" in out
