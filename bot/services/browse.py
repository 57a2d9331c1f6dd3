"""Reading interviews for the web console: who may see which, the live list, filtered pages and
one interview's whole history as a timeline.

Scope follows chat's rule: ``scope`` is an HR's ``platform:user_id`` (own and shared interviews)
or None for managers and admins (all). Nothing here writes; actions go through their one
procedure (``termination.terminate``, ``scheduling.reschedule``, ``todos.finish``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.services import people
from bot.services.context import Core
from storage import repo
from storage.models import (
    AuditEvent,
    Candidate,
    ExitRecord,
    Interview,
    InterviewStatus,
    Notice,
    NoticeAttempt,
    PlatformEvent,
    Reminder,
    Todo,
)

__all__ = [
    "PER_PAGE",
    "RECENT",
    "Candidate",
    "Interview",
    "InterviewPage",
    "InterviewStatus",
    "LiveRow",
    "Timeline",
    "TimelineItem",
    "live",
    "page",
    "timeline",
    "visible",
]

PER_PAGE = 20
# How long a terminated interview stays on the 进行中 list (shown as 已终止 with its reason).
RECENT = timedelta(minutes=30)


@dataclass
class LiveRow:
    interview: Interview
    candidate: Candidate
    elapsed_minutes: int
    idle_minutes: int
    exit: ExitRecord | None = None


async def live(core: Core, *, scope: str | None) -> list[LiveRow]:
    """In-progress interviews in scope, then those terminated in the last ``RECENT``."""
    now = core.clock.now()
    rows: list[LiveRow] = []
    async with core.sessions() as session:
        running = await repo.open_interviews_matching(
            session, query=None, hr_key=scope, statuses=(InterviewStatus.in_progress.value,)
        )
        for interview, candidate in running:
            started = interview.started_at or now
            rows.append(
                LiveRow(
                    interview,
                    candidate,
                    elapsed_minutes=max(0, int((now - started).total_seconds() // 60)),
                    idle_minutes=max(0, int((now - (interview.last_activity_at or started)).total_seconds() // 60)),
                )
            )
        ended = await repo.recently_ended(
            session, hr_key=scope, since=now - RECENT, status=InterviewStatus.terminated.value
        )
        for interview, candidate in ended:
            assert interview.id is not None
            started = interview.started_at or interview.ended_at or now
            end = interview.ended_at or now
            rows.append(
                LiveRow(
                    interview,
                    candidate,
                    elapsed_minutes=max(0, int((end - started).total_seconds() // 60)),
                    idle_minutes=0,
                    exit=await repo.get_exit(session, interview_id=interview.id),
                )
            )
    return rows


async def visible(core: Core, *, platform_id: str, scope: str | None) -> tuple[Interview, Candidate] | None:
    """The interview and its candidate if it exists and ``scope`` may see it."""
    if not platform_id or len(platform_id) > 128 or "\x00" in platform_id:
        return None
    statuses = [s.value for s in InterviewStatus]
    async with core.sessions() as session:
        found = await repo.open_interviews_matching(session, query=platform_id, hr_key=scope, statuses=statuses)
    for interview, candidate in found:
        if interview.platform_id == platform_id:
            return interview, candidate
    return None


@dataclass
class InterviewPage:
    rows: Sequence[tuple[Interview, Candidate]]
    total: int
    number: int
    pages: int


async def page(
    core: Core,
    *,
    scope: str | None,
    status: str | None = None,
    start: date | None = None,
    end: date | None = None,
    query: str | None = None,
    number: int = 1,
    per_page: int = PER_PAGE,
) -> InterviewPage:
    """One page of interviews in scope, filtered by status, scheduled day [start, end] (BOT_TIMEZONE)
    and a candidate name or interview id fragment."""
    tz = core.settings.tz
    lo = datetime.combine(start, time.min, tz) if start else None
    hi = datetime.combine(end + timedelta(days=1), time.min, tz) if end else None
    number = max(1, number)
    async with core.sessions() as session:
        total, rows = await repo.page_interviews(
            session,
            hr_key=scope,
            status=status or None,
            start=lo,
            end=hi,
            query=query or None,
            offset=(number - 1) * per_page,
            limit=per_page,
        )
    return InterviewPage(rows=rows, total=total, number=number, pages=max(1, -(-total // per_page)))


@dataclass
class TimelineItem:
    """One thing that happened; ``kind`` picks how the page shows ``item``."""

    at: datetime
    kind: str  # event | reminder | exit | notice | todo | audit
    item: Any
    actor: str = ""
    attempts: list[NoticeAttempt] = field(default_factory=list)
    # A time change an audit event records (a reschedule, or one asked for): old → new.
    moved_from: datetime | None = None
    moved_to: datetime | None = None


@dataclass
class Timeline:
    interview: Interview
    candidate: Candidate
    items: list[TimelineItem]
    exits: Sequence[ExitRecord]
    todos: Sequence[Todo]
    reminders: Sequence[Reminder]
    hr_name: str = ""

    @property
    def latest_exit(self) -> ExitRecord | None:
        return self.exits[-1] if self.exits else None


async def timeline(core: Core, *, platform_id: str, scope: str | None) -> Timeline | None:
    """Everything recorded about one interview, oldest first; None if it is not in scope."""
    found = await visible(core, platform_id=platform_id, scope=scope)
    if found is None:
        return None
    interview, candidate = found
    assert interview.id is not None
    items: list[TimelineItem] = []
    async with core.sessions() as session:
        events: Sequence[PlatformEvent] = await repo.events_for_interview(session, platform_id=platform_id)
        items += [TimelineItem(e.occurred_at or e.received_at, "event", e) for e in events]
        reminders = sorted((await repo.reminders_for_interview(session, interview_id=interview.id)).values(), key=_due)
        items += [TimelineItem(r.due_at, "reminder", r) for r in reminders]
        exits = await repo.exits_for_interview(session, interview_id=interview.id)
        for record in exits:
            items.append(
                TimelineItem(record.at, "exit", record, actor=await people.display_name(session, record.operator))
            )
        notices: Sequence[Notice] = await repo.notices_for_interview(session, interview_id=interview.id)
        attempts = await repo.attempts_for_notices(session, notice_ids=[n.id for n in notices if n.id is not None])
        items += [TimelineItem(n.created_at, "notice", n, attempts=attempts.get(n.id or 0, [])) for n in notices]
        todos = await repo.todos_for_interview(session, interview_id=interview.id)
        items += [TimelineItem(t.created_at, "todo", t) for t in todos]
        audit: Sequence[AuditEvent] = await repo.audit_for_interview(session, interview_id=interview.id, limit=500)
        for event in audit:
            item = TimelineItem(event.at, "audit", event, actor=await people.display_name(session, event.actor))
            item.moved_from, item.moved_to = _moved(event)
            items.append(item)
        hr_name = await people.display_name(session, interview.hr_key)
    order = {"event": 0, "audit": 1, "exit": 2, "todo": 3, "notice": 4, "reminder": 5}
    items.sort(key=lambda i: (i.at, order[i.kind]))
    return Timeline(interview, candidate, items, exits=exits, todos=todos, reminders=reminders, hr_name=hr_name)


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _moved(event: AuditEvent) -> tuple[datetime | None, datetime | None]:
    """The old and new time of a reschedule (``from``/``to``) or of one asked for (``at``)."""
    detail = event.detail or {}
    if "to" in detail:
        return _when(detail.get("from")), _when(detail.get("to"))
    if event.action.endswith("reschedule.requested"):
        return None, _when(detail.get("at"))
    return None, None


def _due(reminder: Reminder) -> datetime:
    return reminder.due_at
