"""The platform-events path of the intake: stored at once, answered, applied in batches.

``POST /api/platform/events`` (``bot/api/platform.py``) verifies, bounds and validates an event,
then ``PlatformIntake.store`` commits it as an ``intake_item`` (source ``platform``, key its
``event_id``, ordered by its interview): callbacks arriving together share one INSERT and one
commit (group commit), and a redelivery of a stored event id is found by the same statement
(``ON CONFLICT DO NOTHING``) and answered as a duplicate. The answer goes out as soon as that
commit returns: nothing accepted is lost on kill -9.

One worker per process applies what is stored (its own and, by the sweep, what a crash or another
replica left): it claims a batch in arrival order (``repo.claim_intake_and_commit``: the items of
one interview one worker at a time, in order), applies it with ``events.apply_events`` and marks
the items done in the same transaction, so a batch is applied exactly once or not at all. A batch
that fails is applied again one event at a time; an event that fails on its own is tried again
with backoff, ``MAX_ATTEMPTS`` times in all, then left failed with its error.

Backpressure: while the stored-but-unapplied backlog is above ``BOT_EVENT_BACKLOG_LIMIT`` (or the
store itself cannot answer within ``STORE_TIMEOUT``) the platform gets a prompt 503 with
``Retry-After`` instead of an answer that comes after its own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.services import help_requests
from bot.services.claims import CLAIM_FOR
from bot.services.context import Core
from bot.services.events import EventType, PlatformEventIn, apply_events, stored_event
from storage import repo
from storage.models import IntakeItem

log = logging.getLogger(__name__)

SOURCE = "platform"
# Events stored in one transaction at most (one INSERT; SQLite's bound parameters stay far below its limit).
STORE_BATCH = 500
# Events claimed at once, at most; applied in transactions of at most APPLY_BATCH heartbeats ...
APPLY_BATCH = 400
# ... or FULL_PER_TRANSACTION other events (each a few statements with the interview locked): a
# long transaction holds SQLite's one write lock, and events being stored wait for it.
FULL_PER_TRANSACTION = 25
# How often the worker looks for items nobody woke it for (left by a crash, another replica, a retry).
SWEEP_SECONDS = 1.0
# An event that fails on its own is tried this many times, with backoff, before it is left failed.
MAX_ATTEMPTS = 6
RETRY_BASE = timedelta(seconds=2)
RETRY_MAX = timedelta(minutes=5)
# The longest a platform waits for its answer: past it, 503 (the event may still be stored; a
# redelivery is then answered as a duplicate).
STORE_TIMEOUT = 5.0
# Seconds a refused platform is asked to wait (Retry-After).
RETRY_AFTER_SECONDS = 2


class Busy(Exception):
    """The intake cannot take the event now (backlog above its bound, or storing too slow)."""


@dataclass
class _Pending:
    event: PlatformEventIn
    payload: dict[str, Any]  # as received (validated into ``event``)
    done: asyncio.Future[bool]


def gone_owners(core: Core) -> list[str]:
    """Claims known to belong to processes that are gone, taken over at once: every earlier boot
    of this instance (``<instance>/``; this process has claimed nothing yet when it asks). Claims
    of other instances are taken when they expire (``CLAIM_FOR``)."""
    return [f"{core.instance}/"]


def retry_delay(attempts: int) -> timedelta:
    return min(RETRY_BASE * (2 ** max(0, attempts - 1)), RETRY_MAX)


def _chunks(parsed: list[tuple[IntakeItem, PlatformEventIn]]) -> list[list[tuple[IntakeItem, PlatformEventIn]]]:
    """Consecutive runs (arrival order kept) of at most ``FULL_PER_TRANSACTION`` events that are
    not heartbeats."""
    chunks: list[list[tuple[IntakeItem, PlatformEventIn]]] = [[]]
    full = 0
    for pair in parsed:
        heavy = pair[1].type is not EventType.activity
        if heavy and full == FULL_PER_TRANSACTION:
            chunks.append([])
            full = 0
        chunks[-1].append(pair)
        full += heavy
    return chunks


class PlatformIntake:
    def __init__(self, core: Core, background: set[asyncio.Task[None]]) -> None:
        self.core = core
        self._background = background
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False
        self._counted = 0  # backlog at the worker's last count
        self._stored_since = 0  # items stored here since that count
        self._idle = asyncio.Event()  # set while the worker has nothing to do

    # --- taking events in ---------------------------------------------------------------

    def busy(self) -> bool:
        """Whether the backlog (estimated: the last count plus what was stored since) is at its bound."""
        return self._counted + self._stored_since + self._queue.qsize() >= self.core.settings.event_backlog_limit

    async def store(self, event: PlatformEventIn, payload: dict[str, Any]) -> bool:
        """Store ``event`` (``payload``: its JSON as received) and return once committed: True if
        new, False for a duplicate. ``Busy`` when the backlog is at its bound or storing takes
        longer than ``STORE_TIMEOUT``."""
        if self.busy():
            raise Busy("backlog above its bound")
        writer = self._writer
        if writer is None or writer.done():
            raise Busy("not taking events")
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(event, payload, done))
        try:
            return await asyncio.wait_for(asyncio.shield(done), STORE_TIMEOUT)
        except TimeoutError:
            raise Busy("storing took too long") from None

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < STORE_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                new = await self._write(batch)
            except asyncio.CancelledError:
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(Busy("shutting down"))
                raise
            except Exception as exc:
                log.exception("storing %d platform events failed", len(batch))
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(Busy(f"storing failed: {type(exc).__name__}"))
                continue
            self._stored_since += len(new)
            answered: set[str] = set()
            for item in batch:
                key = item.event.event_id
                first = key in new and key not in answered  # the same event twice in one batch: once new
                answered.add(key)
                if not item.done.done():
                    item.done.set_result(first)
            if new:
                self._wake.set()

    async def _write(self, batch: list[_Pending]) -> set[str]:
        items: dict[str, dict[str, Any]] = {}
        for pending in batch:
            event = pending.event
            items.setdefault(
                event.event_id,
                {"key": event.event_id, "order_key": event.interview.id, "payload": pending.payload},
            )
        async with self.core.sessions() as session:
            new = await repo.insert_intake_items(
                session, source=SOURCE, items=list(items.values()), now=self.core.clock.now()
            )
            await session.commit()
        return new

    # --- applying -------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = self._spawn(self._write_loop(), "platform-intake-store")
        self._worker = self._spawn(self._work_loop(), "platform-intake-apply")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def stop(self) -> None:
        """Stop taking events (those caught in the middle get a 503), let the batch being applied
        finish (its items stay stored for the next start otherwise), then stop the worker."""
        self._stopping = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.done.done():
                pending.done.set_exception(Busy("shutting down"))
        worker, self._worker = self._worker, None
        if worker is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(worker), 10)
            except TimeoutError:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def settled(self) -> None:
        """Wait until everything stored so far here is applied (tests; a running service never waits)."""
        async with asyncio.timeout(10):
            while self._queue.qsize() or not self._idle.is_set() or self._wake.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    async def _work_loop(self) -> None:
        core = self.core
        async with core.sessions() as session:
            taken = await repo.take_over_intake_and_commit(session, source=SOURCE, owners=gone_owners(core))
        if taken:
            log.warning("taking over %d platform events left by an earlier run of %s", taken, core.instance)
        while not self._stopping:
            try:
                claimed = await self._claim()
            except Exception:
                log.exception("claiming platform events failed; trying again")
                claimed = []
            if not claimed:
                self._idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), SWEEP_SECONDS)
                self._wake.clear()
                self._idle.clear()  # until a claim finds nothing again
                continue
            self._idle.clear()
            try:
                await self._apply(claimed)
            except Exception:
                log.exception("applying %d platform events failed; they are tried again", len(claimed))
            # Events being stored go first for a moment: the platform waits for those answers.
            await asyncio.sleep(0)

    async def _claim(self) -> list[IntakeItem]:
        core = self.core
        now = core.clock.now()
        async with core.sessions() as session:
            items = await repo.claim_intake_and_commit(
                session, source=SOURCE, worker=core.worker_id, now=now, until=now + CLAIM_FOR, limit=APPLY_BATCH
            )
            self._counted, self._stored_since = await repo.intake_backlog(session, source=SOURCE), 0
        return items

    async def _apply(self, items: Sequence[IntakeItem]) -> None:
        parsed: list[tuple[IntakeItem, PlatformEventIn]] = []
        for item in items:
            try:
                parsed.append((item, stored_event(item.payload)))
            except ValueError as exc:  # stored by a version that read it differently: never applicable
                await self._failed(item, exc, final=True)
        for chunk in _chunks(parsed):
            await self._apply_chunk(chunk)
            await asyncio.sleep(0)  # events being stored go first

    async def _apply_chunk(self, parsed: list[tuple[IntakeItem, PlatformEventIn]]) -> None:
        try:
            applied = await self._apply_together(parsed)
        except Exception as exc:  # noqa: BLE001 - each on its own, so only an event that fails alone waits
            log.warning("applying %d platform events together failed (%s); one by one", len(parsed), exc)
            applied = set()
            for item, event in parsed:
                try:
                    applied |= await self._apply_together([(item, event)])
                except Exception as one:  # noqa: BLE001 - tried again with backoff, then failed
                    await self._failed(item, one, final=item.attempts >= MAX_ATTEMPTS)
        if applied:
            self.core.wake_outbox()
            self._after(event for _, event in parsed if event.event_id in applied)

    async def _apply_together(self, parsed: Sequence[tuple[IntakeItem, PlatformEventIn]]) -> set[str]:
        core = self.core
        now = core.clock.now()
        ids = [item.id for item, _ in parsed if item.id is not None]
        async with core.sessions() as session:
            events = [event for _, event in parsed]
            applied = await apply_events(session, core, events, now, [item.payload for item, _ in parsed])
            finished = await repo.finish_intake(session, ids=ids, worker=core.worker_id, now=now)
            if finished != len(ids):
                # Another worker took these over (our claim expired): it applies them, not us.
                await session.rollback()
                log.warning(
                    "%d of %d platform events were taken over meanwhile; left to their new owner",
                    len(ids) - finished,
                    len(ids),
                )
                return set()
            await session.commit()
        return applied

    async def _failed(self, item: IntakeItem, exc: Exception, *, final: bool) -> None:
        core = self.core
        assert item.id is not None
        retry_at = None if final else core.clock.now() + retry_delay(item.attempts)
        error = f"{type(exc).__name__}: {exc}"
        if final:
            log.error("platform event %s failed for good after %d tries: %s", item.key, item.attempts, error)
        else:
            log.warning("platform event %s failed (try %d), tried again later: %s", item.key, item.attempts, error)
        async with core.sessions() as session:
            await repo.retry_intake_and_commit(
                session, item_id=item.id, worker=core.worker_id, error=error, retry_at=retry_at
            )

    def _after(self, applied: Any) -> None:
        """What follows an applied help request: ending the interview calls the platform back, after
        the commit and durably (the candidate_exit row is retried by the sweep if this task dies)."""
        if self.core.settings.candidate_exit_policy != "self":
            return
        if any(event.type is EventType.help_requested for event in applied):
            self._spawn(self._candidate_exits(), "candidate-exits")

    async def _candidate_exits(self) -> None:
        try:
            await help_requests.run_candidate_exits(self.core)
        except Exception:
            log.exception("candidate exit processing failed; the sweep will retry")
