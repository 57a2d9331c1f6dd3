"""A DingTalk robot callback (HTTP body or Stream ``data``) → neutral ``IncomingMessage``.

Both receive modes deliver the same JSON. Group text arrives with the @robot mention
removed but its leading space kept; the sender is identified by ``senderStaffId``
(empty for people outside the organisation, who then fall back to the opaque ``senderId``
and are refused by the dispatcher like any unknown user).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bot.chat.messages import ChatType, IncomingMessage

PLATFORM = "dingtalk"
# DingTalk's ids are short (msgId ~30 characters, staff ids ≤ 64, conversation ids ~40); longer ones
# are not DingTalk's and would not fit our columns (intake_item.key is 300).
MAX_ID = 128


class ParseError(ValueError):
    """The callback lacks what every robot message has."""


def message_text(body: Mapping[str, Any]) -> str:
    """The typed text; rich text keeps its text parts; pictures, audio and files give ''."""
    kind = body.get("msgtype")
    if kind == "text":
        text = body.get("text") or {}
        return str(text.get("content") or "").strip() if isinstance(text, Mapping) else ""
    if kind == "richText":
        content = body.get("content")
        parts = content.get("richText") if isinstance(content, Mapping) else None
        if not isinstance(parts, list):
            return ""
        return "".join(str(p.get("text", "")) for p in parts if isinstance(p, Mapping)).strip()
    return ""


def _id(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > MAX_ID:
        raise ParseError(f"{name} is not a DingTalk id (a string of at most {MAX_ID} characters)")
    return value


def _millis(body: Mapping[str, Any], name: str) -> int:
    """A millisecond timestamp field: an integer (or a string of digits), 0 when absent."""
    value = body.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**15:
        return value
    raise ParseError(f"{name} is not a millisecond timestamp")


def dedupe_key(body: Mapping[str, Any]) -> str:
    """``msgId``; a digest of the body for the (undocumented) case of a message without one."""
    msg_id = _id(body, "msgId")
    if msg_id:
        return msg_id
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def parse_callback(body: Mapping[str, Any]) -> IncomingMessage:
    sender = _id(body, "senderStaffId") or _id(body, "senderId")
    if not sender:
        raise ParseError("callback has neither senderStaffId nor senderId")
    conversation_type = body.get("conversationType") or "1"
    if conversation_type not in ("1", "2", 1, 2):
        raise ParseError("conversationType is neither 1 nor 2")
    conversation_type = str(conversation_type)
    chat_type: ChatType = "group" if conversation_type == "2" else "direct"
    conversation_id = _id(body, "conversationId")
    if chat_type == "group" and not conversation_id:
        raise ParseError("group callback without conversationId")
    hint: dict[str, Any] = {
        "conversation_type": conversation_type,
        "conversation_id": conversation_id,
        "robot_code": _id(body, "robotCode"),
    }
    expires_ms = _millis(body, "sessionWebhookExpiredTime")
    webhook = body.get("sessionWebhook")
    if webhook:
        if not isinstance(webhook, str) or len(webhook) > 1024:
            raise ParseError("sessionWebhook is not a URL")
        hint["session_webhook"] = webhook
        hint["session_webhook_expires_ms"] = expires_ms
    return IncomingMessage(
        platform=PLATFORM,
        sender_id=sender,
        chat_id=conversation_id if chat_type == "group" else sender,
        chat_type=chat_type,
        text=message_text(body),
        msg_id=dedupe_key(body),
        reply_hint=hint,
        raw=dict(body),
    )
