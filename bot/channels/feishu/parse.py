"""A Feishu event (HTTP body after decryption, or a long-connection frame's payload) → neutral
``IncomingMessage``.

Two events matter, both in the 2.0 schema (``{"schema": "2.0", "header": {...}, "event": {...}}``):

- ``im.message.receive_v1``: a message to the bot. The sender has an ``open_id`` (per app), a
  ``union_id`` and, when the app may read user ids (contact:user.id:readonly), a ``user_id``.
  ``chat_type`` is ``p2p`` or ``group``; in a group the text carries ``@_user_1`` placeholders,
  one per entry of ``mentions`` (the bot's own among them when it was @-mentioned).
- ``card.action.trigger``: a button of one of our cards was clicked. Its ``action.value`` is
  what we put on the button: ``{"command": "确认", "chat_type": "group"}``.

Keys: a message is taken in once per ``message_id`` (a redelivered event carries its event_id and
its message_id, so this dedupes both ways), any other event once per ``event_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.bounded import BadInput, load_json
from bot.chat.messages import ChatType, IncomingMessage

PLATFORM = "feishu"
MESSAGE_EVENT = "im.message.receive_v1"
CARD_EVENT = "card.action.trigger"
URL_VERIFICATION = "url_verification"
# Feishu ids (om_…, oc_…, ou_…, event ids) are 30-70 characters; longer ones are not Feishu's.
MAX_ID = 128
MAX_COMMAND = 200


class ParseError(ValueError):
    """The event lacks what every event of its type has."""


class NotForUs(ParseError):
    """A well-formed event the bot does not act on (e.g. a message sent by an app)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The 2.0 schema header of one event."""

    event_type: str
    event_id: str
    token: str
    app_id: str
    event: Mapping[str, Any]

    @property
    def dedupe_key(self) -> str:
        if self.event_type == MESSAGE_EVENT:
            message = self.event.get("message")
            message_id = _id(message, "message_id") if isinstance(message, Mapping) else ""
            if message_id:
                return f"msg:{message_id}"
        return f"event:{self.event_id}"


def _id(data: Any, name: str) -> str:
    value = data.get(name) if isinstance(data, Mapping) else None
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > MAX_ID:
        raise ParseError(f"{name} is not a Feishu id (a string of at most {MAX_ID} characters)")
    return value


def envelope(body: Mapping[str, Any]) -> Envelope:
    if body.get("schema") != "2.0":
        raise ParseError("not a 2.0 schema event")
    header = body.get("header")
    event = body.get("event")
    if not isinstance(header, Mapping) or not isinstance(event, Mapping):
        raise ParseError("event without header or event")
    event_type = header.get("event_type")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_ID:
        raise ParseError("header.event_type missing")
    event_id = _id(header, "event_id")
    if not event_id:
        raise ParseError("header.event_id missing")
    token = header.get("token")
    return Envelope(
        event_type=event_type,
        event_id=event_id,
        token=token if isinstance(token, str) else "",
        app_id=_id(header, "app_id"),
        event=event,
    )


def _user(ids: Any) -> tuple[str, str]:
    """(user_id, open_id) of a sender_id / operator object."""
    return _id(ids, "user_id"), _id(ids, "open_id")


def _content(message: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = message.get("content")
    if not isinstance(raw, str):
        return {}
    try:
        data = load_json(raw)
    except BadInput as exc:
        raise ParseError(f"message.content: {exc}") from exc
    return data if isinstance(data, Mapping) else {}


def _post_text(content: Mapping[str, Any]) -> str:
    """A rich-text (post) message's text, mentions as their placeholder keys."""
    body = content
    if "content" not in body:  # {"zh_cn": {"title", "content"}} in some versions
        body = next((v for v in content.values() if isinstance(v, Mapping)), {})
    lines = body.get("content") if isinstance(body, Mapping) else None
    out: list[str] = []
    for line in lines if isinstance(lines, list) else []:
        parts: list[str] = []
        for el in line if isinstance(line, list) else []:
            if not isinstance(el, Mapping):
                continue
            if el.get("tag") in ("text", "a", "md"):
                parts.append(str(el.get("text") or ""))
            elif el.get("tag") == "at":
                parts.append(str(el.get("user_id") or ""))
        out.append("".join(parts))
    return "\n".join(out)


