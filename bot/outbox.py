"""The outbox worker: delivers notice rows with retries, backoff, pacing and a dead state.

Rows are claimed with a conditional update so several replicas never send one twice;
a row left 'sending' by a crashed process is reclaimed once its replica lease has expired (about
BOT_LEASE_SECONDS, ``storage.repo.claimer_gone``), or at the latest once its lock expires.

Candidate notices (payload["audience"] == "candidate") carry a channel plan (payload["plan"]):
when a channel fails permanently, runs out of attempts, or has no sender here, the notice
falls back to the next channel of its plan; only when none is left does it go dead. What
follows for people (the HR owner's to-do, a chat message) is not decided here: the services
inject a ``DeliveryPolicy`` when the app is built. Every try is a ``notice_attempt`` row, written and committed as
'started' *before* the provider is called. A reclaimed notice whose last attempt on its channel
is still 'started' was maybe delivered by the crashed process: that attempt becomes 'unknown'
and the notice is NOT resent on that channel — it falls back to the next channel instead
(a duplicate on another channel is better than silence; a second SMS or email of the same
notice is what idempotency forbids). The idempotency key ``notice-<id>-<channel>`` goes to
providers that accept one (Aliyun OutId, Tencent SessionContext, the email Message-ID).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.delivery import CANDIDATE_CHANNELS, Audience, SendProblem
from bot.logs import bind, log_context
from bot.metrics import Metrics
from bot.settings import Settings
from storage import repo
from storage.db import SessionMaker
from storage.models import AttemptResult, Notice, NoticeAttempt, NoticeStatus

log = logging.getLogger(__name__)

LOCK_SECONDS = 120
UNAVAILABLE_RECHECK = timedelta(minutes=5)


class SendError(Exception):
    """A delivery failed (an English message for operators). ``retry_after`` lets a sender ask for
    a specific delay; ``problem`` names a cause people can act on, and prefixes the stored error
    (``"window_closed: …"``) so that chat can show it in Chinese (``bot.delivery.problem_of``)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        problem: SendProblem | None = None,
    ) -> None:
        super().__init__(f"{problem.value}: {message}" if problem else message)
        self.permanent = permanent
        self.retry_after = retry_after
        self.problem = problem


def idem_key(notice: Notice) -> str:
    """The idempotency key of a notice on its current channel (the same for every retry there)."""
    return f"notice-{notice.id}-{notice.channel}"


def is_candidate_notice(notice: Notice) -> bool:
    return notice.payload.get("audience") == Audience.candidate


class OutboxDeps(Protocol):
    """What the worker needs of the application (``bot.services.context.Core`` has it)."""

    settings: Settings
    sessions: SessionMaker
    clock: Clock
    worker_id: str
    metrics: Metrics


class DeliveryPolicy(Protocol):
    """What happens for people when delivery fails, decided by the services (added to the
    caller's transaction, which the worker commits)."""

    async def dead(self, session: AsyncSession, notice: Notice, now: datetime) -> None:
        """``notice`` could not be delivered on any channel (it is already marked dead)."""
        ...

    async def cut_off(
        self, session: AsyncSession, notice: Notice, *, cut_off: str, moved_on: bool, now: datetime
    ) -> None:
        """A crash cut off a candidate notice's attempt on ``cut_off`` (maybe not delivered);
        ``moved_on``: it now goes by ``notice.channel``, else it is dead."""
        ...


class NoPolicy:
    """Nothing beyond the notice rows and their audit."""

    async def dead(self, session: AsyncSession, notice: Notice, now: datetime) -> None:
        return None

    async def cut_off(
        self, session: AsyncSession, notice: Notice, *, cut_off: str, moved_on: bool, now: datetime
    ) -> None:
        return None


class Sender(Protocol):
    """Delivers notices of one channel. Returns the provider's message id, if any."""

    channel: str
    # At most ``rate[0]`` messages per ``rate[1]`` seconds to one destination; None for no limit.
    rate: tuple[int, float] | None

    async def send(self, notice: Notice) -> str | None: ...


