"""WeChat customer service (微信客服) for candidates, through the self-built app.

A candidate who opens the company's kf link writes to the account; WeCom posts only a
``kf_msg_or_event`` event (a Token and the OpenKfId) to the app callback. This channel supplies
only the pull, the parsing and how to reply:

- the pull: /cgi-bin/kf/sync_msg from the stored ``next_cursor`` (looping while ``has_more``);
- each customer message becomes an ``IncomingMessage`` (sender = the customer's external_userid,
  chat = the kf account, ``sender_kind="candidate"``) stored through the intake like every chat
  message (``bot.intake.ChatIntake``, source "wecom_kf": an intake item deduplicated by ``msgid``,
  committed before the page's cursor moves on), then processed by the same worker and retry
  policy: the dispatcher hands it to the candidate handlers (``handlers/candidate.py``: link by
  mobile, interview state, 求助), and the replies go to the outbox on channel "kf";
- ``KfSender`` answers with /cgi-bin/kf/send_msg.

WeCom allows answers only within 48 h of the customer's last message and at most 5 of them in
that window (``bot.services.candidate_chat``); the sender refuses beyond that (permanently, so a
notice falls back to SMS/email). The count is checked and bumped per send; two replicas sending
to one customer at the same instant could exceed it by one, which WeCom then refuses (95xxx).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from bot.channels.wecom.api import WeComApi, WeComError
from bot.channels.wecom.crypto import MalformedError
from bot.channels.wecom.parse import read_app_xml
from bot.chat import markup
from bot.chat.messages import IncomingMessage, Reply
from bot.chat.payload import ReplyRow, message_from_payload, message_to_payload, reply_rows
from bot.delivery import SendProblem
from bot.dispatcher import Dispatcher
from bot.intake import ChatIntake, ChatItem, Unreadable
from bot.outbox import SendError, idem_key
from bot.services import candidate_chat
from bot.services.context import Core
from storage.models import IntakeItem, Notice

log = logging.getLogger(__name__)

KF_CHANNEL = "kf"
KF_PLATFORM = "wecom_kf"
WINDOW = candidate_chat.WINDOW
MAX_REPLIES = candidate_chat.MAX_REPLIES
CUSTOMER_ORIGIN = 3  # sync_msg origin: 3 = sent by the WeChat customer


def kf_event(plaintext: str) -> tuple[str, str] | None:
    """(Token, OpenKfId) when a decrypted app callback is ``kf_msg_or_event``, else None."""
    try:
        message = read_app_xml(plaintext)
    except MalformedError:
        return None  # refused by parse_app_xml, with its reason
    data: dict[str, Any] = dict(message._data)
    if str(data.get("MsgType", "")).lower() != "event" or str(data.get("Event", "")) != "kf_msg_or_event":
        return None
    return str(data.get("Token") or ""), str(data.get("OpenKfId") or "")


def parse_sync_item(item: dict[str, Any], open_kfid: str, now: datetime) -> IncomingMessage | None:
    """A customer's message in a sync_msg ``msg_list`` as an ``IncomingMessage``; None for anything
    else (our own answers, system events, items without a sender or msgid)."""
    if item.get("origin") != CUSTOMER_ORIGIN or not item.get("external_userid") or not item.get("msgid"):
        return None
    sent = int(item.get("send_time") or now.timestamp())
    text = str((item.get("text") or {}).get("content") or "") if item.get("msgtype") == "text" else ""
    external = str(item["external_userid"])
    return IncomingMessage(
        platform=KF_PLATFORM,
        sender_id=external,
        chat_id=str(item.get("open_kfid") or open_kfid),
        chat_type="direct",
        text=text,
        msg_id=str(item["msgid"])[:300],
        raw={"send_time": sent, "msgtype": str(item.get("msgtype") or "")},
        sender_kind="candidate",
    )


class WeComKf:
    """Pulls customer messages, stores them through the intake (``receive``), and answers a stored
    one (``process``, the dispatcher)."""

    def __init__(self, core: Core, api: WeComApi, dispatcher: Dispatcher, background: set[asyncio.Task[Any]]) -> None:
        self.core = core
        self.api = api
        self._background = background
        self._lock = asyncio.Lock()
        self.intake = ChatIntake(core, KF_PLATFORM, background, dispatcher=dispatcher, channel=self)

    def start(self) -> None:
        self.intake.start()

    def spawn_sync(self, token: str, open_kfid: str) -> None:
        task = asyncio.create_task(self._sync_logged(token, open_kfid), name=f"kf-sync-{open_kfid}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sync_logged(self, token: str, open_kfid: str) -> None:
        try:
            await self.sync(token, open_kfid)
        except Exception:
            log.exception("kf sync for %s failed (the next event resumes from the stored cursor)", open_kfid)

    async def sync(self, token: str, open_kfid: str) -> int:
        """Pull everything new for ``open_kfid`` and store it for processing; how many were new."""
        stored = 0
        async with self._lock:
            cursor = await candidate_chat.cursor(self.core, account=open_kfid)
            while True:
                payload: dict[str, Any] = {"token": token, "limit": 1000, "open_kfid": open_kfid}
                if cursor:
                    payload["cursor"] = cursor
                data = await self.api.call("kf/sync_msg", payload)
                now = self.core.clock.now()
                for item in data.get("msg_list") or []:
                    msg = parse_sync_item(item, open_kfid, now)
                    if msg is not None and await self.receive(msg):
                        stored += 1
                # Only once the page's messages are stored does the cursor move past them.
                cursor = str(data.get("next_cursor") or cursor)
                await candidate_chat.save_cursor(self.core, account=open_kfid, cursor=cursor)
                if not data.get("has_more"):
                    break
        return stored

    async def receive(self, msg: IncomingMessage) -> bool:
        """Store one customer message (deduplicated by msgid) and have it processed soon; True once
        committed, False for a message stored before."""
        return await self.intake.receive(ChatItem(msg.msg_id, msg.sender_id, {"msg": message_to_payload(msg)}))

    async def take(self, item: IntakeItem) -> IncomingMessage:
        """One stored customer message, its reply window opened (the dispatcher then hands it to the
        candidate handlers)."""
        try:
            msg = message_from_payload(item.payload["msg"])
        except (KeyError, TypeError, ValueError) as exc:
            raise Unreadable(f"cannot read the stored kf message: {exc}") from exc
        sent_at = datetime.fromtimestamp(int(msg.raw.get("send_time") or 0), UTC)
        await candidate_chat.customer_wrote(self.core, contact=msg.sender_id, account=msg.chat_id, sent_at=sent_at)
        return msg

    def reply(self, item: IntakeItem, msg: IncomingMessage, replies: list[Reply]) -> list[ReplyRow]:
        """The answer is queued on channel "kf" (sent while the conversation's window allows)."""
        return reply_rows(
            self.core.clock.now(),
            channel=KF_CHANNEL,
            msg=msg,
            replies=replies,
            recipient=msg.sender_id,
            destination=f"{KF_CHANNEL}:{msg.sender_id}",
            extra={"audience": "kf_reply", "msgid": msg.msg_id},
        )

    async def close(self) -> None:
        await self.intake.close()


class KfSender:
    """Sends outbox rows on channel "kf" (answers and candidate notices) with /cgi-bin/kf/send_msg."""

    channel = KF_CHANNEL
    rate: tuple[int, float] | None = None  # the 5-per-48h rule is enforced below

    def __init__(self, core: Core, api: WeComApi) -> None:
        self.core = core
        self.api = api

    async def send(self, notice: Notice) -> str | None:
        now = self.core.clock.now()
        window = await candidate_chat.reply_window(self.core, contact=notice.recipient)
        if window is None:
            raise SendError(
                "WeCom kf: no conversation with this candidate", permanent=True, problem=SendProblem.no_conversation
            )
        if now - window.last_customer_msg_at > WINDOW:
            raise SendError(
                "WeCom kf: more than 48 hours since the candidate's last message",
                permanent=True,
                problem=SendProblem.window_closed,
            )
        if window.replies_in_window >= MAX_REPLIES:
            raise SendError(
                "WeCom kf: 5 replies sent since the candidate's last message",
                permanent=True,
                problem=SendProblem.reply_quota,
            )
        payload = {
            "touser": notice.recipient,
            "open_kfid": window.account,
            "msgid": idem_key(notice)[:32],
            "msgtype": "text",
            "text": {"content": markup.wecom_text(notice.body)},  # WeChat text reads <a href>
        }
        try:
            data = await self.api.call("kf/send_msg", payload)
        except WeComError as exc:
            raise SendError(str(exc), permanent=not exc.retryable) from exc
        except Exception as exc:
            raise SendError(f"WeCom kf unavailable: {type(exc).__name__}: {exc}") from exc
        await candidate_chat.count_reply(self.core, contact=notice.recipient)
        return str(data.get("msgid") or "") or None
