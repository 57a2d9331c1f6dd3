"""DingTalk robot messages (HTTP callbacks and Stream mode) through the intake.

This module supplies only what is DingTalk's: which ``ChatItem`` a callback is (key: its
``msgId``; sender: ``senderStaffId`` or ``senderId``; payload: the callback JSON) and how to answer
it (outbox rows on the "dingtalk" channel). Storing (with HTTP mode's sign binding in the same
transaction), processing in batches, retries and at-most-once replies are
``bot.intake.ChatIntake``'s (source ``dingtalk``). A repeat can at worst re-run a handler whose
effects are themselves guarded (a closed confirmation is not confirmed twice; termination claims
the interview), and its replies are dropped because reply dedupe keys derive from the ``msgId``.

In Stream mode the frame is acked before the message is stored (``receive_detached``): DingTalk
does not redeliver robot messages whatever the ack says, so holding the ack would not make them
any safer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from bot.channels.dingtalk.parse import PLATFORM, ParseError, dedupe_key, parse_callback
from bot.channels.dingtalk.sender import CHANNEL
from bot.chat.messages import IncomingMessage, Reply
from bot.chat.payload import ReplyRow, chat_reply_rows
from bot.dispatcher import Dispatcher
from bot.intake import ChatIntake, ChatItem, ExtraRows, Unreadable
from bot.services.context import Core
from storage.models import IntakeItem

log = logging.getLogger(__name__)


def _item(body: Mapping[str, Any]) -> ChatItem:
    sender = str(body.get("senderStaffId") or body.get("senderId") or "")
    return ChatItem(dedupe_key(body), sender, {"callback": dict(body)})


class DingTalkChat:
    """DingTalk's robot messages: ``receive`` stores one, ``process`` answers a stored one."""

    def __init__(self, core: Core, dispatcher: Dispatcher, background: set[asyncio.Task[None]]) -> None:
        self._core = core
        self.intake = ChatIntake(core, PLATFORM, background, dispatcher=dispatcher, channel=self)

    def start(self) -> None:
        self.intake.start()

    async def receive(self, body: Mapping[str, Any], extra: ExtraRows = ()) -> bool:
        """Store the message (and ``extra`` rows) in one transaction (group commit with other
        callbacks arriving together) and have it processed soon. False for a redelivery or a
        callback that is not a robot message; ``intake.Refused`` if the database refuses it."""
        try:
            parse_callback(body)
        except ParseError as exc:
            log.warning("ignoring a DingTalk callback that is not a robot message: %s", exc)
            self._core.metrics.callback(PLATFORM, "rejected")
            return False
        return await self.intake.receive(_item(body), extra)

    def receive_detached(self, body: Mapping[str, Any]) -> None:
        """For Stream mode: store the message without holding up the frame's ack."""
        try:
            parse_callback(body)
        except ParseError as exc:
            log.warning("ignoring a DingTalk stream message that is not a robot message: %s", exc)
            self._core.metrics.callback(PLATFORM, "rejected")
            return
        self.intake.receive_detached(_item(body))

    async def take(self, item: IntakeItem) -> IncomingMessage:
        try:
            return parse_callback(item.payload["callback"])
        except (ParseError, KeyError, TypeError, AttributeError) as exc:
            raise Unreadable(f"cannot parse the DingTalk message: {exc}") from exc

    def reply(self, item: IntakeItem, msg: IncomingMessage, replies: list[Reply]) -> list[ReplyRow]:
        return chat_reply_rows(self._core.clock.now(), channel=CHANNEL, platform=PLATFORM, msg=msg, replies=replies)

    async def close(self) -> None:
        """Let work in flight finish briefly; what is cut off stays stored and is processed later."""
        await self.intake.close()
