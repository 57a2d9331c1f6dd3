"""Outbox senders for Feishu.

- ``FeishuSender`` (channel "feishu"): replies to messages and card clicks by the reply API
  (quoting the message; to the chat when the message is gone), and staff notices to a person by
  ``open_id`` (ids starting ``ou_``) or ``user_id`` (``receive_id_type``).
- ``FeishuGroupSender`` (channel "feishu_group"): posts to ``FEISHU_SUMMARY_CHAT_ID`` — the daily
  summary as a card, its chart uploaded (im/v1/images) and sent as an image message.

Every message carries ``uuid`` = the notice's idempotency key: Feishu sends at most one message per
uuid within an hour, so a retry after a lost answer is not shown twice (``dedupe_seconds``).

A confirmation becomes an interactive card whose buttons carry ``{"command": "确认", ...}``; a
click comes back as ``card.action.trigger`` and is taken in as if the command had been typed.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import aiohttp

from bot.channels.feishu.api import FeishuApi, FeishuError
from bot.chat import markup
from bot.chat.messages import Reply
from bot.chat.payload import reply_from_payload
from bot.outbox import SendError, idem_key
from storage.models import Notice

log = logging.getLogger(__name__)

CHANNEL = "feishu"
GROUP_CHANNEL = "feishu_group"
UUID_WINDOW_SECONDS = 3600  # "持有相同 uuid 的请求 1 小时内至多成功发送一条消息"
MAX_BUTTONS = 5
THROTTLE_RETRY_SECONDS = 2.0

T = TypeVar("T")


def receive_id_type(person_id: str) -> str:
    """How Feishu should read a registered id: open_id (``ou_…``) or the tenant's user_id."""
    return "open_id" if person_id.startswith("ou_") else "user_id"


def card(reply: Reply, *, chat_type: str = "direct") -> dict[str, Any]:
    """An interactive card (message card JSON) for a markdown or confirm reply."""
    if reply.kind == "markdown":
        elements: list[dict[str, Any]] = [{"tag": "markdown", "content": reply.text}]
    else:
        elements = [{"tag": "div", "text": {"tag": "plain_text", "content": reply.text}}]
    if reply.buttons:
        elements.append(
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "text": {"tag": "plain_text", "content": label},
                        "type": "primary" if n == 0 else "default",
                        "value": {"command": command, "chat_type": chat_type},
                    }
                    for n, (label, command) in enumerate(reply.buttons[:MAX_BUTTONS])
                ],
            }
        )
    body: dict[str, Any] = {"config": {"wide_screen_mode": True}, "elements": elements}
    if reply.title:
        template = "orange" if reply.kind == "confirm" else "blue"
        body["header"] = {"title": {"tag": "plain_text", "content": reply.title}, "template": template}
    return body


def message(reply: Reply, *, chat_type: str = "direct") -> tuple[str, dict[str, Any]]:
    """(msg_type, content) of a reply."""
    if reply.kind == "text" and not reply.buttons:
        return "text", {"text": markup.markdown(reply.text)}  # text messages read <at> tags and links
    return "interactive", card(reply, chat_type=chat_type)


def _send_error(exc: Exception, what: str) -> SendError:
    """A Feishu or network failure as the outbox's ``SendError`` (rate limits retried later)."""
    if isinstance(exc, FeishuError):
        retry = exc.retry_after or (THROTTLE_RETRY_SECONDS if exc.throttled else None)
        return SendError(f"{what}: {exc}", permanent=exc.permanent, retry_after=retry)
    return SendError(f"{what}: Feishu API unavailable: {type(exc).__name__}: {exc}")


async def _guarded(call: Awaitable[T], what: str) -> T:
    try:
        return await call
    except (FeishuError, aiohttp.ClientError, TimeoutError) as exc:
        raise _send_error(exc, what) from exc


class FeishuSender:
    channel = CHANNEL
    # Feishu limits a bot to 5 messages a second per person or chat; throttle answers are retried.
    rate: tuple[int, float] | None = (5, 1.0)
    dedupe_seconds = UUID_WINDOW_SECONDS

    def __init__(self, api: FeishuApi) -> None:
        self._api = api

    async def send(self, notice: Notice) -> str | None:
        payload = notice.payload
        uuid = idem_key(notice)
        if "reply" not in payload:  # a staff notice (services.notices.notify_staff)
            kind = receive_id_type(notice.recipient)
            content = {"text": markup.markdown(notice.body)}
            return await _guarded(self._api.send(kind, notice.recipient, "text", content, uuid), "send")
        reply = reply_from_payload(payload["reply"])
        chat_type = str(payload.get("chat_type") or "direct")
        msg_type, content = message(reply, chat_type=chat_type)
        hint: Mapping[str, Any] = payload.get("reply_hint") or {}
        message_id = str(hint.get("message_id") or "")
        if message_id:
            try:
                return await self._api.reply(message_id, msg_type, content, uuid)
            except (FeishuError, aiohttp.ClientError, TimeoutError) as exc:
                if not (isinstance(exc, FeishuError) and exc.gone):
                    raise _send_error(exc, "reply") from exc
                log.info("the Feishu message %s is gone; sending to the chat instead", message_id)
        chat_id = str(hint.get("chat_id") or "")
        if chat_id:
            return await _guarded(self._api.send("chat_id", chat_id, msg_type, content, uuid), "send")
        kind = receive_id_type(notice.recipient)
        return await _guarded(self._api.send(kind, notice.recipient, msg_type, content, uuid), "send")


def group_notice(
    chat_id: str,
    *,
    kind: str,
    now: datetime,
    title: str = "",
    markdown: str = "",
    image: bytes | None = None,
    dedupe_key: str | None = None,
) -> Notice:
    """An outbox row for the summary group: a markdown card, or (``image``) a PNG."""
    payload: dict[str, Any] = {"audience": "staff", "chat_id": chat_id, "msgtype": "image" if image else "markdown"}
    if image is not None:
        payload["image_base64"] = base64.b64encode(image).decode()
    return Notice(
        kind=kind,
        channel=GROUP_CHANNEL,
        recipient="group",
        subject=title,
        body=markdown,
        payload=payload,
        destination=f"{GROUP_CHANNEL}:{chat_id}",
        dedupe_key=dedupe_key,
        next_attempt_at=now,
        created_at=now,
    )


class FeishuGroupSender:
    channel = GROUP_CHANNEL
    rate: tuple[int, float] | None = (5, 1.0)
    dedupe_seconds = UUID_WINDOW_SECONDS

    def __init__(self, api: FeishuApi) -> None:
        self._api = api

    async def send(self, notice: Notice) -> str | None:
        payload = notice.payload
        chat_id = str(payload.get("chat_id") or "")
        if not chat_id:
            raise SendError("group post without chat_id", permanent=True)
        uuid = idem_key(notice)
        if payload.get("msgtype") == "image":
            try:
                image = base64.b64decode(payload["image_base64"], validate=True)
            except (KeyError, binascii.Error) as exc:
                raise SendError("image notice without valid image_base64", permanent=True) from exc
            image_key = await _guarded(self._api.upload_image(image), "im/v1/images")
            return await _guarded(self._api.send("chat_id", chat_id, "image", {"image_key": image_key}, uuid), "send")
        reply = Reply(notice.body, kind="markdown", title=notice.subject)
        return await _guarded(self._api.send("chat_id", chat_id, "interactive", card(reply), uuid), "send")
