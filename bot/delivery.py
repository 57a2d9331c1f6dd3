"""The delivery contract between services, channels and the outbox: notice kinds and audiences,
and what a channel can reach, as plain data.

Services never import a channel. The registry (``bot.channels.registry``) reads each channel's
settings and hands the services, through ``Core``, what the channels can do:

- ``staff_channels``: outbox channels that reach colleagues by their platform user id;
- ``candidate_chats``: chat channels that reach candidates (a channel of BOT_NOTICE_PLAN);
- ``group_posters``: group robots that take posts (the managers' daily summary);
- ``ats_systems``: recruiting systems an exit is written back to (their outbox channel is their name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from storage.models import Notice


class Audience(StrEnum):
    """``Notice.payload["audience"]``: whom a row is for (stored as the plain string)."""

    candidate = "candidate"  # carries a channel plan, falls back, never sent twice on one channel
    staff = "staff"  # colleagues: notices, replies, group posts
    ats = "ats"  # a call writing an exit back to a recruiting system (bot.services.ats)
    # The company's systems (outbound events): sent at least once, in order per destination; the
    # receiver drops a repeat by its Idempotency-Key, so a try cut off by a crash is sent again.
    system = "system"


class CandidateChannel(StrEnum):
    """The channels of BOT_NOTICE_PLAN, in their default order."""

    kf = "kf"
    sms = "sms"
    email = "email"


CANDIDATE_CHANNELS = tuple(CandidateChannel)


class NoticeKind(StrEnum):
    """``Notice.kind`` values (stored as the plain string; templates are ``notices/<kind>.*``)."""

    # To candidates; each needs an SMS template mapping before the SMS channel is enabled.
    terminated = "terminated"
    rescheduled = "rescheduled"
    guide = "guide"
    before_1h = "before_1h"
    at_start = "at_start"
    after_30m = "after_30m"
    idle_warning = "idle_warning"
    help_contact_hr = "help_contact_hr"
    # To colleagues.
    reply = "reply"
    daily_summary = "daily_summary"
    notice_cut_off = "notice_cut_off"
    termination_outcome = "termination_outcome"
    help_requested = "help_requested"
    help_reminder = "help_reminder"
    hr_terminated = "hr_terminated"
    hr_rescheduled = "hr_rescheduled"
    hr_after_30m = "hr_after_30m"
    interview_shared = "interview_shared"
    card_update = "card_update"
    admin_test = "admin_test"
    ats_failed = "ats_failed"
    # To a recruiting system: one call each (``payload["call"]``), see bot.services.ats.
    ats_exit = "ats_exit"
    # To the company's systems (bot/services/outbound.py).
    outbound_event = "outbound_event"


CANDIDATE_NOTICE_KINDS: tuple[NoticeKind, ...] = (
    NoticeKind.terminated,
    NoticeKind.rescheduled,
    NoticeKind.guide,
    NoticeKind.before_1h,
    NoticeKind.at_start,
    NoticeKind.after_30m,
    NoticeKind.idle_warning,
    NoticeKind.help_contact_hr,
)


class SendProblem(StrEnum):
    """Why a delivery failed, where people can act on it (shown to HR by its label in
    ``templates/labels.py``; the rest of an error is the operator's English detail)."""

    no_conversation = "no_conversation"  # the candidate never opened a chat with us
    window_closed = "window_closed"  # the platform's reply window after the candidate's last message
    reply_quota = "reply_quota"  # the platform's quota of replies per candidate message
    recipient_refused = "recipient_refused"  # the mail server refused the address
    no_permission = "no_permission"  # the app lacks a permission (scope) the call needs


def problem_of(error: str | None) -> SendProblem | None:
    """The ``SendProblem`` a stored error starts with (``bot.outbox.SendError`` puts it there)."""
    for code in (error or "").split(": ", 2)[:2]:  # "window_closed: …" or "SendError: window_closed: …"
        if code in SendProblem.__members__:
            return SendProblem(code)
    return None


@dataclass(frozen=True, slots=True)
class GroupPost:
    """One post to a group robot: markdown text, and a PNG for robots that take images."""

    kind: str
    now: datetime
    title: str
    markdown: str
    dedupe_key: str
    image: bytes | None = None


@dataclass(frozen=True, slots=True)
class GroupPoster:
    """A configured group robot. ``build`` turns a post into outbox rows for its sender."""

    channel: str  # the outbox channel, also the recipient key "robot:<channel>" of the summary
    # True: a chart goes as an image message (and the markdown carries no link to it).
    takes_images: bool
    build: Callable[[GroupPost], list[Notice]]


@dataclass(frozen=True, slots=True)
class Reach:
    """What the configured channels can reach (see the module docstring)."""

    staff_channels: frozenset[str] = frozenset()
    candidate_chats: frozenset[str] = frozenset()
    group_posters: tuple[GroupPoster, ...] = ()
    ats_systems: frozenset[str] = frozenset()
