"""What the benchmarks under bench/ share: the invalid-run exit, a wrk result, the cores to pin
the server and the load to, stopping a process, a free port, and how a goal is printed."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import sys
from dataclasses import dataclass


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
