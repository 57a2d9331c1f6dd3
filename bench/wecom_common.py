"""What the WeCom chat benchmarks share (``wecom_callback.py``, ``replica_drain.py``): the database
prepared with registered HRs and their interviews in progress, a ``python -m bot serve`` pointed at
a fake WeCom API, and the check that every stored 进行中 got exactly one correct reply."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import text

from bench.common import Broken, free_port, fresh_database, serve
from tests.fakes.wecom_api import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, FakeWeCom

HR = "hr001"
CANDIDATES = ("压测甲", "压测乙", "压测丙")
# What a process logs when a message was processed more than once, or its claim was taken.
REPROCESSED = ("already queued", "taken over meanwhile", "taking over")


def hr_ids(n: int) -> list[str]:
    """``n`` registered HRs' user ids (the first is ``HR``)."""
    return [f"hr{i + 1:03d}" for i in range(n)]


async def prepare_database(url: str, hrs: Sequence[str] = (HR,)) -> None:
    """Empty the database (PostgreSQL: its public schema), migrate, and register each HR with
    ``CANDIDATES``' interviews in progress."""
    from datetime import UTC, datetime, timedelta

    from storage.db import create_engine, session_maker
    from storage.models import Candidate, Interview, InterviewStatus, Person

    await fresh_database(url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    async with session_maker(engine)() as session:
        for h, hr in enumerate(hrs):
            session.add(Person(platform="wecom", user_id=hr, name=f"压测HR{h}", role="hr", created_at=now))
            for n, name in enumerate(CANDIDATES):
                k = h * len(CANDIDATES) + n
                candidate = Candidate(name=name, mobile=f"138{k:08d}", created_at=now, updated_at=now)
                session.add(candidate)
                await session.flush()
                assert candidate.id is not None
                session.add(
                    Interview(
                        platform_id=f"bench-{k}",
                        candidate_id=candidate.id,
                        position="压测岗位",
                        status=InterviewStatus.in_progress.value,
                        hr_platform="wecom",
                        hr_user_id=hr,
                        scheduled_at=now - timedelta(minutes=30),
                        started_at=now - timedelta(minutes=20),
                        last_activity_at=now - timedelta(minutes=2),
                        created_at=now,
                        updated_at=now,
                    )
                )
        await session.commit()
    await engine.dispose()


class Counter:
    def __init__(self, url: str) -> None:
        from storage.db import create_engine

        self.engine = create_engine(url)

    async def counts(self) -> tuple[int, int]:
        """(messages stored, commands processed: intake items done, with their replies)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM intake_item WHERE source = 'wecom'),"
                        " (SELECT count(*) FROM intake_item WHERE source = 'wecom' AND status = 'done')"
                    )
                )
            ).one()
        return int(row[0]), int(row[1])

    async def check(self, logs: list[Path]) -> dict[str, int]:
        """Every stored message processed once, on its first try, with one correct reply to its sender."""
        async with self.engine.connect() as conn:
            inbound = (
                await conn.execute(
                    text("SELECT key, status, attempts, order_key FROM intake_item WHERE source = 'wecom' ORDER BY id")
                )
            ).all()
            replies = (
                await conn.execute(text("SELECT dedupe_key, body, recipient FROM notice WHERE kind = 'reply'"))
            ).all()
        bodies = {str(k): (str(b), str(r)) for k, b, r in replies}
        problems: list[str] = []
        retried = 0
        for key, status, attempts, sender in inbound:
            if status != "done":
                problems.append(f"{key} is {status}")
            retried += attempts != 1
            reply = bodies.get(f"reply:wecom:{key}:0")
            if reply is None:
                problems.append(f"{key} has no reply")
            elif reply[1] != sender or not reply[0].startswith(f"进行中的面试({len(CANDIDATES)} 场)"):
                problems.append(f"{key} has a wrong reply: {reply[0][:80]!r} to {reply[1]}")
            elif not all(name in reply[0] for name in CANDIDATES):
                problems.append(f"{key} has a wrong reply: {reply[0][:80]!r}")
        extra = len(replies) - len(inbound)
        if extra:
            problems.append(f"{extra} more reply rows than messages")
        text_of_logs = [p.read_text(encoding="utf-8", errors="replace") for p in logs]
        for words in REPROCESSED:
            if said := sum(t.count(words) for t in text_of_logs):
                problems.append(f"the logs say {words!r} {said} times: a message was processed more than once")
        if problems:
            raise Broken(f"{len(problems)} wrong: " + "; ".join(problems[:5]))
        return {"messages": len(inbound), "retried": retried}

    async def close(self) -> None:
        await self.engine.dispose()


@dataclass
class Service:
    proc: asyncio.subprocess.Process
    base: str
    log: Path


async def spawn_service(
    url: str, fake: FakeWeCom, tmp: Path, n: int, *, core: str, poll: str, wrap: Sequence[str] = ()
) -> Service:
    """``python -m bot serve`` (instance ``bench-<n>``, pinned to ``core``, behind ``wrap``, e.g. a
    profiler) with WeCom's app pointed at ``fake``; started, not waited for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_", "SMS_"))}
    port = free_port()
    env.update(
        BOT_DATABASE_URL=url,
        BOT_PORT=str(port),
        BOT_INSTANCE_ID=f"bench-{n}",
        BOT_ADMIN_TOKEN="bench-admin-token-0123456789",
        BOT_LOG_LEVEL="WARNING",
        BOT_OUTBOX_POLL_SECONDS=poll,
        WECOM_CORP_ID=CORP_ID,
        WECOM_AGENT_ID=str(AGENT_ID),
        WECOM_SECRET=SECRET,
        WECOM_TOKEN=TOKEN,
        WECOM_AES_KEY=AES_KEY,
        WECOM_API_BASE=fake.base_url,
    )
    log = tmp / f"serve-{n}.log"
    proc = await serve(env, core=core, log=log, wrap=wrap)
    return Service(proc, f"http://127.0.0.1:{port}", log)


async def wait_healthy(service: Service, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while True:
            if service.proc.returncode is not None:
                raise Broken(f"the service stopped:\n{service.log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{service.base}/healthz") as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise Broken("the service did not start")
            await asyncio.sleep(0.05)
