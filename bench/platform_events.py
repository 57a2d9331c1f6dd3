"""Benchmark: platform events (``interview.activity`` over 2,000 started interviews) against the floor.

    python bench/platform_events.py [--db sqlite|pg] [--seconds 20] [-c 50]

What runs (127.0.0.1 only; everything stops by itself):
- the floor (``bench/platform_floor.py``: verify the HMAC + parse the JSON + insert the event id +
  move the interview's last activity, one transaction, the product's durability) pinned to core 0
  with ``taskset``, loaded by ``wrk`` pinned to the other core, each request a distinct signed
  ``interview.activity`` spread over 2,000 interviews;
- then the product (``python -m bot serve`` on core 0): 2,000 interviews created by
  ``interview.started`` events (16 at a time, timed until all are applied), a warm-up, then the
  same flood for ``--seconds``.

Afterwards every accepted event must be applied exactly once (one ``platform_event`` row per
intake item, every item done on its first try: attempts 0 when applied as it was stored, 1 by the
worker; no item failed), each interview's last activity must be its latest event's time, and no
interview may have timed out (the service runs with ``BOT_IDLE_TIMEOUT_SECONDS=30`` and its sweep
every 2 s, so an interview whose heartbeats were applied late would be ended).

Printed: floor events/s and latency, product events/s, p50, p99, the ratio to the floor, the
creation rate, how long applying lagged behind the flood, and each goal. Exit status 1 when a
goal is missed, 2 (and no numbers) when any answer was not a 200 ``accepted`` or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.common import (  # noqa: E402
    Broken,
    Load,
    cores,
    free_port,
    fresh_database,
    off_the_server_core,
    serve,
    stop,
    verdict,
)

SECRET = "bench-platform-secret-0123456789"
INTERVIEWS = 2000
CREATE_AT_ONCE = 16
IDLE_TIMEOUT = 30
GOALS = {"events_per_s": 2000.0, "p99_ms": 50.0, "floor_ratio": 0.5, "created_per_s": 500.0}
PATH = "/api/platform/events"

LUA = r"""
-- one pre-built distinct signed request per call, from the file given after "--"; answers checked
local threads = {}
function setup(thread) table.insert(threads, thread) end
reqs = {}
idx = 0
bad = 0
function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    local tab2 = line:find("\t", tab + 1, true)
    reqs[#reqs + 1] = wrk.format("POST", "/api/platform/events", {
      ["Content-Type"] = "application/json",
      ["X-Bot-Timestamp"] = line:sub(1, tab - 1),
      ["X-Bot-Signature"] = line:sub(tab + 1, tab2 - 1)}, line:sub(tab2 + 1))
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then return wrk.format("GET", "/out-of-distinct-requests") end
  return reqs[idx]
