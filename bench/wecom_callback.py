"""Benchmark: WeCom callback intake of the product against the floor (bench/floor.py), same core.

    python bench/wecom_callback.py [--db sqlite|pg] [--replicas 1|2] [--seconds 10] [-c 50]

What runs (127.0.0.1 only; everything stops by itself, hard limit 10 minutes):
- the floor server (``bench/floor.py``: verify + decrypt + parse + one SQLite insert) pinned to
  core 0 with ``taskset -c 0``, loaded by ``wrk`` (pinned to another core) for ``--seconds`` with
  ``-c`` connections, each request a distinct encrypted 进行中 from one registered HR;
- then the product (``python -m bot serve``, one or ``--replicas 2`` processes on one database, all
  on core 0), after a warm-up, under the same load; its replies go to a fake WeCom API in this
  process. The database is polled meanwhile (from this process, on another core).

Printed: floor req/s and p99; product ack req/s and p99 (measured while processing runs, with how
many commands were processed during the burst); commands processed end to end per second; the
backlog 5 s after the burst ends; and each ratio against its goal. Exit status 1 when a goal is
missed, 2 (and no numbers) when any answer was not an empty 200 or a reply is wrong or missing.

How processing is counted: a command is processed when its reply row is committed to the outbox
(``notice`` kind ``reply``, dedupe key ``reply:wecom:<MsgId>:0``) and its intake item (source
``wecom``) is marked done. The replies themselves are then paced by the outbox at 30/min per member
(WeCom's limit), so they are not what is counted. Every stored message must have exactly one
correct reply row, every intake item must be processed on its first try, and no process may log a reprocessed message
("already queued"), which with ``--replicas 2`` shows that each message was processed once.

End to end: messages stored / seconds from the burst's start until the last one is processed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.common import Broken, Load, cores, stop, verdict  # noqa: E402
from bench.wecom_common import HR, Counter, Service, prepare_database, spawn_service, wait_healthy  # noqa: E402
from tests.fakes.wecom_api import AES_KEY, CORP_ID, TOKEN, FakeWeCom, WeComSide, text_xml  # noqa: E402

HARD_LIMIT_SECONDS = 600
DRAIN_LIMIT_SECONDS = 180
GOALS = {"ack": 0.5, "ack_p99_ms": 50.0, "processed": 0.2}

LUA = r"""
-- one pre-built distinct request per call, from the file given after "--"; answers checked
local threads = {}
function setup(thread) table.insert(threads, thread) end
reqs = {}
idx = 0
non200 = 0
nonempty = 0
function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    reqs[#reqs + 1] = wrk.format("POST", line:sub(1, tab - 1), {["Content-Type"] = "text/xml"}, line:sub(tab + 1))
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then return wrk.format("GET", "/out-of-distinct-requests") end
  return reqs[idx]
end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
  if body ~= nil and #body > 0 then nonempty = nonempty + 1 end
end
function done(summary, latency, requests)
  local n2, ne, sent = 0, 0, 0
  for _, t in ipairs(threads) do
    n2 = n2 + t:get("non200"); ne = ne + t:get("nonempty"); sent = sent + t:get("idx")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"connect":%d,' ..
    '"read":%d,"write":%d,"status":%d,"timeout":%d,"non200":%d,"nonempty":%d,"sent":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, n2, ne, sent))
end
"""


def write_requests(path: Path, first_id: int, n: int) -> None:
    side = WeComSide()
    now = int(time.time())
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            query, body = side.app_post(text_xml(HR, "进行中", first_id + i), timestamp=now)
            out.write(f"{query}\t{body.decode()}\n")


async def wrk(urls: list[str], files: list[Path], connections: int, seconds: int, script: Path) -> Load:
    """One wrk per url (connections split between them), on the load cores; checked answers."""
    _, load_cores = cores()
    per = max(1, connections // len(urls))
    procs = [
        await asyncio.create_subprocess_exec(
            *("taskset", "-c", load_cores, "wrk", "-t1", f"-c{per}", f"-d{seconds}s", "--timeout", "5s"),
            *("-s", str(script), url, "--", str(file)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for url, file in zip(urls, files, strict=True)
    ]
    outs = [(await p.communicate())[0].decode() for p in procs]
    results = []
    for out in outs:
        line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
        if line is None:
            raise Broken(f"wrk printed no result:\n{out}")
        r = json.loads(line[len("WRKJSON ") :])
        # Checked first: once the pool is used up, wrk asks for a path that answers 404.
        if r["sent"] > sum(1 for _ in files[0].open(encoding="utf-8")):
            raise Broken(f"wrk ran out of distinct requests after {r['sent']}; raise --pool")
        errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout", "non200", "nonempty") if r[k]}
        if errors:
            raise Broken(f"answers other than an empty 200: {errors}\n{out}")
        results.append(r)
    return Load(
        requests=sum(r["requests"] for r in results),
        seconds=max(r["duration_us"] for r in results) / 1e6,
        p50_ms=max(r["p50_us"] for r in results) / 1000,
        p99_ms=max(r["p99_us"] for r in results) / 1000,  # the worse replica's p99
        sent=sum(r["sent"] for r in results),
    )


async def wait_listening(proc: asyncio.subprocess.Process) -> int:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line.startswith(b"listening "):
        raise Broken(f"floor did not start: {line!r}")
    return int(line.split()[1])


async def run_floor(tmp: Path, files: list[Path], args: argparse.Namespace, script: Path) -> Load:
    """``files[0]`` for the burst, ``files[1]`` for the warm-up (the product's paced and warm-up sets)."""
    server_core, _ = cores()
    env = {**os.environ, "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY, "WECOM_CORP_ID": CORP_ID}
    proc = await asyncio.create_subprocess_exec(
        *(
            "taskset",
            "-c",
            server_core,
            sys.executable,
            str(ROOT / "bench" / "floor.py"),
            "--db",
            str(tmp / "floor.db"),
        ),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        port = await wait_listening(proc)
        url = f"http://127.0.0.1:{port}"
        await wrk([url], files[1:2], args.c, 2, script)  # warm-up, on other messages
        load = await wrk([url], files[:1], args.c, args.seconds, script)
        async with aiohttp.ClientSession() as http, http.get(f"{url}/count") as resp:
            stored = (await resp.json())["stored"]
        if stored < load.requests:
            raise Broken(f"floor stored {stored} of {load.requests} acked callbacks")
        return load
    finally:
        await stop(proc)


# --- the product ------------------------------------------------------------------------


def database_url(args: argparse.Namespace, tmp: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp}/bot.db" if args.db == "sqlite" else args.pg_url


async def start_service(url: str, fake: FakeWeCom, tmp: Path, n: int, poll: str) -> Service:
    server_core, _ = cores()
    service = await spawn_service(url, fake, tmp, n, core=server_core, poll=poll, wrap=profiler(n))
    await wait_healthy(service)
    return service


PROFILE: list[str] = []


def profiler(n: int) -> list[str]:
    """py-spy in front of the first replica with --profile (collapsed stacks, for the note)."""
    if not PROFILE or n:
        return []
    return ["py-spy", "record", "-r", "250", "-f", "raw", "-o", PROFILE[0], "--"]


@dataclass
class Product:
    load: Load
    during: int  # processed while the burst ran
    stored: int
    backlog_5s: int
    end_to_end: float  # messages / seconds from the burst's start to the last one processed
    drained_after: float | None  # seconds after the burst's end


async def drain(counter: Counter, target: int, limit: float) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < limit:
        stored, done = await counter.counts()
        if done >= max(stored, target):
            return time.monotonic() - began
        await asyncio.sleep(0.1)
    return None


async def paced(urls: list[str], files: list[Path], rate: float, seconds: int) -> int:
    """Open-loop load: ``rate`` callbacks/s in all (spread over ``urls``) for ``seconds``, each answer
    checked; how many were sent."""
    lines = [f.read_text(encoding="utf-8").splitlines() for f in files]
    total = int(rate * seconds)
    if total > min(len(x) for x in lines) * len(urls):
        raise Broken("not enough distinct requests for the paced burst; raise --pool")
    bad: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

        async def one(n: int) -> None:
            query, body = lines[n % len(urls)][n // len(urls)].split("\t", 1)
            try:
                async with http.post(urls[n % len(urls)] + query, data=body.encode()) as resp:
                    answer = await resp.read()
                    if resp.status != 200 or answer:
                        bad.append(f"{resp.status} {answer[:60]!r}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                bad.append(repr(exc))

        began = time.monotonic()
        tasks = []
        for n in range(total):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    if bad:
        raise Broken(f"{len(bad)} answers other than an empty 200 in the paced burst: {bad[:3]}")
    return total


async def run_product(
    tmp: Path, files: list[Path], args: argparse.Namespace, script: Path, floor: Load
) -> tuple[Product, int, int, dict[str, int]]:
    """The saturating burst (Product), then a paced burst at the processing goal's rate: (sent,
    backlog 5 s after it); then every message checked."""
    url = database_url(args, tmp)
    await prepare_database(url)
    fake = FakeWeCom()
    await fake.start()
    counter = Counter(url)
    services = [await start_service(url, fake, tmp, n, args.outbox_poll) for n in range(args.replicas)]
    r = args.replicas
    burst_files, warm_files, paced_files = files[:r], files[r : 2 * r], files[2 * r : 3 * r]
    try:
        urls = [s.base for s in services]
        # Warm-up on other messages, then let them be processed.
        warm = await wrk(urls, warm_files, args.c, 2, script)
        if await drain(counter, warm.requests, DRAIN_LIMIT_SECONDS) is None:
            raise Broken("warm-up messages were not processed")
        stored0, done0 = await counter.counts()
        began = time.monotonic()
        load = await wrk(urls, burst_files, args.c, args.seconds, script)
        ended = time.monotonic()
        stored, done = await counter.counts()
        during = done - done0
        await asyncio.sleep(max(0.0, ended + 5 - time.monotonic()))
        stored5, done5 = await counter.counts()
        drained = await drain(counter, stored, DRAIN_LIMIT_SECONDS)
        if drained is None:
            raise Broken(f"stored messages were not all processed within {DRAIN_LIMIT_SECONDS} s")
        last = time.monotonic()
        stored_total = stored5 - stored0
        if stored_total < load.requests or stored_total > load.sent:
            raise Broken(f"{stored_total} messages stored for {load.requests} acks ({load.sent} sent)")
        product = Product(
            load=load,
            during=during,
            stored=stored_total,
            backlog_5s=stored5 - done5,
            end_to_end=stored_total / (last - began),
            drained_after=last - ended,
        )
        # A burst arriving at the processing goal's rate leaves nothing 5 s after it ends.
        sent = await paced(urls, paced_files, GOALS["processed"] * floor.rate, args.seconds)
        await asyncio.sleep(5)
        stored_p, done_p = await counter.counts()
        if stored_p != stored5 + sent:
            raise Broken(f"{stored_p - stored5} messages stored for {sent} paced callbacks")
        paced_backlog = stored_p - done_p
        if await drain(counter, stored_p, DRAIN_LIMIT_SECONDS) is None:
            raise Broken("paced messages were not all processed")
        checked = await counter.check([s.log for s in services])
        return product, sent, paced_backlog, checked
    finally:
        for service in services:
            await stop(service.proc)
            if args.keep_logs:
                shutil.copy(service.log, Path(args.keep_logs) / service.log.name)
        await counter.close()
        await fake.close()


async def main_async(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    server_core, load_cores = cores()
    if hasattr(os, "sched_setaffinity"):  # this process (fake WeCom API, polling) stays off the server's core
        os.sched_setaffinity(0, {int(c) for c in load_cores.split(",")})
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "distinct.lua"
        script.write_text(LUA, encoding="utf-8")
        files = []
        for n in range(3 * args.replicas):  # per replica: the burst, the warm-up, the paced burst
            path = tmp / f"requests-{n}.txt"
            write_requests(path, 1_000_000 * (n + 1), args.pool)
            files.append(path)
        floor = await run_floor(tmp, files[args.replicas :], args, script)
        product, sent, paced_backlog, checked = await run_product(tmp, files, args, script, floor)
    p, f = product, floor
    ack_ratio = p.load.rate / f.rate
    processed_ratio = p.end_to_end / f.rate
    where = f"{args.db}, {args.replicas} replica{'s' if args.replicas > 1 else ''}"
    out = [
        f"WeCom callbacks: distinct encrypted 进行中 from one HR, wrk -c{args.c}, {args.seconds} s ({where})",
        f"server on core {server_core}, load on core(s) {load_cores}; load average {os.getloadavg()[0]:.1f}",
        f"floor     {f.rate:7.0f} req/s  p50 {f.p50_ms:6.1f} ms  p99 {f.p99_ms:6.1f} ms  ({f.requests} requests)",
        f"product   {p.load.rate:7.0f} req/s  p50 {p.load.p50_ms:6.1f} ms  p99 {p.load.p99_ms:6.1f} ms"
        f"  ({p.load.requests} acks, while processing)",
        f"          processed during the burst: {p.during} of {p.stored}",
        f"          processed end to end: {p.end_to_end:.0f} commands/s"
        f" (the last {p.drained_after:.1f} s after the burst ended)",
        f"          backlog 5 s after the -c{args.c} burst: {p.backlog_5s}",
        f"          paced burst: {sent} callbacks in {args.seconds} s ({sent / args.seconds:.0f}/s"
        f" = {GOALS['processed']} x floor); backlog 5 s after it: {paced_backlog}",
        f"          checked: {checked['messages']} messages, one correct reply each; retried {checked['retried']}",
    ]
    print("\n".join(out))
    goals = [
        (f"ack throughput {ack_ratio:.2f} x floor (goal >= {GOALS['ack']})", ack_ratio >= GOALS["ack"]),
        (
            f"ack p99 {p.load.p99_ms:.1f} ms (goal < {GOALS['ack_p99_ms']:.0f} ms; floor's {f.p99_ms:.1f} ms,"
            f" {p.load.p99_ms / f.p99_ms:.2f} x)",
            p.load.p99_ms < GOALS["ack_p99_ms"],
        ),
        (
            f"processed end to end {processed_ratio:.2f} x floor (goal >= {GOALS['processed']})",
            processed_ratio >= GOALS["processed"],
        ),
        (f"backlog 5 s after a burst at {GOALS['processed']} x floor: {paced_backlog} (goal 0)", paced_backlog == 0),
    ]
    for line, ok in goals:
        print(f"  {verdict(ok):<6} {line}")
    return 0 if all(ok for _, ok in goals) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"),
        help="PostgreSQL database for --db pg (EMPTIED first); default $BOT_BENCH_PG_URL",
    )
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("-c", type=int, default=50, help="connections (default 50)")
    parser.add_argument("--pool", type=int, default=100_000, help="distinct requests prepared per wrk")
    parser.add_argument("--outbox-poll", default="2.0", help="BOT_OUTBOX_POLL_SECONDS of the service")
    parser.add_argument("--dir", default=None, help="folder for the SQLite files (default: system temp dir)")
    parser.add_argument("--keep-logs", default=None, help="copy the services' logs into this folder")
    parser.add_argument("--profile", default=None, help="py-spy the (first) service, collapsed stacks to this file")
    args = parser.parse_args()
    if args.profile:
        PROFILE.append(str(Path(args.profile).resolve()))
    if args.replicas > 1 and args.db != "pg":
        parser.error("--replicas 2 needs --db pg")
    sys.exit(asyncio.run(asyncio.wait_for(main_async(args), HARD_LIMIT_SECONDS)))


if __name__ == "__main__":
    main()
