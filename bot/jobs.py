"""The scheduler's jobs: sweeps over due rows and the daily summary (all state lives in the database).

Every sweep is a plain coroutine taking the ``Core`` so tests call it directly after moving the
FrozenClock. The scheduler holds no per-interview jobs: memory does not grow with interviews and a
restart loses nothing.
"""

from __future__ import annotations

import logging

from bot.scheduler import Scheduler
from bot.services.context import Core
from bot.services.help_requests import sweep_help_requests
from bot.services.reminders import sweep_reminders
from bot.services.summary import send_daily_summary, summary_due_day
from bot.services.termination import sweep_terminations
from bot.services.timeouts import sweep_idle

log = logging.getLogger(__name__)

__all__ = [
    "register_jobs",
    "sweep_help_requests",
    "sweep_idle",
    "sweep_reminders",
    "sweep_summary",
    "sweep_terminations",
]


async def sweep_summary(core: Core) -> int:
    """Send today's summary if its time has passed and someone has not had it yet.

    The cron job sends it on time; this sweep catches up after a restart or a replica that was down
    at BOT_DAILY_SUMMARY_AT (two small queries when everyone has had it).
    """
    day = summary_due_day(core, core.clock.now())
    if day is None:
        return 0
    return len((await send_daily_summary(core, day=day)).sent)


def register_jobs(scheduler: Scheduler, core: Core) -> None:
    s = core.settings
    hour, minute = s.daily_summary_time

    async def reminders() -> None:
        await sweep_reminders(core)

    async def idle() -> None:
        await sweep_idle(core)

    async def summary() -> None:
        await sweep_summary(core)

    async def help_requests() -> None:
        await sweep_help_requests(core)

    async def terminations() -> None:
        await sweep_terminations(core)

    # Terminations a crash left half-done are resumed at start-up, then on every sweep.
    scheduler.every("sweep.terminations", s.sweep_interval_seconds, terminations, now=True)
    scheduler.every("sweep.reminders", s.sweep_interval_seconds, reminders)
    scheduler.every("sweep.idle", s.sweep_interval_seconds, idle)
    scheduler.every("sweep.help_requests", s.sweep_interval_seconds, help_requests)
    scheduler.every("sweep.summary", s.sweep_interval_seconds, summary)
    scheduler.cron("summary.daily", summary, hour=hour, minute=minute, misfire_grace_time=3600)
    log.info(
        "scheduled: sweeps every %ss, idle timeout %ss, daily summary at %s %s",
        s.sweep_interval_seconds,
        s.idle_timeout_seconds or "off",
        s.daily_summary_at,
        s.timezone,
    )
