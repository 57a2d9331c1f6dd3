"""The admin's 通知 and 系统 views: notices that did not go out, retrying a dead one, chat messages
whose processing failed, and a snapshot of how the service is doing. Channel names and their
features come from the caller (the app layer reads ``bot.channels.registry``); services never
import a channel."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata

from sqlalchemy.engine import make_url

from bot.delivery import Audience
from bot.services import people
from bot.services.context import Core
from bot.services.errors import ServiceError
from bot.webhook_client import CHANNEL as WEBHOOK_CHANNEL
from storage import repo
from storage.models import (
    INTAKE_OPEN_STATUSES,
    PLATFORM_EVENTS,
    AttemptResult,
    IntakeItem,
    IntakeStatus,
    Interview,
    Notice,
    NoticeAttempt,
    NoticeStatus,
)
from templates.labels import LABELS, label

PACKAGE = "interview-exit-bot"


class NoticeRetryError(ServiceError):
    code = "notice_retry_refused"


def _refuse(core: Core, error: str, *, http: int = 409, **context: object) -> NoticeRetryError:
    exc = NoticeRetryError(core.templates.render("admin/errors.txt.j2", error=error, **context), error=error)
    exc.http_status = http
    return exc


@dataclass
class NoticeView:
    notice: Notice
    attempts: list[NoticeAttempt]
    # Whether a configured channel can send on the notice's channel now (see ``deliverable``).
    deliverable: bool = True
    # Whom it is about and for: the interview's id and candidate (linked on the page), and the
    # colleague's name for a notice to staff ("" for a candidate's own notice or a group post).
    platform_id: str | None = None
    candidate_name: str = ""
    staff_name: str = ""

    @property
    def for_candidate(self) -> bool:
        return (self.notice.payload or {}).get("audience") == Audience.candidate.value

    @property
    def retryable(self) -> bool:
        """Dead, on a channel that can deliver now, and its last attempt did not end with an
        unknown outcome (maybe delivered)."""
        last = self.attempts[-1] if self.attempts else None
        return (
            self.notice.status == NoticeStatus.dead.value
            and self.deliverable
            and not (
                last is not None and last.result == AttemptResult.unknown.value and last.channel == self.notice.channel
            )
        )


def deliverable(core: Core) -> set[str]:
    """The outbox channels a configured sender can deliver on: candidates' (SMS, email and the chat
    channels that reach candidates), colleagues', the group robots', the recruiting systems' and the
    outbound events' (always registered: its endpoints may be added at any time)."""
    return (
        {WEBHOOK_CHANNEL}
        | core.settings.candidate_channels()
        | set(core.candidate_chats)
        | set(core.staff_channels)
        | {poster.channel for poster in core.group_posters}
        | set(core.ats_systems)
    )


def _staff_key(notice: Notice) -> str | None:
    """``platform:user_id`` of the colleague a staff notice goes to (destination ``platform:user:id``)."""
    platform, sep, user_id = notice.destination.partition(":user:")
    return f"{platform}:{user_id}" if sep and platform and user_id else None


async def problem_notices(core: Core, *, limit: int = 200) -> dict[str, list[NoticeView]]:
    """Pending (including ones waiting to retry and being sent) and dead notices, newest first,
    each with every delivery attempt, under "pending" and "dead"."""
    usable = deliverable(core)
    out: dict[str, list[NoticeView]] = {}
    async with core.sessions() as session:
        for group, statuses in (
            ("pending", [NoticeStatus.pending.value, NoticeStatus.sending.value]),
            ("dead", [NoticeStatus.dead.value]),
        ):
            rows = await repo.notices_with_status(session, statuses=statuses, limit=limit)
            attempts = await repo.attempts_for_notices(session, notice_ids=[n.id for n in rows if n.id is not None])
            views = []
            for n in rows:
                view = NoticeView(n, attempts.get(n.id or 0, []), deliverable=n.channel in usable)
                if n.interview_id is not None:
                    interview = await session.get(Interview, n.interview_id)
                    if interview is not None:
                        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
                        view.platform_id = interview.platform_id
                        view.candidate_name = candidate.name if candidate else ""
                if not view.for_candidate:
                    key = _staff_key(n)
                    view.staff_name = await people.display_name(session, key) if key else ""
                views.append(view)
            out[group] = views
    return out


async def failed_messages(core: Core, *, limit: int = 200) -> list[IntakeItem]:
    """Chat messages given up on after their last try (intake items of a chat source, failed),
    newest first; the sender was told 抱歉,处理时出错了 when a handler failed."""
    async with core.sessions() as session:
        items = await repo.intake_page(session, status=IntakeStatus.failed.value, limit=limit)
    return [item for item in items if item.source != PLATFORM_EVENTS]


