"""The one durable intake of every chat channel: storing callbacks, processing them, queueing replies.

A channel supplies only parsing and how to reply; storing is done here.

A channel takes a callback in by committing it as an outbox row (kind "inbound") together with
its dedupe claim, acks, and hands the row id to ``BoundedWork``. Processing then runs in at most
``PROCESS_LIMIT`` tasks at once per process, and only while no callback is waiting to be stored:
under a burst the store-and-ack path gets a database connection at once, and the rows wait
(durably, holding nothing) for a free worker. A task waiting for its turn holds no connection.

A row's processing goes through ``Outbox.deliver``: a processing error leaves the row for a retry
with backoff (``INBOUND_MAX_ATTEMPTS`` in all); only the last attempt turns a handler error into
the "抱歉,处理时出错了" reply (see ``dispatch_stored``), and a row that still fails then is dead,
visible in ``GET /api/notices?status=dead&kind=inbound``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import SQLModel

from bot.chat.messages import IncomingMessage, Reply
from bot.chat.payload import reply_to_payload
from bot.dispatcher import Dispatcher
from bot.outbox import SendError
from bot.services.context import Core
from storage import repo
from storage.models import Notice

log = logging.getLogger(__name__)

# A stored message is left to the bounded worker of the process that took it in for this long;
# then the outbox worker of any replica takes it. A restart of the same instance takes its own
# rows over at once (storage.repo.take_over_claims_and_commit).
INBOUND_GRACE = timedelta(seconds=60)
# Inbound messages processed at once per process (each uses one or two connections at a time).
PROCESS_LIMIT = 4
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


class BoundedWork:
    """At most ``limit`` processing tasks at once, yielding to callbacks being taken in."""

    def __init__(self, background: set[asyncio.Task[None]], *, limit: int = PROCESS_LIMIT) -> None:
        self._background = background
        self._slots = asyncio.Semaphore(limit)
        self.tasks: set[asyncio.Task[None]] = set()
        self._taking_in = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    @contextlib.asynccontextmanager
    async def taking_in(self) -> AsyncIterator[None]:
        """Around storing a callback: processing waits until no callback is being stored."""
        self._taking_in += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._taking_in -= 1
            if not self._taking_in:
                self._idle.set()

    def spawn(self, work: Callable[[], Awaitable[object]], *, name: str) -> None:
        """Run ``work()`` when a slot is free (the coroutine is created only then)."""
        task = asyncio.create_task(self._run(work), name=name)
        for tasks in (self._background, self.tasks):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _run(self, work: Callable[[], Awaitable[object]]) -> None:
        try:
            async with self._slots:
                await self._idle.wait()
                if self._stopping:
                    return  # the row stays in the outbox and is processed after the restart
                await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("processing an inbound message failed; it stays in the outbox for a retry")

    def stopping(self) -> None:
        """Shutting down: tasks not yet started leave their rows to the outbox."""
        self._stopping = True

    async def close(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Let work in flight finish briefly; what is cut off stays in the outbox for a retry."""
        self._stopping = True
        self._idle.set()
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
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
        try:
            row_id = await self._store(key, make_row, extra)
        except repo.Conflict:
            self.core.metrics.callback(self.platform, "rejected")
            raise
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
        rows: dict[str, Notice] = {}
        try:
            async with self.core.sessions() as session:
                seen = await repo.seen_inbound_keys(session, platform=self.platform, dedupe_keys=firsts)
                for key, (_, make_row, _, extra) in firsts.items():
                    if key not in seen:
                        rows[key] = make_row(now)
                        session.add(rows[key])
                        session.add_all(list(extra))
                        repo.add_inbound(session, platform=self.platform, dedupe_key=key, now=now)
                await session.commit()
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
                result = rows[key].id
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


async def enqueue_replies(
    core: Core,
    *,
    channel: str,
    msg: IncomingMessage,
    replies: Sequence[Reply],
    recipient: str,
    destination: str,
    extra: Mapping[str, Any] | None = None,
) -> list[Notice]:
    """Store replies to ``msg`` as outbox rows for ``channel``'s sender and wake the worker.

    Dedupe keys derive from the inbound message id, so a redelivered message that slipped
    past the inbound dedupe still cannot produce a second reply: ``repo.Conflict`` then (the
    replies were queued by an earlier try), and nothing is stored.
    """
    if not replies:
        return []
    now = core.clock.now()
    rows = [
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
    async with core.sessions() as session:
        await repo.add_notices_and_commit(session, rows)
    core.wake_outbox()
    return rows


def _brief(exc: Exception) -> str:
    """An error for the log without the SQL parameters (they hold message text)."""
    orig = getattr(exc, "orig", None) or getattr(exc.__cause__, "orig", None) or exc
    return f"{type(orig).__name__}: {str(orig).splitlines()[0][:200] if str(orig) else ''}"
