"""What the benchmarks under bench/ share: the invalid-run exit, a wrk result, the cores to pin
the server and the load to, stopping a process, a free port, and how a goal is printed."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class Broken(SystemExit):
    """A wrong answer or a failed check: no numbers, exit status 2."""

    def __init__(self, message: str) -> None:
        print(f"\n*** BENCHMARK INVALID: {message} ***\n", file=sys.stderr, flush=True)
        super().__init__(2)


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    sent: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@functools.cache
def cores() -> tuple[str, str]:
    """(the server's core, the load's cores)."""
    mine = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    rest = mine[1:] or mine
    return str(mine[0]), ",".join(map(str, rest))


def off_the_server_core() -> None:
    """Pin this process (a bench's own client and polling) to the load's cores, off the server's."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {int(core) for core in cores()[1].split(",")})


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Ctrl-C, then kill after 30 s."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


async def ensure_pg_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` when it does not exist yet (the bench's own)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from storage.db import create_engine

    target = make_url(url)
    engine = create_engine(target.set(database="postgres").render_as_string(hide_password=False))
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database})
            if not found:
                await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        await engine.dispose()


async def fresh_database(url: str) -> None:
    """An empty, migrated database: PostgreSQL's is created when missing and its public schema
    emptied; a SQLite file is migrated (the benches give a new one)."""
    from sqlalchemy import text

    from storage.db import create_engine, migrate

    if url.startswith("postgresql"):
        await ensure_pg_database(url)
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    await asyncio.to_thread(migrate, url)


async def serve(env: dict[str, str], *, core: str, log: Path, wrap: Sequence[str] = ()) -> asyncio.subprocess.Process:
    """``python -m bot serve`` pinned to ``core`` (behind ``wrap``, e.g. a profiler), in a temporary
    working directory, with ``env`` and its output in ``log``; started, not waited for."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *("taskset", "-c", core, *wrap, sys.executable, "-m", "bot", "serve"),
            env=env,
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
