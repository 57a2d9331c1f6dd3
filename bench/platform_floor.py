"""The floor for platform events: the least the path must do at the product's durability, nothing more.

    python bench/platform_floor.py --db sqlite:/tmp/floor.db | --db postgresql://…  [--port 0]

Per ``POST /api/platform/events``: verify the HMAC and the timestamp with the product's own
``bot.signing``, parse the JSON, and in ONE transaction insert the event id and move the
interview's last activity forward; answer ``{"status": "accepted"}``. SQLite: WAL, the product's
pragmas and its default synchronous level (FULL); PostgreSQL: asyncpg, default settings. No
validation models, no ORM, no queue. ``bench/platform_events.py`` runs it on the same core as the
product and reports the product's figures as ratios to it.

Prints ``listening <port>`` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bot.signing import verify_platform_signature  # noqa: E402

INTERVIEWS = 2000


class SqliteStore:
    """One sqlite3 connection on one thread; each event's transaction is one hop to that thread."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def open(self) -> None:
        import sqlite3
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1)
        loop = asyncio.get_running_loop()
        self.db = await loop.run_in_executor(
            self.pool, lambda: sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        )

        def setup() -> None:
            for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON"):
                self.db.execute(f"PRAGMA {pragma}")
            self.db.execute("DROP TABLE IF EXISTS floor_event")
            self.db.execute("DROP TABLE IF EXISTS floor_interview")
            self.db.execute("CREATE TABLE floor_event (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE)")
            self.db.execute(
                "CREATE TABLE floor_interview (id INTEGER PRIMARY KEY, platform_id TEXT NOT NULL UNIQUE, "
                "last_activity REAL)"
            )
            self.db.executemany(
                "INSERT INTO floor_interview (platform_id) VALUES (?)", [(f"bench-{n}",) for n in range(INTERVIEWS)]
            )

        await loop.run_in_executor(self.pool, setup)

    def _apply(self, event_id: str, platform_id: str, at: float) -> None:
        self.db.execute("BEGIN")
        try:
            self.db.execute("INSERT OR IGNORE INTO floor_event (event_id) VALUES (?)", (event_id,))
            self.db.execute(
                "UPDATE floor_interview SET last_activity = max(coalesce(last_activity, ?), ?) WHERE platform_id = ?",
                (at, at, platform_id),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    async def apply(self, event_id: str, platform_id: str, at: float) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self._apply, event_id, platform_id, at)

    async def count(self) -> int:
        def count() -> int:
            return int(self.db.execute("SELECT count(*) FROM floor_event").fetchone()[0])

        return await asyncio.get_running_loop().run_in_executor(self.pool, count)


class PgStore:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self.dsn, min_size=10, max_size=10)
        async with self.pool.acquire() as conn:
            await conn.execute("DROP TABLE IF EXISTS floor_event; DROP TABLE IF EXISTS floor_interview")
            await conn.execute("CREATE TABLE floor_event (id serial PRIMARY KEY, event_id text NOT NULL UNIQUE)")
            await conn.execute(
                "CREATE TABLE floor_interview (id serial PRIMARY KEY, platform_id text NOT NULL UNIQUE, "
                "last_activity double precision)"
            )
            await conn.executemany(
                "INSERT INTO floor_interview (platform_id) VALUES ($1)", [(f"bench-{n}",) for n in range(INTERVIEWS)]
            )

    async def apply(self, event_id: str, platform_id: str, at: float) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO floor_event (event_id) VALUES ($1) ON CONFLICT DO NOTHING", event_id)
            await conn.execute(
                "UPDATE floor_interview SET last_activity = greatest(coalesce(last_activity, $1), $1) "
                "WHERE platform_id = $2",
                at,
                platform_id,
            )

    async def count(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM floor_event"))


async def serve(db: str, port: int, secret: str) -> None:
    store: Any = SqliteStore(db.removeprefix("sqlite:")) if db.startswith("sqlite:") else PgStore(db)
    await store.open()

    async def events(request: web.Request) -> web.Response:
        raw = await request.read()
        problem = verify_platform_signature(
            secret,
            request.headers.get("X-Bot-Timestamp"),
            request.headers.get("X-Bot-Signature"),
            raw,
            now=time.time(),
            max_skew=300,
        )
        if problem:
            return web.json_response({"error": "bad_signature"}, status=401)
        data = json.loads(raw)
        at = time.time()
        await store.apply(data["event_id"], data["interview"]["id"], at)
        return web.json_response({"status": "accepted", "event_id": data["event_id"]})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"stored": await store.count()})

    app = web.Application()
    app.router.add_post("/api/platform/events", events)
    app.router.add_get("/count", count)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"listening {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="sqlite:<file> or a postgresql:// DSN")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.db, args.port, os.environ["PLATFORM_WEBHOOK_SECRET"]))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
