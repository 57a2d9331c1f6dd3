"""Benchmark (issue 23): two replicas on one PostgreSQL drain a stored backlog of chat commands.

    python bench/replica_drain.py [--messages 20000] [--senders 50] [--pg-url ...]

What runs (127.0.0.1 only; the database is EMPTIED first; everything stops by itself):
- the database is prepared as ``bench/wecom_callback.py`` does, with ``--senders`` registered HRs,
  each with three interviews in progress;
- while no service runs, a backlog of ``--messages`` 进行中 commands is stored: each callback's XML
  parsed by the product's parser (``parse_app_xml``) into the product's intake item (``chat_item``),
  spread over the HRs (``--spread``: at random, seeded, or round robin), inserted received with
  ``repo.insert_intake_items`` in chunks;
- run A: ONE replica (``python -m bot serve`` pinned to core 0) drains it; run B (schema reset, the
  same backlog stored again): TWO replicas (``bench-0`` on core 0, ``bench-1`` on core 1), started
  together. The replies go to a fake WeCom API in this process (paced 30/min per member).

Timing: from the moment every replica answers ``/healthz`` until no ``wecom`` item is received or
processing; the rate counts only the messages processed in that span (those done before healthy are
subtracted, in both runs alike). Each run is then checked: every message has exactly one correct reply
row to its sender, every item is done on its first try, and no log says a reply was already queued or
a claim was taken over.

Printed: messages/s for one and two replicas, their ratio, the load average, and the verdict (goal
>= 1.5). Also what limits it: CPU used by each replica and by PostgreSQL's backends of this database
(/proc utime+stime, as a share of one core), what the active backends waited for (pg_stat_activity
samples; ``Lock:advisory`` is the claim's ``_CLAIM_LOCK``, which serializes the claims), and how many
items each replica processed. Exit 1 when the goal is missed, 2 (no ratio) when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import make_url, text  # noqa: E402

from bench.common import Broken, off_the_server_core, stop, verdict  # noqa: E402
from bench.wecom_common import Counter, Service, hr_ids, prepare_database, spawn_service, wait_healthy  # noqa: E402
from tests.fakes.wecom_api import FakeWeCom, text_xml  # noqa: E402

HARD_LIMIT_SECONDS = 1800
DRAIN_LIMIT_SECONDS = 600
GOAL = 1.5
CHUNK = 1000
POLL = 0.25
CORES = ("0", "1")


def backlog(messages: int, senders: int, spread: str) -> list[dict[str, Any]]:
    """The stored form of ``messages`` 进行中 callbacks over ``senders`` HRs, built by the product's
    parser and ``chat_item`` as ``/wecom/callback`` builds them."""
    from bot.channels.wecom.chat import chat_item
    from bot.channels.wecom.parse import parse_app_xml

    hrs = hr_ids(senders)
    rng = random.Random(23)
    items = []
    for i in range(messages):
        hr = hrs[rng.randrange(senders)] if spread == "random" else hrs[i % senders]
        envelope = parse_app_xml(text_xml(hr, "进行中", 1_000_000 + i))
        if envelope is None:
            raise Broken("the product's parser ignored a 进行中 callback")
        item = chat_item(envelope, source="app")
        items.append(item.values())
    return items


async def store(url: str, items: list[dict[str, Any]]) -> None:
    from storage import repo
    from storage.db import create_engine, session_maker

    engine = create_engine(url)
    try:
        stored = 0
        async with session_maker(engine)() as session:
            for start in range(0, len(items), CHUNK):
                chunk = items[start : start + CHUNK]
                new = await repo.insert_intake_items(session, source="wecom", items=chunk, now=datetime.now(UTC))
                await session.commit()
                stored += len(new)
        async with engine.connect() as conn:
            counted = (
                await conn.execute(
                    text("SELECT count(*) FROM intake_item WHERE source = 'wecom' AND status = 'received'")
                )
            ).scalar_one()
        if stored != len(items) or counted != len(items):
            raise Broken(f"{stored} new and {counted} stored of {len(items)} backlog items")
    finally:
        await engine.dispose()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all cores of this machine spent on anything but idle and I/O wait (/proc/stat)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (by its process title)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


@dataclass
class Run:
    replicas: int
    startup: float  # spawn until every replica answered /healthz
    done_before: int  # processed before that
    seconds: float  # healthy until drained
    processed: int  # processed in that span
    cpu: list[float]  # per replica, core-seconds in that span
    pg_cpu: float
    bench_cpu: float = 0.0  # this process: polling, the fake WeCom API
    machine: float = 0.0  # every process of the machine
    waits: Tally[str] = field(default_factory=Tally)
    samples: int = 0
    per_replica: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.processed / self.seconds


async def sample(counter: Counter, run: Run) -> int:
    """One poll: the open items (received or processing); what this database's active backends wait for."""
    async with counter.engine.connect() as conn:
        open_items = (
            await conn.execute(
                text("SELECT count(*) FROM intake_item WHERE source = 'wecom' AND status IN ('received', 'processing')")
            )
        ).scalar_one()
        waits = (
            await conn.execute(
                text(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity"
                    " WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"
                )
            )
        ).scalars()
    run.waits.update(str(w) for w in waits)
    run.samples += 1
    return int(open_items)


