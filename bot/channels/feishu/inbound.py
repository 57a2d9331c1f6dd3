"""Taking Feishu events in durably (both modes) and processing them.

``Inbound.receive`` commits the event as an outbox work row (channel "feishu_inbound", kind
"inbound") together with its dedupe claim (``bot.intake.GroupCommit``: ``msg:<message_id>`` or
``event:<event_id>``), and only then is Feishu answered (HTTP 200, or the frame's ack on the long
connection), so an event Feishu saw acknowledged is never lost; a redelivery finds its key and is
dropped. Processing runs in ``bot.intake.BatchWork`` (batches of stored rows, replies queued and
rows marked sent together), retried with backoff through ``Outbox.fail``; any replica's outbox
worker finishes what a dead process left.

Processing (``InboundSender``): in a group only a message that @-mentions the bot is acted on (the
bot's open_id from ``bot/v3/info``), with the mention removed; a card click is acted on as its
command. The sender is the person registered under the event's ``user_id``, else under its
``open_id`` (``python -m bot people add --platform feishu --user-id <user_id or open_id>``); an
unregistered sender is told their user_id (or open_id when the app may not read user ids).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp

from bot.channels.feishu.api import FeishuApi, FeishuError
from bot.channels.feishu.parse import PLATFORM, ParseError, envelope, parse_event, with_sender, without_mention
from bot.channels.feishu.sender import CHANNEL
from bot.chat.messages import IncomingMessage
from bot.chat.payload import message_from_payload, message_to_payload
from bot.dispatcher import Dispatcher
from bot.intake import (
    INBOUND_MAX_ATTEMPTS,
    ChatIntake,
    Processed,
    chat_replies,
    dispatch_stored,
    process_alone,
    work_row,
)
from bot.outbox import Outbox, SendError
from bot.services import people
from bot.services.context import Core
from storage.models import Notice

log = logging.getLogger(__name__)

INBOUND_CHANNEL = "feishu_inbound"


class InboundSender:
    """The outbox 'sender' for Feishu work rows: runs the dispatcher and queues its replies."""

    channel = INBOUND_CHANNEL
    rate: tuple[int, float] | None = None
    max_attempts = INBOUND_MAX_ATTEMPTS

    def __init__(self, core: Core, dispatcher: Dispatcher, api: FeishuApi) -> None:
        self._core = core
        self._dispatcher = dispatcher
        self._api = api

    async def process(self, notice: Notice) -> Processed:
        """Dispatch one stored event: its reply rows (not stored), and the failure of a last try."""
        try:
            # Parsed once when it was taken in; a row stored by an older version holds the raw event.
            stored = notice.payload.get("msg")
            msg = message_from_payload(stored) if stored is not None else parse_event(notice.payload["event"])
        except (ParseError, KeyError, TypeError, AttributeError) as exc:
            raise SendError(f"cannot read the stored Feishu message: {exc}", permanent=True) from exc
        hint = msg.reply_hint
        if msg.chat_type == "group" and not hint.get("card"):
            try:
                bot_open_id = await self._api.bot_open_id()
            except (FeishuError, aiohttp.ClientError, TimeoutError) as exc:
                raise SendError(f"bot/v3/info: {exc}") from exc
            mentioned, text = without_mention(hint, bot_open_id)
            if not mentioned:
                log.debug("Feishu group message %s does not mention the bot; ignored", msg.msg_id)
                return Processed([], None)
            msg = with_sender(msg, msg.sender_id, text=text)
        msg = await self._registered(msg)
        replies, failure = await dispatch_stored(self._dispatcher, msg, notice)
        return chat_replies(self._core, channel=CHANNEL, platform=PLATFORM, msg=msg, replies=replies, failure=failure)

    async def send(self, notice: Notice) -> str | None:
        """The outbox's path (rows left by a dead process): process, then queue the replies."""
        await process_alone(self._core, self.process, notice)
        return None

    async def _registered(self, msg: IncomingMessage) -> IncomingMessage:
        """The message as from the id its sender is registered under: user_id first, then open_id."""
        for candidate in (str(msg.reply_hint.get("user_id") or ""), str(msg.reply_hint.get("open_id") or "")):
            if candidate and await people.get(self._core, platform=PLATFORM, user_id=candidate) is not None:
                return msg if candidate == msg.sender_id else with_sender(msg, candidate)
        return msg


class Inbound:
    """Accepts events (HTTP body or long-connection payload) and processes them in the background."""

    def __init__(self, core: Core, outbox: Outbox, background: set[asyncio.Task[None]], sender: InboundSender) -> None:
        self._core = core
        self._outbox = outbox
        self.intake = ChatIntake(core, PLATFORM, background, process=sender.process, fail=outbox.fail)

    def _row(self, body: Mapping[str, Any], msg: IncomingMessage, now: datetime) -> Notice:
        return work_row(
            self._core,
            now,
            channel=INBOUND_CHANNEL,
            platform=PLATFORM,
            key=envelope(body).dedupe_key,
            recipient=msg.sender_id,
            text=msg.text,
            payload={"msg": message_to_payload(msg)},
        )

    async def receive(self, body: Mapping[str, Any]) -> bool:
        """Store the event (committed on return), then process it in the background. False for a
        redelivery; ``ParseError`` for an event that is not a message or one of our card clicks."""
        msg = parse_event(body)
        key = envelope(body).dedupe_key
        job_id = await self.intake.store(key, lambda now: self._row(body, msg, now))
        if job_id is None:
            return False
        self.intake.submit(job_id)
        return True

    async def close(self) -> None:
        """Let work in flight finish briefly; what is cut off stays in the outbox for a retry."""
        await self.intake.close()
