"""The one durable intake of every chat channel: storing callbacks, processing them, queueing replies.

A channel supplies only parsing and how to reply; storing is done here.

A channel takes a callback in by committing it as an outbox row (kind "inbound") together with
its dedupe claim (``GroupCommit``: callbacks arriving together share one transaction), acks, and
hands the row id to ``BatchWork``, which processes what is queued in batches beside the callbacks
still arriving: one statement claims a batch, the dispatcher runs for each message (one sender's
in order; lookups of the sender and their open question remembered until something commits, see
``bot.services.memo``), and one transaction stores every reply with the rows marked done.

A processing error leaves the row for a retry with backoff through the outbox (``Outbox.fail``,
``INBOUND_MAX_ATTEMPTS`` in all; retries and rows another replica or a restart takes over go
through ``Outbox.deliver`` and the channel's inbound sender); only the last attempt turns a handler
error into the "抱歉,处理时出错了" reply (see ``dispatch_stored``), and a row that still fails then
is dead, visible in ``GET /api/notices?status=dead&kind=inbound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import SQLModel

from bot.chat.messages import INBOUND_KIND, IncomingMessage, Reply
from bot.chat.payload import reply_to_payload
from bot.dispatcher import Dispatcher
from bot.outbox import LOCK_SECONDS, SendError
from bot.services.context import Core
from storage import repo
from storage.models import Notice

log = logging.getLogger(__name__)

# A stored message is left to the bounded worker of the process that took it in for this long;
# then the outbox worker of any replica takes it. If that process dies, another replica takes it
# as soon as the dead one's replica lease has expired (about BOT_LEASE_SECONDS, see
# storage.repo.claimer_gone); a restart of the same instance takes its own rows over at once
# (storage.repo.take_over_claims_and_commit).
INBOUND_GRACE = timedelta(seconds=60)
# Senders whose messages are processed at once per process (each uses a connection at a time);
# one sender's messages are processed in the order they came.
PROCESS_LIMIT = 4
# Most stored messages claimed, processed and completed (replies and done marks) in one go. Larger
# batches save little (one claim and one commit per batch) and stall the loop longer while their
# rows are loaded and flushed: 200 cost the ack p99 of bench/wecom_callback.py, 50 does not.
PROCESS_BATCH = 50
# How long a batch waits, at most, for callbacks being stored to be done first.
INTAKE_FIRST_SECONDS = 0.1
# ... and after each message, at most.
INTAKE_FIRST_PER_MESSAGE = 0.002
# Tries of one inbound message before the sender is told it failed.
INBOUND_MAX_ATTEMPTS = 4
SHUTDOWN_GRACE_SECONDS = 5.0


def final_attempt(row: Notice) -> bool:
    """Whether this processing try of an inbound row is its last one."""
    return row.attempts + 1 >= INBOUND_MAX_ATTEMPTS


async def dispatch_stored(
    dispatcher: Dispatcher, msg: IncomingMessage, row: Notice
) -> tuple[list[Reply], Exception | None]:
    """The replies to a stored message. A failure propagates (the row is retried) unless this is
    the row's last try: then the replies are the apology, and the failure comes back to be raised
    by ``given_up`` once the apology is queued (the row then goes dead, visible as failed)."""
    try:
        return await dispatcher.handle(msg, final=False), None
    except Exception as exc:
        if not final_attempt(row):
            raise
        log.error("inbound message %s failed on its last try: %s", msg.msg_id, _brief(exc))
        return dispatcher.apology(), exc


def given_up(failure: Exception) -> SendError:
    return SendError(f"processing failed ({INBOUND_MAX_ATTEMPTS} attempts): {_brief(failure)}", permanent=True)


@dataclass
class Processed:
    """What processing one stored message produced: the rows to store with its completion (its
    replies), and, when its last try failed, the failure to record once they (the apology) are stored."""

    rows: list[Notice] = field(default_factory=list)
    failure: Exception | None = None


ProcessFn = Callable[[Notice], Awaitable[Processed]]
FailFn = Callable[[int, Exception], Awaitable[None]]


class BatchWork:
    """Processes the messages this process stored, in batches, beside the callbacks being taken in.

    ``submit`` queues a stored row's id. A worker takes what is queued (up to ``batch``), claims
    those rows in one statement (``repo.claim_notices_and_commit``, so the outbox of another
    replica never runs them too), runs the channel's ``process`` for each (in arrival order per
    sender; up to ``senders`` senders at once), then commits every reply row together with the
    rows marked sent in ONE transaction. If that transaction is refused (a reply queued by an
    earlier try after a crash), each message is completed on its own, and one whose replies are
    already there is only marked sent: replied to at most once. A message whose processing raised
    is handed to ``fail`` (the outbox's retry with backoff, then dead); one cut off by a crash or a
    shutdown stays claimed or pending, and the outbox takes it again (processed at least once).
    """

    def __init__(
        self,
        core: Core,
        background: set[asyncio.Task[None]],
        *,
        process: ProcessFn,
        fail: FailFn,
        name: str,
        intake: GroupCommit | None = None,
        batch: int = PROCESS_BATCH,
        senders: int = PROCESS_LIMIT,
    ) -> None:
        self.core = core
        self._intake = intake
        self._background = background
        self._process = process
        self._fail = fail
        self._name = name
        self._batch = batch
        self._senders = senders
        self._queue: list[int] = []
        self._ready = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._stopping = False

    def submit(self, row_id: int) -> None:
        """Process the stored row ``row_id`` soon (its first try)."""
        if self._stopping:
            return  # the row stays in the outbox and is processed after the restart
        self._queue.append(row_id)
        self._ready.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._loop(), name=f"intake-work:{self._name}")
            self._background.add(self._worker)
            self._worker.add_done_callback(self._background.discard)

    def adopt(self, row_ids: Sequence[int]) -> int:
        """Process rows another (dead) process had claimed, in batches like this process's own; ids
        already queued here are not queued twice. The claim decides: each row is run once. Returns
        how many were queued."""
        queued = set(self._queue)
        new = [row_id for row_id in row_ids if row_id not in queued]
        for row_id in new:
            self.submit(row_id)
        return len(new) if not self._stopping else 0

    async def _loop(self) -> None:
        while not self._stopping:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            # Callbacks being stored go first, for a moment: under a steady stream the batch
            # starts anyway (and is larger), so processing keeps up instead of waiting for a lull.
            await self._let_intake_first(INTAKE_FIRST_SECONDS)
            ids, self._queue = self._queue[: self._batch], self._queue[self._batch :]
            try:
                await self.run_batch(ids)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("processing %d inbound messages failed; they stay in the outbox for a retry", len(ids))

    async def _let_intake_first(self, most: float) -> None:
        intake = self._intake
        if intake is None or intake.idle.is_set():
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(intake.idle.wait(), most)

    async def run_batch(self, ids: Sequence[int]) -> None:
        core = self.core
        now = core.clock.now()
        async with core.sessions() as session:
            rows = await repo.claim_notices_and_commit(
                session,
                notice_ids=ids,
                now=now,
                lock_until=now + timedelta(seconds=LOCK_SECONDS),
                worker=core.worker_id,
                first=True,
            )
        if not rows:
            return
        results: dict[int, Processed | Exception] = {}
        by_sender: dict[tuple[str, str], list[Notice]] = {}
        for row in rows:
            by_sender.setdefault((row.channel, row.recipient), []).append(row)
        slots = asyncio.Semaphore(self._senders)

        async def run(group: list[Notice]) -> None:
            async with slots:
                for row in group:
                    assert row.id is not None
                    try:
                        results[row.id] = await self._process(row)
                    except Exception as exc:  # noqa: BLE001 - recorded on the row by ``fail``
                        results[row.id] = exc
                    # Callbacks waiting to be taken in go first (for a moment): a message's work
                    # may not have waited on anything (remembered lookups, reads done in place).
                    await self._let_intake_first(INTAKE_FIRST_PER_MESSAGE)

        # The sender's person and open question are looked up once per batch until something commits.
        with core.lookups.remembering():
            await asyncio.gather(*(run(group) for group in by_sender.values()))
        await self._complete(results)
        if not self._queue:
            # Sending waits while messages are queued here (taking in and processing come first);
            # meanwhile the outbox's own poll still sends every few seconds.
            core.wake_outbox()

    async def _complete(self, results: Mapping[int, Processed | Exception]) -> None:
        done = self.core.clock.now()
        ok = [i for i, r in results.items() if isinstance(r, Processed) and r.failure is None]
        try:
            async with self.core.sessions() as session:
                replies = [row for r in results.values() if isinstance(r, Processed) for row in r.rows]
                await repo.insert_notices(session, replies)
                await repo.mark_notices_sent(session, notice_ids=ok, now=done)
                await session.commit()
        except IntegrityError:
            log.warning("completing %d inbound messages together was refused; one by one", len(results))
            for row_id, result in results.items():
                if isinstance(result, Processed):
                    await self._complete_one(row_id, result, done)
        for row_id, result in results.items():
            failure = result if isinstance(result, Exception) else result.failure
            if failure is not None:
                if isinstance(result, Exception):
                    log.warning("processing inbound %s failed; retried later: %s", row_id, _brief(failure))
                await self._fail(row_id, given_up(failure) if isinstance(result, Processed) else failure)

    async def _complete_one(self, row_id: int, result: Processed, done: datetime) -> None:
        async with self.core.sessions() as session:
            try:
                await repo.add_notices_and_commit(session, result.rows)
            except repo.Conflict:
                log.warning("replies to inbound message %s were already queued (reprocessed after a crash)", row_id)
            if result.failure is None:
                await repo.mark_notices_sent(session, notice_ids=[row_id], now=done)
                await session.commit()

    def stopping(self) -> None:
        """Shutting down: queued rows not yet claimed stay in the outbox for after the restart."""
        self._stopping = True
        self._ready.set()

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Let the batch in flight finish briefly; what is cut off stays in the outbox for a retry."""
        self.stopping()
        worker = self._worker
        if worker is not None and not worker.done():
            _, pending = await asyncio.wait({worker}, timeout=grace)
            if pending:
                worker.cancel()
                await asyncio.wait(pending)


# Most callbacks committed in one intake transaction.
MAX_BATCH = 200
RowFactory = Callable[[datetime], Notice]
# Rows a channel stores with a callback in the same transaction (e.g. DingTalk's sign binding).
ExtraRows = Sequence[SQLModel]
_Item = tuple[str, RowFactory, "asyncio.Future[int | None]", ExtraRows]


class GroupCommit:
    """Stores callbacks (an ``inbound_message`` dedupe claim plus the work row) for one platform.

    Callbacks arriving together are committed together in one transaction (group commit): one
    write for many acks keeps ack latency low, above all on SQLite, where concurrent writers
    queue. A batch that fails (another replica's row, or one row the database refuses) is stored
    again one callback at a time, so only a callback that fails on its own is refused.
    """

    def __init__(self, core: Core, platform: str, background: set[asyncio.Task[None]]) -> None:
        self.core = core
        self.platform = platform
        self._background = background
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # Set while no callback is being stored (``BatchWork`` lets these go first).
        self.idle = asyncio.Event()
        self.idle.set()
        self._storing = 0

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"intake:{self.platform}")
        self._background.add(self._writer)
        self._writer.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        # Callbacks caught in the middle get an error answer, so the platform sends them again.
        while not self._queue.empty():
            _, _, done, _ = self._queue.get_nowait()
            if not done.done():
                done.set_exception(RuntimeError("shutting down"))

    async def store(self, key: str, make_row: RowFactory, extra: ExtraRows = ()) -> int | None:
        """Claim ``key`` and store its row (and ``extra`` rows, not for a redelivery); the row id, or
        None for a redelivery. Returns once committed. ``repo.Conflict`` if the database refuses the
        callback (e.g. an ``extra`` row taken by another message)."""
        self._storing += 1
        self.idle.clear()
        try:
            row_id = await self._store(key, make_row, extra)
        except repo.Conflict:
            self.core.metrics.callback(self.platform, "rejected")
            raise
        finally:
            self._storing -= 1
            if not self._storing:
                self.idle.set()
        self.core.metrics.callback(self.platform, "duplicate" if row_id is None else "accepted")
        return row_id

    async def _store(self, key: str, make_row: RowFactory, extra: ExtraRows) -> int | None:
        writer = self._writer
        if writer is None or writer.done():
            return await self.store_one(key, make_row, extra)
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((key, make_row, done, extra))
        return await done

    async def store_one(self, key: str, make_row: RowFactory, extra: ExtraRows = ()) -> int | None:
        now = self.core.clock.now()
        row = make_row(now)
        async with self.core.sessions() as session:
            session.add(row)
            session.add_all(list(extra))
            # The claim commits the whole session: the claim and the stored message land together.
            if not await repo.claim_inbound_and_commit(session, platform=self.platform, dedupe_key=key, now=now):
                log.info("%s redelivery dropped: %s", self.platform, key)
                return None
        assert row.id is not None
        return row.id

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.write_batch(batch)
            except BaseException as exc:
                failure = exc if isinstance(exc, Exception) else RuntimeError("intake stopped")
                if isinstance(exc, Exception):
                    log.exception("storing %d %s callbacks failed", len(batch), self.platform)
                for _, _, done, _ in batch:
                    if not done.done():
                        done.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise

    async def write_batch(self, batch: list[_Item]) -> None:
        """Store a batch in one transaction, or each on its own when that fails; settles each future."""
        now = self.core.clock.now()
        firsts: dict[str, _Item] = {}
        repeats: list[asyncio.Future[int | None]] = []  # the same message twice in one batch
        for item in batch:
            if item[0] in firsts:
                repeats.append(item[2])
            else:
                firsts[item[0]] = item
        seen: set[str] = set()
        ids: dict[str, int] = {}  # callback key -> its stored row's id
        try:
            async with self.core.sessions() as session:
                seen = await repo.seen_inbound_keys(session, platform=self.platform, dedupe_keys=firsts)
                new = [key for key in firsts if key not in seen]
                rows = {key: firsts[key][1](now) for key in new}
                for key in new:
                    session.add_all(list(firsts[key][3]))
                # Two statements for the whole batch (the ORM would send one INSERT per row).
                by_row_key = await repo.insert_notices(session, list(rows.values()), ids=True)
                await repo.insert_inbound(session, platform=self.platform, dedupe_keys=new, now=now)
                await session.commit()
            ids = {key: by_row_key[row.dedupe_key] for key, row in rows.items() if row.dedupe_key}
            stored = True
        except Exception as exc:  # noqa: BLE001 - another replica's row, or one row the database refuses
            log.warning(
                "storing %d %s callbacks together failed (%s); one by one", len(firsts), self.platform, _brief(exc)
            )
            seen, stored = set(), False
        for key, (_, make_row, done, extra) in firsts.items():
            if key in seen:
                log.info("%s redelivery dropped: %s", self.platform, key)
                result: int | None = None
            elif stored:
                result = ids[key]
            else:
                try:
                    result = await self.store_one(key, make_row, extra)
                except Exception as exc:  # noqa: BLE001 - refused to that callback alone (its sender retries)
                    log.warning("storing %s callback %s failed: %s", self.platform, key[:80], _brief(exc))
                    if not done.done():
                        done.set_exception(exc)
                    continue
            if not done.done():
                done.set_result(result)
        for done in repeats:
            if not done.done():
                done.set_result(None)