async def drain_run(url: str, items: list[dict[str, Any]], replicas: int, tmp: Path, args: argparse.Namespace) -> Run:
    await prepare_database(url, hr_ids(args.senders))
    await store(url, items)
    database = make_url(url).database or ""
    fake = FakeWeCom()
    await fake.start()
    counter = Counter(url)
    services: list[Service] = []
    try:
        began = time.monotonic()
        for n in range(replicas):
            services.append(await spawn_service(url, fake, tmp, n, core=CORES[n], poll=args.outbox_poll))
        await asyncio.gather(*(wait_healthy(s) for s in services))
        ready = time.monotonic()
        _, done_before = await counter.counts()
        cpu0 = [cpu_seconds(s.proc.pid) for s in services]
        pg0 = postgres_cpu(database)
        bench0, machine0 = cpu_seconds(os.getpid()), machine_busy()
        run = Run(replicas, ready - began, done_before, 0.0, 0, [], 0.0)
        while await sample(counter, run):
            if time.monotonic() - ready > DRAIN_LIMIT_SECONDS:
                raise Broken(f"the backlog was not drained within {DRAIN_LIMIT_SECONDS} s")
            await asyncio.sleep(POLL)
        run.seconds = time.monotonic() - ready
        run.cpu = [cpu_seconds(s.proc.pid) - c for s, c in zip(services, cpu0, strict=True)]
        run.pg_cpu = sum(c - pg0.get(pid, 0.0) for pid, c in postgres_cpu(database).items())
        run.bench_cpu, run.machine = cpu_seconds(os.getpid()) - bench0, machine_busy() - machine0
        stored, done = await counter.counts()
        run.processed = done - done_before
        if done != stored or stored != len(items):
            raise Broken(f"{done} of {stored} items done ({len(items)} in the backlog)")
        if run.processed < len(items) // 2:
            raise Broken(f"{done_before} items were done before every replica was healthy; raise --messages")
        async with counter.engine.connect() as conn:
            by = "split_part(claimed_by, '/', 1)"
            rows = await conn.execute(text(f"SELECT {by}, count(*) FROM intake_item WHERE source = 'wecom' GROUP BY 1"))
            run.per_replica = {str(who): int(n) for who, n in rows}
    finally:
        for service in services:
            await stop(service.proc)
            if args.keep_logs:
                shutil.copy(service.log, Path(args.keep_logs) / f"{replicas}-{service.log.name}")
    try:
        checked = await counter.check([s.log for s in services])
    finally:
        await counter.close()
        await fake.close()
    if checked["retried"]:
        raise Broken(f"{checked['retried']} items were not done on their first try")
    return run


