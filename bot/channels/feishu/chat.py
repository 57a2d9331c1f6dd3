"""Feishu messages and card clicks (HTTP callbacks and the long connection) through the intake.

``FeishuChat.receive`` commits the event as an intake item (source "feishu", key
``msg:<message_id>`` or ``event:<event_id>``, sender the event's sender, payload the parsed
message) through ``bot.intake.ChatIntake``, and only then is Feishu answered (HTTP 200, or the
frame's ack on the long connection), so an event Feishu saw acknowledged is never lost; a
redelivery finds its key and is dropped. Processing, retries and what a dead process left are the
intake's (``bot.intake``, ``bot.intake_worker``).

Taking a stored message up (``FeishuChat.take``): in a group only a message that @-mentions the bot is acted on (the
bot's open_id from ``bot/v3/info``), with the mention removed; a card click is acted on as its
command. The sender is the person registered under the event's ``user_id``, else under its
``open_id`` (``python -m bot people add --platform feishu --user-id <user_id or open_id>``); an
unregistered sender is told their user_id (or open_id when the app may not read user ids).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.channels.feishu.api import FeishuApi, FeishuError
from bot.channels.feishu.parse import PLATFORM, ParseError, envelope, parse_event, with_sender, without_mention
from bot.channels.feishu.sender import CHANNEL
from bot.chat.messages import IncomingMessage, Reply
from bot.chat.payload import ReplyRow, chat_reply_rows, message_from_payload, message_to_payload
from bot.dispatcher import Dispatcher
from bot.intake import ChatIntake, ChatItem, Unreadable
from bot.services import people
from bot.services.context import Core
from storage.models import IntakeItem

log = logging.getLogger(__name__)


class BotUnknown(Exception):
    """The bot's own open_id could not be learnt (``bot/v3/info``): the message is tried again."""


class FeishuChat:
    """Feishu's messages: ``receive`` stores one, ``process`` answers a stored one."""

    def __init__(self, core: Core, dispatcher: Dispatcher, api: FeishuApi, background: set[asyncio.Task[None]]) -> None:
        self._core = core
        self._api = api
        self.intake = ChatIntake(core, PLATFORM, background, dispatcher=dispatcher, channel=self)

    def start(self) -> None:
        self.intake.start()

    async def receive(self, body: Mapping[str, Any]) -> bool:
        """Store the event (committed on return) and have it processed soon. False for a
        redelivery; ``ParseError`` for an event that is not a message or one of our card clicks."""
        msg = parse_event(body)
        item = ChatItem(envelope(body).dedupe_key, msg.sender_id, {"msg": message_to_payload(msg)})
        return await self.intake.receive(item)

    async def close(self) -> None:
        """Let work in flight finish briefly; what is cut off stays stored and is processed later."""
        await self.intake.close()

    async def take(self, item: IntakeItem) -> IncomingMessage | None:
        """The stored message, as from the id its sender is registered under; None for a group
        message that does not mention the bot."""
        try:
            # Parsed once when it was taken in; an item moved from an older version may hold the raw event.
            stored = item.payload.get("msg")
            msg = message_from_payload(stored) if stored is not None else parse_event(item.payload["event"])
        except (ParseError, KeyError, TypeError, AttributeError) as exc:
            raise Unreadable(f"cannot read the stored Feishu message: {exc}") from exc
        hint = msg.reply_hint
        if msg.chat_type == "group" and not hint.get("card"):
            try:
                bot_open_id = await self._api.bot_open_id()
            except (FeishuError, aiohttp.ClientError, TimeoutError) as exc:
                raise BotUnknown(f"bot/v3/info: {exc}") from exc
            mentioned, text = without_mention(hint, bot_open_id)
            if not mentioned:
                log.debug("Feishu group message %s does not mention the bot; ignored", msg.msg_id)
                return None
            msg = with_sender(msg, msg.sender_id, text=text)
        return await self._registered(msg)

    def reply(self, item: IntakeItem, msg: IncomingMessage, replies: list[Reply]) -> list[ReplyRow]:
        return chat_reply_rows(self._core.clock.now(), channel=CHANNEL, platform=PLATFORM, msg=msg, replies=replies)

    async def _registered(self, msg: IncomingMessage) -> IncomingMessage:
        """The message as from the id its sender is registered under: user_id first, then open_id."""
        for candidate in (str(msg.reply_hint.get("user_id") or ""), str(msg.reply_hint.get("open_id") or "")):
            if candidate and await people.get(self._core, platform=PLATFORM, user_id=candidate) is not None:
                return msg if candidate == msg.sender_id else with_sender(msg, candidate)
        return msg
