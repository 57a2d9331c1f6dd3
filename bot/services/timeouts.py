"""Inactivity timeouts: an in-progress interview with no activity for BOT_IDLE_TIMEOUT_SECONDS is ended
by the one termination procedure (reason 超时未操作, operator system, source timeout).

With BOT_IDLE_WARNING_FRACTION the candidate is warned first, once per idle stretch: the warning's
dedupe key carries the last activity time, so replicas and repeated sweeps queue it once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.services import notices, termination
from bot.services.context import Core
from storage import repo
from storage.models import InterviewStatus, ReasonCode

log = logging.getLogger(__name__)

IDLE_REASON = ReasonCode.idle_timeout  # by code: its name 超时未操作 may be edited


async def sweep_idle(core: Core, *, limit: int = 200) -> int:
    """Warn and end idle interviews; returns how many were terminated by this call."""
    idle_limit = timedelta(seconds=core.settings.idle_timeout_seconds)
    if not idle_limit:
        return 0
    now = core.clock.now()
    if core.settings.idle_warning_fraction:
        await _warn(core, now, idle_limit)
    async with core.sessions() as session:
        idle = await repo.idle_interviews(session, active_before=now - idle_limit, limit=limit)
    ended = 0
    for interview in idle:
        if await _still_idle(core, interview.platform_id, idle_limit):
            ended += await _end(core, interview.platform_id)
    return ended


async def _still_idle(core: Core, platform_id: str, idle_limit: timedelta) -> bool:
    """Re-read just before ending it: activity may have arrived while earlier ones were being ended."""
    async with core.sessions() as session:
        interview = await repo.get_interview(session, platform_id=platform_id)
    return (
        interview is not None
        and interview.status == InterviewStatus.in_progress.value
        and interview.last_activity_at is not None
        and interview.last_activity_at < core.clock.now() - idle_limit
    )


async def _end(core: Core, platform_id: str) -> int:
    try:
        await termination.terminate(
            core, platform_id=platform_id, reason_text=IDLE_REASON, operator="system", source="timeout"
        )
    except (termination.AlreadyTerminated, termination.AlreadyCompleted, termination.TerminationInProgress) as exc:
        log.info("idle interview %s not ended by this replica: %s", platform_id, exc.code)
        return 0
    except termination.TerminationError as exc:  # the platform failed: the next sweep tries again
        log.warning("idle interview %s could not be ended: %s (%s)", platform_id, exc.code, exc.message)
        return 0
    return 1


async def _warn(core: Core, now: datetime, idle_limit: timedelta) -> None:
    warn_after = idle_limit * (core.settings.idle_warning_fraction or 0.0)
    async with core.sessions() as session:
        idle = await repo.idle_interviews(session, active_before=now - warn_after, active_since=now - idle_limit)
        keys = {
            i.id: f"idle_warning:{i.attempt_key}:{int(i.last_activity_at.timestamp())}"
            for i in idle
            if i.last_activity_at
        }
        done = await repo.existing_dedupe_keys(session, keys=list(keys.values()))
        queued = 0
        for interview in idle:
            key = keys.get(interview.id)
            if key is None or key in done or interview.last_activity_at is None:
                continue
            candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
            assert candidate is not None
            idle_for = now - interview.last_activity_at
            await notices.notify_candidate(
                session,
                core,
                kind="idle_warning",
                interview=interview,
                candidate=candidate,
                now=now,
                context={
                    "idle_minutes": max(1, int(idle_for.total_seconds() // 60)),
                    "remaining_minutes": max(1, round((idle_limit - idle_for).total_seconds() / 60)),
                },
                dedupe_key=key,
            )
            queued += 1
        if not queued:
            return
        try:
            await session.commit()
        except IntegrityError:  # another replica warned at the same moment; the rest go next sweep
            await session.rollback()
            return
    core.wake_outbox()
