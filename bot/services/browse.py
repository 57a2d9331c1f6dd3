"""Reading interviews for the web console: who may see which, the live list, filtered pages and
one interview's whole history as a timeline.

Scope follows chat's rule: ``scope`` is an HR's ``platform:user_id`` (own and shared interviews)
or None for managers and admins (all). Nothing here writes; actions go through their one
procedure (``termination.terminate``, ``scheduling.reschedule``, ``todos.finish``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
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
    NoticeAttempt,
)

__all__ = [
    "PER_PAGE",
    "RECENT",
    "TIMELINE_MAX",
    "TIMELINE_PAGE",
    "BadCursor",
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
    """One page of an interview's history: ``items`` oldest first, the newest ``limit`` below the
    cursor it was asked for; ``older`` the cursor of the page before them (None: nothing older)."""

    interview: Interview
    candidate: Candidate
    items: list[TimelineItem]
    exits: Sequence[ExitRecord]
    older: str | None = None
    hr_name: str = ""

    @property
    def latest_exit(self) -> ExitRecord | None:
        return self.exits[-1] if self.exits else None


class BadCursor(ValueError):
    """A timeline cursor this service never gave out."""


_CURSOR = re.compile(r"([0-9]{1,17})-([0-9])-([0-9]{1,18})")


def cursor_text(key: repo.TimelineKey) -> str:
    """A page cursor for links: the key's time in microseconds since the epoch, kind rank, row id."""
    micros = (key.at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{key.rank}-{key.id}"


def parse_cursor(text: str) -> repo.TimelineKey:
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise BadCursor(text)
    micros, rank, row_id = (int(g) for g in found.groups())
    try:
        at = EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise BadCursor(text) from None
    return repo.TimelineKey(at, rank, row_id)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The newest this many entries show on a page; an API caller may ask for up to TIMELINE_MAX.
TIMELINE_PAGE = 50
TIMELINE_MAX = 200


async def timeline(
    core: Core, *, platform_id: str, scope: str | None, before: str | None = None, limit: int = TIMELINE_PAGE
) -> Timeline | None:
    """One page of what is recorded about an interview (newest ``limit`` entries older than the
    cursor ``before``, shown oldest first); None if it is not in scope. BadCursor for a cursor
    that is not one of ours."""
    key = parse_cursor(before) if before else None
    found = await visible(core, platform_id=platform_id, scope=scope)
    if found is None:
        return None
    interview, candidate = found
    assert interview.id is not None
    limit = max(1, min(limit, TIMELINE_MAX))
    async with core.sessions() as session:
        rows, older = await repo.timeline_page(
            session, interview_id=interview.id, platform_id=platform_id, before=key, limit=limit
        )
        notice_ids = [r.item.id for r in rows if r.kind == "notice"]
        attempts = await repo.attempts_for_notices(session, notice_ids=notice_ids)
        actors = [r.item.operator for r in rows if r.kind == "exit"] + [r.item.actor for r in rows if r.kind == "audit"]
        names = await people.display_names(session, [*actors, interview.hr_key])
        items: list[TimelineItem] = []
        for row in reversed(rows):
            item = TimelineItem(row.key.at, row.kind, row.item)
            if row.kind == "notice":
                item.attempts = attempts.get(row.item.id, [])
            elif row.kind == "exit":
                item.actor = names.get(row.item.operator, "")
            elif row.kind == "audit":
                item.actor = names.get(row.item.actor, "")
                item.moved_from, item.moved_to = _moved(row.item)
            items.append(item)
        exits = await repo.exits_for_interview(session, interview_id=interview.id)
    return Timeline(
        interview,
        candidate,
        items,
        exits=exits,
        older=cursor_text(older) if older else None,
        hr_name=names.get(interview.hr_key or "", ""),
    )


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
