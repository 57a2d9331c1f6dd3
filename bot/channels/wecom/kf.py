"""WeChat customer service (微信客服) for candidates, through the self-built app.

A candidate who opens the company's kf link writes to the account; WeCom posts only a
``kf_msg_or_event`` event (a Token and the OpenKfId) to the app callback. We then pull the
messages with /cgi-bin/kf/sync_msg from the persisted ``next_cursor`` (looping while
``has_more``), deduplicate them by ``msgid`` and answer through the outbox (channel "kf",
/cgi-bin/kf/send_msg):

- an unknown sender is asked for the mobile number given with the application; a number that
  matches a candidate's record links the conversation to that candidate (``candidate.kf_contact``),
  and from then on kf is a notice channel for them (first in the default BOT_NOTICE_PLAN);
- a linked candidate gets their interview's state, and ``求助`` opens a help request for the HR
  owner exactly as the platform's help button does.

WeCom allows answers only within 48 h of the customer's last message and at most 5 of them in
that window; the sender refuses beyond that (permanently, so a notice falls back to SMS/email).
The count is checked and bumped per send in this process's transaction; two replicas sending
to one customer at the same instant could exceed it by one, which WeCom then refuses (95xxx).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.parsers.expat import ExpatError

from wechatpy.enterprise import parse_message

from bot.channels.wecom.api import WeComApi, WeComError
from bot.chat import markup
from bot.delivery import SendProblem
from bot.outbox import SendError, idem_key
from bot.services import help_requests
from bot.services.claims import local_text
from bot.services.context import Core
from storage import repo
from storage.db import Session
from storage.models import (
    OPEN_INTERVIEW_STATUSES,
    Candidate,
    Interview,
    InterviewStatus,
    KfConversation,
    Notice,
)

log = logging.getLogger(__name__)

KF_CHANNEL = "kf"
KF_PLATFORM = "wecom_kf"
WINDOW = timedelta(hours=48)
MAX_REPLIES = 5
CUSTOMER_ORIGIN = 3  # sync_msg origin: 3 = sent by the WeChat customer
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
STATUS_TEXT: dict[str, str] = {
    InterviewStatus.scheduled: "待面试",
    InterviewStatus.in_progress: "进行中",
    InterviewStatus.completed: "已完成",
    InterviewStatus.terminated: "已终止",
}
PUNCT = re.compile(r"^[\s::,,。]+|[\s::,,。]+$")
EXIT_WORDS = ("结束", "退出", "终止", "不面了")


def kf_event(plaintext: str) -> tuple[str, str] | None:
    """(Token, OpenKfId) when a decrypted app callback is ``kf_msg_or_event``, else None."""
    try:
        message = parse_message(plaintext)
    except (ExpatError, KeyError, ValueError, TypeError):
        return None
    if message is None:
        return None
    data: dict[str, Any] = dict(message._data)
    if str(data.get("MsgType", "")).lower() != "event" or str(data.get("Event", "")) != "kf_msg_or_event":
        return None
    return str(data.get("Token") or ""), str(data.get("OpenKfId") or "")


class WeComKf:
    def __init__(self, core: Core, api: WeComApi, background: set[asyncio.Task[Any]]) -> None:
        self.core = core
        self.api = api
        self._background = background
        self._lock = asyncio.Lock()

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
        """Pull and handle everything new for ``open_kfid``; returns how many messages were handled."""
        handled = 0
        async with self._lock:
            async with self.core.sessions() as session:
                cursor = await repo.kf_cursor(session, open_kfid=open_kfid)
            while True:
                payload: dict[str, Any] = {"token": token, "limit": 1000, "open_kfid": open_kfid}
                if cursor:
                    payload["cursor"] = cursor
                data = await self.api.call("kf/sync_msg", payload)
                for msg in data.get("msg_list") or []:
                    handled += await self._handle(msg, open_kfid)
                cursor = str(data.get("next_cursor") or cursor)
                await self._save_cursor(open_kfid, cursor)
                if not data.get("has_more"):
                    break
        if handled:
            self.core.wake_outbox()
        return handled

    async def _save_cursor(self, open_kfid: str, cursor: str) -> None:
        async with self.core.sessions() as session:
            await repo.save_kf_cursor_and_commit(session, open_kfid=open_kfid, cursor=cursor, now=self.core.clock.now())

    async def _handle(self, msg: dict[str, Any], open_kfid: str) -> int:
        if msg.get("origin") != CUSTOMER_ORIGIN or not msg.get("external_userid") or not msg.get("msgid"):
            return 0
        external = str(msg["external_userid"])
        msgid = str(msg["msgid"])
        now = self.core.clock.now()
        sent_at = datetime.fromtimestamp(int(msg.get("send_time") or now.timestamp()), UTC)
        text = str((msg.get("text") or {}).get("content") or "") if msg.get("msgtype") == "text" else ""
        async with self.core.sessions() as session:
            if not await repo.note_inbound(session, platform=KF_PLATFORM, dedupe_key=msgid[:300], now=now):
                return 0  # a message handled before
            conv = await repo.kf_conversation(session, external_userid=external)
            if conv is None:
                conv = repo.add_kf_conversation(
                    session,
                    KfConversation(
                        external_userid=external, open_kfid=open_kfid, last_customer_msg_at=sent_at, created_at=now
                    ),
                )
            # A new customer message opens a fresh 48 h window of 5 answers.
            conv.open_kfid, conv.last_customer_msg_at, conv.replies_in_window = open_kfid, max(sent_at, now), 0
            candidate = await repo.get_candidate(session, candidate_id=conv.candidate_id) if conv.candidate_id else None
            reply: tuple[str, dict[str, Any]]
            if candidate is None:
                reply = await self._identify(session, conv, text, now)
            else:
                reply = await self._answer(session, candidate, text, msgid, now)
            template, ctx = reply
            body = self.core.templates.render(f"kf/{template}.txt.j2", company=self.core.settings.company_name, **ctx)
            repo.add_notice(
                session,
                Notice(
                    kind=f"kf.{template}",
                    channel=KF_CHANNEL,
                    recipient=external,
                    body=body,
                    payload={"audience": "kf_reply", "msgid": msgid},
                    destination=f"{KF_CHANNEL}:{external}",
                    dedupe_key=f"kf:{msgid}"[:200],
                    next_attempt_at=now,
                    created_at=now,
                ),
            )
            await session.commit()
        return 1

    async def _identify(
        self, session: Session, conv: KfConversation, text: str, now: datetime
    ) -> tuple[str, dict[str, Any]]:
        match = MOBILE.search(text)
        if not match:
            return "ask_mobile", {}
        mobile = match.group()
        candidate = await repo.latest_candidate_by_mobile(session, mobile=mobile)
        if candidate is None:
            return "not_found", {}
        conv.candidate_id = candidate.id
        candidate.kf_contact = conv.external_userid
        candidate.updated_at = now
        log.info("kf conversation %s linked to candidate %s by mobile", conv.id, candidate.id)
        interview = await repo.latest_interview_of(session, candidate_id=candidate.id)
        return "linked", self._status_ctx(candidate, interview)

    async def _answer(
        self, session: Session, candidate: Candidate, text: str, msgid: str, now: datetime
    ) -> tuple[str, dict[str, Any]]:
        interview = await repo.latest_interview_of(session, candidate_id=candidate.id)
        ctx = self._status_ctx(candidate, interview)
        if "求助" in text and interview is not None and interview.status in OPEN_INTERVIEW_STATUSES:
            ctx["reached"] = await help_requests.open_help_request(
                session,
                self.core,
                interview=interview,
                candidate=candidate,
                event_id=f"kf:{msgid}",
                reason=PUNCT.sub("", text.replace("求助", "", 1)) or "微信客服求助",
                wants_exit=any(word in text for word in EXIT_WORDS),
                now=now,
            )
            return "help", ctx
        return "status", ctx

    def _status_ctx(self, candidate: Candidate, interview: Interview | None) -> dict[str, Any]:
        return {
            "candidate_name": candidate.name,
            "position": interview.position if interview else "",
            "status_text": STATUS_TEXT.get(interview.status, interview.status) if interview else "",
            "start_text": local_text(interview.scheduled_at, self.core.settings.tz) if interview else "",
        }


class KfSender:
    """Sends outbox rows on channel "kf" (answers and candidate notices) with /cgi-bin/kf/send_msg."""

    channel = KF_CHANNEL
    rate: tuple[int, float] | None = None  # the 5-per-48h rule is enforced below

    def __init__(self, core: Core, api: WeComApi) -> None:
        self.core = core
        self.api = api

    async def send(self, notice: Notice) -> str | None:
        now = self.core.clock.now()
        async with self.core.sessions() as session:
            conv = await repo.kf_conversation(session, external_userid=notice.recipient)
            if conv is None:
                raise SendError(
                    "WeCom kf: no conversation with this candidate", permanent=True, problem=SendProblem.no_conversation
                )
            if now - conv.last_customer_msg_at > WINDOW:
                raise SendError(
                    "WeCom kf: more than 48 hours since the candidate's last message",
                    permanent=True,
                    problem=SendProblem.window_closed,
                )
            if conv.replies_in_window >= MAX_REPLIES:
                raise SendError(
                    "WeCom kf: 5 replies sent since the candidate's last message",
                    permanent=True,
                    problem=SendProblem.reply_quota,
                )
            payload = {
                "touser": notice.recipient,
                "open_kfid": conv.open_kfid,
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
            await repo.count_kf_reply_and_commit(session, conv)
        return str(data.get("msgid") or "") or None
