"""Interviews and their candidates, and the claim a termination holds on an interview."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, String, bindparam, cast, delete, false, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from storage.models import (
    OPEN_INTERVIEW_STATUSES,
    AuditEvent,
    Candidate,
    ExitRecord,
    Interview,
    InterviewShare,
    InterviewStatus,
    KfConversation,
    Notice,
    NoticeAttempt,
    PendingAction,
    PlatformEvent,
    Reminder,
    TerminationJob,
    Todo,
)
from storage.repos._sql import insert_many_or_nothing


async def get_interview(session: AsyncSession, *, platform_id: str) -> Interview | None:
    return (await session.exec(select(Interview).where(Interview.platform_id == platform_id))).first()


async def lock_interview(session: AsyncSession, *, platform_id: str) -> Interview | None:
    """The interview, locked for this transaction on PostgreSQL (SELECT … FOR UPDATE).

    SQLite needs no row lock: a transaction that has written holds the database's write lock.
    """
    stmt = select(Interview).where(Interview.platform_id == platform_id).with_for_update()
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def lock_interviews(session: AsyncSession, *, platform_ids: Sequence[str]) -> dict[str, Interview]:
    """These interviews by platform id (those that exist), locked for this transaction on
    PostgreSQL, in one query (``lock_interview`` for a batch)."""
    if not platform_ids:
        return {}
    stmt = (
        select(Interview)
        .where(col(Interview.platform_id).in_(sorted(set(platform_ids))))
        .order_by(col(Interview.platform_id))
        .with_for_update()
    )
    rows = (await session.exec(stmt.execution_options(populate_existing=True))).all()
    return {row.platform_id: row for row in rows}


async def insert_interviews_or_nothing(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """``INSERT … ON CONFLICT (platform_id) DO NOTHING`` of interview rows in one statement; the
    platform ids inserted (the others were created meanwhile by a concurrent transaction)."""
    return await insert_many_or_nothing(session, Interview, rows, conflict=["platform_id"], returning="platform_id")


async def candidates_matching(
    session: AsyncSession, *, mobiles: Sequence[str], emails: Sequence[str]
) -> list[Candidate]:
    """Candidates with any of these mobiles or emails, oldest first (``find_candidate`` for a batch:
    the caller compares names)."""
    keys = []
    if mobiles:
        keys.append(col(Candidate.mobile).in_(sorted(set(mobiles))))
    if emails:
        keys.append(col(Candidate.email).in_(sorted(set(emails))))
    if not keys:
        return []
    return list((await session.exec(select(Candidate).where(or_(*keys)).order_by(col(Candidate.id)))).all())


async def candidates_by_id(session: AsyncSession, *, ids: Sequence[int]) -> dict[int, Candidate]:
    if not ids:
        return {}
    rows = (await session.exec(select(Candidate).where(col(Candidate.id).in_(sorted(set(ids)))))).all()
    return {row.id: row for row in rows if row.id is not None}


async def get_interview_by_pk(session: AsyncSession, *, interview_id: int) -> Interview | None:
    return await session.get(Interview, interview_id)


async def list_interviews(
    session: AsyncSession, *, status: str | None = None, before: int | None = None, limit: int = 500
) -> Sequence[tuple[Interview, Candidate]]:
    """Interviews with their candidates, newest (highest id) first, those with an id below ``before``."""
    stmt = (
        select(Interview, Candidate)
        .join(Candidate, col(Candidate.id) == col(Interview.candidate_id))
        .order_by(col(Interview.id).desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(Interview.status == status)
    if before is not None:
        stmt = stmt.where(col(Interview.id) < before)
    return [(i, c) for i, c in (await session.exec(stmt)).all()]


async def get_candidate(session: AsyncSession, *, candidate_id: int) -> Candidate | None:
    return await session.get(Candidate, candidate_id)


async def find_candidate(
    session: AsyncSession, *, name: str, mobile: str | None, email: str | None
) -> Candidate | None:
    """The same person by mobile, else by email, and only when the name agrees."""
    keys = []
    if mobile:
        keys.append(col(Candidate.mobile) == mobile)
    if email:
        keys.append(col(Candidate.email) == email)
    if not keys:
        return None
    stmt = select(Candidate).where(Candidate.name == name, or_(*keys)).order_by(col(Candidate.id))
    return (await session.exec(stmt)).first()


async def claim_termination(
    session: AsyncSession, *, interview_id: int, operator: str, now: datetime, stale_before: datetime
) -> bool:
    """Mark an open interview as being terminated by ``operator``. True if this caller won.

    Not committed: the caller commits it together with the termination job row.
    """
    stmt = (
        update(Interview)
        .where(
            col(Interview.id) == interview_id,
            col(Interview.status).in_(OPEN_INTERVIEW_STATUSES),
            or_(col(Interview.terminating_since).is_(None), col(Interview.terminating_since) < stale_before),
        )
        .values(terminating_by=operator, terminating_since=now)
    )
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


async def release_termination(session: AsyncSession, *, interview_id: int, operator: str) -> None:
    """Clear the claim (not committed: the caller commits it with the job's failure)."""
    stmt = (
        update(Interview)
        .where(col(Interview.id) == interview_id, col(Interview.terminating_by) == operator)
        .values(terminating_by=None, terminating_since=None)
    )
    await session.exec(stmt)


async def open_interviews_matching(
    session: AsyncSession,
    *,
    query: str | None,
    hr_key: str | None = None,
    statuses: Sequence[str] = OPEN_INTERVIEW_STATUSES,
) -> Sequence[tuple[Interview, Candidate]]:
    """Interviews (open by default) whose platform id equals ``query`` or whose candidate is
    named ``query`` (all of them when ``query`` is None). With ``hr_key`` only that HR owner's.
    """
    params: dict[str, Any] = {}
    if query is not None:
        params["query"] = query
    if hr_key is not None:
        platform, _, user_id = hr_key.partition(":")
        params.update(hr_platform=platform, hr_user_id=user_id, hr_key=hr_key)
    stmt = _matching_statement(query is not None, hr_key is not None, tuple(statuses))
    return [(i, c) for i, c in (await session.exec(stmt, params=params)).all()]


@functools.cache
def _matching_statement(by_query: bool, by_scope: bool, statuses: tuple[str, ...]) -> Select[Interview, Candidate]:
    """``open_interviews_matching``'s statement, built once per shape and set of statuses (a few
    in the code) with bound parameters: it runs for most chat commands, and building the expression
    each time was a tenth of their work; an expanding ``IN`` list was rendered again at every run."""
    stmt = (
        select(Interview, Candidate)
        .join(Candidate, col(Candidate.id) == col(Interview.candidate_id))
        .where(or_(false(), *(col(Interview.status) == status for status in statuses)))
        .order_by(col(Interview.scheduled_at), col(Interview.id))
    )
    if by_query:
        query: BindParameter[str] = bindparam("query")
        stmt = stmt.where(or_(col(Interview.platform_id) == query, col(Candidate.name) == query))
    if by_scope:
        shared = select(InterviewShare.interview_id).where(InterviewShare.person_key == bindparam("hr_key"))
        stmt = stmt.where(
            or_(
                (col(Interview.hr_platform) == bindparam("hr_platform"))
                & (col(Interview.hr_user_id) == bindparam("hr_user_id")),
                col(Interview.id).in_(shared),
            )
        )
    return stmt


async def names_in_scope(
    session: AsyncSession, *, hr_key: str | None, since: datetime, limit: int = 5000
) -> Sequence[tuple[str, str, str, str]]:
    """(platform id, candidate name, position, status) of the interviews ``hr_key`` may see (all
    for None) that are open or changed since ``since``, newest first: what chat text is linked to."""
    stmt = (
        select(Interview.platform_id, Candidate.name, Interview.position, Interview.status)
        .join(Candidate, col(Candidate.id) == col(Interview.candidate_id))
        .where(or_(col(Interview.status).in_(OPEN_INTERVIEW_STATUSES), col(Interview.updated_at) >= since))
        .order_by(col(Interview.updated_at).desc(), col(Interview.id).desc())
        .limit(limit)
    )
    if hr_key is not None:
        stmt = stmt.where(in_scope_of(hr_key))
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in (await session.exec(stmt)).all()]


