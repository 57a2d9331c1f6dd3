"""The reply payload codec: a ``Reply`` as stored in an outbox row's JSON payload, and back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from bot.chat.messages import Reply


def reply_to_payload(reply: Reply) -> dict[str, Any]:
    return asdict(reply)


def reply_from_payload(data: Mapping[str, Any]) -> Reply:
    return Reply(
        text=data["text"],
        kind=data.get("kind", "text"),
        title=data.get("title", ""),
        buttons=tuple((label, command) for label, command in data.get("buttons", ())),
    )
