"""Durable intake of WeCom callbacks: claim once, keep until processed, process in the background.

Choice (why not "claim, then process in memory"): the dedupe claim and the message itself
are committed in ONE transaction before the callback is acknowledged: an ``inbound_message``
row (unique platform + dedupe key, so replicas dedupe too) plus a ``notice`` row on the
internal channel ``wecom_inbox`` that carries the neutral message. No schema change is needed.

- Normal path: right after the ack a background task (kept in ``app[BACKGROUND]``) claims the
  row (pending → sending, with a lock), runs the dispatcher, commits the replies to the outbox
  and marks the row sent.
- Crash between ack and processing: the row stays pending (its ``next_attempt_at`` is a grace
  period ahead) or sending with an expiring lock, and the outbox worker, where an
  ``InboxSender`` is registered for ``wecom_inbox``, picks it up and processes it. A processing
  error is retried the same way and, after the outbox's attempts, the row goes dead and is
  visible in ``GET /api/notices?status=dead`` instead of vanishing.
- So processing is at-least-once. A rerun after a crash mid-way cannot send a reply twice:
  reply rows have dedupe keys derived from the message id, and a rerun finding them already
  queued stops there.

Speed: callbacks arriving together are stored by one intake writer in one transaction (group
commit; a batch that meets another replica's row falls back to one claim at a time), and the
background work waits while callbacks are queued for storing, so acks come first under a burst.
bench/wecom_callback.py measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.channels.base import INBOUND_KIND, IncomingMessage, Reply
from bot.channels.replies import enqueue_replies
from bot.channels.wecom.parse import Inbound
from bot.channels.wecom.sender import AIBOT_CHANNEL, APP_CHANNEL, update_card_notice
from bot.dispatcher import Dispatcher
from bot.outbox import LOCK_SECONDS
from bot.services.context import Core
from storage import repo
from storage.models import InboundMessage, Notice, NoticeStatus

log = logging.getLogger(__name__)

INBOX_CHANNEL = "wecom_inbox"
# The outbox leaves a fresh row to the background task for this long.
INBOX_GRACE = timedelta(seconds=60)
# Inbound messages processed at once per process. Acks never wait for this; under a burst the
# stored rows simply wait their turn, so acknowledging stays fast (see bench/wecom_callback.py).
MAX_CONCURRENT = 2
# Most callbacks committed in one intake transaction.
MAX_BATCH = 200
Source = Literal["app", "aibot"]


def _message_to_payload(msg: IncomingMessage) -> dict[str, Any]:
    data = asdict(msg)
    data["reply_hint"] = dict(msg.reply_hint)
    data["raw"] = dict(msg.raw)
    return data


def _message_from_payload(data: Mapping[str, Any]) -> IncomingMessage:
    return IncomingMessage(
        platform=data["platform"],
        sender_id=data["sender_id"],
        chat_id=data["chat_id"],
        chat_type=data["chat_type"],
        text=data["text"],
        msg_id=data["msg_id"],
        reply_hint=dict(data.get("reply_hint") or {}),
        raw=dict(data.get("raw") or {}),
    )


def merge_replies(replies: list[Reply]) -> list[Reply]:
    """AI bot replies go through a single-use response_url: one row carries all of the text."""
    if len(replies) <= 1:
        return replies
    return [Reply("\n\n".join(r.text for r in replies), kind="markdown", title=replies[0].title)]


class WeComInbox:
    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        *,
        background: set[asyncio.Task[None]],
        backoff: Callable[[int], float],
        app_replies: bool,
    ) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.background = background
        self.backoff = backoff
        # Whether app messages can be sent (the "wecom" sender exists).
        self.app_replies = app_replies
        self.tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self._intake: asyncio.Queue[tuple[Inbound, Source, asyncio.Future[int | None]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # Set while no callback waits to be stored: background work yields to acks.
        self._intake_idle = asyncio.Event()
        self._intake_idle.set()
        self._stopping = False

    def _row(self, inbound: Inbound, source: Source, now: datetime) -> Notice:
        msg = inbound.msg
        return Notice(
            kind=INBOUND_KIND,
            channel=INBOX_CHANNEL,
            recipient=msg.sender_id,
            body=msg.text,
            payload={
                "audience": "internal",
                "source": source,
                "msg": _message_to_payload(msg),
                "card": dict(inbound.card),
            },
            destination=INBOX_CHANNEL,
            dedupe_key=f"inbound:wecom:{inbound.dedupe_key}"[:200],
            next_attempt_at=now + INBOX_GRACE,
            created_at=now,
        )

    async def accept(self, inbound: Inbound, *, source: Source) -> int | None:
        """Claim and store one callback. The row id to process, or None for a redelivery.

        Returns only once the claim and the message are committed. Callbacks arriving together
        are committed together by the intake writer (group commit): one write transaction for
        many acks keeps ack latency low, above all on SQLite, where concurrent writers queue.
        """
        writer = self._writer
        if writer is None or writer.done():
            return await self._claim_one(inbound, source)
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._intake_idle.clear()
        self._intake.put_nowait((inbound, source, done))
        return await done

    async def _claim_one(self, inbound: Inbound, source: Source) -> int | None:
        now = self.core.clock.now()
        row = self._row(inbound, source, now)
        async with self.core.sessions() as session:
            session.add(row)
            # claim_inbound commits the session: the claim and the stored message land together.
            if not await repo.claim_inbound(session, platform="wecom", dedupe_key=inbound.dedupe_key, now=now):
                log.info("WeCom redelivery dropped: %s", inbound.dedupe_key)
                return None
        assert row.id is not None
        return row.id

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="wecom-intake")
        self.background.add(self._writer)
        self._writer.add_done_callback(self.background.discard)
        self._writer.add_done_callback(_log_failure)

    async def stop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        # Callbacks caught in the middle get a 500, so WeCom sends them again.
        while not self._intake.empty():
            *_, done = self._intake.get_nowait()
            if not done.done():
                done.set_exception(RuntimeError("shutting down"))
        self._intake_idle.set()

    def stopping(self) -> None:
        """Shutting down: tasks not yet started leave their rows to the outbox (after a restart)."""
        self._stopping = True

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._intake.get()]
            while len(batch) < MAX_BATCH and not self._intake.empty():
                batch.append(self._intake.get_nowait())
            try:
                await self._write_batch(batch)
            except BaseException as exc:
                failure = exc if isinstance(exc, Exception) else RuntimeError("intake stopped")
                if isinstance(exc, Exception):
                    log.exception("storing %d WeCom callbacks failed", len(batch))
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise
            finally:
                if self._intake.empty():
                    self._intake_idle.set()

    async def _write_batch(self, batch: list[tuple[Inbound, Source, asyncio.Future[int | None]]]) -> None:
        now = self.core.clock.now()
        firsts: dict[str, tuple[Inbound, Source, asyncio.Future[int | None]]] = {}
        repeats: list[asyncio.Future[int | None]] = []  # the same message twice in one batch
        for item in batch:
            key = item[0].dedupe_key
            if key in firsts:
                repeats.append(item[2])
            else:
                firsts[key] = item
        async with self.core.sessions() as session:
            seen = set(
                (
                    await session.exec(
                        select(InboundMessage.dedupe_key).where(
                            InboundMessage.platform == "wecom", col(InboundMessage.dedupe_key).in_(list(firsts))
                        )
                    )
                ).all()
            )
            rows: dict[str, Notice] = {}
            for key, (inbound, source, _) in firsts.items():
                if key in seen:
                    continue
                rows[key] = self._row(inbound, source, now)
                session.add(rows[key])
                session.add(InboundMessage(platform="wecom", dedupe_key=key, received_at=now))
            try:
                await session.commit()
                stored = True
            except IntegrityError:  # another replica took one of them meanwhile: one by one
                await session.rollback()
                stored = False
        results: dict[str, int | None] = {}
        for key, (inbound, source, _) in firsts.items():
            if key in seen:
                log.info("WeCom redelivery dropped: %s", key)
                results[key] = None
            elif stored:
                results[key] = rows[key].id
            else:
                results[key] = await self._claim_one(inbound, source)
        for key, (*_, done) in firsts.items():
            if not done.done():
                done.set_result(results[key])
        for done in repeats:
            if not done.done():
                done.set_result(None)

    def spawn(self, row_id: int) -> None:
        task = asyncio.create_task(self._process_when_free(row_id), name=f"wecom-inbound-{row_id}")
        for tasks in (self.background, self.tasks):
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        task.add_done_callback(_log_failure)

    async def _process_when_free(self, row_id: int) -> None:
        async with self._slots:
            # Under a burst, store (and ack) what is arriving first; the stored rows wait safely.
            await self._intake_idle.wait()
            if not self._stopping:
                await self.process_row(row_id)

    async def process_row(self, row_id: int) -> None:
        """Background path: take the row unless the outbox has it, process, mark done or retry later."""
        now = self.core.clock.now()
        async with self.core.sessions() as session:
            result = await session.exec(
                update(Notice)
                .where(col(Notice.id) == row_id, col(Notice.status) == NoticeStatus.pending.value)
                .values(status=NoticeStatus.sending.value, locked_until=now + timedelta(seconds=LOCK_SECONDS))
            )
            await session.commit()
            if result.rowcount != 1:
                return
            notice = await session.get(Notice, row_id)
            assert notice is not None
        try:
            await self.handle(notice)
        except Exception as exc:
            log.exception("WeCom inbound %s failed; the outbox will retry it", row_id)
            values: dict[str, Any] = {
                "status": NoticeStatus.pending.value,
                "attempts": notice.attempts + 1,
                "next_attempt_at": self.core.clock.now() + timedelta(seconds=self.backoff(notice.attempts + 1)),
                "locked_until": None,
                "last_error": f"{type(exc).__name__}: {exc}"[:1000],
            }
        else:
            done = self.core.clock.now()
            values = {
                "status": NoticeStatus.sent.value,
                "attempts": notice.attempts + 1,
                "sent_at": done,
                "locked_until": None,
                "last_error": None,
            }
        async with self.core.sessions() as session:
            await session.exec(update(Notice).where(col(Notice.id) == row_id).values(**values))
            await session.commit()

    async def handle(self, row: Notice) -> None:
        """Dispatch one stored message and queue its replies (and, for card clicks, the card update)."""
        msg = _message_from_payload(row.payload["msg"])
        source: Source = row.payload.get("source", "app")
        card = row.payload.get("card") or {}
        core = self.core
        # Grey out the clicked card first: the command may take a while (platform calls).
        if card.get("response_code") and self.app_replies:
            card_row = update_card_notice(
                user=msg.sender_id,
                response_code=card["response_code"],
                command=msg.text,
                now=core.clock.now(),
                dedupe=msg.msg_id,
            )
            async with core.sessions() as session:
                session.add(card_row)
                try:
                    await session.commit()
                except IntegrityError:
                    log.warning("card update for %s was already queued", msg.msg_id)
        replies = await self.dispatcher.handle(msg)
        try:
            if source == "aibot":
                await enqueue_replies(
                    core,
                    channel=AIBOT_CHANNEL,
                    msg=msg,
                    replies=merge_replies(replies),
                    recipient=msg.sender_id,
                    destination=f"{AIBOT_CHANNEL}:{msg.chat_id}",
                )
            elif self.app_replies:
                await enqueue_replies(
                    core,
                    channel=APP_CHANNEL,
                    msg=msg,
                    replies=replies,
                    recipient=msg.sender_id,
                    destination=f"{APP_CHANNEL}:user:{msg.sender_id}",
                )
            else:
                log.warning("no way to answer WeCom message %s: the app is not configured", msg.msg_id)
        except IntegrityError:
            log.warning("replies to WeCom message %s were already queued (reprocessed after a crash)", msg.msg_id)
        core.wake_outbox()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("WeCom background task %s failed", task.get_name(), exc_info=task.exception())


class InboxSender:
    """Lets the outbox worker finish inbound messages a crashed or failed task left behind."""

    channel = INBOX_CHANNEL
    rate: tuple[int, float] | None = None

    def __init__(self, inbox: WeComInbox) -> None:
        self.inbox = inbox

    async def send(self, notice: Notice) -> str | None:
        log.warning("processing WeCom inbound %s from the outbox (left over)", notice.id)
        await self.inbox.handle(notice)
        return None