def in_scope_of(hr_key: str) -> ColumnElement[bool]:
    """A WHERE clause on ``Interview``: owned by the HR ``platform:user_id`` or shared with them."""
    platform, _, user_id = hr_key.partition(":")
    shared = select(InterviewShare.interview_id).where(InterviewShare.person_key == hr_key)
    return or_(
        (col(Interview.hr_platform) == platform) & (col(Interview.hr_user_id) == user_id),
        col(Interview.id).in_(shared),
    )


async def idle_interviews(
    session: AsyncSession, *, active_before: datetime, active_since: datetime | None = None, limit: int = 200
) -> Sequence[Interview]:
    """In-progress interviews whose last activity is older than ``active_before`` (and not older than
    ``active_since``), not being terminated right now."""
    stmt = select(Interview).where(
        Interview.status == InterviewStatus.in_progress.value,
        col(Interview.last_activity_at) < active_before,
        col(Interview.terminating_by).is_(None),
    )
    if active_since is not None:
        stmt = stmt.where(col(Interview.last_activity_at) >= active_since)
    return (await session.exec(stmt.order_by(col(Interview.last_activity_at)).limit(limit))).all()


async def stuck_interviews(
    session: AsyncSession, *, started_before: datetime, limit: int
) -> tuple[int, Sequence[tuple[Interview, Candidate]]]:
    """How many interviews are still in progress after starting before ``started_before``, and the oldest few."""
    where = (col(Interview.status) == InterviewStatus.in_progress.value, col(Interview.started_at) < started_before)
    total = (await session.exec(select(func.count()).select_from(Interview).where(*where))).one()
    stmt = (
        select(Interview, Candidate)
        .join(Candidate, col(Candidate.id) == col(Interview.candidate_id))
        .where(*where)
        .order_by(col(Interview.started_at))
        .limit(limit)
    )
    return int(total), [(i, c) for i, c in (await session.exec(stmt)).all()]


