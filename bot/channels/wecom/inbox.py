"""Durable intake of WeCom callbacks: claim once, keep until processed, process in the background.

Choice (why not "claim, then process in memory"): the dedupe claim and the message itself
are committed in ONE transaction before the callback is acknowledged: an ``inbound_message``
row (unique platform + dedupe key, so replicas dedupe too) plus a ``notice`` row on the
internal channel ``wecom_inbox`` that carries the neutral message. No schema change is needed.

- Normal path: right after the ack a bounded background worker (``bot.intake``) delivers
  the row through the outbox (pending → sending, with a lock): ``intake.StoredMessageSender`` runs the
  dispatcher, commits the replies to the outbox, and the row is marked sent.
- Crash between ack and processing: the row stays pending (its ``next_attempt_at`` is a grace
  period ahead) or sending with an expiring lock; this instance's next boot takes it over at
  once, another replica's outbox worker after the grace or lock. A processing error is retried
  with backoff and, after ``INBOUND_MAX_ATTEMPTS``, the user is told it failed and the row is
  dead, visible in ``GET /api/notices?status=dead`` instead of vanishing.
- So processing is at-least-once. A rerun after a crash mid-way cannot send a reply twice:
  reply rows have dedupe keys derived from the message id, and a rerun finding them already
  queued stops there.

Speed: callbacks arriving together are stored by one intake writer in one transaction (group
commit; a batch that fails, e.g. on another replica's row or on one row the database refuses,
falls back to one claim at a time, so only a bad callback is refused), and the
background work waits while callbacks are queued for storing, so acks come first under a burst.
bench/wecom_callback.py measures it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

from bot.channels.wecom.parse import Inbound
from bot.channels.wecom.sender import AIBOT_CHANNEL, APP_CHANNEL, update_card_notice
from bot.chat.messages import Reply
from bot.chat.payload import message_from_payload, message_to_payload
from bot.dispatcher import Dispatcher
from bot.intake import (
    BatchWork,
    ChatIntake,
    Processed,
    dispatch_stored,
    reply_rows,
    work_row,
)
from bot.services.context import Core
from storage import repo
from storage.models import Notice

log = logging.getLogger(__name__)

INBOX_CHANNEL = "wecom_inbox"
Source = Literal["app", "aibot", "aibot_ws"]
# Outbox channel of replies to AI bot messages that came over the long connection.
AIBOT_WS_CHANNEL = "wecom_aibot_ws"


def merge_replies(replies: list[Reply]) -> list[Reply]:
    """AI bot replies go through a single-use response_url: one row carries all of the text."""
    if len(replies) <= 1:
        return replies
    return [Reply("\n\n".join(r.text for r in replies), title=replies[0].title)]


class WeComInbox:
    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        *,
        background: set[asyncio.Task[None]],
        fail: Callable[[int, Exception], Awaitable[None]],
        app_replies: bool,
    ) -> None:
        self.core = core
        self.dispatcher = dispatcher
        self.background = background
        # Whether app messages can be sent (the "wecom" sender exists).
        self.app_replies = app_replies
        # Stored messages are processed in batches beside the intake (failures go to Outbox.fail).
        self.intake = ChatIntake(core, "wecom", background, process=self.process, fail=fail)

    @property
    def work(self) -> BatchWork:
        return self.intake.work

    def _row(self, inbound: Inbound, source: Source, now: datetime) -> Notice:
        msg = inbound.msg
        return work_row(
            self.core,
            now,
            channel=INBOX_CHANNEL,
            platform="wecom",
            key=inbound.dedupe_key,
            recipient=msg.sender_id,
            text=msg.text,
            payload={"source": source, "msg": message_to_payload(msg), "card": dict(inbound.card)},
        )

    async def accept(self, inbound: Inbound, *, source: Source) -> int | None:
        """Claim and store one callback (group commit, see ``GroupCommit``). The row id to process,
        or None for a redelivery. Returns only once the claim and the message are committed."""
        return await self.intake.store(inbound.dedupe_key, lambda now: self._row(inbound, source, now))

    def spawn(self, row_id: int) -> None:
        self.intake.submit(row_id)

    async def close(self) -> None:
        """Let in-flight messages finish briefly; anything cut off is finished by the outbox later."""
        await self.intake.close()

    async def process(self, row: Notice) -> Processed:
        """Dispatch one stored message; its reply rows (not stored), and, for card clicks, the card
        update (stored at once). A handler error propagates (the row is retried); on its last try
        the replies are the apology and the failure comes back with them."""
        msg = message_from_payload(row.payload["msg"])
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
                try:
                    await repo.add_notices_and_commit(session, [card_row])
                except repo.Conflict:
                    log.warning("card update for %s was already queued", msg.msg_id)
            core.wake_outbox()
        replies, failure = await dispatch_stored(self.dispatcher, msg, row)
        rows: list[Notice] = []
        if source == "aibot":
            rows = reply_rows(
                core,
                channel=AIBOT_CHANNEL,
                msg=msg,
                replies=merge_replies(replies),
                recipient=msg.sender_id,
                destination=f"{AIBOT_CHANNEL}:{msg.chat_id}",
            )
        elif source == "aibot_ws":
            # One row per reply: the first answers the callback's req_id, the others are pushed.
            rows = reply_rows(
                core,
                channel=AIBOT_WS_CHANNEL,
                msg=msg,
                replies=replies,
                recipient=msg.sender_id,
                destination=f"{AIBOT_WS_CHANNEL}:{msg.chat_id}",
            )
        elif self.app_replies:
            rows = reply_rows(
                core,
                channel=APP_CHANNEL,
                msg=msg,
                replies=replies,
                recipient=msg.sender_id,
                destination=f"{APP_CHANNEL}:user:{msg.sender_id}",
            )
        else:
            log.warning("no way to answer WeCom message %s: the app is not configured", msg.msg_id)
        return Processed(rows, failure)
