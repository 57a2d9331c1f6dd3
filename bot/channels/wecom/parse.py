"""Decrypted WeCom callbacks → neutral ``IncomingMessage`` (or ``None`` for what the bot ignores).

Self-built app callbacks are XML, parsed by wechatpy's ``parse_message``. wechatpy 1.8 does not
know ``template_card_event`` (button clicks) and returns an ``UnknownMessage`` whose raw dict
is read here. AI bot (智能机器人) callbacks are JSON.

Every result carries a dedupe key, unique per logical message, used both for the database
claim and as the message id (so reply dedupe keys differ between app and AI bot messages):
``msg:<MsgId>``; ``card:<sha1(TaskId, EventKey, user)>``; ``aibot:<msgid>``. A message without
its id gets one derived from what it has (``msgh:<sha1(user, CreateTime, content)>``,
``aibot:h:<sha256(payload)>``), never a shared ``msg:None``. Ids longer than WeCom's are refused
(``MAX_ID``): a 64-bit MsgId has 20 digits, user ids at most 64 characters. Other events
(enter_agent, subscribe, menu clicks...) are ignored, so they need no key (WeCom's advice for
them would be FromUserName + CreateTime).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote
from xml.parsers.expat import ExpatError

from wechatpy.enterprise import parse_message

from bot.channels.wecom.crypto import MalformedError
from bot.chat.messages import IncomingMessage

log = logging.getLogger(__name__)

PLATFORM = "wecom"
# Button keys carry the command text the click stands for: "cmd:" + percent-encoded text.
BUTTON_PREFIX = "cmd:"
MAX_ID = 128


def button_key(command: str) -> str:
    return BUTTON_PREFIX + quote(command, safe="")


def command_from_key(key: str) -> str | None:
    if not key.startswith(BUTTON_PREFIX):
        return None
    return unquote(key[len(BUTTON_PREFIX) :]) or None


@dataclass(frozen=True)
class WeComEnvelope:
    """A parsed callback worth processing."""

    msg: IncomingMessage
    dedupe_key: str
    # Card clicks: {"response_code", "task_id", "event_key"} for updating the card.
    card: Mapping[str, str] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any, name: str) -> str:
    """An id field as text ('' when absent); MalformedError when longer than any WeCom id."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else ""
    if len(text) > MAX_ID:
        raise MalformedError(f"{name} is longer than {MAX_ID} characters")
    return text


