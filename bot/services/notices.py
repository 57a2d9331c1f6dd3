"""Turning a business event into outbox rows (rendered, never sent here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.context import Core
from bot.settings import Settings
from storage import repo
from storage.models import Candidate, Interview, Notice, NoticeStatus, Person, Todo

EMAIL = "email"
SMS = "sms"
KF = "kf"


def enabled_candidate_channels(settings: Settings) -> set[str]:
    """Channels configured well enough to reach candidates."""
    on = set()
    if settings.kf_enabled:
        on.add(KF)
    if settings.smtp_enabled:
        on.add(EMAIL)
    if settings.sms_enabled:
        on.add(SMS)
    return on


def candidate_plan(candidate: Candidate, settings: Settings) -> list[tuple[str, str]]:
    """(channel, recipient) in the order to try: BOT_NOTICE_PLAN filtered by what the candidate
    has and by which channels are enabled.

    When no enabled channel fits, the plan keeps the channels the candidate can be reached on
    anyway, so the notice waits in the outbox until one is configured (as email always did).
    """
    contacts = {EMAIL: candidate.email, SMS: candidate.mobile, KF: candidate.kf_contact}
    reachable = [(channel, contacts[channel]) for channel in settings.notice_channels if contacts.get(channel)]
    enabled = enabled_candidate_channels(settings)
    plan = [(channel, recipient or "") for channel, recipient in reachable if channel in enabled]
    return plan or [(channel, recipient or "") for channel, recipient in reachable]


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# A newer candidate notice makes pending ones of the same interview stale: same kind always,
# and these other kinds as listed. A rescheduled time outdates reminders planned for the old one
# (the reminder rows themselves move with the time); a termination outdates everything that
# speaks of the interview as still ahead.
REMINDER_KINDS = frozenset({"before_1h", "at_start", "after_30m", "idle_warning"})
SUPERSEDES: dict[str, frozenset[str]] = {
    "rescheduled": REMINDER_KINDS,
    "terminated": REMINDER_KINDS | {"guide", "rescheduled", "help_contact_hr"},
}
# Pending notices that stay useful after a newer one but quote what it changed: they are
# re-rendered with the newer context instead (the operation guide keeps its instructions,
# with the new time).
REFRESHES: dict[str, frozenset[str]] = {"rescheduled": frozenset({"guide"})}
# Context a replacement keeps from the oldest notice it replaces: the candidate was never told
# the times in between, so "原定" stays the time they last heard of.
CARRIED: dict[str, tuple[str, ...]] = {"rescheduled": ("old_text",)}


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
        if row.payload.get("audience") != "candidate":
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
) -> Notice:
    """Queue one candidate notice rendered from ``templates/notices/<kind>.*``.

    The dedupe key defaults to one notice of ``kind`` per interview attempt and channel.
    Pending notices this one outdates are superseded first (see SUPERSEDES), so the candidate
    hears the latest once.

    A candidate with no reachable channel still gets a row (dead, so admins see it)
    and the HR owner gets a to-do to reach the candidate by hand.
    """
    ctx = {"company": core.settings.company_name, "candidate_name": candidate.name, "position": interview.position}
    ctx.update(context)
    await _replace_pending(session, core, kind=kind, interview=interview, ctx=ctx, now=now)
    rendered = _render(core, kind, ctx)
    plan = candidate_plan(candidate, core.settings)
    channel, recipient = plan[0] if plan else ("none", "")
    # The render context goes with the notice: the SMS sender fills provider templates from it,
    # whichever channel the notice falls back to later.
    payload: dict[str, Any] = {
        "plan": plan,
        "audience": "candidate",
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
        next_attempt_at=now,
        created_at=now,
    )
    if not plan:
        notice.status = NoticeStatus.dead.value
        notice.last_error = "候选人没有可用的联系方式"
        undelivered_todo(session, interview=interview, candidate_name=candidate.name, now=now)
    repo.add_notice(session, notice)
    return notice


def undelivered_todo(session: AsyncSession, *, interview: Interview, candidate_name: str, now: datetime) -> None:
    """A candidate nobody could reach becomes the HR owner's to-do instead of vanishing."""
    if interview.hr_key:
        session.add(
            Todo(
                assignee=interview.hr_key,
                interview_id=interview.id,
                title=f"联系候选人{candidate_name}:通知未送达",
                created_at=now,
            )
        )


def notify_staff(
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
    """Queue a chat message to a colleague (``platform:user_id``) if that platform is connected.

    ``payload`` adds to the default ``{"audience": "staff", "msgtype": "text"}`` (e.g. markdown and a title).
    """
    if not person_key or ":" not in person_key:
        return None
    platform, user_id = person_key.split(":", 1)
    if platform not in core.staff_channels:
        return None
    notice = Notice(
        kind=kind,
        channel=platform,
        recipient=user_id,
        interview_id=interview.id if interview else None,
        body=text,
        payload={"audience": "staff", "msgtype": "text", **(payload or {})},
        destination=f"{platform}:user:{user_id}",
        dedupe_key=dedupe_key,
        next_attempt_at=now,
        created_at=now,
    )
    repo.add_notice(session, notice)
    return notice


def person_label(person: Person | None, fallback: str) -> str:
    return person.name if person else fallback
