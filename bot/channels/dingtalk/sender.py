"""Outbox senders for DingTalk.

- ``DingTalkSender`` (channel "dingtalk"): replies to robot messages and 1:1 staff notices.
  A reply goes to the message's ``sessionWebhook`` while that is valid (by ``core.clock``,
  with a minute to spare), else through the OpenAPI: groupMessages/send for group chats,
  oToMessages/batchSend for 1:1 chats. Staff notices always use batchSend.
- ``RobotSender`` (channel "dingtalk_robot"): the custom group robot with 加签, paced at
  20 messages a minute per robot; a "send too fast" answer (DingTalk then blocks the robot
  for ten minutes) defers the notice by ten minutes.

Confirmation prompts become an actionCard whose buttons are ``dtmd://`` links: a click sends
the command text (确认 / 取消) into the chat as if typed; typing it works just the same.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from bot.channels.dingtalk.api import DingTalkError, OpenApi, post_custom_robot, post_webhook
from bot.chat import markup
from bot.chat.messages import Reply
from bot.chat.payload import reply_from_payload
from bot.clock import Clock
from bot.outbox import SendError
from storage.models import Notice

log = logging.getLogger(__name__)

CHANNEL = "dingtalk"
ROBOT_CHANNEL = "dingtalk_robot"
WEBHOOK_MARGIN_MS = 60_000
ROBOT_BLOCK_SECONDS = 600.0  # "超过20条,会限流10分钟"
# Custom-robot errcodes no retry can fix: keyword/IP/sign/timestamp rules (310000), unknown token.
ROBOT_PERMANENT_CODES = frozenset({"310000", "300001", "300005", "40035"})
MAX_CARD_BUTTONS = 5

T = TypeVar("T")


def dtmd_link(command: str) -> str:
    """A link that, clicked in DingTalk, sends ``command`` into the conversation."""
    return "dtmd://dingtalkclient/sendMessage?content=" + quote(command, safe="")


def _markdown(reply: Reply) -> str:
    """Markdown replies are sent as written; plain text (a confirmation's) is escaped and keeps its
    line breaks."""
    return reply.text if reply.kind == "markdown" else markup.markdown(reply.text).replace("\n", "\n\n")


def _title(reply: Reply) -> str:
    return reply.title or reply.text.split("\n", 1)[0][:20] or "消息"


def webhook_body(reply: Reply, *, at_user: str | None = None) -> dict[str, Any]:
    """The webhook JSON (sessionWebhook and custom robot share it) for a reply."""
    body: dict[str, Any]
    if reply.kind == "confirm" and reply.buttons:
        body = {
            "msgtype": "actionCard",
            "actionCard": {
                "title": _title(reply),
                "text": _markdown(reply),
                "btnOrientation": "1",
                "btns": [
                    {"title": label, "actionURL": dtmd_link(cmd)} for label, cmd in reply.buttons[:MAX_CARD_BUTTONS]
                ],
            },
        }
    elif reply.kind in ("markdown", "confirm"):
        body = {"msgtype": "markdown", "markdown": {"title": _title(reply), "text": _markdown(reply)}}
    else:
        body = {"msgtype": "text", "text": {"content": reply.text}}
    if at_user:
        body["at"] = {"atUserIds": [at_user], "isAtAll": False}
    return body


def openapi_message(reply: Reply) -> tuple[str, dict[str, Any]]:
    """(msgKey, msgParam) for the robot OpenAPI."""
    buttons = reply.buttons[:MAX_CARD_BUTTONS]
    if reply.kind == "confirm" and len(buttons) == 1:
        label, cmd = buttons[0]
        return "sampleActionCard", {
            "title": _title(reply),
            "text": _markdown(reply),
            "singleTitle": label,
            "singleURL": dtmd_link(cmd),
        }
    if reply.kind == "confirm" and buttons:
        param: dict[str, Any] = {"title": _title(reply), "text": _markdown(reply)}
        for n, (label, cmd) in enumerate(buttons, start=1):
            param[f"actionTitle{n}"] = label
            param[f"actionURL{n}"] = dtmd_link(cmd)
        return f"sampleActionCard{len(buttons)}", param
    if reply.kind in ("markdown", "confirm"):
        return "sampleMarkdown", {"title": _title(reply), "text": _markdown(reply)}
    return "sampleText", {"content": reply.text}


def _retry_after(exc: DingTalkError) -> float | None:
    if "ApiCountLimit" in exc.code:  # the organisation's monthly API quota
        return 3600.0
    if exc.throttled:
        return 2.0  # DingTalk's advice for QPS limits: wait a second and try again
    return None


async def _guarded(call: Awaitable[T], what: str) -> T:
    """Map DingTalk and network failures to the outbox's ``SendError``."""
    try:
        return await call
    except DingTalkError as exc:
        raise SendError(f"{what}: {exc}", permanent=exc.permanent, retry_after=_retry_after(exc)) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SendError(f"{what}: DingTalk API unavailable: {type(exc).__name__}: {exc}") from exc


def _now_ms(clock: Clock) -> int:
    return int(clock.now().timestamp() * 1000)


class DingTalkSender:
    channel = CHANNEL
    # No documented per-chat limit for app robots; QPS throttling answers are retried instead.
    rate: tuple[int, float] | None = None

    def __init__(self, http: aiohttp.ClientSession, api: OpenApi, *, clock: Clock, oapi_base: str) -> None:
        self._http = http
        self._api = api
        self._clock = clock
        self._oapi_prefix = oapi_base.rstrip("/") + "/"

    async def send(self, notice: Notice) -> str | None:
        payload = notice.payload
        if "reply" not in payload:  # a staff notice (services.notices.notify_staff)
            return await self._to_user(notice.recipient, "sampleText", {"content": notice.body})
        reply = reply_from_payload(payload["reply"])
        hint: Mapping[str, Any] = payload.get("reply_hint") or {}
        group = payload.get("chat_type") == "group"
        webhook = self.session_webhook(hint)
        if webhook:
            body = webhook_body(reply, at_user=payload.get("sender_id") if group else None)
            try:
                await post_webhook(self._http, webhook, body)
                return None
            except DingTalkError as exc:
                if exc.throttled:
                    raise SendError(f"sessionWebhook: {exc}", retry_after=_retry_after(exc)) from exc
                log.warning("sessionWebhook refused notice %s (%s); using the OpenAPI", notice.id, exc)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise SendError(f"sessionWebhook unavailable: {type(exc).__name__}: {exc}") from exc
        msg_key, param = openapi_message(reply)
        if group:
            conversation_id = str(hint.get("conversation_id") or payload.get("chat_id") or "")
            if not conversation_id:
                raise SendError("group message without openConversationId", permanent=True)
            data = await _guarded(self._api.group_send(conversation_id, msg_key, param), "groupMessages/send")
            return str(data.get("processQueryKey") or "") or None
        return await self._to_user(notice.recipient, msg_key, param)

    def session_webhook(self, hint: Mapping[str, Any]) -> str | None:
        """The message's sessionWebhook if it is on DingTalk's host and still valid for a minute."""
        url = hint.get("session_webhook")
        if not isinstance(url, str) or not url:
            return None
        if not url.startswith(self._oapi_prefix):
            log.warning("ignoring a sessionWebhook outside %s", self._oapi_prefix)
            return None
        expires_ms = int(hint.get("session_webhook_expires_ms") or 0)
        return url if expires_ms - WEBHOOK_MARGIN_MS > _now_ms(self._clock) else None

    async def _to_user(self, user_id: str, msg_key: str, param: Mapping[str, Any]) -> str | None:
        data = await _guarded(self._api.batch_send([user_id], msg_key, param), "oToMessages/batchSend")
        if user_id in (data.get("invalidStaffIdList") or []):
            raise SendError(f"DingTalk user {user_id} is invalid or not visible to the app", permanent=True)
        if user_id in (data.get("flowControlledStaffIdList") or []):
            raise SendError(f"DingTalk throttled messages to user {user_id}", retry_after=60.0)
        return str(data.get("processQueryKey") or "") or None


def robot_destination(webhook: str) -> str:
    """The pacing bucket of one custom robot (its webhook, hashed to keep the token out)."""
    return f"{ROBOT_CHANNEL}:{hashlib.sha256(webhook.encode()).hexdigest()[:16]}"


def robot_notice(
    webhook: str,
    *,
    kind: str,
    text: str,
    now: datetime,
    title: str = "",
    markdown: bool = False,
    dedupe_key: str | None = None,
) -> Notice:
    """An outbox row for the custom group robot (add it to a session and commit)."""
    return Notice(
        kind=kind,
        channel=ROBOT_CHANNEL,
        recipient="group",
        subject=title,
        body=text,
        payload={"audience": "staff", "msgtype": "markdown" if markdown else "text"},
        destination=robot_destination(webhook),
        dedupe_key=dedupe_key,
        next_attempt_at=now,
        created_at=now,
    )


class RobotSender:
    channel = ROBOT_CHANNEL
    rate: tuple[int, float] | None = (20, 60.0)  # per robot (Notice.destination)

    def __init__(self, http: aiohttp.ClientSession, *, clock: Clock, webhook: str, secret: str | None) -> None:
        self._http = http
        self._clock = clock
        self._webhook = webhook
        self._secret = secret

    async def send(self, notice: Notice) -> str | None:
        markdown = notice.payload.get("msgtype") == "markdown"
        body = webhook_body(Reply(notice.body, kind="markdown" if markdown else "text", title=notice.subject))
        try:
            await post_custom_robot(self._http, self._webhook, body, secret=self._secret, now_ms=_now_ms(self._clock))
        except DingTalkError as exc:
            if exc.throttled:
                raise SendError(f"DingTalk group robot throttled: {exc}", retry_after=ROBOT_BLOCK_SECONDS) from exc
            raise SendError(f"DingTalk group robot: {exc}", permanent=exc.code in ROBOT_PERMANENT_CODES) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(f"DingTalk group robot unavailable: {type(exc).__name__}: {exc}") from exc
        return None