end
function response(status, headers, body)
  if status ~= 200 or body == nil or not body:find('"accepted"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local nb, sent = 0, 0
  for _, t in ipairs(threads) do nb = nb + t:get("bad"); sent = sent + t:get("idx") end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"connect":%d,' ..
    '"read":%d,"write":%d,"status":%d,"timeout":%d,"bad":%d,"sent":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, nb, sent))
end
"""


def signed(payload: dict[str, object]) -> tuple[str, str, bytes]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return stamp, mac, body


def interview(n: int) -> dict[str, object]:
    return {
        "id": f"bench-{n}",
        "position": "压测岗位",
        "candidate": {"name": f"压测{n}", "mobile": f"139{n:08d}"},
        "hr": {"platform": "wecom", "user_id": "hr001"},
    }


def activity(tag: str, i: int, start: datetime) -> dict[str, object]:
    return {
        "event_id": f"{tag}-{i}",
        "type": "interview.activity",
        # A heartbeat timeline: 4,000 events a second from when the requests are made.
        "occurred_at": (start + timedelta(seconds=i / 4000)).isoformat(),
        "interview": interview(i % INTERVIEWS),
        "data": {},
    }


def write_requests(path: Path, tag: str, n: int) -> None:
    start = datetime.now(UTC)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            stamp, mac, body = signed(activity(tag, i, start))
            out.write(f"{stamp}\t{mac}\t{body.decode()}\n")


async def wrk(url: str, file: Path, connections: int, seconds: int, script: Path) -> Load:
    _, load_cores = cores()
    proc = await asyncio.create_subprocess_exec(
        *("taskset", "-c", load_cores, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"),
        *("-s", str(script), url, "--", str(file)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await proc.communicate())[0].decode()
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise Broken(f"wrk printed no result:\n{out}")
    r = json.loads(line[len("WRKJSON ") :])
    if r["sent"] > sum(1 for _ in file.open(encoding="utf-8")):
        raise Broken(f"wrk ran out of distinct requests after {r['sent']}; raise --pool")
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout", "bad") if r[k]}
    if errors:
        raise Broken(f"answers other than a 200 accepted: {errors}\n{out}")
    return Load(r["requests"], r["duration_us"] / 1e6, r["p50_us"] / 1000, r["p99_us"] / 1000, r["sent"])


async def run_floor(args: argparse.Namespace, tmp: Path, files: tuple[Path, Path], script: Path) -> Load:
    server_core, _ = cores()
    db = f"sqlite:{tmp}/floor.db" if args.db == "sqlite" else args.pg_url.replace("+asyncpg", "")
    proc = await asyncio.create_subprocess_exec(
        *("taskset", "-c", server_core, sys.executable, str(ROOT / "bench" / "platform_floor.py"), "--db", db),
        env={**os.environ, "PLATFORM_WEBHOOK_SECRET": SECRET},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line.startswith(b"listening "):
            raise Broken(f"floor did not start: {line!r}")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        await wrk(url, files[1], args.c, 2, script)
        load = await wrk(url, files[0], args.c, args.seconds, script)
        async with aiohttp.ClientSession() as http, http.get(f"{url}/count") as resp:
            stored = (await resp.json())["stored"]
        if stored < load.requests:
            raise Broken(f"floor stored {stored} of {load.requests} accepted events")
        return load
    finally:
        await stop(proc)


# --- the product ------------------------------------------------------------------------


async def start_service(url: str, tmp: Path) -> tuple[asyncio.subprocess.Process, str, Path]:
    server_core, _ = cores()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_", "SMS_"))}
    port = free_port()
    env.update(
        BOT_ENV_FILE="",
        BOT_DATABASE_URL=url,
        BOT_PORT=str(port),
        BOT_INSTANCE_ID="bench-events",
        BOT_ADMIN_TOKEN="bench-admin-token-0123456789",
        BOT_LOG_LEVEL="WARNING",
        BOT_IDLE_TIMEOUT_SECONDS=str(IDLE_TIMEOUT),
        BOT_SWEEP_INTERVAL_SECONDS="2",
        PLATFORM_WEBHOOK_SECRET=SECRET,
    )
    log = tmp / "serve.log"
    proc = await serve(env, core=server_core, log=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while True:
            if proc.returncode is not None:
                raise Broken(f"the service stopped:\n{log.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        return proc, base, log
            if time.monotonic() > deadline:
                raise Broken("the service did not start")
            await asyncio.sleep(0.2)


class Db:
    def __init__(self, url: str) -> None:
        from storage.db import create_engine

        self.engine = create_engine(url)

    async def one(self, sql: str) -> tuple[int, ...]:
        async with self.engine.connect() as conn:
            return tuple((await conn.execute(text(sql))).one())

    async def close(self) -> None:
        await self.engine.dispose()


async def create_interviews(base: str, db: Db, log: Path) -> float:
    """Post 2,000 ``interview.started`` (16 at a time); interviews per second until all are applied."""
    began = time.monotonic()
    async with aiohttp.ClientSession() as http:
        slots = asyncio.Semaphore(CREATE_AT_ONCE)

        async def one(n: int) -> None:
            payload = {
                "event_id": f"start-{n}",
                "type": "interview.started",
                "occurred_at": datetime.now(UTC).isoformat(),
                "interview": interview(n),
                "data": {},
            }
            stamp, mac, body = signed(payload)
            headers = {"X-Bot-Timestamp": stamp, "X-Bot-Signature": mac, "Content-Type": "application/json"}
            async with slots, http.post(base + PATH, data=body, headers=headers) as resp:
                answer = await resp.text()
                if resp.status != 200 or '"accepted"' not in answer:
                    raise Broken(f"interview.started {n}: HTTP {resp.status} {answer[:200]}")

        await asyncio.gather(*(one(n) for n in range(INTERVIEWS)))
    posted = time.monotonic() - began
    while (await db.one("SELECT count(*) FROM interview WHERE status = 'in_progress'"))[0] < INTERVIEWS:
        if time.monotonic() - began > 120:
            said = (await asyncio.to_thread(log.read_text, encoding="utf-8", errors="replace"))[-3000:]
            raise Broken(f"the 2,000 interviews were not all started within 120 s:\n{said}")
        await asyncio.sleep(0.05)
    took = time.monotonic() - began
    print(f"created {INTERVIEWS} interviews in {took:.1f} s (all accepted after {posted:.1f} s)", flush=True)
    return INTERVIEWS / took


async def drained(db: Db, limit: float) -> float:
    began = time.monotonic()
    while (await db.one("SELECT count(*) FROM intake_item WHERE status IN ('received', 'processing')"))[0]:
        if time.monotonic() - began > limit:
            raise Broken(f"events still unapplied {limit:.0f} s after the flood")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def check(db: Db, load: Load, warm: Load, log: Path) -> int:
    items, done, first_try = await db.one(
        "SELECT count(*), sum(CASE WHEN status = 'done' THEN 1 ELSE 0 END),"
        " sum(CASE WHEN attempts <= 1 THEN 1 ELSE 0 END) FROM intake_item"
    )
    recorded = (await db.one("SELECT count(*) FROM platform_event"))[0]
    answered = INTERVIEWS + warm.requests + load.requests
    sent = INTERVIEWS + warm.sent + load.sent
    problems = []
    if not answered <= items <= sent:
        problems.append(f"{items} events stored for {answered} accepted answers ({sent} sent)")
    if done != items or first_try != items:
        problems.append(f"of {items} stored events {done} are done, {first_try} on their first try")
    if recorded != items:
        problems.append(f"{recorded} events recorded as applied for {items} stored")
    late = (
        await db.one(
            "SELECT count(*) FROM interview i WHERE i.last_activity_at IS NULL OR i.last_activity_at <>"
            " (SELECT max(e.occurred_at) FROM platform_event e WHERE e.interview_platform_id = i.platform_id)"
        )
    )[0]
    if late:
        problems.append(f"{late} interviews' last activity is not their latest event's time")
    ended = (await db.one("SELECT count(*) FROM interview WHERE status <> 'in_progress'"))[0]
    if ended:
        problems.append(f"{ended} interviews timed out (or ended) although their heartbeats kept coming")
    said = await asyncio.to_thread(log.read_text, encoding="utf-8", errors="replace")
    for words in ("taken over meanwhile", "failed for good", "together failed", "Traceback"):
        if words in said:
            problems.append(f"the service logged {words!r}")
    if problems:
        raise Broken("; ".join(problems))
    return items


async def profile(pid: int, out: str | None, seconds: int) -> asyncio.subprocess.Process | None:
    """py-spy sampling the service during the flood (``--profile FILE``: collapsed stacks)."""
    if not out:
        return None
    return await asyncio.create_subprocess_exec(
        *("py-spy", "record", "-p", str(pid), "-d", str(seconds), "-r", "200", "-f", "raw", "-o", out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def main_async(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    off_the_server_core()  # the creation client signs and posts here, beside wrk, not beside the service
    with tempfile.TemporaryDirectory(prefix="bench-events-") as name:
        tmp = Path(name)
        script = tmp / "events.lua"
        script.write_text(LUA, encoding="utf-8")
        pool = int(args.pool)
        files = {tag: tmp / f"{tag}.tsv" for tag in ("floor", "floorwarm", "flood", "warm")}
        write_requests(files["floor"], "floor", pool)
        write_requests(files["floorwarm"], "floorwarm", pool // 4)
        url = f"sqlite+aiosqlite:///{tmp}/bot.db" if args.db == "sqlite" else args.pg_url
        await fresh_database(url)  # before the floor too: on PostgreSQL it makes its table in this database
        floor = await run_floor(args, tmp, (files["floor"], files["floorwarm"]), script)
        await fresh_database(url)
        db = Db(url)
        proc, base, log = await start_service(url, tmp)
        try:
            spy = await profile(proc.pid, args.profile and f"{args.profile}.create", 8)
            created = await create_interviews(base, db, log)
            if spy is not None:
                await spy.wait()
            write_requests(files["warm"], "warm", pool // 4)
            write_requests(files["flood"], "flood", pool)
            warm = await wrk(base, files["warm"], args.c, 2, script)
            spy = await profile(proc.pid, args.profile, args.seconds)
            load = await wrk(base, files["flood"], args.c, args.seconds, script)
            if spy is not None:
                await spy.wait()
            lag = await drained(db, 120)
            items = await check(db, load, warm, log)
        finally:
            await stop(proc)
            await db.close()
            shutil.copy(log, Path(tempfile.gettempdir()) / "platform_events_serve.log")  # for a look afterwards
    ratio = load.rate / floor.rate
    where = f"wrk -c{args.c}, {args.seconds} s, {args.db}"
    print(f"\nplatform events, interview.activity over {INTERVIEWS} interviews, {where}")
    print(f"  load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  floor:   {floor.rate:8.0f} events/s  p50 {floor.p50_ms:6.1f} ms  p99 {floor.p99_ms:7.1f} ms")
    print(f"  product: {load.rate:8.0f} events/s  p50 {load.p50_ms:6.1f} ms  p99 {load.p99_ms:7.1f} ms")
    print(f"  applied: all {items} stored events, each once; the last applied {lag:.2f} s after the flood")
    print(f"  created: {created:8.0f} interviews/s (interview.started, {CREATE_AT_ONCE} at a time, until applied)")
    goals = {
        f"events/s >= {GOALS['events_per_s']:.0f}": load.rate >= GOALS["events_per_s"],
        f"p99 < {GOALS['p99_ms']:.0f} ms": load.p99_ms < GOALS["p99_ms"],
        f"product/floor {ratio:.2f} >= {GOALS['floor_ratio']}": ratio >= GOALS["floor_ratio"],
        f"created/s >= {GOALS['created_per_s']:.0f}": created >= GOALS["created_per_s"],
    }
    for goal, ok in goals.items():
        print(f"  {verdict(ok):6} {goal}")
    return 0 if all(goals.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument(
        "--pg-url", default=os.environ.get("BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench")
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("-c", type=int, default=50)
    parser.add_argument("--profile", metavar="FILE", help="sample the service with py-spy during the flood")
    parser.add_argument("--pool", type=int, default=120_000, help="distinct requests prepared per wrk run")
    args = parser.parse_args()
    sys.exit(asyncio.run(asyncio.wait_for(main_async(args), 900)))


if __name__ == "__main__":
    main()
