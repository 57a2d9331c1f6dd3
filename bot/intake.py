"""The one durable intake of every chat channel: storing messages, processing them, queueing replies.

A channel supplies only parsing and how to reply: it turns what arrived into a ``ChatItem`` (its
natural dedupe key, its sender, the payload it wants back) and calls ``ChatIntake.receive``; for a
stored item the intake asks it for the message (``ChatChannel.take``), runs the dispatcher, and asks
it for the reply rows (``ChatChannel.reply``, through ``chat_reply_rows`` or ``reply_rows``).

``receive`` commits the message as an ``intake_item`` (source = the channel's platform name,
order_key = the sender) before the platform is answered: callbacks arriving together share one
``INSERT … ON CONFLICT DO NOTHING`` and one commit (``ChatStore``, through ``bot.group_commit``),
and a redelivery is found by that statement. Rows a channel stores with a message (e.g. DingTalk's
sign binding) go in the same transaction.

Stored messages are processed by the intake's one worker rule (``bot.intake_worker``) in batches
beside the callbacks still arriving: one statement claims a batch (one sender's messages in
order, by one worker at a time), the channel's ``process`` runs for each (lookups of the sender
and their open question remembered until something commits, see ``bot.services.memo``), and one
transaction stores every reply with the items marked done. A processing error is tried again with
the intake's backoff; only the last try turns a handler error into the "抱歉,处理时出错了" reply
(see ``ChatIntake.process``), and the item is then left failed, visible in
``GET /api/intake?status=failed``. Replies are deduplicated by ``reply:<platform>:<msg_id>:<n>``,
so a message processed again after a crash is replied to at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from bot.chat.messages import IncomingMessage, Reply
from bot.chat.payload import ReplyRow
from bot.dispatcher import Dispatcher
from bot.group_commit import GroupCommit, Waiting
from bot.intake_worker import MAX_ATTEMPTS, IntakeWorker, brief, final_try
from bot.services.context import Core
from storage import repo
from storage.db import single_writer
from storage.models import IntakeItem

log = logging.getLogger(__name__)

# Senders whose messages are processed at once per process (each uses a connection at a time);
# one sender's messages are processed in the order they came.
PROCESS_LIMIT = 4
# Most stored messages claimed, processed and completed (replies and done marks) in one go. Larger
# batches save little (one claim and one commit per batch) and stall the loop longer while their
# rows are loaded and flushed: 200 cost the ack p99 of bench/wecom_callback.py, 50 does not.
PROCESS_BATCH = 50
# How long a batch waits, at most, for callbacks being stored to be done first.
INTAKE_FIRST_SECONDS = 0.1
# ... and after each message, at most, on SQLite (one writer at a time: a store that waits for the
# file keeps the ack waiting). On PostgreSQL a store is mostly a commit in flight, which processing
# does not hold up: there only what is ready runs first (waiting kept processing from keeping up
# with 0.2 x the floor's callbacks, and did not lower the ack p99).
INTAKE_FIRST_PER_MESSAGE = 0.002
SHUTDOWN_GRACE_SECONDS = 5.0
# Most callbacks committed in one intake transaction.
MAX_BATCH = 200
# Rows a channel stores with a message in the same transaction (e.g. DingTalk's sign binding).
ExtraRows = Sequence[SQLModel]


@dataclass(frozen=True)
class ChatItem:
    """A chat message as a channel stores it: its natural dedupe key on the platform, its sender
    (the order key: one sender's messages are processed in order) and what ``process`` reads back."""

    key: str
    sender: str
    payload: Mapping[str, Any]

    def values(self) -> dict[str, Any]:
        """The item as ``repo.insert_intake_items`` stores it."""
        return {"key": self.key, "order_key": self.sender[:200], "payload": dict(self.payload)}


@dataclass
class Processed:
    """What processing one stored message produced: the rows to store with its completion (its
    replies), and, when its last try failed, the failure to record once they (the apology) are stored."""

    rows: list[ReplyRow] = field(default_factory=list)
    failure: Exception | None = None


class Refused(Exception):
    """The database refused to store a message (e.g. an extra row taken by another message): the
    callback is not acknowledged, so its sender tries again."""


class Unreadable(Exception):
    """A stored item this version cannot read: left failed at once (no retry, nobody to answer)."""


class ChatChannel(Protocol):
    """All a channel supplies to its intake once a message is stored: how to read it back, and how
    to reply to it. The intake runs the dispatcher in between."""

    async def take(self, item: IntakeItem, /) -> IncomingMessage | None:
        """The stored message as the dispatcher reads it (None: nothing to answer, e.g. a group
        message not meant for the bot), after what the channel does first when it takes one up.
        ``Unreadable`` when this version cannot read it; any other error: tried again."""
        ...

    def reply(self, item: IntakeItem, msg: IncomingMessage, replies: list[Reply], /) -> list[ReplyRow]:
        """The outbox rows (not stored) that answer ``msg`` with ``replies`` (``reply_rows``)."""
        ...


class ChatStore:
    """Stores one source's messages (``intake_item`` rows, plus their extra rows).

    Messages arriving together are committed in one transaction (``bot.group_commit``). A batch
    that fails (one row the database refuses) is stored again one message at a time, so only a
    message that fails on its own is refused.
    """

    def __init__(self, core: Core, source: str, background: set[asyncio.Task[None]]) -> None:
        self.core = core
        self.source = source
        self._background = background
        self._batches: GroupCommit[tuple[ChatItem, ExtraRows]] = GroupCommit(
            f"intake-store:{source}",
            self.write_batch,
            most=MAX_BATCH,
            refusal=lambda exc: exc if isinstance(exc, Exception) else RuntimeError("intake stopped"),
        )
        # Set while no message is being stored (processing lets these go first).
        self.idle = asyncio.Event()
        self.idle.set()
        self._storing = 0

    def start(self) -> None:
        self._batches.start(self._background)

    async def stop(self) -> None:
        # Callbacks caught in the middle get an error answer, so the platform sends them again.
        await self._batches.stop(RuntimeError("shutting down"))

    async def store(self, item: ChatItem, extra: ExtraRows = ()) -> bool:
        """Store ``item`` (and ``extra``, not for a redelivery) and return once committed: True if
        new, False for a redelivery. ``Refused`` if the database refuses it (e.g. an ``extra`` row
        taken by another message)."""
        self._storing += 1
        self.idle.clear()
        try:
            if self._batches.running:
                new = await self._batches.put((item, extra))
            else:
                new = await self.store_one(item, extra)
        except Refused:
            self.core.metrics.callback(self.source, "rejected")
            raise
        finally:
            self._storing -= 1
            if not self._storing:
                self.idle.set()
        self.core.metrics.callback(self.source, "accepted" if new else "duplicate")
        return new

    async def store_one(self, item: ChatItem, extra: ExtraRows = ()) -> bool:
        now = self.core.clock.now()
        async with self.core.sessions() as session:
            try:
                new = await repo.insert_intake_items(session, source=self.source, items=[item.values()], now=now)
                if not new:
                    log.info("%s redelivery dropped: %s", self.source, item.key[:80])
                    return False
                session.add_all(list(extra))
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise Refused(f"{self.source} message {item.key[:80]} refused") from exc
        return True

    async def write_batch(self, batch: list[Waiting[tuple[ChatItem, ExtraRows]]]) -> None:
        """Store a batch in one transaction, or each on its own when that fails; settles each future."""
        firsts: dict[str, Waiting[tuple[ChatItem, ExtraRows]]] = {}
        repeats: list[Waiting[tuple[ChatItem, ExtraRows]]] = []  # the same message twice in one batch
        for waiting in batch:
            key = waiting.item[0].key
            if key in firsts:
                repeats.append(waiting)
            else:
                firsts[key] = waiting
        new: dict[str, int] = {}
        try:
            async with self.core.sessions() as session:
                values = [w.item[0].values() for w in firsts.values()]
                # One statement for the whole batch (the ORM would send one INSERT per row).
                new = await repo.insert_intake_items(
                    session, source=self.source, items=values, now=self.core.clock.now()
                )
                for key in new:
                    session.add_all(list(firsts[key].item[1]))
                await session.commit()
            stored = True
        except Exception as exc:  # noqa: BLE001 - one row the database refuses
            log.warning("storing %d %s messages together failed (%s); one by one", len(firsts), self.source, brief(exc))
            stored = False
        for key, waiting in firsts.items():
            if stored:
                if key not in new:
                    log.info("%s redelivery dropped: %s", self.source, key[:80])
                waiting.settle(key in new)
                continue
            try:
                waiting.settle(await self.store_one(*waiting.item))
            except Exception as exc:  # noqa: BLE001 - refused to that message alone (its sender retries)
                log.warning("storing %s message %s failed: %s", self.source, key[:80], brief(exc))
                waiting.settle(exc)
        for waiting in repeats:
            waiting.settle(False)


class ChatIntake:
    """One channel's intake: ``receive`` stores its messages (``ChatStore``), its ``IntakeWorker``
    processes them (the channel's ``take``, the dispatcher, the channel's ``reply``); started, and
    closed in the order that loses nothing."""

    def __init__(
        self,
        core: Core,
        source: str,
        background: set[asyncio.Task[None]],
        *,
        dispatcher: Dispatcher,
        channel: ChatChannel,
        batch: int = PROCESS_BATCH,
        senders: int = PROCESS_LIMIT,
    ) -> None:
        self.core, self.source = core, source
        self._dispatcher = dispatcher
        self._channel = channel
        self._batch = batch
        self._senders = senders
        self._background = background
        self._per_message = INTAKE_FIRST_PER_MESSAGE if single_writer(core.sessions) else 0.0
        self._taking: set[asyncio.Task[None]] = set()  # messages being received without a caller waiting
        self.writer = ChatStore(core, source, background)
        self.worker = IntakeWorker(
            core,
            background,
            source=source,
            run=self.run_batch,
            limit=batch,
            # Retries and what a crash or another replica left are looked for as often as the outbox polls.
            sweep=core.settings.outbox_poll_seconds,
            before_claim=lambda: self._let_intake_first(INTAKE_FIRST_SECONDS),
        )

    def start(self) -> None:
        self.writer.start()
        self.worker.start()

    async def receive(self, item: ChatItem, extra: ExtraRows = ()) -> bool:
        """Store ``item`` (with ``extra``) and have it processed soon: True once committed, False for
        a redelivery; ``Refused`` if the database refuses it."""
        new = await self.writer.store(item, extra)
        if new:
            self.worker.wake()
        return new

    def receive_detached(self, item: ChatItem, extra: ExtraRows = ()) -> None:
        """``receive`` in a task of its own, for a connection that acks before storing (its platform
        never redelivers); ``close`` waits for it."""
        task = asyncio.create_task(self._receive_logged(item, extra), name=f"intake-receive:{self.source}")
        for tasks in (self._background, self._taking):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _receive_logged(self, item: ChatItem, extra: ExtraRows) -> None:
        try:
            await self.receive(item, extra)
        except Exception:
            log.exception("storing %s message %s failed", self.source, item.key[:80])

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Claim nothing more, let messages being received be stored, stop storing (callbacks caught
        in the middle get an error answer and are sent again), then let the batch in flight finish
        briefly; what is cut off stays stored and is taken over (see ``bot.intake_worker``)."""
        self.worker.stopping()
        if self._taking:
            _, still = await asyncio.wait(set(self._taking), timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        await self.writer.stop()
        await self.worker.stop(grace)

    async def _let_intake_first(self, most: float) -> None:
        if not most or self.writer.idle.is_set():
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.writer.idle.wait(), most)

    async def process(self, item: IntakeItem) -> Processed:
        """One stored message: read back by the channel, answered by the dispatcher, the answer put
        in the channel's reply rows. A failure propagates (the item is tried again) unless this is its
        last try: then the replies are the apology, and the failure comes back to be recorded once
        the apology is queued (the item is then failed, visible as such)."""
        msg = await self._channel.take(item)
        if msg is None:
            return Processed()
        try:
            replies, failure = await self._dispatcher.handle(msg, final=False), None
        except Exception as exc:
            if not final_try(item):
                raise
            log.error("chat message %s failed on its last try: %s", msg.msg_id, brief(exc))
            replies, failure = self._dispatcher.apology(), exc
        return Processed(self._channel.reply(item, msg, replies), failure)

    async def run_batch(self, items: list[IntakeItem]) -> None:
        """Process claimed items (one sender's in order; up to ``senders`` senders at once), then store
        every reply with the items marked done in ONE transaction. If that transaction is refused
        (a reply queued by an earlier try after a crash), each item is completed on its own, and one
        whose replies are already there is only marked done: replied to at most once."""
        core = self.core
        results: dict[int, Processed | Exception] = {}
        by_sender: dict[str, list[IntakeItem]] = {}
        for item in items:
            by_sender.setdefault(item.order_key, []).append(item)
        slots = asyncio.Semaphore(self._senders)

        async def run(group: list[IntakeItem]) -> None:
            async with slots:
                for item in group:
                    assert item.id is not None
                    try:
                        results[item.id] = await self.process(item)
                    except Exception as exc:  # noqa: BLE001 - recorded on the item, tried again
                        results[item.id] = exc
                    # Callbacks waiting to be taken in go first: a message's work may not have
                    # waited on anything (remembered lookups, reads done in place).
                    await self._let_intake_first(self._per_message)

        # The sender's person and open question are looked up once per batch until something commits.
        with core.lookups.remembering():
            await asyncio.gather(*(run(group) for group in by_sender.values()))
        await self._complete(items, results)
        if len(items) < self._batch:
            # Sending waits while full batches follow each other (taking in and processing come
            # first); meanwhile the outbox's own poll still sends every few seconds.
            core.wake_outbox()

    async def _complete(self, items: list[IntakeItem], results: Mapping[int, Processed | Exception]) -> None:
        core = self.core
        done = [i for i in items if isinstance(r := results[i.id or 0], Processed) and r.failure is None]
        try:
            async with core.sessions() as session:
                replies = [row for r in results.values() if isinstance(r, Processed) for row in r.rows]
                await repo.insert_notices(session, replies)
                ids = [i.id for i in done if i.id is not None]
                if await repo.finish_intake(session, ids=ids, worker=core.worker_id, now=core.clock.now()) != len(ids):
                    raise _Lost()
                await session.commit()
            core.metrics.intake(self.source, "done", len(done))
        except (IntegrityError, _Lost):
            log.warning("completing %d %s messages together was refused; one by one", len(items), self.source)
            for item in items:
                result = results[item.id or 0]
                if isinstance(result, Processed):
                    await self._complete_one(item, result)
        for item in items:
            result = results[item.id or 0]
            if isinstance(result, Unreadable):
                await self.worker.failed(item, result, final=True)
            elif isinstance(result, Exception):
                await self.worker.failed(item, result)
            elif result.failure is not None:
                await self.worker.failed(item, result.failure, final=True)

    async def _complete_one(self, item: IntakeItem, result: Processed) -> None:
        core = self.core
        assert item.id is not None
        ok = result.failure is None
        async with core.sessions() as session:
            try:
                await repo.insert_notices(session, result.rows)
            except IntegrityError:
                await session.rollback()
                log.warning("replies to %s message %s were already queued (processed again)", self.source, item.key)
            if ok:
                finished = await repo.finish_intake(session, ids=[item.id], worker=core.worker_id, now=core.clock.now())
                if not finished:  # another worker took it over meanwhile: its replies are its own
                    await session.rollback()
                    log.warning("%s message %s was taken over meanwhile; left to its new owner", self.source, item.key)
                    return
            await session.commit()
        if ok:
            core.metrics.intake(self.source, "done")


class _Lost(Exception):
    """A claim was lost meanwhile (another worker took an item over): the transaction must not commit."""


__all__ = [
    "MAX_ATTEMPTS",
    "ChatChannel",
    "ChatIntake",
    "ChatItem",
    "ChatStore",
    "ExtraRows",
    "Processed",
    "Refused",
    "Unreadable",
]
