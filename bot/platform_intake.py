"""The platform-events path of the intake: stored at once, answered, applied in batches.

``POST /api/platform/events`` (``bot/api/platform.py``) verifies, bounds and validates an event,
then ``PlatformIntake.store`` commits it as an ``intake_item`` (source ``platform``, key its
``event_id``, ordered by its interview): callbacks arriving together share one INSERT and one
commit (group commit), and a redelivery of a stored event id is found by the same statement
(``ON CONFLICT DO NOTHING``) and answered as a duplicate. The answer goes out as soon as that
commit returns: nothing accepted is lost on kill -9.

One worker per process applies what is stored (its own and, by the sweep, what a crash or another
replica left), by the intake's one worker rule (``bot.intake_worker.IntakeWorker``: claimed in
arrival order, the items of one interview one worker at a time, in order): it applies a batch with
``events.apply_events`` and marks the items done in the same transaction, so a batch is applied
exactly once or not at all. A batch that fails is applied again one event at a time; an event that
fails on its own is tried again with the intake's backoff, ``intake_worker.MAX_ATTEMPTS`` times in all, then left
failed with its error.

Backpressure: while the stored-but-unapplied backlog is above ``BOT_EVENT_BACKLOG_LIMIT`` (or the
store itself cannot answer within ``STORE_TIMEOUT``) the platform gets a prompt 503 with
``Retry-After`` instead of an answer that comes after its own timeout.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.group_commit import GroupCommit, Waiting
from bot.intake_worker import IntakeWorker
from bot.services import help_requests
from bot.services.context import Core
from bot.services.events import (
    EventType,
    PlatformEventIn,
    apply_events,
    apply_heartbeats,
    heartbeat_interviews,
    stored_event,
)
from storage import repo
from storage.db import single_writer
from storage.models import PLATFORM_EVENTS, IntakeItem

log = logging.getLogger(__name__)

SOURCE = PLATFORM_EVENTS
# Events stored in one transaction at most (one INSERT; SQLite's bound parameters stay far below its limit).
STORE_BATCH = 500
# Events claimed at once, at most; applied in transactions of at most APPLY_BATCH heartbeats ...
APPLY_BATCH = 400
# ... or FULL_PER_TRANSACTION other events (each a few statements with the interview locked): a
# long transaction holds SQLite's one write lock, and events being stored wait for it.
FULL_PER_TRANSACTION = 25
# How often the worker looks for items nobody woke it for (left by a crash, another replica, a retry).
SWEEP_SECONDS = 1.0
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
        self._batches: GroupCommit[_Pending] = GroupCommit(
            "platform-intake-store",
            self._write_batch,
            most=STORE_BATCH,
            refusal=lambda exc: (
                Busy("shutting down")
                if isinstance(exc, asyncio.CancelledError)
                else Busy(f"storing failed: {type(exc).__name__}")
            ),
        )
        self.worker = IntakeWorker(
            core,
            background,
            source=SOURCE,
            run=self._apply,
            limit=APPLY_BATCH,
            sweep=SWEEP_SECONDS,
            counted=self._count,
        )
        self._counted = 0  # backlog at the worker's last count
        # Ids of the items stored here to wait for the worker that the last count may not have
        # seen (stored after it: a higher id), oldest first (this one writer's ids only grow).
        self._uncounted: collections.deque[int] = collections.deque()
        self._highest = 0  # the highest id any count had seen
        # SQLite has one writer at a time: storing and applying take turns here, so a store waits
        # for the batch being applied instead of sleeping in SQLite's busy handler (PostgreSQL locks rows).
        self._writing: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if single_writer(core.sessions) else contextlib.nullcontext()
        )

    # --- taking events in ---------------------------------------------------------------

    def busy(self) -> bool:
        """Whether the backlog (estimated: the last count plus what was stored here above the
        highest id it saw, and what waits to be stored) is at its bound."""
        backlog = self._counted + len(self._uncounted) + self._batches.queued()
        return backlog >= self.core.settings.event_backlog_limit

    async def store(self, event: PlatformEventIn, payload: dict[str, Any]) -> bool:
        """Store ``event`` (``payload``: its JSON as received) and return once committed: True if
        new, False for a duplicate. ``Busy`` when the backlog is at its bound or storing takes
        longer than ``STORE_TIMEOUT``."""
        if self.busy():
            raise Busy("backlog above its bound")
        if not self._batches.running:
            raise Busy("not taking events")
        done = self._batches.put(_Pending(event, payload))
        try:
            return await asyncio.wait_for(asyncio.shield(done), STORE_TIMEOUT)
        except TimeoutError:
            raise Busy("storing took too long") from None

    async def _write_batch(self, batch: list[Waiting[_Pending]]) -> None:
        new, waiting = await self._write([w.item for w in batch])
        answered: set[str] = set()
        for pending in batch:
            key = pending.item.event.event_id
            pending.settle(key in new and key not in answered)  # the same event twice in one batch: once new
            answered.add(key)
        if waiting:
            self.worker.wake()

    async def _write(self, batch: list[_Pending]) -> tuple[dict[str, int], int]:
        """Store a batch in one transaction: the keys that were new, and how many of them wait for
        the worker (their ids join ``_uncounted``). Heartbeats (``events.heartbeat_interviews``) of
        an interview with nothing stored before them still to apply are applied in this same
        transaction and stored done: one write for taking them in and applying them, and still
        exactly once (a crash leaves both or neither)."""
        firsts: dict[str, _Pending] = {}
        for pending in batch:
            firsts.setdefault(pending.event.event_id, pending)
        now = self.core.clock.now()
        async with self._writing, self.core.sessions() as session:
            beats = await heartbeat_interviews(session, [p.event for p in firsts.values()])
            if beats:
                beats -= await repo.open_order_keys(session, source=SOURCE, order_keys=sorted(beats))
            new = await repo.insert_intake_items(
                session,
                source=SOURCE,
                items=[
                    {
                        "key": key,
                        "order_key": p.event.interview.id,
                        "payload": p.payload,
                        "done": p.event.interview.id in beats,
                    }
                    for key, p in firsts.items()
                ],
                now=now,
            )
            now_applied = [p for key, p in firsts.items() if key in new and p.event.interview.id in beats]
            if now_applied:
                await apply_heartbeats(session, [p.event for p in now_applied], [p.payload for p in now_applied], now)
            await session.commit()
        waiting = [id_ for key, id_ in new.items() if firsts[key].event.interview.id not in beats]
        # A count whose answer came in meanwhile may have seen them already (its ``highest``).
        self._uncounted.extend(id_ for id_ in waiting if id_ > self._highest)
        return new, len(waiting)

    # --- applying -------------------------------------------------------------------------

    def start(self) -> None:
        self._batches.start(self._background)
        self.worker.start()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def stop(self) -> None:
        """Stop taking events (those caught in the middle get a 503), let the batch being applied
        finish (its items stay stored for the next start otherwise), then stop the worker."""
        self.worker.stopping()
        await self._batches.stop(Busy("shutting down"))
        await self.worker.stop(10)

    async def settled(self) -> None:
        """Wait until everything stored so far here is applied (tests; a running service never waits)."""
        async with asyncio.timeout(10):
            while self._batches.queued():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        await self.worker.settled()

    def _count(self, backlog: int, highest: int) -> None:
        """The worker counted ``backlog`` items, when no item had an id above ``highest``: the
        estimate starts from there (an item on its way then, uncommitted, is left out until the next
        count: the estimate may fall short for a moment, never double an item)."""
        self._counted, self._highest = backlog, max(self._highest, highest)
        while self._uncounted and self._uncounted[0] <= self._highest:
            self._uncounted.popleft()

    async def _apply(self, items: Sequence[IntakeItem]) -> None:
        parsed: list[tuple[IntakeItem, PlatformEventIn]] = []
        for item in items:
            try:
                parsed.append((item, stored_event(item.payload)))
            except ValueError as exc:  # stored by a version that read it differently: never applicable
                await self.worker.failed(item, exc, final=True)
        for chunk in _chunks(parsed):
            await self._apply_chunk(chunk)
            await asyncio.sleep(0)  # events being stored go first

    async def _apply_chunk(self, parsed: list[tuple[IntakeItem, PlatformEventIn]]) -> None:
        try:
            applied, queued = await self._apply_together(parsed)
        except Exception as exc:  # noqa: BLE001 - each on its own, so only an event that fails alone waits
            log.warning("applying %d platform events together failed (%s); one by one", len(parsed), exc)
            applied, queued = set(), False
            for item, event in parsed:
                try:
                    one_applied, one_queued = await self._apply_together([(item, event)])
                except Exception as one:  # noqa: BLE001 - tried again with backoff, then failed
                    await self.worker.failed(item, one)
                else:
                    applied |= one_applied
                    queued = queued or one_queued
        if queued:
            # What it queued goes out now; a batch that queued nothing (heartbeats, most
            # interview.started) costs the outbox no pass.
            self.core.wake_outbox()
        if applied:
            self._after(event for _, event in parsed if event.event_id in applied)

    async def _apply_together(self, parsed: Sequence[tuple[IntakeItem, PlatformEventIn]]) -> tuple[set[str], bool]:
        """Apply and finish the items in one transaction: the event ids applied, and whether that
        queued notices."""
        core = self.core
        now = core.clock.now()
        ids = [item.id for item, _ in parsed if item.id is not None]
        async with self._writing, core.sessions() as session:
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
                return set(), False
            await session.commit()
            queued = repo.queued_notices(session)
        core.metrics.intake(SOURCE, "done", len(ids))
        self._counted = max(0, self._counted - len(ids))  # the backlog shrinks now, not at the next claim
        return applied, queued

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
