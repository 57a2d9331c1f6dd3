"""Candidates writing to the company's customer-service chat (kf): who they are, where their
interview stands, their 求助, and the chat's reply window.

A conversation (``KfConversation``, one per customer id) is unknown until the candidate sends the
mobile number given with the application: a number matching a candidate's record links the
conversation to them (``candidate.kf_contact``), and from then on the chat is a notice channel for
them. WeCom allows answers only within 48 h of the customer's last message and at most 5 in that
window: each message they send opens a fresh window (``customer_wrote``), each answer counts
(``count_reply``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.services import help_requests
from bot.services.claims import local_text
from bot.services.context import Core
from bot.services.help_requests import HelpReached
from storage import repo
from storage.models import OPEN_INTERVIEW_STATUSES, Candidate, Interview, KfConversation, Role

log = logging.getLogger(__name__)

# The kf chat answers a customer only within 48 h of their last message, at most 5 times.
WINDOW = timedelta(hours=48)
MAX_REPLIES = 5
# The ``inbound_message`` platform under which help requests opened from the chat are claimed.
HELP_CLAIM = "candidate_help"
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


@dataclass(frozen=True)
class Standing:
    """A linked candidate and their latest interview, as the chat tells them."""

    candidate_id: int
    candidate_name: str
    position: str = ""
    status: str = ""  # the interview's status code; "" when they have no interview
    start_text: str = ""
    open: bool = False  # whether the interview may still be ended or helped with


@dataclass(frozen=True)
class ReplyWindow:
    """Where and how much the chat may still answer a customer."""

    account: str  # the kf account (open_kfid) the customer last wrote to
    last_customer_msg_at: datetime
    replies_in_window: int


def _standing(core: Core, candidate: Candidate, interview: Interview | None) -> Standing:
    assert candidate.id is not None
    if interview is None:
        return Standing(candidate.id, candidate.name)
    return Standing(
        candidate.id,
        candidate.name,
        position=interview.position,
        status=interview.status,
        start_text=local_text(interview.scheduled_at, core.settings.tz),
        open=interview.status in OPEN_INTERVIEW_STATUSES,
    )


async def cursor(core: Core, *, account: str) -> str:
    """The stored sync cursor of a kf account ("" before its first sync)."""
    async with core.sessions() as session:
        return await repo.kf_cursor(session, open_kfid=account)


async def save_cursor(core: Core, *, account: str, cursor: str) -> None:
    async with core.sessions() as session:
        await repo.save_kf_cursor_and_commit(session, open_kfid=account, cursor=cursor, now=core.clock.now())


async def customer_wrote(core: Core, *, contact: str, account: str, sent_at: datetime) -> None:
    """A message from ``contact`` sent at ``sent_at`` opens a fresh 48 h window of 5 answers (and the
    conversation, the first time). Only a message newer than the window's opens it again: a message
    processed a second time (a retry) or late (after a newer one) leaves the count of answers as it is."""
    now = core.clock.now()
    async with core.sessions() as session:
        conv = await repo.kf_conversation(session, external_userid=contact)
        if conv is None:
            conv = repo.add_kf_conversation(
                session,
                KfConversation(
                    external_userid=contact, open_kfid=account, last_customer_msg_at=sent_at, created_at=now
                ),
            )
        elif sent_at > conv.last_customer_msg_at:
            conv.last_customer_msg_at, conv.replies_in_window = sent_at, 0
        conv.open_kfid = account
        await session.commit()


async def reply_window(core: Core, *, contact: str) -> ReplyWindow | None:
    """The conversation's reply window; None when the customer never wrote."""
    async with core.sessions() as session:
        conv = await repo.kf_conversation(session, external_userid=contact)
        if conv is None:
            return None
        return ReplyWindow(conv.open_kfid, conv.last_customer_msg_at, conv.replies_in_window)


async def count_reply(core: Core, *, contact: str) -> None:
    """One more answer sent in the conversation's window."""
    async with core.sessions() as session:
        conv = await repo.kf_conversation(session, external_userid=contact)
        if conv is not None:
            await repo.count_kf_reply_and_commit(session, conv)


async def standing(core: Core, *, contact: str) -> Standing | None:
    """The candidate this conversation is linked to, with their latest interview; None: not linked."""
    async with core.sessions() as session:
        conv = await repo.kf_conversation(session, external_userid=contact)
        if conv is None or conv.candidate_id is None:
            return None
        candidate = await repo.get_candidate(session, candidate_id=conv.candidate_id)
        if candidate is None:
            return None
        return _standing(core, candidate, await repo.latest_interview_of(session, candidate_id=candidate.id))


def mobile_in(text: str) -> str | None:
    """The mainland mobile number a message gives, if any."""
    found = MOBILE.search(text)
    return found.group() if found else None


async def link_by_mobile(core: Core, *, contact: str, account: str, mobile: str) -> Standing | None:
    """Link the conversation to the latest candidate with this mobile number (they become
    reachable here); None when no candidate has it. Linking again is harmless."""
    now = core.clock.now()
    async with core.sessions() as session:
        candidate = await repo.latest_candidate_by_mobile(session, mobile=mobile)
        if candidate is None:
            return None
        conv = await repo.kf_conversation(session, external_userid=contact)
        if conv is None:
            conv = repo.add_kf_conversation(
                session,
                KfConversation(external_userid=contact, open_kfid=account, last_customer_msg_at=now, created_at=now),
            )
        conv.candidate_id = candidate.id
        candidate.kf_contact = contact
        candidate.updated_at = now
        found = _standing(core, candidate, await repo.latest_interview_of(session, candidate_id=candidate.id))
        await session.commit()
    log.info("kf conversation of %s linked to candidate %s by mobile", contact, found.candidate_id)
    return found


async def ask_for_help(core: Core, *, candidate_id: int, key: str, reason: str, wants_exit: bool) -> HelpReached | None:
    """Open a help request for the candidate's open interview, exactly as the platform's help button
    does (``help_requests.open_help_request``); who was reached, or None when no interview is open.
    ``key`` names the request: asked again with the same key (a retried message), nothing new is
    opened and the answer is the same."""
    now = core.clock.now()
    async with core.sessions() as session:
        candidate = await repo.get_candidate(session, candidate_id=candidate_id)
        interview = await repo.latest_interview_of(session, candidate_id=candidate_id)
        if candidate is None or interview is None or interview.status not in OPEN_INTERVIEW_STATUSES:
            return None
        hr_key = interview.hr_key
        # The request's key is claimed in the transaction that opens it: a message processed again
        # (its reply lost to a crash) finds it taken and opens nothing new. A failure rolls both back.
        if await repo.note_inbound(session, platform=HELP_CLAIM, dedupe_key=key[:300], now=now):
            reached = await help_requests.open_help_request(
                session,
                core,
                interview=interview,
                candidate=candidate,
                event_id=key,
                reason=reason,
                wants_exit=wants_exit,
                now=now,
            )
            await session.commit()
            return reached
    log.info("help request %s was opened before (the message is processed again)", key)
    return await _reached_before(core, hr_key=hr_key, wants_exit=wants_exit)


async def _reached_before(core: Core, *, hr_key: str | None, wants_exit: bool) -> HelpReached:
    """Who a help request opened before reached (the same rule ``open_help_request`` applies)."""
    if wants_exit and core.settings.candidate_exit_policy == "self":
        return "self"
    if hr_key:
        return "hr"
    async with core.sessions() as session:
        people = await repo.list_people(session)
    return "managers" if any(p.role in (Role.manager.value, Role.admin.value) for p in people) else "nobody"
