"""Benchmark: an idle sweep over a big database, and the daily summary over a million exit records.

    python bench/bench_sweeps.py                                   # SQLite file in a temp folder
    python bench/bench_sweeps.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/bench

Seeds 100,000 interviews (10,000 in progress, recently active; 90,000 scheduled with their reminder
rows due later), 1,000,000 exit records over the last year and 50,000 to-dos, then times:

- a reminder sweep plus an idle-timeout sweep that find nothing due (target: under 10 ms);
- building the daily summary (target: under 1 s).

The database is dropped and re-created (PostgreSQL: the public schema of the given database).
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.common, when run as python bench/bench_sweeps.py

from bench.common import fresh_database  # noqa: E402
from bot.channels.registry import AppSettings as Settings  # noqa: E402
from bot.clock import SystemClock  # noqa: E402
from bot.services.context import Core  # noqa: E402
from bot.services.reminders import sweep_reminders  # noqa: E402
from bot.services.summary import build_summary  # noqa: E402
from bot.services.timeouts import sweep_idle  # noqa: E402
from bot.templating import Templates  # noqa: E402
from storage import repo  # noqa: E402
from storage.db import create_engine, session_maker  # noqa: E402
from storage.models import Candidate, ExitRecord, Interview, Reminder, Todo  # noqa: E402

REASONS = [r[:2] for r in repo.DEFAULT_REASONS]  # (code, name)
BATCH = 10_000


async def bulk(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), BATCH):
        await conn.execute(insert(table), rows[i : i + BATCH])


async def seed(url: str, *, interviews: int, in_progress: int, exits: int, todos: int) -> None:
    rnd = random.Random(6)
    now = datetime.now(UTC)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await bulk(
            conn,
            Candidate.__table__,
            [
                {"id": n, "name": f"c{n}", "pipeline_status": "待面试", "created_at": now, "updated_at": now}
                for n in range(1, interviews + 1)
            ],
        )
        rows = []
        for n in range(1, interviews + 1):
            running = n <= in_progress
            rows.append(
                {
                    "id": n,
                    "platform_id": f"iv-{n}",
                    "candidate_id": n,
                    "position": "p",
                    "status": "in_progress" if running else "scheduled",
                    "hr_platform": "wecom",
                    "hr_user_id": f"hr{n % 50}",
                    "scheduled_at": now + timedelta(hours=rnd.randint(2, 24 * 14)) if not running else now,
                    "started_at": now - timedelta(seconds=rnd.randint(0, 300)) if running else None,
                    "last_activity_at": now - timedelta(seconds=rnd.randint(0, 300)) if running else None,
                    "progress": {"answered": []},
                    "attempt": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        await bulk(conn, Interview.__table__, rows)
        reminders = []
        for row in rows[in_progress:]:
            start = row["scheduled_at"]
            for kind, due, state in (
                ("guide", now - timedelta(days=1), "sent"),
                ("before_1h", start - timedelta(hours=1), "pending"),
                ("at_start", start, "pending"),
            ):
                reminders.append(
                    {
                        "interview_id": row["id"],
                        "kind": kind,
                        "due_at": due,
                        "state": state,
                        "note": "",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        await bulk(conn, Reminder.__table__, reminders)
        done = 0
        while done < exits:
            chunk = []
            for k in range(done, min(exits, done + BATCH)):
                code, name = REASONS[rnd.randrange(len(REASONS))]
                chunk.append(
                    {
                        "interview_id": k % interviews + 1,
                        "attempt": k // interviews + 2,  # attempt 1 stays free for the live interviews
                        "reason_code": code,
                        "reason": name,
                        "detail": "",
                        "operator": "system",
                        "source": "timeout",
                        "at": now - timedelta(seconds=rnd.randint(0, 365 * 86400)),
                        "progress_snapshot": {},
                    }
                )
            await conn.execute(insert(ExitRecord.__table__), chunk)
            done += len(chunk)
        await bulk(
            conn,
            Todo.__table__,
            [
                {
                    "assignee": f"wecom:hr{n % 50}",
                    "interview_id": n % interviews + 1,
                    "title": "t",
                    "done": n % 10 != 0,
                    "created_at": now,
                }
                for n in range(todos)
            ],
        )
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    else:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    await engine.dispose()


async def timed(fn: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--interviews", type=int, default=100_000)
    p.add_argument("--in-progress", type=int, default=10_000)
    p.add_argument("--exits", type=int, default=1_000_000)
    p.add_argument("--todos", type=int, default=50_000)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--reuse", action="store_true", help="time an already seeded database (needs --url)")
    args = p.parse_args()
    url = args.url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    print(f"database: {make_url(url).get_backend_name()}")
    if not args.reuse:
        t0 = time.perf_counter()
        await fresh_database(url)
        await seed(url, interviews=args.interviews, in_progress=args.in_progress, exits=args.exits, todos=args.todos)
        print(f"seeded {args.interviews} interviews, {args.exits} exits in {time.perf_counter() - t0:.1f} s")

    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    engine = create_engine(url)
    core = Core(settings=settings, sessions=session_maker(engine), clock=SystemClock(), templates=Templates())

    async def sweep() -> None:
        assert await sweep_reminders(core) == 0
        assert await sweep_idle(core) == 0

    today = datetime.now(settings.tz).date()

    async def summary() -> None:
        data = await build_summary(core, day=today)
        assert data.week_average > 0

    await sweep()  # warm the pool
    sweeps = await timed(sweep, args.runs)
    summaries = await timed(summary, max(3, args.runs // 4))
    for name, ms, target in (("empty sweep (reminders + idle)", sweeps, 10), ("daily summary", summaries, 1000)):
        print(f"{name:32s} median {statistics.median(ms):8.2f} ms  max {max(ms):8.2f} ms  target < {target} ms")
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
