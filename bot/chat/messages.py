"""Neutral message types shared by every chat platform.

Nothing platform-specific crosses this boundary: channels turn their wire format
into an ``IncomingMessage`` and turn a ``Reply`` back into their wire format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ChatType = Literal["direct", "group"]
# Who writes: staff (registered people, answered by the commands) or a candidate (a customer-service
# chat such as WeCom kf, answered by the candidate handlers).
SenderKind = Literal["staff", "candidate"]

# "text" and "confirm" are plain text: each sender escapes them for its message type (bot.chat.markup).
# "markdown" is markdown already, its values escaped where it was written (a ``*.md.j2`` template).
ReplyKind = Literal["text", "markdown", "confirm"]
# A button of a confirm reply: (label shown, command text a press stands for).
Button = tuple[str, str]

# A press of a prompt's button names the prompt: "<command> #<prompt id>" (e.g. "确认 #123"),
# so a late press or one on an older card answers that prompt and no other.
_PROMPT_REF = re.compile(r"^#?(\d{1,18})$")


def pressed(command: str, prompt_id: int) -> str:
    """The command text a button of prompt ``prompt_id`` stands for: ``确认 #123``."""
    return f"{command} #{prompt_id}"


def prompt_ref(args: str) -> int | None:
    """The prompt id a command's arguments name (``#123``, or ``123`` as typed), else None."""
    found = _PROMPT_REF.match(args.strip())
    return int(found.group(1)) if found else None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One inbound chat message or button click, whatever the platform."""

    platform: str  # "wecom", "dingtalk", "console"
    sender_id: str  # the platform's user id (WeCom userid, DingTalk staffId)
    chat_id: str  # conversation id; for 1:1 chats the sender id
    chat_type: ChatType
    text: str
    msg_id: str
    # Where a reply can go without an access token (response_url, sessionWebhook), if any.
    reply_hint: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    sender_kind: SenderKind = "staff"

    @property
    def sender_key(self) -> str:
        """The operator id written to audit logs: ``platform:user_id``."""
        return f"{self.platform}:{self.sender_id}"


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler wants said back. ``confirm`` carries button choices."""

    text: str
    kind: ReplyKind = "text"
    title: str = ""
    # For kind == "confirm": (button label, command text the click stands for).
    buttons: tuple[Button, ...] = ()
