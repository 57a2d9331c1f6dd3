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

from bot.channels.base import ChatType, IncomingMessage

PLATFORM = "dingtalk"


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


def dedupe_key(body: Mapping[str, Any]) -> str:
    """``msgId``; a digest of the body for the (undocumented) case of a message without one."""
    msg_id = body.get("msgId")
    if isinstance(msg_id, str) and msg_id:
        return msg_id
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def parse_callback(body: Mapping[str, Any]) -> IncomingMessage:
    sender = str(body.get("senderStaffId") or body.get("senderId") or "")
    if not sender:
        raise ParseError("callback has neither senderStaffId nor senderId")
    conversation_type = str(body.get("conversationType") or "1")
    chat_type: ChatType = "group" if conversation_type == "2" else "direct"
    conversation_id = str(body.get("conversationId") or "")
    if chat_type == "group" and not conversation_id:
        raise ParseError("group callback without conversationId")
    hint: dict[str, Any] = {
        "conversation_type": conversation_type,
        "conversation_id": conversation_id,
        "robot_code": body.get("robotCode") or "",
    }
    if body.get("sessionWebhook"):
        hint["session_webhook"] = body["sessionWebhook"]
        hint["session_webhook_expires_ms"] = int(body.get("sessionWebhookExpiredTime") or 0)
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
