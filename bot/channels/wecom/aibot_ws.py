"""The AI bot in long-connection mode: frames in through the durable intake, replies and pushes out.

Taking in: a message or card-click frame is parsed (``parse``) and stored through the intake
(``chat.WeComChat.receive``: one intake item, deduplicated by msgid) before anything is answered;
a redelivered msgid is dropped. The stored message remembers the
callback's ``req_id``, the connection it came on and when, so its replies can answer it.

Replies (outbox channel ``wecom_aibot_ws``, sent at most once like every reply): the first reply
to a message answers its ``req_id`` with ``aibot_respond_msg`` (text as a finished ``stream``,
confirmations as a ``button_interaction`` template card whose buttons carry 确认终止 / 取消); when
that req_id can no longer be used (another connection, later than ``REQ_ID_TTL``, already
answered, or WeCom says so) the reply is pushed to the chat with ``aibot_send_msg``. Staff
notices (outbox channel ``wecom`` when the self-built app is not configured) and the daily
summary (to ``WECOM_BOT_SUMMARY_CHATID``) are pushed with ``aibot_send_msg`` too.

Only the replica holding the connection's lease can send: the senders are ``ready`` only while the
connection is up here, so the other replicas' outboxes leave the rows alone (should one try in
the moment the connection drops, the row waits ``retry_after`` with nothing having gone out).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.channels.wecom.chat import AIBOT_WS_CHANNEL, WeComChat
from bot.channels.wecom.longconn import (
    EVENT_CALLBACK,
    MSG_CALLBACK,
    REQ_ID_GONE,
    REQ_ID_TTL,
    RESPOND,
    RESPOND_UPDATE,
    SEND,
    AiBotLink,
    Frame,
    LinkError,
    frame_req_id,
)
from bot.channels.wecom.parse import WeComEnvelope, parse_aibot_event, parse_aibot_json
from bot.channels.wecom.sender import AIBOT_LIMIT, APP_CHANNEL, card_task_id, clip, confirm_card, done_label
from bot.chat import markup
from bot.chat.payload import reply_from_payload
from bot.delivery import GroupPost
from bot.outbox import SendError
from bot.services.context import Core
from bot.services.leases import Leased, LinkState
from storage.models import Notice

log = logging.getLogger(__name__)

NOT_HERE_RETRY = 2.0  # seconds before a row this replica cannot send is tried again
DRAIN_SECONDS = 5.0


class AiBotLongConn:
    """The bot's connection under its lease, and how frames reach the intake."""

    def __init__(self, core: Core, http: aiohttp.ClientSession, chat: WeComChat, *, url: str, bot_id: str, secret: str):
        self.core = core
        self.chat = chat
        self.link = AiBotLink(http, url=url, bot_id=bot_id, secret=secret, on_frame=self.take_in)
        self.leased = Leased(core, f"wecom_aibot:{bot_id}"[:100], self.link.run)

    def start(self) -> None:
        self.leased.start()

    async def stop(self) -> None:
        await self.leased.stop()
        await self.link.drain(DRAIN_SECONDS)

    def state(self) -> LinkState:
        if self.leased.finished:
            return LinkState.stopped
        if not self.leased.holding:
            return LinkState.standby
        return self.link.state

    async def take_in(self, frame: Frame, conn_id: str) -> None:
        body = frame.get("body")
        if not isinstance(body, Mapping):
            log.warning("skipping a WeCom AI bot callback without a body")
            return
        cmd = frame.get("cmd")
        envelope = parse_aibot_json(body) if cmd == MSG_CALLBACK else parse_aibot_event(body)
        if envelope is None:
            return
        req_id = frame_req_id(frame)
        # A message's req_id takes the reply; a click's takes only the card update, so the
        # answer to a click is pushed to the chat.
        answerable = req_id and cmd == MSG_CALLBACK
        hint = {"req_id": req_id, "conn": conn_id, "at": time.time()} if answerable else {}
        envelope = WeComEnvelope(dataclasses.replace(envelope.msg, reply_hint=hint), envelope.dedupe_key, envelope.card)
        if not await self.chat.receive(envelope, source="aibot_ws"):
            return  # a redelivery: taken in before
        if cmd == EVENT_CALLBACK and req_id:
            await self._grey_out(req_id, envelope)

    async def _grey_out(self, req_id: str, envelope: WeComEnvelope) -> None:
        """Replace the clicked card's buttons by what was chosen (WeCom takes this within 5 s)."""
        command = envelope.msg.text
        card = {
            "card_type": "button_interaction",
            "main_title": {"title": done_label(command)},
            "task_id": envelope.card.get("task_id", ""),
            "button_list": [{"text": done_label(command), "key": envelope.card.get("event_key", "")}],
            "replace_text": done_label(command),
        }
        try:
            await self.link.request(
                RESPOND_UPDATE, {"response_type": "update_template_card", "template_card": card}, req_id=req_id
            )
        except LinkError as exc:
            log.info("could not update the clicked WeCom card: %s", exc)


