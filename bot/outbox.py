"""The outbox worker: delivers notice rows with retries, backoff, pacing and a dead state.

Rows are claimed with a conditional update so several replicas never send one twice;
a row left 'sending' by a crashed process is reclaimed once its lock expires.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.context import Core
from storage import repo
from storage.models import Notice, NoticeStatus, Todo

log = logging.getLogger(__name__)

LOCK_SECONDS = 120


class SendError(Exception):
    """A delivery failed. ``retry_after`` lets a sender ask for a specific delay."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class Sender(Protocol):
    """Delivers notices of one channel. Returns the provider's message id, if any."""

    channel: str
    # At most ``rate[0]`` messages per ``rate[1]`` seconds to one destination; None for no limit.
    rate: tuple[int, float] | None

    async def send(self, notice: Notice) -> str | None: ...


class Pacer:
    """Sliding-window pacing per destination, in this process."""

    def __init__(self) -> None:
        self._sent: dict[str, deque[datetime]] = {}

    def wait_for(self, destination: str, rate: tuple[int, float] | None, now: datetime) -> float:
        if rate is None:
            return 0.0
        limit, window = rate
        times = self._sent.setdefault(destination, deque())
        while times and (now - times[0]).total_seconds() >= window:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return window - (now - times[0]).total_seconds()

    def record(self, destination: str, now: datetime) -> None:
        self._sent.setdefault(destination, deque()).append(now)


class Outbox:
    def __init__(self, core: Core, senders: Mapping[str, Sender] | None = None) -> None:
        self.core = core
        self.senders: dict[str, Sender] = dict(senders or {})
        self.pacer = Pacer()
        self._wake = asyncio.Event()

    def register(self, sender: Sender) -> None:
        self.senders[sender.channel] = sender

    def wake(self) -> None:
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        s = self.core.settings
        delay = min(s.outbox_max_delay_seconds, s.outbox_base_delay_seconds * 2 ** max(0, attempts - 1))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto

    async def run_once(self, limit: int = 50) -> int:
        """Deliver what is due now; returns how many were sent."""
        if not self.senders:
            return 0
        now = self.core.clock.now()
        async with self.core.sessions() as session:
            ids = await repo.due_notice_ids(session, now=now, channels=list(self.senders), limit=limit)
        sent = 0
        for notice_id in ids:
            sent += await self._deliver(notice_id)
        return sent

    async def deliver(self, notice_id: int) -> bool:
        """Deliver one notice now, beside the polling loop (which it cannot double-send with)."""
        return bool(await self._deliver(notice_id))

    async def run_forever(self, stop: asyncio.Event) -> None:
        poll = self.core.settings.outbox_poll_seconds
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox pass failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _, pending = await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    async def _deliver(self, notice_id: int) -> int:
        now = self.core.clock.now()
        async with self.core.sessions() as session:
            won = await repo.claim_notice(
                session, notice_id=notice_id, now=now, lock_until=now + timedelta(seconds=LOCK_SECONDS)
            )
            if not won:
                return 0
            notice = await session.get(Notice, notice_id)
            assert notice is not None
            sender = self.senders[notice.channel]
            wait = self.pacer.wait_for(notice.destination, sender.rate, now)
            if wait > 0:
                notice.status = NoticeStatus.pending.value
                notice.next_attempt_at = now + timedelta(seconds=wait)
                notice.locked_until = None
                await session.commit()
                return 0
            try:
                provider_id = await sender.send(notice)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
                await self._failed(session, notice, exc)
                return 0
            done = self.core.clock.now()
            self.pacer.record(notice.destination, done)
            notice.status = NoticeStatus.sent.value
            notice.sent_at = done
            notice.provider_id = provider_id
            notice.attempts += 1
            notice.locked_until = None
            notice.last_error = None
            await session.commit()
            log.info("notice %s sent by %s", notice_id, notice.channel)
            return 1

    async def _failed(self, session: AsyncSession, notice: Notice, exc: Exception) -> None:
        now = self.core.clock.now()
        notice.attempts += 1
        notice.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        notice.locked_until = None
        permanent = isinstance(exc, SendError) and exc.permanent
        if permanent or notice.attempts >= self.core.settings.outbox_max_attempts:
            notice.status = NoticeStatus.dead.value
            log.error("notice %s is dead after %d attempts: %s", notice.id, notice.attempts, notice.last_error)
            repo.audit(
                session,
                at=now,
                actor="system",
                action="notice.dead",
                interview_id=notice.interview_id,
                detail={"notice_id": notice.id, "channel": notice.channel, "error": notice.last_error},
            )
            await self._dead_letter_todo(session, notice, now)
        else:
            delay = exc.retry_after if isinstance(exc, SendError) and exc.retry_after else self.backoff(notice.attempts)
            notice.status = NoticeStatus.pending.value
            notice.next_attempt_at = now + timedelta(seconds=delay)
            log.warning("notice %s attempt %d failed, retry in %.1fs: %s", notice.id, notice.attempts, delay, exc)
        await session.commit()

    async def _dead_letter_todo(self, session: AsyncSession, notice: Notice, now: datetime) -> None:
        """A candidate notice nobody could deliver becomes an HR to-do instead of vanishing."""
        if notice.payload.get("audience") != "candidate" or notice.interview_id is None:
            return
        interview = await repo.get_interview_by_pk(session, interview_id=notice.interview_id)
        if interview is None or interview.hr_key is None:
            return
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        name = candidate.name if candidate else ""
        session.add(
            Todo(
                assignee=interview.hr_key,
                interview_id=interview.id,
                title=f"联系候选人{name}:通知未送达",
                created_at=now,
            )
        )
