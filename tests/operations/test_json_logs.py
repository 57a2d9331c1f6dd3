"""BOT_LOG_FORMAT=json: one JSON object per line, carrying the message / interview / notice the line
was written for. The real ``python -m bot serve`` output is read back, and a DingTalk flow's lines."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from bot.clock import FrozenClock
from bot.logs import JsonFormatter
from tests.conftest import CLOCK_START, SHANGHAI, AppFactory, event, eventually, sign
from tests.dingtalk import hr_app
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.fakes.smtp import SmtpServer
from tests.serve import running_service, service_env


async def test_serve_writes_json_lines_with_the_work_they_belong_to(
    clean_db: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    env = service_env(clean_db, smtp, BOT_LOG_FORMAT="json", BOT_SWEEP_INTERVAL_SECONDS="0.1")
    async with running_service(env, tmp_path) as service:
        now = datetime.now(UTC)
        payload = event("interview.scheduled", "iv-json", occurred_at=now)
        payload["interview"]["scheduled_at"] = (now + timedelta(hours=3)).isoformat()
        body = json.dumps(payload, ensure_ascii=False).encode()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{service.url}/api/platform/events", data=body, headers=sign(body, int(now.timestamp()))
            ) as resp:
                assert resp.status == 200, await resp.text()

        async def mailed() -> bool:
            return len(smtp.messages) == 1 and "sent by email" in service.output()

        await eventually(mailed, timeout=20)
    lines = [json.loads(line) for line in service.output().splitlines() if line.strip()]  # every line is JSON
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(line["logger"] == "bot.app" and line["message"].startswith("enabled: ") for line in lines)
    [sent] = [line for line in lines if line["message"].endswith("sent by email")]
    assert sent["logger"] == "bot.outbox" and sent["notice_id"].isdigit() and sent["interview_row"].isdigit()
    # ISO 8601 in the configured zone, with its offset: what log shippers parse without a pattern.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00", sent["time"]), sent["time"]
    assert datetime.fromisoformat(sent["time"]).utcoffset() == timedelta(hours=8)
    assert lines[-1]["logger"] == "bot.app" and lines[-1]["message"].startswith("stopped after ")


def test_json_time_is_iso_8601_with_the_offset() -> None:
    formatter = JsonFormatter(SHANGHAI)
    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "hello %s", ("admin",), None)
    record.created, record.msecs = CLOCK_START.timestamp() + 0.25, 250.0
    line = json.loads(formatter.format(record))
    assert line["time"] == "2026-03-10T10:00:00.250+08:00"
    assert datetime.fromisoformat(line["time"]) == CLOCK_START + timedelta(seconds=0.25)
    assert line["message"] == "hello admin"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger also writes JSON lines into a buffer (as configure_logging would, without
    taking pytest's own handlers away)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(SHANGHAI))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


async def test_each_line_of_a_messages_work_names_the_message_and_interview(
    make_client: AppFactory, clock: FrozenClock, json_log: io.StringIO
) -> None:
    fake = FakeDingTalk(clock=clock)
    await fake.start()
    try:
        client = await hr_app(make_client, clock, fake)
        ask = fake.message("终止面试 张三 候选人放弃", clock, msg_id="msg-ask")
        assert (await fake.post_callback(client, ask, clock)).status == 200

        async def prompted() -> bool:
            return len(fake.session_posts) == 1

        await eventually(prompted)
        confirm = fake.message("确认", clock, msg_id="msg-confirm")
        assert (await fake.post_callback(client, confirm, clock)).status == 200

        async def done() -> bool:  # both replies sent and marked sent
            return json_log.getvalue().count('sent by dingtalk"') == 2

        await eventually(done)
    finally:
        await fake.close()
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    [terminated] = [line for line in lines if "terminated by" in line["message"]]
    assert terminated["message_id"] == "msg-confirm"
    assert terminated["interview_id"] == "iv-1"
    assert terminated["sender"] == "dingtalk:hr01"
    # The reply deliveries name their outbox row and never a message they were not part of.
    sent = [line for line in lines if line["message"].endswith("sent by dingtalk")]
    assert len(sent) == 2 and all("notice_id" in line and "message_id" not in line for line in sent)