def _text_body(text: str, stream_id: str, *, respond: bool) -> dict[str, Any]:
    content = clip(text, AIBOT_LIMIT)
    if respond:  # a reply to a callback is a stream, finished at once
        return {"msgtype": "stream", "stream": {"id": stream_id, "finish": True, "content": content}}
    return {"msgtype": "markdown", "markdown": {"content": content}}


class AiBotWsSender:
    """Replies to long-connection messages, and the pushes (daily summary) on the connection."""

    channel = AIBOT_WS_CHANNEL
    rate: tuple[int, float] | None = (20, 60.0)

    def __init__(self, conn: AiBotLongConn, *, source: str) -> None:
        self.link = conn.link
        self.source = source
        # req_ids of the current connection answered by this process (only a first reply answers).
        self._answered: set[str] = set()
        self._answered_on: str | None = None

    def ready(self) -> bool:
        """Only the process holding the connection sends (``bot.outbox`` leaves the rows to it)."""
        return self.link.conn_id is not None

    def _usable(self, hint: Mapping[str, Any]) -> str | None:
        if self._answered_on != self.link.conn_id:  # a new connection: the old req_ids are gone anyway
            self._answered, self._answered_on = set(), self.link.conn_id
        req_id = hint.get("req_id")
        if not isinstance(req_id, str) or not req_id or req_id in self._answered:
            return None
        at = hint.get("at")
        if hint.get("conn") != self.link.conn_id or not isinstance(at, int | float) or time.time() - at > REQ_ID_TTL:
            return None
        return req_id

    def _body(self, notice: Notice, *, respond: bool) -> dict[str, Any]:
        payload = notice.payload
        if "reply" in payload:
            reply = reply_from_payload(payload["reply"])
            if reply.kind == "confirm" and reply.buttons:
                card = confirm_card(reply, task_id=card_task_id(notice), source=self.source)
                return {"msgtype": "template_card", "template_card": card}
            text = reply.text if reply.kind == "markdown" else markup.markdown(reply.text)
            return _text_body(text, f"reply-{notice.id}", respond=respond)
        # The summary's push is markdown already (its values escaped by its template); others are text.
        body = notice.body if payload.get("msgtype") == "markdown" else markup.markdown(notice.body)
        return _text_body(body, f"notice-{notice.id}", respond=respond)

    async def send(self, notice: Notice) -> str | None:
        hint = notice.payload.get("reply_hint") or {}
        req_id = self._usable(hint) if isinstance(hint, Mapping) else None
        if req_id is not None:
            self._answered.add(req_id)
            try:
                await self.link.request(RESPOND, self._body(notice, respond=True), req_id=req_id)
                return None
            except LinkError as exc:
                if exc.errcode not in REQ_ID_GONE:
                    raise _send_error(exc) from exc
                log.info("req_id of notice %s is no longer usable (%s): pushing to the chat", notice.id, exc)
        chatid = str(notice.payload.get("chatid") or notice.payload.get("chat_id") or notice.recipient)
        await push(self.link, chatid, self._body(notice, respond=False))
        return None


class AiBotWsStaffSender(AiBotWsSender):
    """Staff notices to colleagues registered on WeCom, pushed to their 1:1 chat with the bot
    (outbox channel ``wecom``, used when the self-built app is not configured)."""

    channel = APP_CHANNEL


async def push(link: AiBotLink, chatid: str, body: Mapping[str, Any]) -> None:
    try:
        await link.request(SEND, {"chatid": chatid, **body})
    except LinkError as exc:
        raise _send_error(exc) from exc


def _send_error(exc: LinkError) -> SendError:
    if not exc.sent:  # nothing went out: the holder of the connection sends it
        return SendError(str(exc), retry_after=NOT_HERE_RETRY)
    if exc.errcode is None:  # sent, never answered: maybe delivered, so never sent again
        return SendError(f"{exc} (outcome unknown, not resent)", permanent=True)
    return SendError(str(exc))


def summary_rows(chatid: str, post: GroupPost) -> list[Notice]:
    """The managers' daily summary as a markdown push to the configured group chat."""
    return [
        Notice(
            kind=post.kind,
            channel=AIBOT_WS_CHANNEL,
            recipient=chatid,
            body=post.markdown,
            subject=post.title,
            payload={"audience": "staff", "msgtype": "markdown", "chatid": chatid},
            destination=f"{AIBOT_WS_CHANNEL}:{chatid}",
            dedupe_key=post.dedupe_key,
            next_attempt_at=post.now,
            created_at=post.now,
        )
    ]


__all__ = ["AIBOT_WS_CHANNEL", "AiBotLongConn", "AiBotWsSender", "AiBotWsStaffSender", "summary_rows"]
