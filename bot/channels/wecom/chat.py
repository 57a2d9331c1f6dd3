"""WeCom chat messages (app callback, AI bot callback, AI bot long connection) through the intake.

This module supplies only what is WeCom's: which ``ChatItem`` a parsed callback is (key: its
dedupe key, ``msg:<MsgId>`` or the event's; sender: the member; payload: where it came from, the
neutral message and, for a card click, the card) and how to answer it (app message, the AI bot's
response_url, or the long connection's req_id). Storing, processing in batches, retries and
at-most-once replies are ``bot.intake.ChatIntake``'s (source ``wecom``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from bot.channels.wecom.parse import PLATFORM, WeComEnvelope
from bot.channels.wecom.sender import AIBOT_CHANNEL, APP_CHANNEL, update_card_notice
from bot.chat.messages import IncomingMessage, Reply
from bot.chat.payload import ReplyRow, message_from_payload, message_to_payload, reply_rows
from bot.dispatcher import Dispatcher
from bot.intake import ChatIntake, ChatItem, Unreadable
from bot.services.context import Core
from bot.services.notices import queue_now
from storage.models import IntakeItem

log = logging.getLogger(__name__)

Source = Literal["app", "aibot", "aibot_ws"]
# Outbox channel of replies to AI bot messages that came over the long connection.
AIBOT_WS_CHANNEL = "wecom_aibot_ws"


def merge_replies(replies: list[Reply]) -> list[Reply]:
    """AI bot replies go through a single-use response_url: one row carries all of the text."""
    if len(replies) <= 1:
        return replies
    return [Reply("\n\n".join(r.text for r in replies), title=replies[0].title)]


def chat_item(envelope: WeComEnvelope, *, source: Source) -> ChatItem:
    """The intake item of a parsed WeCom message: keyed by its dedupe key, ordered by its sender."""
    msg = envelope.msg
    payload = {"source": source, "msg": message_to_payload(msg), "card": dict(envelope.card)}
    return ChatItem(envelope.dedupe_key, msg.sender_id, payload)


class WeComChat:
    """WeCom's chat messages: ``receive`` stores one, ``process`` answers a stored one."""

    def __init__(
        self,
        core: Core,
        dispatcher: Dispatcher,
        *,
        background: set[asyncio.Task[None]],
        app_replies: bool,
    ) -> None:
        self.core = core
        # Whether app messages can be sent (the "wecom" sender exists).
        self.app_replies = app_replies
        self.intake = ChatIntake(core, PLATFORM, background, dispatcher=dispatcher, channel=self)

    def start(self) -> None:
        self.intake.start()

    async def receive(self, envelope: WeComEnvelope, *, source: Source) -> bool:
        """Store one message (group commit) and have it processed soon; True once committed, False
        for a redelivery."""
        return await self.intake.receive(chat_item(envelope, source=source))

    async def close(self) -> None:
        """Let in-flight messages finish briefly; anything cut off is processed again later."""
        await self.intake.close()

    async def take(self, item: IntakeItem) -> IncomingMessage:
        """The stored message; a clicked card is greyed out first (the command may take a while:
        platform calls)."""
        try:
            msg = message_from_payload(item.payload["msg"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Unreadable(f"cannot read the stored WeCom message: {exc}") from exc
        card = item.payload.get("card") or {}
        if card.get("response_code") and self.app_replies:
            card_row = update_card_notice(
                user=msg.sender_id,
                response_code=card["response_code"],
                command=msg.text,
                now=self.core.clock.now(),
                dedupe=msg.msg_id,
            )
            await queue_now(self.core, [card_row])
        return msg

    def reply(self, item: IntakeItem, msg: IncomingMessage, replies: list[Reply]) -> list[ReplyRow]:
        """Answered the way it came: the AI bot's response_url (one row), the long connection's req_id,
        or an app message."""
        source: Source = item.payload.get("source", "app")
        if source == "aibot":
            channel, replies = AIBOT_CHANNEL, merge_replies(replies)
            destination = f"{AIBOT_CHANNEL}:{msg.chat_id}"
        elif source == "aibot_ws":
            # One row per reply: the first answers the callback's req_id, the others are pushed.
            channel, destination = AIBOT_WS_CHANNEL, f"{AIBOT_WS_CHANNEL}:{msg.chat_id}"
        elif self.app_replies:
            channel, destination = APP_CHANNEL, f"{APP_CHANNEL}:user:{msg.sender_id}"
        else:
            log.warning("no way to answer WeCom message %s: the app is not configured", msg.msg_id)
            return []
        return reply_rows(
            self.core.clock.now(),
            channel=channel,
            msg=msg,
            replies=replies,
            recipient=msg.sender_id,
            destination=destination,
        )