async def page_interviews(
    session: AsyncSession,
    *,
    hr_key: str | None,
    status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    query: str | None = None,
    ended_since: datetime | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[int, Sequence[tuple[Interview, Candidate]]]:
    """(how many match, one page of them, newest scheduled first): by status, by scheduled time in
    [start, end), by platform id or candidate name containing ``query``; ``hr_key``'s own and
    shared ones unless None."""
    where: list[Any] = []
    if status:
        where.append(col(Interview.status) == status)
    if start is not None:
        where.append(func.coalesce(col(Interview.scheduled_at), col(Interview.created_at)) >= start)
    if end is not None:
        where.append(func.coalesce(col(Interview.scheduled_at), col(Interview.created_at)) < end)
    if ended_since is not None:
        where.append(col(Interview.ended_at) >= ended_since)
    if query:
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(col(Interview.platform_id).like(like, escape="\\"), col(Candidate.name).like(like, escape="\\"))
        )
    if hr_key is not None:
        platform, _, user_id = hr_key.partition(":")
        shared = select(InterviewShare.interview_id).where(InterviewShare.person_key == hr_key)
        where.append(
            or_(
                (col(Interview.hr_platform) == platform) & (col(Interview.hr_user_id) == user_id),
                col(Interview.id).in_(shared),
            )
        )
    on = col(Candidate.id) == col(Interview.candidate_id)
    count = select(func.count()).select_from(Interview).join(Candidate, on)
    total = (await session.exec(count.where(*where))).one()
    when = func.coalesce(col(Interview.scheduled_at), col(Interview.created_at))
    stmt = (
        select(Interview, Candidate)
        .join(Candidate, on)
        .where(*where)
        .order_by(when.desc(), col(Interview.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return int(total), [(i, c) for i, c in (await session.exec(stmt)).all()]


async def recently_ended(
    session: AsyncSession, *, hr_key: str | None, since: datetime, status: str
) -> Sequence[tuple[Interview, Candidate]]:
    """Interviews that reached ``status`` at or after ``since`` (in ``hr_key``'s scope unless None)."""
    _, rows = await page_interviews(session, hr_key=hr_key, status=status, ended_since=since, limit=200)
    return rows


async def purge_interviews_and_commit(session: AsyncSession, *, platform_id_prefix: str) -> dict[str, int]:
    """Delete every interview whose platform id starts with ``platform_id_prefix`` and every row
    that belongs to it: its events, prompts, exit records, termination jobs, reminders, shares,
    to-dos, notices with their attempts, audit rows, and its candidates when no other interview
    is theirs. Nothing else is touched. Returns how many rows of each kind went."""
    pattern = platform_id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    doomed = (await session.exec(select(Interview).where(col(Interview.platform_id).like(pattern, escape="\\")))).all()
    ids = [i.id for i in doomed if i.id is not None]
    platform_ids = {i.platform_id for i in doomed}
    counts: dict[str, int] = {}

    async def gone(name: str, stmt: Any) -> None:
        result = await session.exec(stmt)
        counts[name] = counts.get(name, 0) + int(result.rowcount or 0)

    # Prompts and audit rows name an interview or its events inside JSON: narrowed by text, then checked.
    prompts = (
        await session.exec(
            select(PendingAction).where(cast(PendingAction.params, String).like(f"%{pattern}", escape="\\"))
        )
    ).all()
    prompt_ids = [p.id for p in prompts if str(p.params.get("platform_id", "")).startswith(platform_id_prefix)]
    loose_audits = (
        await session.exec(
            select(AuditEvent).where(
                col(AuditEvent.interview_id).is_(None), cast(AuditEvent.detail, String).like(f"%{pattern}", escape="\\")
            )
        )
    ).all()
    audit_ids = [a.id for a in loose_audits if str(a.detail.get("key", "")).startswith(platform_id_prefix)]
    await gone("prompts", delete(PendingAction).where(col(PendingAction.id).in_(prompt_ids)))
    await gone("audit", delete(AuditEvent).where(col(AuditEvent.id).in_(audit_ids)))
    await gone(
        "events", delete(PlatformEvent).where(col(PlatformEvent.interview_platform_id).in_(sorted(platform_ids)))
    )
    notice_ids = select(Notice.id).where(col(Notice.interview_id).in_(ids))
    await gone("notice_attempts", delete(NoticeAttempt).where(col(NoticeAttempt.notice_id).in_(notice_ids)))
    for name, model in (
        ("notices", Notice),
        ("todos", Todo),
        ("exits", ExitRecord),
        ("termination_jobs", TerminationJob),
        ("reminders", Reminder),
        ("shares", InterviewShare),
        ("audit", AuditEvent),
    ):
        await gone(name, delete(model).where(col(model.interview_id).in_(ids)))
    candidate_ids = {i.candidate_id for i in doomed}
    await gone("interviews", delete(Interview).where(col(Interview.id).in_(ids)))
    still_used = set(
        (await session.exec(select(Interview.candidate_id).where(col(Interview.candidate_id).in_(candidate_ids)))).all()
    )
    orphans = sorted(candidate_ids - still_used)
    await session.exec(
        update(KfConversation).where(col(KfConversation.candidate_id).in_(orphans)).values(candidate_id=None)
    )
    await gone("candidates", delete(Candidate).where(col(Candidate.id).in_(orphans)))
    await session.commit()
    return counts
