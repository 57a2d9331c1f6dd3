"""The payload codecs: a received ``IncomingMessage`` as stored in its work row, and a ``Reply`` as
stored in an outbox row's JSON payload, and back (one codec for every channel: a message is parsed
once, when it is taken in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from bot.chat.messages import IncomingMessage, Reply


def reply_to_payload(reply: Reply) -> dict[str, Any]:
    return asdict(reply)


def reply_from_payload(data: Mapping[str, Any]) -> Reply:
    return Reply(
        text=data["text"],
        kind=data.get("kind", "text"),
        title=data.get("title", ""),
        buttons=tuple((label, command) for label, command in data.get("buttons", ())),
    )


def message_to_payload(msg: IncomingMessage) -> dict[str, Any]:
    data = asdict(msg)
    data["reply_hint"] = dict(msg.reply_hint)
    data["raw"] = dict(msg.raw)
    return data


def message_from_payload(data: Mapping[str, Any]) -> IncomingMessage:
    return IncomingMessage(
        platform=data["platform"],
        sender_id=data["sender_id"],
        chat_id=data["chat_id"],
        chat_type=data["chat_type"],
        text=data["text"],
        msg_id=data["msg_id"],
        reply_hint=dict(data.get("reply_hint") or {}),
        raw=dict(data.get("raw") or {}),
        sender_kind=data.get("sender_kind", "staff"),
    )
