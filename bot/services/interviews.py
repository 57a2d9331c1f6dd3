"""Interview lookups for chat: who may see which interview, open prompts' subjects, 查看 details."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

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
    NoticeStatus,
)

__all__ = [
    "OPEN",
    "Candidate",
    "Interview",
    "InterviewDetail",
    "InterviewStatus",
    "details",
    "get_many",
    "get_with_candidate",
    "known_names",
    "matching",
]

# Not finished yet: what 终止面试 looks for.
OPEN: tuple[str, ...] = (InterviewStatus.scheduled.value, InterviewStatus.in_progress.value)


async def matching(
    core: Core, *, query: str | None, hr_key: str | None, statuses: Sequence[str] = OPEN
) -> Sequence[tuple[Interview, Candidate]]:
    """Interviews with these statuses whose id or candidate name is ``query`` (all for None),
    limited to ``hr_key``'s own and shared ones unless ``hr_key`` is None."""
    async with core.reads() as session:
        return await repo.open_interviews_matching(session, query=query, hr_key=hr_key, statuses=statuses)


# How far back chat text is linked to interviews that have ended (查看, a "wrong state" answer).
KNOWN_DAYS = 60


async def known_names(core: Core, *, hr_key: str | None) -> Sequence[tuple[str, str, str, str]]:
    """(platform id, candidate name, position, status) of the interviews ``hr_key`` may see (all
    for None): open ones, and ended ones of the last ``KNOWN_DAYS`` days."""
    since = core.clock.now() - timedelta(days=KNOWN_DAYS)
    async with core.reads() as session:
        return await repo.names_in_scope(session, hr_key=hr_key, since=since)


async def get_many(core: Core, platform_ids: Sequence[str]) -> list[tuple[Interview, Candidate]]:
    """These interviews with their candidates, in the order given (unknown ids left out)."""
    out = []
    for platform_id in platform_ids:
        found = await get_with_candidate(core, platform_id)
        if found is not None:
            out.append(found)
    return out


async def get_with_candidate(core: Core, platform_id: str) -> tuple[Interview, Candidate] | None:
    async with core.sessions() as session:
        interview = await repo.get_interview(session, platform_id=platform_id)
        if interview is None:
            return None
        candidate = await repo.get_candidate(session, candidate_id=interview.candidate_id)
        assert candidate is not None
        return interview, candidate


@dataclass
class InterviewDetail:
    """Everything 查看 shows about one interview."""

    interview: Interview
    candidate: Candidate
    exit: ExitRecord | None = None
    exit_operator: str = ""
    # Candidate notices still in play, each with its delivery attempts; and how many were superseded.
    notices: list[tuple[Notice, list[NoticeAttempt]]] = field(default_factory=list)
    superseded: int = 0
    # The newest audit events, oldest first, each with the actor's display name.
    events: list[tuple[AuditEvent, str]] = field(default_factory=list)


async def details(
    core: Core,
    *,
    query: str | None = None,
    hr_key: str | None = None,
    statuses: Sequence[str] = (),
    platform_ids: Sequence[str] = (),
) -> list[InterviewDetail]:
    """What 查看 shows: of the interviews ``platform_ids`` (already in the asker's scope), or of
    those whose id or candidate name is ``query`` in ``hr_key``'s scope with these statuses."""
    out: list[InterviewDetail] = []
    async with core.sessions() as session:
        if platform_ids:
            rows = []
            for platform_id in platform_ids:
                interview = await repo.get_interview(session, platform_id=platform_id)
                candidate = (
                    await repo.get_candidate(session, candidate_id=interview.candidate_id) if interview else None
                )
                if interview is not None and candidate is not None:
                    rows.append((interview, candidate))
        else:
            assert query is not None
            rows = list(await repo.open_interviews_matching(session, query=query, hr_key=hr_key, statuses=statuses))
        for interview, candidate in rows:
            assert interview.id is not None
            detail = InterviewDetail(interview, candidate)
            detail.exit = await repo.get_exit(session, interview_id=interview.id)
            if detail.exit is not None:
                detail.exit_operator = await people.display_name(session, detail.exit.operator)
            notices = [
                n
                for n in await repo.notices_for_interview(session, interview_id=interview.id)
                if n.payload.get("audience") == "candidate"
            ]
            replaced = [n for n in notices if n.status == NoticeStatus.superseded.value]
            notices = [n for n in notices if n not in replaced]
            detail.superseded = len(replaced)
            attempts = await repo.attempts_for_notices(session, notice_ids=[n.id for n in notices if n.id is not None])
            detail.notices = [(n, attempts.get(n.id or 0, [])) for n in notices]
            events = await repo.audit_for_interview(session, interview_id=interview.id, limit=6)
            detail.events = [(e, await people.display_name(session, e.actor)) for e in reversed(events)]
            out.append(detail)
    return out