def describe(run: Run) -> list[str]:
    cpu = " + ".join(f"{c / run.seconds:.2f}" for c in run.cpu)
    waits = ", ".join(f"{w} {n / run.samples:.2f}" for w, n in run.waits.most_common(6)) or "none"
    ours = sum(run.cpu) + run.pg_cpu + run.bench_cpu
    return [
        f"{run.replicas} replica{'s' if run.replicas > 1 else ' '}  {run.rate:7.0f} messages/s"
        f"  ({run.processed} in {run.seconds:.1f} s after healthy; start-up {run.startup:.1f} s,"
        f" {run.done_before} done before healthy)",
        f"    CPU in cores: replica{'s' if run.replicas > 1 else ''} {cpu}, PostgreSQL backends"
        f" {run.pg_cpu / run.seconds:.2f}, this bench {run.bench_cpu / run.seconds:.2f}, other processes"
        f" {(run.machine - ours) / run.seconds:.2f}; machine busy {run.machine / run.seconds:.2f} of {os.cpu_count()}",
        f"    CPU per message: replica{'s' if run.replicas > 1 else ''} {sum(run.cpu) / run.processed * 1000:.2f} ms,"
        f" PostgreSQL {run.pg_cpu / run.processed * 1000:.2f} ms",
        f"    active backends per sample ({run.samples} samples): {waits}",
        "    processed by: " + ", ".join(f"{who} {n}" for who, n in sorted(run.per_replica.items())),
    ]


async def main_async(args: argparse.Namespace) -> int:
    url = args.pg_url
    if not url.startswith("postgresql"):
        raise SystemExit("--pg-url must be a PostgreSQL URL")
    off_the_server_core()  # this process (fake WeCom, polling) stays off replica A's core
    began = time.monotonic()
    items = backlog(args.messages, args.senders, args.spread)
    print(f"built {len(items)} backlog items in {time.monotonic() - began:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        one = await drain_run(url, items, 1, tmp, args)
        print("\n".join(describe(one)), flush=True)
        two = await drain_run(url, items, 2, tmp, args)
        print("\n".join(describe(two)), flush=True)
    ratio = two.rate / one.rate
    print(
        f"backlog: {args.messages} 进行中 from {args.senders} HRs ({args.spread}), PostgreSQL;"
        f" replica A on core {CORES[0]}, B on core {CORES[1]}; {os.cpu_count()} cores on this machine,"
        f" shared by the replicas, PostgreSQL and this bench; load average {os.getloadavg()[0]:.1f}"
    )
    print("checked: every message one correct reply, done on its first try, in both runs")
    ok = ratio >= GOAL
    print(f"  {verdict(ok):<6} two replicas drain {ratio:.2f} x as fast as one (goal >= {GOAL})")
    if not ok:
        advisory = two.waits.get("Lock:advisory", 0) / max(1, two.samples)
        print(
            f"  limit: with two replicas the machine was busy {two.machine / two.seconds:.2f} of {os.cpu_count()}"
            f" cores, {(sum(two.cpu) + two.pg_cpu) / two.seconds:.2f} of them the replicas and PostgreSQL (one replica:"
            f" {(sum(one.cpu) + one.pg_cpu) / one.seconds:.2f}); backends waiting on the claim lock"
            f" (_CLAIM_LOCK) per sample: {advisory:.2f}"
        )
        # What CPU alone allows on this machine were it otherwise idle: a replica has its one core,
        # and the replicas, PostgreSQL and this bench share all of them.
        cores = os.cpu_count() or 1
        replica, shared = sum(one.cpu) / one.processed, (sum(one.cpu) + one.pg_cpu + one.bench_cpu) / one.processed
        ceiling = min(2 / replica, cores / shared) / min(1 / replica, cores / shared)
        print(
            f"  CPU ceiling: at run A's CPU per message, an otherwise idle {cores}-core machine allows at most"
            f" {ceiling:.2f} x"
        )
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--senders", type=int, default=50, help="registered HRs the backlog is spread over")
    parser.add_argument("--spread", choices=("random", "round-robin"), default="random")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BOT_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_drain"),
        help="PostgreSQL database (EMPTIED first); default $BOT_BENCH_PG_URL or bench_drain",
    )
    parser.add_argument("--outbox-poll", default="2.0", help="BOT_OUTBOX_POLL_SECONDS of the services")
    parser.add_argument("--keep-logs", default=None, help="copy the services' logs into this folder")
    args = parser.parse_args()
    sys.exit(asyncio.run(asyncio.wait_for(main_async(args), HARD_LIMIT_SECONDS)))


if __name__ == "__main__":
    main()
