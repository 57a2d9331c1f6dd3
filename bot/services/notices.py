"""Turning a business event into outbox rows (rendered, never sent here)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import Audience, CandidateChannel, NoticeKind
from bot.services import ats
from bot.services.context import Core
from storage import repo
from storage.models import Candidate, Interview, Notice, NoticeStatus, Person, Todo

log = logging.getLogger(__name__)

EMAIL = CandidateChannel.email
SMS = CandidateChannel.sms
KF = CandidateChannel.kf  # the chat channel that reaches candidates, when one is configured (Core.candidate_chats)


def enabled_candidate_channels(core: Core) -> set[str]:
    """Channels configured well enough to reach candidates: SMS and email by the settings, and the
    chat channels that can (``Core.candidate_chats``, from the channel registry)."""
    return core.settings.candidate_channels() | set(core.candidate_chats)


@dataclass(frozen=True)
class NoticePlan:
    """How a candidate notice will travel: the channels to try in order, or why none can.

    The one truth behind both the outbox row (``notify_candidate``) and what HR is told about it
    (the replies to 终止面试, 重新安排, 确认终止 and the HR notices).
    """

    steps: tuple[tuple[str, str], ...]  # (channel, recipient) in the order to try
    # Channels of BOT_NOTICE_PLAN left out, as "<channel>:no_contact" or "<channel>:disabled".
    blocked: tuple[str, ...]

    @property
    def reachable(self) -> bool:
        return bool(self.steps)

    @property
    def channels(self) -> list[str]:
        return [channel for channel, _ in self.steps]

    def as_context(self) -> dict[str, Any]:
        """For templates: ``{{ plan.reachable }}``, ``plan.first``, ``plan.fallbacks``, ``plan.blocked``."""
        channels = self.channels
        return {
            "reachable": self.reachable,
            "first": channels[0] if channels else None,
            "fallbacks": channels[1:],
            "blocked": list(self.blocked),
        }


def plan_for(candidate: Candidate, core: Core) -> NoticePlan:
    """BOT_NOTICE_PLAN filtered by what the candidate has (mobile for SMS, email, a kf conversation)
    and by which channels are enabled. An empty plan means nothing can reach the candidate now."""
    contacts: dict[str, str | None] = {EMAIL: candidate.email, SMS: candidate.mobile, KF: candidate.kf_contact}
    enabled = enabled_candidate_channels(core)
    steps: list[tuple[str, str]] = []
    blocked: list[str] = []
    for channel in core.settings.notice_channels:
        recipient = contacts.get(channel)
        if not recipient:
            blocked.append(f"{channel}:no_contact")
        elif channel not in enabled:
            blocked.append(f"{channel}:disabled")
        else:
            steps.append((channel, recipient))
    return NoticePlan(steps=tuple(steps), blocked=tuple(blocked))


def notice_outcome(candidate: Candidate, interview: Interview, core: Core, *, reader: str | None) -> dict[str, Any]:
    """Context for ``templates/chat/notice_outcome.txt.j2``: what happened to the candidate's notice,
    told to ``reader`` (a person key; the HR owner reads "your to-do")."""
    return {
        "plan": plan_for(candidate, core).as_context(),
        "candidate_name": candidate.name,
        "has_owner": bool(interview.hr_key),
        "owner_is_me": bool(interview.hr_key) and interview.hr_key == reader,
    }


def candidate_plan(candidate: Candidate, core: Core) -> list[tuple[str, str]]:
    """(channel, recipient) in the order to try (see ``plan_for``)."""
    return list(plan_for(candidate, core).steps)


async def hr_contact_context(session: AsyncSession, core: Core, interview: Interview) -> dict[str, str]:
    """How a candidate reaches the HR owner: the name, and the contact the company chose to show
    (BOT_NOTICE_HR_CONTACT: none, mobile, email or both; BOT_COMPANY_CONTACT replaces it)."""
    hr = None
    if interview.hr_platform and interview.hr_user_id:
        hr = await repo.get_person(session, platform=interview.hr_platform, user_id=interview.hr_user_id)
    settings = core.settings
    contact = settings.company_contact or ""
    if hr is not None and not contact:
        show = settings.notice_hr_contact
        parts = [
            value
            for value, wanted in ((hr.mobile, show in ("mobile", "both")), (hr.email, show in ("email", "both")))
            if value and wanted
        ]
        contact = "、".join(parts)
    return {"hr_name": hr.name if hr else "", "hr_contact": contact}


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# A newer candidate notice makes pending ones of the same interview stale: same kind always,
# and these other kinds as listed. A rescheduled time outdates reminders planned for the old one
# (the reminder rows themselves move with the time); a termination outdates everything that
# speaks of the interview as still ahead.
K = NoticeKind
REMINDER_KINDS: frozenset[str] = frozenset({K.before_1h, K.at_start, K.after_30m, K.idle_warning})
SUPERSEDES: dict[str, frozenset[str]] = {
    # A termination the candidate has not been told of yet is told in the new time's notice
    # (终止 then 改期 in one go: one notice that says both, see CARRIED_ACROSS).
    K.rescheduled: REMINDER_KINDS | {K.terminated},
    K.terminated: REMINDER_KINDS | {K.guide, K.rescheduled, K.help_contact_hr},
}
# Pending notices that stay useful after a newer one but quote what it changed: they are
# re-rendered with the newer context instead (the operation guide keeps its instructions,
# with the new time).
REFRESHES: dict[str, frozenset[str]] = {K.rescheduled: frozenset({K.guide})}
# Context a replacement keeps from the oldest notice it replaces: the candidate was never told
# the times in between, so "原定" stays the time they last heard of.
CARRIED: dict[str, tuple[str, ...]] = {K.rescheduled: ("old_text",)}
# Context a notice takes over from a pending notice of another kind it replaces, renamed:
# (new kind, replaced kind) -> ((old key, new key), …).
CARRIED_ACROSS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    (K.rescheduled, K.terminated): (("reason", "ended_reason"), ("reason_code", "ended_reason_code")),
}


def _render(core: Core, kind: str, ctx: dict[str, Any]) -> dict[str, Any]:
    """subject, body, html_body and the SMS text of ``templates/notices/<kind>.*``."""
    t = core.templates
    return {
        "subject": t.render(f"notices/{kind}.subject.j2", **ctx),
        "body": t.render(f"notices/{kind}.txt.j2", **ctx),
        "html_body": t.render(f"notices/{kind}.html.j2", **ctx) if t.exists(f"notices/{kind}.html.j2") else None,
        "sms_text": t.render(f"notices/{kind}.sms.j2", **ctx) if t.exists(f"notices/{kind}.sms.j2") else None,
    }


async def _replace_pending(
    session: AsyncSession, core: Core, *, kind: str, interview: Interview, ctx: dict[str, Any], now: datetime
) -> None:
    """Supersede or refresh the interview's pending candidate notices that ``kind`` outdates.

    Only rows still pending change (a conditional update): one a sender has claimed ('sending')
    goes out as it is. ``ctx`` takes the CARRIED values of the oldest same-kind notice replaced.
    """
    if interview.id is None:
        return
    stale = SUPERSEDES.get(kind, frozenset()) | {kind}
    refresh = REFRESHES.get(kind, frozenset())
    superseded: list[int] = []
    carried: dict[str, Any] = {}
    for row in await repo.pending_notices(session, interview_id=interview.id, kinds=[*stale, *refresh]):
        assert row.id is not None
        if row.payload.get("audience") != Audience.candidate:
            continue
        old_ctx: dict[str, Any] = dict(row.payload.get("ctx") or {})
        if row.kind in refresh:
            merged = {**old_ctx, **{key: value for key, value in ctx.items() if key in old_ctx}}
            rendered = _render(core, row.kind, merged)
            payload = {**row.payload, "ctx": {key: _json_safe(value) for key, value in merged.items()}}
            if rendered["sms_text"] is not None:
                payload["sms_text"] = rendered["sms_text"]
            fields = {k: rendered[k] for k in ("subject", "body", "html_body")}
            await repo.update_pending_notice(session, notice_id=row.id, payload=payload, **fields)
            continue
        if await repo.update_pending_notice(
            session, notice_id=row.id, status=NoticeStatus.superseded.value, last_error=f"superseded by {kind}"
        ):
            superseded.append(row.id)
            if row.kind == kind:
                for key in CARRIED.get(kind, ()):
                    carried.setdefault(key, old_ctx.get(key, ""))
            for old_key, new_key in CARRIED_ACROSS.get((kind, row.kind), ()):
                carried.setdefault(new_key, old_ctx.get(old_key, ""))
    ctx.update(carried)
    if ctx.get("old_text") and ctx.get("old_text") == ctx.get("start_text"):
        ctx["old_text"] = ""  # moved back to the time the candidate knows: no "原定" to speak of
    if superseded:
        repo.audit(
            session,
            at=now,
            actor="system",
            action="notice.superseded",
            interview_id=interview.id,
            detail={"by_kind": kind, "notice_ids": superseded},
        )


async def notify_candidate(
    session: AsyncSession,
    core: Core,
    *,
    kind: str,
    interview: Interview,
    candidate: Candidate,
    now: datetime,
    context: dict[str, Any],
    dedupe_key: str | None = None,
    hold_seconds: int = 0,
) -> Notice:
    """Queue one candidate notice rendered from ``templates/notices/<kind>.*`` (sent no sooner
    than ``hold_seconds`` from now).

    The dedupe key defaults to one notice of ``kind`` per interview attempt and channel.
    Pending notices this one outdates are superseded first (see SUPERSEDES), so the candidate
    hears the latest once.

    A candidate no enabled channel can reach (see ``plan_for``) still gets a row, dead at once so
    the outbox never sits on it and admins see it, and the HR owner gets a to-do to reach the
    candidate by hand, in the same transaction.
    """
    ctx: dict[str, Any] = {
        "company": core.settings.company_name,
        "candidate_name": candidate.name,
        "position": interview.position,
    }
    ctx.update(await hr_contact_context(session, core, interview))
    ctx.update(context)
    await _replace_pending(session, core, kind=kind, interview=interview, ctx=ctx, now=now)
    rendered = _render(core, kind, ctx)
    route = plan_for(candidate, core)
    plan = list(route.steps)
    channel, recipient = plan[0] if plan else ("none", "")
    # The render context goes with the notice: the SMS sender fills provider templates from it,
    # whichever channel the notice falls back to later.
    payload: dict[str, Any] = {
        "plan": plan,
        "audience": Audience.candidate.value,
        "ctx": {key: _json_safe(value) for key, value in ctx.items()},
    }
    if rendered["sms_text"] is not None:
        payload["sms_text"] = rendered["sms_text"]
    notice = Notice(
        kind=kind,
        channel=channel,
        recipient=recipient,
        interview_id=interview.id,
        subject=rendered["subject"],
        body=rendered["body"],
        html_body=rendered["html_body"],
        payload=payload,
        destination=f"{channel}:{recipient}",
        dedupe_key=dedupe_key or f"{kind}:{interview.attempt_key}:{channel}",
        next_attempt_at=now + timedelta(seconds=hold_seconds),
        created_at=now,
    )
    if not plan:
        notice.status = NoticeStatus.dead.value
        notice.last_error = core.templates.render("chat/notice_blocked.txt.j2", blocked=list(route.blocked))
        await undelivered_todo(session, interview=interview, candidate_name=candidate.name, now=now)
    repo.add_notice(session, notice)
    return notice


async def undelivered_todo(session: AsyncSession, *, interview: Interview, candidate_name: str, now: datetime) -> None:
    """A candidate nobody could reach becomes the HR owner's to-do instead of vanishing;
    one open to-do per interview however many notices failed (guide, reminders, termination)."""
    if not interview.hr_key:
        return
    title = f"联系候选人{candidate_name}:通知未送达"
    if interview.id is not None:
        open_todos = await repo.todos_for_interview(session, interview_id=interview.id)
        if any(t.title == title and not t.done for t in open_todos):
            return
    session.add(Todo(assignee=interview.hr_key, interview_id=interview.id, title=title, created_at=now))


async def notify_staff(
    session: AsyncSession,
    core: Core,
    *,
    kind: str,
    person_key: str | None,
    interview: Interview | None,
    now: datetime,
    text: str,
    dedupe_key: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Notice | None:
    """Queue a message to a colleague (``platform:user_id``): in chat when that platform is
    connected; otherwise by email when they have an address and SMTP is configured (the mail says
    why it came by mail and that replying to it does nothing); None when nothing reaches them.

    ``payload`` adds to the default ``{"audience": "staff", "msgtype": "text"}`` (e.g. markdown and a title).
    """
    if not person_key or ":" not in person_key:
        return None
    platform, user_id = person_key.split(":", 1)
    if platform in core.staff_channels:
        notice = Notice(
            kind=kind,
            channel=platform,
            recipient=user_id,
            interview_id=interview.id if interview else None,
            body=text,
            payload={"audience": Audience.staff.value, "msgtype": "text", **(payload or {})},
            destination=f"{platform}:user:{user_id}",
            dedupe_key=dedupe_key,
            next_attempt_at=now,
            created_at=now,
        )
    else:
        settings = core.settings
        person = await repo.get_person(session, platform=platform, user_id=user_id) if settings.smtp_enabled else None
        if person is None or not person.email:
            return None
        base = (settings.public_base_url or "").rstrip("/")
        ctx = {
            "company": settings.company_name,
            "kind": kind,
            "text": text,
            "name": person.name,
            "platform": platform,
            "console_url": f"{base}/console" if base else "",
        }
        notice = Notice(
            kind=kind,
            channel=EMAIL,
            recipient=person.email,
            interview_id=interview.id if interview else None,
            subject=core.templates.render("notices/staff_email.subject.j2", **ctx),
            body=core.templates.render("notices/staff_email.txt.j2", **ctx),
            # The chat channel it would have gone by, for people reading the outbox.
            payload={"audience": Audience.staff.value, "instead_of": platform},
            destination=f"{EMAIL}:{person.email}",
            dedupe_key=dedupe_key,
            next_attempt_at=now,
            created_at=now,
        )
    repo.add_notice(session, notice)
    return notice


def person_label(person: Person | None, fallback: str) -> str:
    return person.name if person else fallback


# How candidate-notice channels are named in chat text.
CHANNEL_NAMES: dict[str, str] = {KF: "微信客服", SMS: "短信", EMAIL: "邮件"}


class DeliveryFailures:
    """The services' ``bot.outbox.DeliveryPolicy``: a candidate nobody could reach becomes the HR
    owner's to-do, and a candidate notice cut off by a crash is told to the HR owner in chat."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def _interview(self, session: AsyncSession, notice: Notice) -> tuple[Interview, str] | None:
        if notice.payload.get("audience") != Audience.candidate or notice.interview_id is None:
            return None
        interview = await repo.get_interview_by_pk(session, interview_id=notice.interview_id)
        if interview is None:
            return None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        return interview, candidate.name if candidate else ""

    async def dead(self, session: AsyncSession, notice: Notice, now: datetime) -> None:
        """A candidate notice nobody could deliver becomes an HR to-do instead of vanishing; a call
        to a recruiting system that failed for good is told to the HR owner (``ats.exit_failed``)."""
        if notice.payload.get("audience") == Audience.ats:
            await ats.exit_failed(session, self.core, notice, now)
            return
        found = await self._interview(session, notice)
        if found is not None:
            interview, name = found
            await undelivered_todo(session, interview=interview, candidate_name=name, now=now)

    async def cut_off(
        self, session: AsyncSession, notice: Notice, *, cut_off: str, moved_on: bool, now: datetime
    ) -> None:
        """The HR owner hears in chat that a candidate notice may not have arrived on ``cut_off``."""
        found = await self._interview(session, notice)
        if found is None:
            return
        interview, name = found
        text = self.core.templates.render(
            "chat/notice_cut_off.txt.j2",
            candidate_name=name,
            subject=notice.subject or notice.kind,
            cut_off=CHANNEL_NAMES.get(cut_off, cut_off),
            next_channel=CHANNEL_NAMES.get(notice.channel, notice.channel) if moved_on else "",
        )
        await notify_staff(
            session,
            self.core,
            kind=NoticeKind.notice_cut_off,
            person_key=interview.hr_key,
            interview=interview,
            now=now,
            text=text,
            dedupe_key=f"notice-cut-off:{notice.id}:{cut_off}",
        )


async def queue_now(core: Core, rows: Sequence[Notice]) -> None:
    """Store outbox rows now, apart from the transaction at hand (e.g. greying out a clicked card
    before the command runs), and wake the outbox; rows queued by an earlier try are left as they are."""
    if not rows:
        return
    async with core.sessions() as session:
        try:
            await repo.add_notices_and_commit(session, rows)
        except repo.Conflict:
            log.warning("%d row(s) were already queued by an earlier try", len(rows))
            return
    core.wake_outbox()
