"""Handler replies go out through the outbox, so they are paced, retried and never lost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.chat.messages import IncomingMessage, Reply
from bot.chat.payload import reply_to_payload
from bot.services.context import Core
from storage.models import Notice


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
    past the inbound dedupe still cannot produce a second reply.
    """
    if not replies:
        return []
    now = core.clock.now()
    rows = []
    async with core.sessions() as session:
        for n, reply in enumerate(replies):
            row = Notice(
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
            session.add(row)
            rows.append(row)
        await session.commit()
    core.wake_outbox()
    return rows
