"""Outbox senders for WeCom: app messages, the group robot webhook and AI bot replies.

Each turns a ``Notice`` row into one HTTP call. Retryable failures (HTTP 5xx, network,
errcode -1 and 45009) raise ``SendError`` so the outbox backs off and tries again; any other
errcode is permanent (the row goes dead and shows up in ``GET /api/notices?status=dead``).

Limits (pacing is per ``Notice.destination``): app messages 30/min per member
(destination ``wecom:user:<userid>``); the group robot 20/min (``wecom_robot``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from bot.channels.wecom.api import DUPLICATE_CHECK_SECONDS, WeComApi, WeComError, aibot_respond, robot_send
from bot.channels.wecom.parse import button_key
from bot.chat import markup
from bot.chat.messages import Reply
from bot.chat.payload import reply_from_payload
from bot.outbox import SendError
from storage.models import Notice

log = logging.getLogger(__name__)

APP_CHANNEL = "wecom"
ROBOT_CHANNEL = "wecom_robot"
AIBOT_CHANNEL = "wecom_aibot"

TEXT_LIMIT = 2048  # bytes, app text/markdown and robot text
ROBOT_MARKDOWN_LIMIT = 4096
AIBOT_LIMIT = 20480
IMAGE_LIMIT = 2 * 1024 * 1024

# Button text shown after a click, by the command the button stood for (its first word: a
# prompt's buttons carry its id, "确认 #123").
DONE_LABELS = {"确认": "已确认", "取消": "已取消"}


def done_label(command: str) -> str:
    return DONE_LABELS.get(command.partition(" ")[0], "已处理")


def clip(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def _send_error(exc: WeComError) -> SendError:
    return SendError(str(exc), permanent=not exc.retryable)


def confirm_card(reply: Reply, *, task_id: str, source: str) -> dict[str, Any]:
    """A button_interaction card; each button's key carries the command its click stands for."""
    return {
        "card_type": "button_interaction",
        "source": {"desc": source[:13]},
        "main_title": {"title": (reply.title or "请确认")[:36]},
        "sub_title_text": clip(reply.text, 1024),
        "task_id": task_id,
        "button_list": [
            {"text": label[:10], "style": 1 if n == 0 else 2, "key": button_key(command)}
            for n, (label, command) in enumerate(reply.buttons[:6])
        ],
    }


def card_task_id(notice: Notice) -> str:
    """Unique per app and stable across retries of one row; only ``[0-9a-zA-Z_-@]``."""
    return f"confirm-{notice.id}-{int(notice.created_at.timestamp())}"


