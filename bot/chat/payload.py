"""The payload codecs: a received ``IncomingMessage`` as stored in its intake item, and a ``Reply`` as
stored in an outbox row's JSON payload, and back (one codec for every channel: a message is parsed
once, when it is taken in); ``reply_rows``: the outbox rows that carry replies to a message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.chat.messages import IncomingMessage, Reply
from storage.models import Notice

# An outbox row as its column values (``Notice.values``), ready for a bulk INSERT.
ReplyRow = dict[str, Any]


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


def reply_rows(
    now: datetime,
    *,
    channel: str,
    msg: IncomingMessage,
    replies: Sequence[Reply],
    recipient: str,
    destination: str,
    extra: Mapping[str, Any] | None = None,
) -> list[ReplyRow]:
    """The outbox rows (column values, not stored: ``Notice.values``) that send ``replies`` to ``msg``
    by ``channel``'s sender.

    Dedupe keys derive from the message id (``reply:<platform>:<msg_id>:<n>``), so a message
    processed again (after a crash, or a claim taken over) cannot produce a second reply: the
    database refuses them (the replies were queued by an earlier try).
    """
    return [
        Notice.values(
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


def chat_reply_rows(
    now: datetime, *, channel: str, platform: str, msg: IncomingMessage, replies: Sequence[Reply]
) -> list[ReplyRow]:
    """``replies`` to ``msg`` in the chat it came from (``<platform>:group|user:<chat id>``)."""
    kind = "group" if msg.chat_type == "group" else "user"
    return reply_rows(
        now,
        channel=channel,
        msg=msg,
        replies=replies,
        recipient=msg.sender_id,
        destination=f"{platform}:{kind}:{msg.chat_id}",
    )
