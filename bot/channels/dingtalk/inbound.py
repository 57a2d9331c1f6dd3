"""Taking in robot messages from either receive mode, durably, and processing them.

The crash window between the dedupe claim and the processing. A claimed ``msgId`` makes any
redelivery a no-op, so a message claimed but never processed would be lost. We close that
window by claiming and persisting the work in one transaction (``bot.intake.GroupCommit``,
shared with WeCom): ``accept`` adds an outbox row
on the internal channel "dingtalk_inbound" (payload = the callback JSON) and commits it
together with the ``inbound_message`` dedupe row. Only after that commit is the message
acknowledged (HTTP 200). Processing then runs in a bounded background worker
(``bot.intake.BatchWork``: claim the rows, dispatch, queue the replies and mark them sent, in
batches); a processing error is retried with backoff through the outbox. If the
process dies mid-way the row stays pending/sending, and the outbox worker picks it up again
(this instance's next boot at once, another replica after the lock expires) with the same
sender: at-least-once processing.
A repeat can at worst re-run a handler whose effects are themselves guarded (a closed
confirmation is not confirmed twice; termination claims the interview), and its replies
are dropped because reply dedupe keys derive from the ``msgId``.

The rows have kind "inbound": hidden from the admin notice list unless asked for, purged after 7 days.

In Stream mode the frame is acked before ``accept`` commits: DingTalk does not redeliver
robot messages whatever the ack says, so holding the ack would not make them any safer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from datetime import datetime
from typing import Any

from bot.channels.dingtalk.parse import PLATFORM, ParseError, dedupe_key, message_text, parse_callback
from bot.channels.dingtalk.sender import CHANNEL
from bot.dispatcher import Dispatcher
from bot.intake import (
    INBOUND_MAX_ATTEMPTS,
    SHUTDOWN_GRACE_SECONDS,
    ChatIntake,
    ExtraRows,
    Processed,
    chat_replies,
    dispatch_stored,
    process_alone,
    work_row,
)
from bot.outbox import Outbox, SendError
from bot.services.context import Core
from storage.models import Notice

log = logging.getLogger(__name__)

INBOUND_CHANNEL = "dingtalk_inbound"


class InboundSender:
    """The outbox 'sender' for inbound work rows: runs the dispatcher and queues its replies."""

    channel = INBOUND_CHANNEL
    rate: tuple[int, float] | None = None
    max_attempts = INBOUND_MAX_ATTEMPTS

    def __init__(self, core: Core, dispatcher: Dispatcher) -> None:
        self._core = core
        self._dispatcher = dispatcher

    async def process(self, notice: Notice) -> Processed:
        """Dispatch one stored message: its reply rows (not stored), and the failure of a last try."""
        try:
            msg = parse_callback(notice.payload["callback"])
        except (ParseError, KeyError, TypeError, AttributeError) as exc:
            raise SendError(f"cannot parse the DingTalk message: {exc}", permanent=True) from exc
        replies, failure = await dispatch_stored(self._dispatcher, msg, notice)
        return chat_replies(self._core, channel=CHANNEL, platform=PLATFORM, msg=msg, replies=replies, failure=failure)

    async def send(self, notice: Notice) -> str | None:
        await process_alone(self._core, self.process, notice)
        return None


class Inbound:
    """Accepts callbacks (HTTP body or Stream data) and processes them in background tasks."""

    def __init__(self, core: Core, outbox: Outbox, background: set[asyncio.Task[None]], sender: InboundSender) -> None:
        self._core = core
        self._outbox = outbox
        self._background = background
        self._tasks: set[asyncio.Task[None]] = set()  # Stream-mode take-ins
        # Stored messages are processed in batches beside the intake (failures go to Outbox.fail).
        self.intake = ChatIntake(core, PLATFORM, background, process=sender.process, fail=outbox.fail)

    def _row(self, body: Mapping[str, Any], now: datetime) -> Notice:
        return work_row(
            self._core,
            now,
            channel=INBOUND_CHANNEL,
            platform=PLATFORM,
            key=dedupe_key(body),
            recipient=str(body.get("senderStaffId") or body.get("senderId") or ""),
            text=message_text(body),
            payload={"callback": dict(body)},
        )

    async def accept(self, body: Mapping[str, Any], extra: ExtraRows = ()) -> int | None:
        """Claim the message and store its work row (and ``extra`` rows) in one transaction (group
        commit with other callbacks arriving together); None for a redelivery."""
        return await self.intake.store(dedupe_key(body), lambda now: self._row(body, now), extra)

    async def receive(self, body: Mapping[str, Any], extra: ExtraRows = ()) -> bool:
        """Accept, then process in the background. False for a redelivery or a non-message."""
        try:
            parse_callback(body)
        except ParseError as exc:
            log.warning("ignoring a DingTalk callback that is not a robot message: %s", exc)
            self._core.metrics.callback(PLATFORM, "rejected")
            return False
        job_id = await self.accept(body, extra)
        if job_id is None:
            return False
        self.intake.submit(job_id)
        return True

    def receive_soon(self, body: Mapping[str, Any]) -> None:
        """For Stream mode: take the message in without holding up the frame's ack."""
        self.spawn(self.receive(body), name="dingtalk-stream-message")

    def spawn(self, coro: Coroutine[Any, Any, object], *, name: str) -> None:
        task = asyncio.create_task(_logged(coro), name=name)
        for tasks in (self._background, self._tasks):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def close(self) -> None:
        """Let work in flight finish briefly; what is cut off stays in the outbox for a retry."""
        if self._tasks:  # Stream messages being taken in
            _, still = await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_GRACE_SECONDS)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)
        await self.intake.close()


async def _logged(coro: Coroutine[Any, Any, object]) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("DingTalk background task failed")