def _mentions(message: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(placeholder key, open_id, name) of each mention."""
    found = []
    for m in message.get("mentions") or []:
        if isinstance(m, Mapping) and isinstance(m.get("key"), str):
            found.append((str(m["key"]), _id(m.get("id"), "open_id"), str(m.get("name") or "")))
    return found


def message_text(message: Mapping[str, Any]) -> str:
    """The typed text with @-mention placeholders replaced by ``@name`` (pictures and files: '')."""
    kind = message.get("message_type")
    content = _content(message)
    if kind == "text":
        text = str(content.get("text") or "")
    elif kind == "post":
        text = _post_text(content)
    else:
        return ""
    # Longest keys first: @_user_10 before @_user_1.
    for key, _, name in sorted(_mentions(message), key=lambda m: -len(m[0])):
        text = text.replace(key, f"@{name}" if name else "")
    return text.strip()


def _message(env: Envelope) -> IncomingMessage:
    event = env.event
    sender = event.get("sender")
    message = event.get("message")
    if not isinstance(sender, Mapping) or not isinstance(message, Mapping):
        raise ParseError("message event without sender or message")
    if sender.get("sender_type") not in (None, "", "user"):
        raise NotForUs("message from an app, not a person")
    user_id, open_id = _user(sender.get("sender_id"))
    if not (user_id or open_id):
        raise ParseError("sender has neither user_id nor open_id")
    message_id = _id(message, "message_id")
    chat_id = _id(message, "chat_id")
    if not message_id or not chat_id:
        raise ParseError("message without message_id or chat_id")
    chat_type: ChatType = "direct" if message.get("chat_type") == "p2p" else "group"
    # Mentions of the bot are told apart later (its open_id comes from the bot info API).
    mentions = _mentions(message)
    text = message_text(message)
    hint = {
        "message_id": message_id,
        "chat_id": chat_id,
        "user_id": user_id,
        "open_id": open_id,
        "mentions": [[key, mid, name] for key, mid, name in mentions],
        "raw_text": _raw_text(message),
    }
    sender_id = user_id or open_id
    return IncomingMessage(
        platform=PLATFORM,
        sender_id=sender_id,
        chat_id=chat_id if chat_type == "group" else sender_id,
        chat_type=chat_type,
        text=text,
        msg_id=message_id,
        reply_hint=hint,
    )


def _raw_text(message: Mapping[str, Any]) -> str:
    kind = message.get("message_type")
    content = _content(message)
    if kind == "text":
        return str(content.get("text") or "")
    return _post_text(content) if kind == "post" else ""


def without_mention(msg_hint: Mapping[str, Any], bot_open_id: str) -> tuple[bool, str]:
    """Whether the bot was @-mentioned, and the text with the bot's mention removed (others as @name)."""
    text = str(msg_hint.get("raw_text") or "")
    mentioned = False
    for key, open_id, name in sorted(msg_hint.get("mentions") or [], key=lambda m: -len(m[0])):
        ours = bool(bot_open_id) and open_id == bot_open_id
        mentioned = mentioned or ours
        text = text.replace(key, "" if ours else (f"@{name}" if name else ""))
    return mentioned, text.strip()


def _card(env: Envelope) -> IncomingMessage:
    event = env.event
    user_id, open_id = _user(event.get("operator"))
    if not (user_id or open_id):
        raise ParseError("card action without operator")
    action = event.get("action")
    value = action.get("value") if isinstance(action, Mapping) else None
    command = value.get("command") if isinstance(value, Mapping) else None
    if not isinstance(command, str) or not command or len(command) > MAX_COMMAND:
        raise ParseError("card action without our command")
    context = event.get("context")
    message_id = _id(context, "open_message_id")
    chat_id = _id(context, "open_chat_id")
    chat_type: ChatType = "group" if isinstance(value, Mapping) and value.get("chat_type") == "group" else "direct"
    sender_id = user_id or open_id
    if chat_type == "group" and not chat_id:
        raise ParseError("group card action without open_chat_id")
    hint = {"message_id": message_id, "chat_id": chat_id, "user_id": user_id, "open_id": open_id, "card": True}
    return IncomingMessage(
        platform=PLATFORM,
        sender_id=sender_id,
        chat_id=chat_id if chat_type == "group" else sender_id,
        chat_type=chat_type,
        text=command,
        msg_id=f"card-{env.event_id}",
        reply_hint=hint,
    )


def parse_event(body: Mapping[str, Any]) -> IncomingMessage:
    """A message or card click as an ``IncomingMessage``; ``ParseError`` for anything else."""
    env = envelope(body)
    if env.event_type == MESSAGE_EVENT:
        return _message(env)
    if env.event_type == CARD_EVENT:
        return _card(env)
    raise NotForUs(f"event {env.event_type} is not handled")


def with_sender(msg: IncomingMessage, sender_id: str, *, text: str | None = None) -> IncomingMessage:
    """The message as from ``sender_id`` (the id a person is registered under), text replaced."""
    chat_id = msg.chat_id if msg.chat_type == "group" else sender_id
    return IncomingMessage(
        platform=msg.platform,
        sender_id=sender_id,
        chat_id=chat_id,
        chat_type=msg.chat_type,
        text=msg.text if text is None else text,
        msg_id=msg.msg_id,
        reply_hint=msg.reply_hint,
        raw=msg.raw,
    )