class WeComAppSender:
    """Self-built app messages: replies (text, markdown, confirm card), staff notices, card updates."""

    channel = APP_CHANNEL
    rate: tuple[int, float] | None = (30, 60.0)
    # message/send is sent with enable_duplicate_check (bot.outbox may resend a cut-off attempt).
    dedupe_seconds = DUPLICATE_CHECK_SECONDS

    def __init__(self, api: WeComApi, *, source: str) -> None:
        self.api = api
        self.source = source

    async def send(self, notice: Notice) -> str | None:
        payload = notice.payload
        try:
            if payload.get("op") == "update_card":
                await self.api.update_card_button(
                    userids=[notice.recipient],
                    response_code=str(payload["response_code"]),
                    replace_name=str(payload.get("replace_name") or "已处理"),
                )
                return None
            data = await self._message(notice, payload)
        except WeComError as exc:
            raise _send_error(exc) from exc
        msgid = data.get("msgid")
        return str(msgid) if msgid else None

    async def _message(self, notice: Notice, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        user = notice.recipient
        if "reply" in payload:
            reply = reply_from_payload(payload["reply"])
            if reply.kind == "confirm" and reply.buttons:
                card = confirm_card(reply, task_id=card_task_id(notice), source=self.source)
                return await self.api.send_template_card(user, card)
            if reply.kind == "markdown":
                return await self.api.send_markdown(user, clip(reply.text, TEXT_LIMIT))
            return await self.api.send_text(user, clip(markup.wecom_text(reply.text), TEXT_LIMIT))
        if payload.get("msgtype") == "markdown":
            return await self.api.send_markdown(user, clip(notice.body, TEXT_LIMIT))
        return await self.api.send_text(user, clip(markup.wecom_text(notice.body), TEXT_LIMIT))


def update_card_notice(*, user: str, response_code: str, command: str, now: datetime, dedupe: str) -> Notice:
    """An outbox row that greys out the buttons of the card ``user`` clicked."""
    return Notice(
        kind="card_update",
        channel=APP_CHANNEL,
        recipient=user,
        body="",
        payload={
            "audience": "staff",
            "op": "update_card",
            "response_code": response_code,
            "replace_name": done_label(command),
        },
        destination=f"{APP_CHANNEL}:card:{user}",
        dedupe_key=f"card_update:{dedupe}"[:200],
        next_attempt_at=now,
        created_at=now,
    )


# --- group robot ----------------------------------------------------------------

RobotMsgType = Literal["text", "markdown", "image"]


def robot_notice(
    *,
    kind: str,
    now: datetime,
    msgtype: RobotMsgType = "text",
    text: str = "",
    mentioned_mobiles: Sequence[str] = (),
    image: bytes | None = None,
    interview_id: int | None = None,
    dedupe_key: str | None = None,
) -> Notice:
    """An outbox row for the group robot (text with @mobiles, markdown, or a JPG/PNG image)."""
    payload: dict[str, Any] = {"audience": "staff", "msgtype": msgtype}
    if msgtype == "text" and mentioned_mobiles:
        payload["mentioned_mobile_list"] = list(mentioned_mobiles)
    if msgtype == "image":
        if not image:
            raise ValueError("an image notice needs image bytes")
        if len(image) > IMAGE_LIMIT:
            raise ValueError("the group robot takes images up to 2 MB")
        payload["image_base64"] = base64.b64encode(image).decode()
    return Notice(
        kind=kind,
        channel=ROBOT_CHANNEL,
        recipient="group",
        interview_id=interview_id,
        body=text,
        payload=payload,
        destination=ROBOT_CHANNEL,
        dedupe_key=dedupe_key,
        next_attempt_at=now,
        created_at=now,
    )


def robot_payload(notice: Notice) -> dict[str, Any]:
    payload = notice.payload
    msgtype = payload.get("msgtype", "text")
    if msgtype == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": clip(notice.body, ROBOT_MARKDOWN_LIMIT)}}
    if msgtype == "image":
        try:
            raw = base64.b64decode(payload["image_base64"], validate=True)
        except (KeyError, binascii.Error) as exc:
            raise SendError("image notice without valid image_base64", permanent=True) from exc
        return {
            "msgtype": "image",
            "image": {"base64": payload["image_base64"], "md5": hashlib.md5(raw).hexdigest()},  # noqa: S324 - WeCom asks for md5
        }
    text: dict[str, Any] = {"content": clip(notice.body, TEXT_LIMIT)}
    if payload.get("mentioned_mobile_list"):
        text["mentioned_mobile_list"] = list(payload["mentioned_mobile_list"])
    return {"msgtype": "text", "text": text}


class WeComRobotSender:
    """Group robot webhook (群机器人). WeCom allows 20 messages a minute per robot."""

    channel = ROBOT_CHANNEL
    rate: tuple[int, float] | None = (20, 60.0)

    def __init__(self, http: aiohttp.ClientSession, *, base_url: str, key: str) -> None:
        self.http = http
        self.base_url = base_url
        self._key = key

    async def send(self, notice: Notice) -> str | None:
        try:
            await robot_send(self.http, base_url=self.base_url, key=self._key, payload=robot_payload(notice))
        except WeComError as exc:
            raise _send_error(exc) from exc
        return None


# --- AI bot (智能机器人) -------------------------------------------------------------


class WeComAiBotSender:
    """Replies to AI bot messages through the message's single-use ``response_url``."""

    channel = AIBOT_CHANNEL
    rate: tuple[int, float] | None = None

    def __init__(self, http: aiohttp.ClientSession, *, api_base: str) -> None:
        self.http = http
        self.allowed_host = urlsplit(api_base).netloc

    async def send(self, notice: Notice) -> str | None:
        hint = notice.payload.get("reply_hint") or {}
        url = hint.get("response_url") if isinstance(hint, Mapping) else None
        if not isinstance(url, str) or not url:
            raise SendError("AI bot reply without response_url", permanent=True)
        parts = urlsplit(url)
        # The URL comes from a verified callback; still, only ever post to the WeCom API host.
        if parts.scheme not in {"https", "http"} or parts.netloc != self.allowed_host:
            raise SendError(f"response_url host {parts.netloc!r} is not the WeCom API host", permanent=True)
        reply = notice.payload.get("reply") or {}
        text = reply.get("text") if isinstance(reply, Mapping) else None
        written = isinstance(reply, Mapping) and reply.get("kind") == "markdown"
        text = text if isinstance(text, str) else notice.body
        content = clip(text if written else markup.markdown(text), AIBOT_LIMIT)
        try:
            await aibot_respond(self.http, url=url, payload={"msgtype": "markdown", "markdown": {"content": content}})
        except WeComError as exc:
            raise _send_error(exc) from exc
        return None