# Optional sender attributes (read with getattr): ``max_attempts`` (tries before giving up, instead
# of BOT_OUTBOX_MAX_ATTEMPTS), ``dedupe_seconds`` (the platform drops a repeat of a message sent
# within this window, so an attempt cut off by a crash may be resent within it), ``idempotent`` (the
# receiver drops any repeat by its idempotency key: an attempt cut off by a crash is always resent),
# ``in_order`` (a destination's rows go strictly one after another, by id: none is sent while an earlier
# one is pending, being sent or dead; see ``repo.due_notice_ids``) and ``ready()``
# (False while this process cannot send on the channel, e.g. over a long connection another replica
# holds: its rows are left to the process that can, with no attempt recorded).


def sender_ready(sender: Sender) -> bool:
    ready = getattr(sender, "ready", None)
    return bool(ready()) if callable(ready) else True


class Outbox:
    def __init__(
        self,
        core: OutboxDeps,
        senders: Mapping[str, Sender] | None = None,
        *,
        policy: DeliveryPolicy | None = None,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.core = core
        self.policy: DeliveryPolicy = policy or NoPolicy()
        self.senders: dict[str, Sender] = dict(senders or {})
        # Pacing is shared by replicas through the database (``repo.take_pace_slot``); this lock
        # makes this process's own tasks take turns on SQLite, where no row lock does it.
        self._pacing = asyncio.Lock()
        # Set by ``wake`` and by whoever was handed the event before the worker existed (Core.wake_outbox).
        self._wake = wake or asyncio.Event()

    def register(self, sender: Sender) -> None:
        self.senders[sender.channel] = sender

    @property
    def in_order(self) -> list[str]:
        """Channels whose rows go strictly in order per destination (sender attribute ``in_order``)."""
        return [channel for channel, sender in self.senders.items() if getattr(sender, "in_order", False)]

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
        await self._reroute_unavailable(now, limit)
        async with self.core.sessions() as session:
            ready = [channel for channel, sender in self.senders.items() if sender_ready(sender)]
            due = (
                await repo.due_notices(
                    session, now=now, channels=ready, limit=limit, worker=self.core.worker_id, in_order=self.in_order
                )
                if ready
                else []
            )
        sent = 0
        deferred: set[tuple[str, str]] = set()  # destinations out of pace slots: their rows now wait
        for notice_id, channel, destination in due:
            if (channel, destination) not in deferred:
                sent += await self._deliver(notice_id, deferred)
        return sent

    async def _reroute_unavailable(self, now: datetime, limit: int) -> None:
        """Candidate notices due on a channel this process has no sender for (e.g. SMS switched off
        since they were queued) move on to the next channel of their plan that it has. With none,
        they wait for the channel to be configured (as email notices always did) and are looked
        at again after UNAVAILABLE_RECHECK."""
        missing = [c for c in CANDIDATE_CHANNELS if c not in self.senders]
        if not missing:
            return
        async with self.core.sessions() as session:
            ids = await repo.due_notice_ids(session, now=now, channels=missing, limit=limit)
        for notice_id in ids:
            async with self.core.sessions() as session:
                lock = now + timedelta(seconds=LOCK_SECONDS)
                if not await repo.claim_notice_and_commit(session, notice_id=notice_id, now=now, lock_until=lock):
                    continue
                notice = await session.get(Notice, notice_id)
                assert notice is not None
                notice.last_error = f"{notice.channel}: channel not enabled"
                if not is_candidate_notice(notice) or not await self._fall_back(session, notice, now):
                    notice.status = NoticeStatus.pending.value
                    notice.locked_until = None
                    notice.next_attempt_at = now + UNAVAILABLE_RECHECK
                await session.commit()

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

    async def _deliver(self, notice_id: int, deferred: set[tuple[str, str]] | None = None) -> int:
        with log_context(notice_id=notice_id):
            return await self._deliver_row(notice_id, set() if deferred is None else deferred)

    async def _deliver_row(self, notice_id: int, deferred: set[tuple[str, str]]) -> int:
        """Send one notice if it is still due: 1 when sent. A destination out of pace slots is
        added to ``deferred`` (its other rows were put off with it)."""
        now = self.core.clock.now()
        async with self.core.sessions() as session:
            won = await repo.claim_notice_and_commit(
                session,
                notice_id=notice_id,
                now=now,
                lock_until=now + timedelta(seconds=LOCK_SECONDS),
                worker=self.core.worker_id,
                in_order=self.in_order,
            )
            if not won:
                return 0
            notice = await session.get(Notice, notice_id)
            assert notice is not None
            bind(interview_row=notice.interview_id)
            sender = self.senders[notice.channel]
            attempt: NoticeAttempt | None = None
            last = await repo.last_attempt(session, notice_id=notice_id, channel=notice.channel)
            if last is not None and last.result == AttemptResult.started.value:
                if not await self._after_crash(session, notice, last, sender, now):
                    return 0
            async with self._pacing if sender.rate is not None else contextlib.nullcontext():
                wait = await self._take_pace_slot(session, notice, sender, now)
                if wait > 0:
                    notice.status = NoticeStatus.pending.value
                    notice.next_attempt_at = now + timedelta(seconds=wait)
                    notice.locked_until = None
                    # The destination's other rows due before then wait as long, instead of each
                    # being claimed and put back again by every pass until then.
                    await repo.defer_destination(
                        session, channel=notice.channel, destination=notice.destination, until=notice.next_attempt_at
                    )
                    await session.commit()
                    deferred.add((notice.channel, notice.destination))
                    return 0
                attempt = NoticeAttempt(
                    notice_id=notice_id,
                    channel=notice.channel,
                    seq=(last.seq + 1) if last else 1,
                    recipient=notice.recipient,
                    idem_key=idem_key(notice),
                    started_at=now,
                )
                session.add(attempt)
                # The unique (notice, channel, seq) attempt row and the pace mark exist before the
                # provider call, and no connection is held while the call runs.
                await session.commit()
            try:
                provider_id = await sender.send(notice)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
                await self._failed(session, notice, exc, attempt)
                return 0
            done = self.core.clock.now()
            notice.status = NoticeStatus.sent.value
            notice.sent_at = done
            notice.provider_id = provider_id
            notice.attempts += 1
            notice.locked_until = None
            notice.last_error = None
            if attempt is not None:
                attempt.result = AttemptResult.sent.value
                attempt.provider_id = provider_id
                attempt.finished_at = done
            await session.commit()
            self.core.metrics.attempt(notice.channel, AttemptResult.sent)  # counted once it is recorded
            log.info("notice %s sent by %s", notice_id, notice.channel)
            return 1

    async def _take_pace_slot(self, session: AsyncSession, notice: Notice, sender: Sender, now: datetime) -> float:
        """0.0 when the destination may get this send now (its pace mark is added to the session),
        else how long to wait. Counted across replicas in the database."""
        if sender.rate is None:
            return 0.0
        limit, window = sender.rate
        return await repo.take_pace_slot(session, destination=notice.destination, limit=limit, window=window, now=now)

    async def _after_crash(
        self, session: AsyncSession, notice: Notice, last: NoticeAttempt, sender: Sender, now: datetime
    ) -> bool:
        """The last attempt on this channel was cut off by a crash: maybe delivered. True when it is
        safe to send again (the platform drops a repeat within its dedupe window, or the receiver
        drops any repeat by its idempotency key)."""
        if getattr(sender, "idempotent", False):
            last.result = AttemptResult.cut_off.value
            last.error = (
                "the process stopped while sending; resent (the receiver drops a repeat by its idempotency key)"
            )
            last.finished_at = now
            log.warning("notice %s: attempt cut off by a crash, resent with the same idempotency key", notice.id)
            return True
        window = getattr(sender, "dedupe_seconds", None)
        if window and not is_candidate_notice(notice) and now - last.started_at < timedelta(seconds=window * 0.9):
            last.result = AttemptResult.unknown.value
            last.error = "the process stopped while sending; resent once (the platform drops duplicates)"
            last.finished_at = now
            log.warning("notice %s: attempt cut off by a crash, resent within the platform's dedupe window", notice.id)
            return True
        await self._unknown_outcome(session, notice, last, now)
        return False

    async def _unknown_outcome(self, session: AsyncSession, notice: Notice, last: NoticeAttempt, now: datetime) -> None:
        """A crash left this channel's attempt 'started': maybe sent, so never resend it here."""
        last.result = AttemptResult.unknown.value
        last.error = "the process stopped while sending; delivery unknown, not resent on this channel"
        last.finished_at = now
        notice.locked_until = None
        notice.last_error = f"{notice.channel}: {last.error}"
        log.warning("notice %s: attempt on %s has an unknown outcome, not resending there", notice.id, notice.channel)
        cut_off = notice.channel
        moved_on = await self._fall_back(session, notice, now)
        if not moved_on:
            await self._dead(session, notice, now)
        if is_candidate_notice(notice):
            await self.policy.cut_off(session, notice, cut_off=cut_off, moved_on=moved_on, now=now)
        await session.commit()
        self.core.metrics.attempt(cut_off, AttemptResult.unknown)

    def _next_in_plan(self, notice: Notice) -> tuple[str, str] | None:
        plan = [(str(c), str(r)) for c, r in notice.payload.get("plan") or []]
        channels = [c for c, _ in plan]
        start = channels.index(notice.channel) + 1 if notice.channel in channels else len(plan)
        for channel, recipient in plan[start:]:
            if channel in self.senders:
                return channel, recipient
        return None

    async def _fall_back(self, session: AsyncSession, notice: Notice, now: datetime) -> bool:
        """Move a candidate notice to the next channel of its plan; False when none is left."""
        if not is_candidate_notice(notice):
            return False
        nxt = self._next_in_plan(notice)
        if nxt is None:
            return False
        previous = notice.channel
        notice.channel, notice.recipient = nxt
        notice.destination = f"{notice.channel}:{notice.recipient}"
        notice.attempts = 0
        notice.status = NoticeStatus.pending.value
        notice.next_attempt_at = now
        notice.locked_until = None
        repo.audit(
            session,
            at=now,
            actor="system",
            action="notice.fallback",
            interview_id=notice.interview_id,
            detail={"notice_id": notice.id, "from": previous, "to": notice.channel, "error": notice.last_error},
        )
        log.warning("notice %s falls back from %s to %s: %s", notice.id, previous, notice.channel, notice.last_error)
        return True

    async def _failed(
        self, session: AsyncSession, notice: Notice, exc: Exception, attempt: NoticeAttempt | None = None
    ) -> None:
        now = self.core.clock.now()
        notice.attempts += 1
        notice.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        notice.locked_until = None
        permanent = isinstance(exc, SendError) and exc.permanent
        sender = self.senders.get(notice.channel)
        max_attempts = getattr(sender, "max_attempts", None) or self.core.settings.outbox_max_attempts
        gives_up = permanent or notice.attempts >= max_attempts
        tried_on = notice.channel  # before a fallback moves it
        if attempt is not None:
            attempt.result = (AttemptResult.rejected if gives_up else AttemptResult.failed).value
            attempt.error = notice.last_error
            attempt.finished_at = now
        if gives_up:
            if not await self._fall_back(session, notice, now):
                await self._dead(session, notice, now)
        else:
            delay = exc.retry_after if isinstance(exc, SendError) and exc.retry_after else self.backoff(notice.attempts)
            notice.status = NoticeStatus.pending.value
            notice.next_attempt_at = now + timedelta(seconds=delay)
            log.warning("notice %s attempt %d failed, retry in %.1fs: %s", notice.id, notice.attempts, delay, exc)
        await session.commit()
        self.core.metrics.attempt(tried_on, AttemptResult.rejected if gives_up else AttemptResult.failed)

    async def _dead(self, session: AsyncSession, notice: Notice, now: datetime) -> None:
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
        await self.policy.dead(session, notice, now)
