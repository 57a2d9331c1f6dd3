"""Interview lookups for chat: who may see which interview, open prompts' subjects, 查看 details."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
    "get_with_candidate",
    "matching",
]

# Not finished yet: what 终止面试 looks for.
OPEN: tuple[str, ...] = (InterviewStatus.scheduled.value, InterviewStatus.in_progress.value)


async def matching(
    core: Core, *, query: str | None, hr_key: str | None, statuses: Sequence[str] = OPEN
) -> Sequence[tuple[Interview, Candidate]]:
    """Interviews with these statuses whose id or candidate name is ``query`` (all for None),
    limited to ``hr_key``'s own and shared ones unless ``hr_key`` is None."""
    async with core.sessions() as session:
        return await repo.open_interviews_matching(session, query=query, hr_key=hr_key, statuses=statuses)


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


async def details(core: Core, *, query: str, hr_key: str | None, statuses: Sequence[str]) -> list[InterviewDetail]:
    out: list[InterviewDetail] = []
    async with core.sessions() as session:
        rows = await repo.open_interviews_matching(session, query=query, hr_key=hr_key, statuses=statuses)
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