def read_app_xml(plaintext: str) -> Any:
    """wechatpy's reading of a decrypted app callback, or MalformedError for XML that is not a
    WeCom message: wechatpy fails with whatever its dict access meets (an empty ``MsgType`` is
    ``None.lower()``, a text root is a string index)."""
    try:
        message = parse_message(plaintext)
    except (ExpatError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise MalformedError(f"decrypted XML is not a WeCom message: {type(exc).__name__}") from exc
    if message is None:
        raise MalformedError("empty message")
    return message


def parse_app_xml(plaintext: str) -> WeComEnvelope | None:
    """Self-built app: text messages and template card clicks; other types are ignored."""
    message = read_app_xml(plaintext)
    data: dict[str, Any] = dict(message._data)
    user = _id(data.get("FromUserName"), "FromUserName")
    if not user:
        log.info("ignoring WeCom callback without FromUserName (%s)", data.get("MsgType"))
        return None
    if message.type == "text":
        content = _text(data.get("Content"))
        wecom_id = _id(data.get("MsgId"), "MsgId")
        if wecom_id:
            msg_id = f"msg:{wecom_id}"
        else:  # never seen from WeCom, but one missing id must not swallow every later one
            seed = f"{user}\n{_text(data.get('CreateTime'))}\n{content}"
            msg_id = f"msgh:{hashlib.sha1(seed.encode()).hexdigest()}"  # noqa: S324 - a key, not a MAC
        return WeComEnvelope(_direct(user, content, msg_id, data), msg_id)
    event = _text(data.get("Event")).lower()
    if _text(data.get("MsgType")).lower() == "event" and event == "template_card_event":
        event_key = _text(data.get("EventKey"))
        task_id = _text(data.get("TaskId"))
        command = command_from_key(event_key)
        if command is None:
            log.info("ignoring card click with unknown key from %s", user)
            return None
        digest = hashlib.sha1(f"{task_id}\n{event_key}\n{user}".encode()).hexdigest()  # noqa: S324 - a key, not a MAC
        msg_id = f"card:{digest}"
        card = {"response_code": _text(data.get("ResponseCode")), "task_id": task_id, "event_key": event_key}
        return WeComEnvelope(_direct(user, command, msg_id, data), msg_id, card)
    log.debug("ignoring WeCom %s/%s from %s", data.get("MsgType"), event or "-", user)
    return None


def _direct(user: str, text: str, msg_id: str, raw: dict[str, Any]) -> IncomingMessage:
    return IncomingMessage(
        platform=PLATFORM, sender_id=user, chat_id=user, chat_type="direct", text=text, msg_id=msg_id, raw=raw
    )


def parse_aibot_json(data: Mapping[str, Any]) -> WeComEnvelope | None:
    """AI bot: text (also voice transcripts and the text parts of mixed messages) in 1:1 and groups."""
    msgtype = _text(data.get("msgtype"))
    sender = data.get("from")
    user = _id(sender.get("userid"), "from.userid") if isinstance(sender, Mapping) else ""
    msgid = _id(data.get("msgid"), "msgid")
    if not user:
        if msgtype not in {"event", "stream"}:
            log.info("ignoring AI bot callback without from.userid (%s)", msgtype)
        return None
    if not msgid:  # derive one from the whole payload rather than drop the message
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        msgid = "h:" + hashlib.sha256(canonical).hexdigest()
    text = _aibot_text(msgtype, data)
    if text is None:
        log.debug("ignoring AI bot %s from %s", msgtype, user)
        return None
    response_url = _text(data.get("response_url"))
    msg = _aibot_message(data, user, text, f"aibot:{msgid}", {"response_url": response_url} if response_url else {})
    return WeComEnvelope(msg, msg.msg_id)


def _aibot_message(
    data: Mapping[str, Any], user: str, text: str, msg_id: str, reply_hint: Mapping[str, Any]
) -> IncomingMessage:
    group = data.get("chattype") == "group" and bool(data.get("chatid"))
    return IncomingMessage(
        platform=PLATFORM,
        sender_id=user,
        chat_id=_id(data.get("chatid"), "chatid") if group else user,
        chat_type="group" if group else "direct",
        text=text,
        msg_id=msg_id,
        reply_hint=reply_hint,
        raw=dict(data),
    )


def _aibot_text(msgtype: str, data: Mapping[str, Any]) -> str | None:
    body = data.get(msgtype)
    if not isinstance(body, Mapping):
        return None
    if msgtype in {"text", "voice"}:
        return _text(body.get("content"))
    if msgtype == "mixed":
        items = body.get("msg_item")
        parts = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, Mapping) and item.get("msgtype") == "text" and isinstance(item.get("text"), Mapping):
                parts.append(_text(item["text"].get("content")))
        return " ".join(p for p in parts if p) or None
    return None


def parse_aibot_event(data: Mapping[str, Any]) -> WeComEnvelope | None:
    """AI bot event callback (long connection): a template card click becomes the command its
    button stands for, like a typed one; other events (enter_chat, feedback_event) are ignored.

    The click's fields are read from ``event`` itself (as aibot-node-sdk types them) or from
    ``event.template_card_event`` (as the URL-callback JSON nests them)."""
    event = data.get("event")
    if not isinstance(event, Mapping) or event.get("eventtype") != "template_card_event":
        return None
    sender = data.get("from")
    user = _id(sender.get("userid"), "from.userid") if isinstance(sender, Mapping) else ""
    nested = event.get("template_card_event")
    fields: Mapping[str, Any] = nested if isinstance(nested, Mapping) else event
    event_key = _text(fields.get("event_key"))
    task_id = _id(fields.get("task_id"), "task_id")
    command = command_from_key(event_key)
    if not user or command is None:
        log.info("ignoring AI bot card click without a user or with an unknown key")
        return None
    msgid = _id(data.get("msgid"), "msgid")
    if not msgid:
        msgid = "card:" + hashlib.sha1(f"{task_id}\n{event_key}\n{user}".encode()).hexdigest()  # noqa: S324 - a key
    msg = _aibot_message(data, user, command, f"aibot:{msgid}", {})
    return WeComEnvelope(msg, msg.msg_id, {"task_id": task_id, "event_key": event_key})