async def retry_notice(core: Core, *, notice_id: int, actor: str, source: str) -> Notice:
    """Send a dead notice again: back to pending, due now, on the channel it died on, its attempts
    kept (so one more failure makes it dead again). Refused for a notice that is not dead, and for
    one whose last attempt was cut off mid-send (it may have arrived; never sent twice). Audited."""
    now = core.clock.now()
    async with core.sessions() as session:
        notice = await session.get(Notice, notice_id)
        if notice is None:
            raise _refuse(core, "notice_not_found", http=404, notice_id=notice_id)
        if notice.status != NoticeStatus.dead.value:
            raise _refuse(core, "notice_not_dead", notice_id=notice_id, status=label(notice.status, "notice_status"))
        if notice.channel not in deliverable(core):
            channel = label(notice.channel, "channel")
            raise _refuse(core, "notice_no_channel", notice_id=notice_id, channel=channel)
        last = await repo.last_attempt(session, notice_id=notice_id, channel=notice.channel)
        if last is not None and last.result == AttemptResult.unknown.value:
            raise _refuse(core, "notice_unknown_outcome", notice_id=notice_id, channel=label(notice.channel, "channel"))
        if not await repo.requeue_dead_notice(session, notice_id=notice_id, now=now):
            await session.rollback()
            raise _refuse(
                core, "notice_not_dead", notice_id=notice_id, status=label(NoticeStatus.sending, "notice_status")
            )
        repo.audit(
            session,
            at=now,
            actor=actor,
            action="notice.retried",
            interview_id=notice.interview_id,
            detail={
                "source": source,
                "notice_id": notice_id,
                "channel": notice.channel,
                "attempts": notice.attempts,
                "error": notice.last_error,
            },
        )
        await session.commit()
        await session.refresh(notice)
    core.wake_outbox()
    return notice


@dataclass
class Feature:
    name: str  # as the start-up summary names it (English)
    enabled: bool
    why_not: str | None  # the start-up summary's English reason

    @property
    def title(self) -> str:
        """Its Chinese name for the 系统 page."""
        return label(self.name, "feature")

    @property
    def why_shown(self) -> str:
        """Why it is off, in Chinese (setting names kept as they are typed in .env)."""
        return explain_off(self.why_not) if self.why_not else ""


_UNSET = re.compile(r"^([A-Z0-9_, ]+?(?: or [A-Z0-9_]+)?) (?:is )?not set(?:;.*)?$")
_OFF = re.compile(r"^([A-Z0-9_]+) is off$")
_INVALID = re.compile(r"^([A-Z0-9_]+) is not valid\b")
_NEEDS = re.compile(r"^needs the (.+) settings$")
_NO_TEMPLATE = re.compile(r"^([A-Z0-9_]+) has no template for notice kinds: (.+)$")


def explain_off(why: str) -> str:
    """A feature's English reason for being off (``Settings.feature_status`` and the channels'
    ``features``) as the 系统 page says it; setting names stay as typed in .env."""
    words = LABELS["feature_why"]

    def names(text: str) -> str:
        parts = [p.strip() for p in re.split(r",| or ", text) if p.strip()]
        joiner = words["or"] if " or " in text else words["separator"]
        return joiner.join(parts)

    if found := _UNSET.match(why):
        return words["unset"].format(names=names(found.group(1)))
    if found := _OFF.match(why):
        return words["off"].format(names=found.group(1))
    if found := _INVALID.match(why):
        return words["invalid"].format(names=found.group(1))
    if found := _NO_TEMPLATE.match(why):
        kinds = words["separator"].join(label(k.strip(), "notice_kind") for k in found.group(2).split(","))
        return words["no_template"].format(names=found.group(1), kinds=kinds)
    if found := _NEEDS.match(why):
        return words["needs"].format(what=label(found.group(1), "feature"))
    return words["other"]


@dataclass
class SystemSnapshot:
    features: list[Feature]
    intake_backlog: int  # chat messages taken in and not processed yet
    outbox_backlog: dict[str, int]  # notices pending or being sent, by channel
    last_errors: list[NoticeAttempt] = field(default_factory=list)  # failed delivery attempts, newest first
    # Chat messages whose processing failed (waiting for a retry or given up), newest first; their
    # error is last_error.
    intake_errors: list[IntakeItem] = field(default_factory=list)
    version: str = ""
    database: str = ""  # "sqlite" or "postgresql"


def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return LABELS["system"]["unknown_version"]


def database_kind(core: Core) -> str:
    return make_url(core.settings.database_url).get_backend_name()


async def system_snapshot(
    core: Core, *, features: Sequence[tuple[str, str | None]], errors: int = 10
) -> SystemSnapshot:
    """``features``: every switchable feature with None when on, else why it is off (the app layer
    passes ``registry.feature_status(settings)``)."""
    async with core.sessions() as session:
        intake = await repo.intake_counts(session)
        outbox = await repo.backlog_by_channel(session)
        failed = await repo.recent_failed_attempts(session, limit=errors)
        intake_failed = await repo.failing_intake(session, exclude_source=PLATFORM_EVENTS, limit=errors)
    chat_backlog = sum(
        n for (source, status), n in intake.items() if source != PLATFORM_EVENTS and status in INTAKE_OPEN_STATUSES
    )
    return SystemSnapshot(
        features=[Feature(name, why is None, why) for name, why in features],
        intake_backlog=chat_backlog,
        outbox_backlog=dict(sorted(outbox.items())),
        last_errors=list(failed),
        intake_errors=list(intake_failed),
        version=package_version(),
        database=database_kind(core),
    )
