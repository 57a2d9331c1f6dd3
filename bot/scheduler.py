"""One APScheduler wrapper, started and stopped with the app (PTB's JobQueue habit).

Due items live in the database; the scheduler only runs sweeps with explicit ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


class _Expected(logging.Filter):
    """Drop two APScheduler records: its traceback of a failed job (``Scheduler._on_error`` logs
    it once, by job id) and "skipped: maximum number of running instances" (a sweep still running
    when its next run is due is skipped by design; the next run picks up what is due)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and "maximum number of running instances" not in str(record.msg)


def _quiet_apscheduler() -> None:
    """No line per sweep run (APScheduler logs "Running job" and "executed successfully" at INFO);
    other warnings (a run missed by more than the grace time) and failures still reach the log."""
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Logger filters apply where a record is made, so on the loggers APScheduler really uses.
    for name in ("apscheduler.scheduler", "apscheduler.executors.default"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Expected) for f in logger.filters):
            logger.addFilter(_Expected())


# How long shutdown waits for a running sweep to finish before the loop cancels it.
SHUTDOWN_GRACE_SECONDS = 10.0


class Scheduler:
    def __init__(self, timezone: str, *, timed: Callable[[str, float], None] | None = None) -> None:
        """``timed(job_id, seconds)`` is told how long each run took (the sweep metrics)."""
        _quiet_apscheduler()
        self._timed = timed
        self._sched = AsyncIOScheduler(
            timezone=timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._sched.add_listener(self._on_error, EVENT_JOB_ERROR)
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @staticmethod
    def _on_error(event: JobExecutionEvent) -> None:
        log.error("scheduled job %s failed", event.job_id, exc_info=event.exception)

    def _tracked(self, job_id: str, func: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        """Run ``func`` as a task we can wait for at shutdown (APScheduler would cancel it mid-query)."""

        async def run() -> None:
            if self._stopping:
                return
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            started = time.perf_counter()
            try:
                await func()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                log.info("scheduled job %s cancelled at shutdown", job_id)
            finally:
                self._running.discard(task)
                if self._timed is not None:
                    self._timed(job_id, time.perf_counter() - started)

        return run

    def every(self, job_id: str, seconds: float, func: Callable[[], Awaitable[Any]], *, now: bool = False) -> None:
        """Run ``func`` every ``seconds``; with ``now`` also at once when the scheduler starts."""
        extra: dict[str, Any] = {"next_run_time": datetime.now(self._sched.timezone)} if now else {}
        self._sched.add_job(
            self._tracked(job_id, func),
            "interval",
            seconds=seconds,
            id=job_id,
            name=job_id,
            replace_existing=True,
            **extra,
        )

    def cron(self, job_id: str, func: Callable[[], Awaitable[Any]], **fields: Any) -> None:
        self._sched.add_job(
            self._tracked(job_id, func), "cron", id=job_id, name=job_id, replace_existing=True, **fields
        )

    def job_ids(self) -> list[str]:
        return [job.id for job in self._sched.get_jobs()]

    def start(self) -> None:
        self._sched.start()

    async def shutdown(self) -> None:
        """Stop starting jobs, let running ones finish (up to SHUTDOWN_GRACE), then stop the scheduler."""
        self._stopping = True
        if self._sched.running:
            self._sched.pause()
        if self._running:
            await asyncio.wait(set(self._running), timeout=SHUTDOWN_GRACE_SECONDS)
        if self._sched.running:
            self._sched.shutdown(wait=False)
