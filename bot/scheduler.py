"""One APScheduler wrapper, started and stopped with the app (PTB's JobQueue habit).

Due items live in the database; the scheduler only runs sweeps with explicit ids.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, timezone: str) -> None:
        self._sched = AsyncIOScheduler(
            timezone=timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._sched.add_listener(self._on_error, EVENT_JOB_ERROR)

    @staticmethod
    def _on_error(event: JobExecutionEvent) -> None:
        log.error("scheduled job %s failed", event.job_id, exc_info=event.exception)

    def every(self, job_id: str, seconds: float, func: Callable[[], Awaitable[Any]]) -> None:
        self._sched.add_job(func, "interval", seconds=seconds, id=job_id, replace_existing=True)

    def cron(self, job_id: str, func: Callable[[], Awaitable[Any]], **fields: Any) -> None:
        self._sched.add_job(func, "cron", id=job_id, replace_existing=True, **fields)

    def job_ids(self) -> list[str]:
        return [job.id for job in self._sched.get_jobs()]

    def start(self) -> None:
        self._sched.start()

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)