class ChatIntake:
    """One channel's intake: ``intake`` (a ``GroupCommit``) stores its callbacks, ``work`` (a
    ``BatchWork``) processes them; started, and closed in the order that loses nothing."""

    def __init__(
        self, core: Core, platform: str, background: set[asyncio.Task[None]], *, process: ProcessFn, fail: FailFn
    ) -> None:
        self.core, self.platform = core, platform
        self.intake = GroupCommit(core, platform, background)
        self.work = BatchWork(core, background, process=process, fail=fail, name=platform, intake=self.intake)
        self.intake.start()
        self._adopter = asyncio.create_task(self._adopt_loop(), name=f"intake-adopt:{platform}")
        background.add(self._adopter)
        self._adopter.add_done_callback(background.discard)

    async def _adopt_loop(self) -> None:
        """Takes over, in batches, the messages a dead replica took in and did not process (its replica
        lease expired: ``repo.claimer_gone``), as often as replica leases are renewed (a third of
        BOT_LEASE_SECONDS) or the outbox polls, whichever is less often. The outbox takes them too,
        one at a time, from its next poll on; a batch answers a dead replica's backlog several times
        faster."""
        s = self.core.settings
        every = max(s.outbox_poll_seconds, s.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            now = self.core.clock.now()
            try:
                async with self.core.sessions() as session:
                    ids = await repo.orphaned_inbound_ids(
                        session,
                        key_prefix=work_key_prefix(self.platform),
                        now=now,
                        worker=self.core.worker_id,
                        limit=PROCESS_BATCH * 4,
                    )
            except (SQLAlchemyError, OSError) as exc:
                log.warning("looking for %s messages of a dead replica failed: %s", self.platform, _brief(exc))
                continue
            if taken := self.work.adopt(ids):
                log.warning("taking over %d %s message(s) a dead replica took in", taken, self.platform)

    async def store(self, key: str, make_row: RowFactory, extra: ExtraRows = ()) -> int | None:
        """``GroupCommit.store``: the stored row's id, or None for a redelivery."""
        return await self.intake.store(key, make_row, extra)

    def submit(self, row_id: int) -> None:
        self.work.submit(row_id)

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Stop taking rows for processing, then stop storing (callbacks caught in the middle get an
        error answer and are sent again), then let the batch in flight finish briefly; what is cut
        off stays in the outbox for a retry."""
        self._adopter.cancel()
        await asyncio.gather(self._adopter, return_exceptions=True)
        self.work.stopping()
        await self.intake.stop()
        await self.work.close(grace)


def reply_rows(
    core: Core,
    *,
    channel: str,
    msg: IncomingMessage,
    replies: Sequence[Reply],
    recipient: str,
    destination: str,
    extra: Mapping[str, Any] | None = None,
) -> list[Notice]:
    """The outbox rows (not stored) that send ``replies`` to ``msg`` by ``channel``'s sender.

    Dedupe keys derive from the inbound message id, so a redelivered message that slipped
    past the inbound dedupe still cannot produce a second reply: the database refuses them
    (the replies were queued by an earlier try).
    """
    now = core.clock.now()
    return [
        Notice(
            kind="reply",
            channel=channel,
            recipient=recipient,
            body=reply.text,
            subject=reply.title,
            payload={
                "audience": "staff",
                "reply": reply_to_payload(reply),
                "chat_type": msg.chat_type,
                "chat_id": msg.chat_id,
                "sender_id": msg.sender_id,
                "reply_hint": dict(msg.reply_hint),
                **(extra or {}),
            },
            destination=destination,
            dedupe_key=f"reply:{msg.platform}:{msg.msg_id}:{n}"[:200],
            next_attempt_at=now,
            created_at=now,
        )
        for n, reply in enumerate(replies)
    ]


def work_key_prefix(platform: str) -> str:
    """How the dedupe keys of ``platform``'s inbound work rows begin."""
    return f"inbound:{platform}:"


def work_row(
    core: Core,
    now: datetime,
    *,
    channel: str,
    platform: str,
    key: str,
    recipient: str,
    text: str,
    payload: Mapping[str, Any],
) -> Notice:
    """The outbox row (kind "inbound") that carries one stored message to its processing on the
    channel's internal ``channel``: claimed by this process (``BatchWork``) and left to any replica's
    outbox after ``INBOUND_GRACE``. ``key`` is the platform's dedupe key of the message."""
    return Notice(
        kind=INBOUND_KIND,
        channel=channel,
        recipient=recipient,
        body=text,
        payload={"audience": "internal", **payload},
        destination=channel,
        dedupe_key=f"{work_key_prefix(platform)}{key}"[:200],
        next_attempt_at=now + INBOUND_GRACE,
        claimed_by=core.worker_id,
        created_at=now,
    )


def chat_replies(
    core: Core,
    *,
    channel: str,
    platform: str,
    msg: IncomingMessage,
    replies: Sequence[Reply],
    failure: Exception | None,
) -> Processed:
    """``replies`` to ``msg`` in the chat it came from (``<platform>:group|user:<chat id>``)."""
    kind = "group" if msg.chat_type == "group" else "user"
    rows = reply_rows(
        core,
        channel=channel,
        msg=msg,
        replies=replies,
        recipient=msg.sender_id,
        destination=f"{platform}:{kind}:{msg.chat_id}",
    )
    return Processed(rows, failure)


async def process_alone(core: Core, process: ProcessFn, row: Notice) -> None:
    """The outbox's path for a stored message (a retry, or a row a dead process left): process it
    on its own and queue its replies, unless an earlier try queued them (replied to at most once).
    A failure on the last try is raised once the apology is queued."""
    done = await process(row)
    try:
        await enqueue_replies(core, done.rows)
    except repo.Conflict:
        log.warning("replies to inbound message %s were already queued (reprocessed after a crash)", row.id)
    if done.failure is not None:
        raise given_up(done.failure) from done.failure


class StoredMessageSender:
    """The outbox 'sender' of one channel's stored messages (its internal work-row channel): it
    processes a retry, or a row a dead process left, with ``process_alone``."""

    rate: tuple[int, float] | None = None
    max_attempts = INBOUND_MAX_ATTEMPTS

    def __init__(self, core: Core, channel: str, process: ProcessFn, *, name: str) -> None:
        self.core = core
        self.channel = channel
        self._process = process
        self._name = name

    async def send(self, notice: Notice) -> str | None:
        if notice.attempts:
            log.warning("processing %s inbound %s again (try %d)", self._name, notice.id, notice.attempts + 1)
        await process_alone(self.core, self._process, notice)
        return None


async def enqueue_replies(core: Core, rows: Sequence[Notice]) -> None:
    """Store reply rows (``reply_rows``) and wake the worker; ``repo.Conflict`` (nothing stored)
    when they were queued before."""
    if not rows:
        return
    async with core.sessions() as session:
        await repo.add_notices_and_commit(session, rows)
    core.wake_outbox()


def _brief(exc: Exception) -> str:
    """An error for the log without the SQL parameters (they hold message text)."""
    orig = getattr(exc, "orig", None) or getattr(exc.__cause__, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0][:200] if str(orig) else ''}"
