"""Keyword-only repository functions over ``AsyncSession``. No business rules here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    OPEN_JOB_STATES,
    AuditEvent,
    Candidate,
    DailySummary,
    DingTalkSign,
    ExitReason,
    ExitRecord,
    InboundMessage,
    Interview,
    InterviewShare,
    Notice,
    NoticeAttempt,
    NoticeStatus,
    PendingAction,
    Person,
    PlatformEvent,
    Reminder,
    ReminderState,
    SharedToken,
    TerminationJob,
    Todo,
)

# Stable codes for the reasons code refers to (names may be edited by admins).
REASON_OTHER = "other"

DEFAULT_REASONS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # code, name, outcome, synonyms
    ("candidate_quit", "候选人放弃", "未完成", ("放弃", "不想面了", "不面了", "候选人不想继续", "主动放弃")),
    (
        "system_failure",
        "系统故障",
        "需要重新面试",
        (
            "网络卡顿",
            "摄像头故障",
            "掉线",
            "网络故障",
            "麦克风故障",
            "系统问题",
            # Device words: "摄像头打不开", "麦克风没声音", "网络断了" all name the failing part.
            "摄像头",
            "麦克风",
            "网络",
            "断网",
            "黑屏",
            "闪退",
            "卡顿",
            "没有声音",
            "没声音",
        ),
    ),
    ("unfamiliar", "操作不熟悉", "需要重新面试", ("不会操作", "操作不会", "不熟悉操作")),
    ("process_change", "流程调整", "需要重新面试", ("改人工面试", "流程变更", "岗位调整")),
    ("idle_timeout", "超时未操作", "未完成", ("超时", "长时间未操作", "无操作")),
    # For exits no other reason fits; the words typed are kept in the exit record's detail.
    (REASON_OTHER, "其他", "需要重新面试", ("其它", "其他原因")),
)


def audit(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    interview_id: int | None = None,
    chat: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(at=at, actor=actor, action=action, interview_id=interview_id, chat=chat, detail=detail or {})
    session.add(event)
    return event


async def insert_or_nothing(
    session: AsyncSession, model: type[SQLModel], values: dict[str, Any], *, conflict: Sequence[str]
) -> bool:
    """``INSERT … ON CONFLICT (conflict) DO NOTHING`` (SQLite or PostgreSQL); True if a row was added.

    A concurrent insert of the same key waits for the other transaction and then does nothing,
    instead of failing the whole transaction on the unique constraint.
    """
    bind = session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(model).values(**values).on_conflict_do_nothing(index_elements=list(conflict))
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


# --- people ---------------------------------------------------------------


async def get_person(session: AsyncSession, *, platform: str, user_id: str) -> Person | None:
    result = await session.exec(select(Person).where(Person.platform == platform, Person.user_id == user_id))
    return result.first()


async def list_people(session: AsyncSession, *, role: str | None = None) -> Sequence[Person]:
    stmt = select(Person).order_by(col(Person.platform), col(Person.user_id))
    if role:
        stmt = stmt.where(Person.role == role)
    return (await session.exec(stmt)).all()


# --- exit reasons ---------------------------------------------------------


async def list_reasons(session: AsyncSession, *, active_only: bool = True) -> Sequence[ExitReason]:
    stmt = select(ExitReason).order_by(col(ExitReason.sort_order), col(ExitReason.id))
    if active_only:
        stmt = stmt.where(col(ExitReason.active).is_(True))
    return (await session.exec(stmt)).all()


async def ensure_default_reasons(session: AsyncSession) -> int:
    """Add the default reasons a database lacks (by code); returns how many were added.

    Rows that exist are never changed, so admins' edits (names, synonyms, outcomes, order,
    ``active``) stay. A default added to an existing table goes after the reasons already there.
    To retire a default, set ``active`` false: a deleted one comes back at the next start.
    """
    rows = (await session.exec(select(ExitReason))).all()
    codes, names = {r.code for r in rows}, {r.name for r in rows}
    last = max((r.sort_order for r in rows), default=-1)
    added = 0
    for order, (code, name, outcome, synonyms) in enumerate(DEFAULT_REASONS):
        if code in codes or name in names:
            continue
        sort_order = order if not rows else max(order, last + 1 + added)
        session.add(ExitReason(code=code, name=name, outcome=outcome, synonyms=list(synonyms), sort_order=sort_order))
        added += 1
    if not added:
        return 0
    try:
        await session.commit()
    except IntegrityError:  # another replica seeded at the same moment
        await session.rollback()
        return 0
    return added


# --- interviews -----------------------------------------------------------


async def get_interview(session: AsyncSession, *, platform_id: str) -> Interview | None:
    return (await session.exec(select(Interview).where(Interview.platform_id == platform_id))).first()


async def lock_interview(session: AsyncSession, *, platform_id: str) -> Interview | None:
    """The interview, locked for this transaction on PostgreSQL (SELECT … FOR UPDATE).

    SQLite needs no row lock: a transaction that has written holds the database's write lock.
    """
    stmt = select(Interview).where(Interview.platform_id == platform_id).with_for_update()
    return (await session.exec(stmt.execution_options(populate_existing=True))).first()


async def get_interview_by_pk(session: AsyncSession, *, interview_id: int) -> Interview | None:
    return await session.get(Interview, interview_id)


async def list_interviews(session: AsyncSession, *, status: str | None = None, limit: int = 500) -> Sequence[Interview]:
    stmt = select(Interview).order_by(col(Interview.id).desc()).limit(limit)
    if status:
        stmt = stmt.where(Interview.status == status)
    return (await session.exec(stmt)).all()


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
            col(Interview.status).in_(["scheduled", "in_progress"]),
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


# --- termination jobs -------------------------------------------------------


async def open_termination_jobs(session: AsyncSession, *, limit: int) -> Sequence[TerminationJob]:
    """Unfinished jobs, oldest first (the caller decides which of them it may take over)."""
    stmt = (
        select(TerminationJob)
        .where(col(TerminationJob.state).in_(OPEN_JOB_STATES))
        .order_by(col(TerminationJob.id))
        .limit(limit)
    )
    return (await session.exec(stmt)).all()


async def take_over_job(
    session: AsyncSession, *, job_id: int, previous: str | None, claimed_by: str, until: datetime, now: datetime
) -> bool:
    """Move a job's claim from ``previous`` to ``claimed_by``; True if this caller won."""
    owner = col(TerminationJob.claimed_by)
    stmt = (
        update(TerminationJob)
        .where(
            col(TerminationJob.id) == job_id,
            col(TerminationJob.state).in_(OPEN_JOB_STATES),
            owner.is_(None) if previous is None else owner == previous,
        )
        .values(claimed_by=claimed_by, claimed_until=until, resumed=True, updated_at=now)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def advance_job(
    session: AsyncSession,
    *,
    job_id: int,
    claimed_by: str,
    from_state: str,
    until: datetime,
    now: datetime,
    **values: Any,
) -> bool:
    """Record a step's result, only while this caller holds the claim (not committed)."""
    stmt = (
        update(TerminationJob)
        .where(
            col(TerminationJob.id) == job_id,
            col(TerminationJob.claimed_by) == claimed_by,
            col(TerminationJob.state) == from_state,
        )
        .values(claimed_until=until, updated_at=now, **values)
    )
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


async def get_exit(session: AsyncSession, *, interview_id: int) -> ExitRecord | None:
    """The latest exit of an interview (a rescheduled one may have ended more than once)."""
    stmt = select(ExitRecord).where(ExitRecord.interview_id == interview_id).order_by(col(ExitRecord.attempt).desc())
    return (await session.exec(stmt)).first()


async def todos_for_interview(session: AsyncSession, *, interview_id: int) -> Sequence[Todo]:
    stmt = select(Todo).where(Todo.interview_id == interview_id).order_by(col(Todo.id))
    return (await session.exec(stmt)).all()


async def notices_for_interview(session: AsyncSession, *, interview_id: int) -> Sequence[Notice]:
    stmt = select(Notice).where(Notice.interview_id == interview_id).order_by(col(Notice.id))
    return (await session.exec(stmt)).all()


async def exits_between(session: AsyncSession, *, start: datetime, end: datetime) -> Sequence[ExitRecord]:
    stmt = select(ExitRecord).where(ExitRecord.at >= start, ExitRecord.at < end).order_by(col(ExitRecord.at))
    return (await session.exec(stmt)).all()


# --- platform events --------------------------------------------------------


async def platform_event_seen(session: AsyncSession, *, event_id: str) -> bool:
    found = await session.exec(select(PlatformEvent.id).where(PlatformEvent.event_id == event_id))
    return found.first() is not None


# --- inbound chat dedupe ----------------------------------------------------


async def claim_inbound(session: AsyncSession, *, platform: str, dedupe_key: str, now: datetime) -> bool:
    """Record an inbound message key. False if it was seen before (a redelivery); any other
    refusal of the database is raised, never taken for a redelivery."""
    session.add(InboundMessage(platform=platform, dedupe_key=dedupe_key, received_at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        same = (InboundMessage.platform == platform) & (InboundMessage.dedupe_key == dedupe_key)
        seen = await session.exec(select(InboundMessage.id).where(same))
        if seen.first() is None:
            raise
        return False
    return True


async def dingtalk_sign_owner(session: AsyncSession, *, sign: str) -> str | None:
    """The msgId a DingTalk sign was first accepted for, or None if it is new.

    A sign covers a timestamp, so an old row can never match a fresh request: old rows are only
    clutter, removed by the daily housekeeping (``purge_dingtalk_signs``), not on the ack path.
    The binding itself is stored with the callback, in the intake's transaction.
    """
    bound = await session.get(DingTalkSign, sign)
    return bound.msg_id if bound is not None else None


async def purge_dingtalk_signs(session: AsyncSession, *, before: datetime) -> None:
    """Forget signs seen before ``before`` (commits)."""
    await session.exec(delete(DingTalkSign).where(col(DingTalkSign.seen_at) < before))
    await session.commit()


# --- outbox -----------------------------------------------------------------


def add_notice(session: AsyncSession, notice: Notice) -> Notice:
    session.add(notice)
    return notice


async def pending_notices(session: AsyncSession, *, interview_id: int, kinds: Sequence[str]) -> Sequence[Notice]:
    """Notices of an interview not yet taken by a sender (pending, including ones waiting to retry)."""
    stmt = (
        select(Notice)
        .where(
            Notice.interview_id == interview_id,
            col(Notice.kind).in_(list(kinds)),
            col(Notice.status) == NoticeStatus.pending.value,
        )
        .order_by(col(Notice.id))
    )
    return (await session.exec(stmt)).all()


async def update_pending_notice(session: AsyncSession, *, notice_id: int, **values: Any) -> bool:
    """Change a notice only while it is still pending (never one a sender has claimed); no commit."""
    stmt = (
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.status) == NoticeStatus.pending.value)
        .values(**values)
    )
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


async def due_notice_ids(session: AsyncSession, *, now: datetime, channels: Sequence[str], limit: int) -> list[int]:
    stmt = (
        select(Notice.id)
        .where(
            col(Notice.channel).in_(list(channels)),
            or_(
                (col(Notice.status) == NoticeStatus.pending.value) & (col(Notice.next_attempt_at) <= now),
                (col(Notice.status) == NoticeStatus.sending.value) & (col(Notice.locked_until) < now),
            ),
        )
        .order_by(col(Notice.next_attempt_at), col(Notice.id))
        .limit(limit)
    )
    return [i for i in (await session.exec(stmt)).all() if i is not None]


async def claim_notice(
    session: AsyncSession,
    *,
    notice_id: int,
    now: datetime,
    lock_until: datetime,
    worker: str | None = None,
    first: bool = False,
) -> bool:
    """Conditionally take one due notice; only one worker (of any replica) wins. ``first`` also takes
    a row never tried yet before it is due (an inbound message in its grace period, by its taker)."""
    due = or_(
        (col(Notice.status) == NoticeStatus.pending.value) & (col(Notice.next_attempt_at) <= now),
        (col(Notice.status) == NoticeStatus.sending.value) & (col(Notice.locked_until) < now),
    )
    if first:
        due = or_(due, (col(Notice.status) == NoticeStatus.pending.value) & (col(Notice.attempts) == 0))
    stmt = (
        update(Notice)
        .where(col(Notice.id) == notice_id, due)
        .values(status=NoticeStatus.sending.value, locked_until=lock_until, claimed_by=worker)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def take_over_claims(session: AsyncSession, *, instance: str, worker: str, now: datetime) -> dict[str, int]:
    """At start-up: claims held by an earlier boot of this instance (``<instance>/<boot>``) belong to a
    process that is gone, so they expire now instead of when their lock runs out. Claims of other
    instances (replicas that may be alive) are left to expire."""
    prefix = f"{instance}/"
    taken: dict[str, int] = {}
    for name, stmt in (
        (
            "notices",
            update(Notice)
            .where(
                col(Notice.status) == NoticeStatus.sending.value,
                col(Notice.claimed_by).startswith(prefix, autoescape=True),
                col(Notice.claimed_by) != worker,
            )
            .values(locked_until=now - timedelta(seconds=1)),
        ),
        (
            # Inbound messages taken in but not yet processed wait out a grace period for their taker.
            "inbound",
            update(Notice)
            .where(
                col(Notice.status) == NoticeStatus.pending.value,
                col(Notice.kind) == "inbound",
                col(Notice.attempts) == 0,
                col(Notice.next_attempt_at) > now,
                col(Notice.claimed_by).startswith(prefix, autoescape=True),
                col(Notice.claimed_by) != worker,
            )
            .values(next_attempt_at=now),
        ),
        (
            "reminders",
            update(Reminder)
            .where(
                col(Reminder.state) == ReminderState.claimed.value,
                col(Reminder.claimed_by).startswith(prefix, autoescape=True),
                col(Reminder.claimed_by) != worker,
            )
            .values(claimed_until=now - timedelta(seconds=1)),
        ),
        (
            "summaries",
            update(DailySummary)
            .where(
                col(DailySummary.state) == "claimed",
                col(DailySummary.claimed_by).startswith(prefix, autoescape=True),
                col(DailySummary.claimed_by) != worker,
            )
            .values(claimed_until=now - timedelta(seconds=1)),
        ),
    ):
        result = await session.exec(stmt)
        taken[name] = int(result.rowcount or 0)
    await session.commit()
    return taken


async def last_attempt(session: AsyncSession, *, notice_id: int, channel: str) -> NoticeAttempt | None:
    stmt = (
        select(NoticeAttempt)
        .where(NoticeAttempt.notice_id == notice_id, NoticeAttempt.channel == channel)
        .order_by(col(NoticeAttempt.seq).desc())
        .limit(1)
    )
    return (await session.exec(stmt)).first()


async def attempts_for_notices(session: AsyncSession, *, notice_ids: Sequence[int]) -> dict[int, list[NoticeAttempt]]:
    out: dict[int, list[NoticeAttempt]] = {i: [] for i in notice_ids}
    if not notice_ids:
        return out
    stmt = (
        select(NoticeAttempt)
        .where(col(NoticeAttempt.notice_id).in_(list(notice_ids)))
        .order_by(col(NoticeAttempt.started_at), col(NoticeAttempt.id))
    )
    for attempt in (await session.exec(stmt)).all():
        out[attempt.notice_id].append(attempt)
    return out


async def list_notices(
    session: AsyncSession,
    *,
    status: str | None = None,
    kind: str | None = None,
    exclude_kind: str | None = None,
    limit: int = 200,
) -> Sequence[Notice]:
    stmt = select(Notice).order_by(col(Notice.id).desc()).limit(limit)
    if status:
        stmt = stmt.where(Notice.status == status)
    if kind:
        stmt = stmt.where(Notice.kind == kind)
    if exclude_kind:
        stmt = stmt.where(Notice.kind != exclude_kind)
    return (await session.exec(stmt)).all()


# --- chat lookups and confirmations -------------------------------------------


async def open_interviews_matching(
    session: AsyncSession,
    *,
    query: str | None,
    hr_key: str | None = None,
    statuses: Sequence[str] = ("scheduled", "in_progress"),
) -> Sequence[tuple[Interview, Candidate]]:
    """Interviews (open by default) whose platform id equals ``query`` or whose candidate is
    named ``query`` (all of them when ``query`` is None). With ``hr_key`` only that HR owner's.
    """
    stmt = (
        select(Interview, Candidate)
        .join(Candidate, col(Candidate.id) == col(Interview.candidate_id))
        .where(col(Interview.status).in_(list(statuses)))
        .order_by(col(Interview.scheduled_at), col(Interview.id))
    )
    if query is not None:
        stmt = stmt.where(or_(col(Interview.platform_id) == query, col(Candidate.name) == query))
    if hr_key is not None:
        platform, _, user_id = hr_key.partition(":")
        shared = select(InterviewShare.interview_id).where(InterviewShare.person_key == hr_key)
        stmt = stmt.where(
            or_(
                (col(Interview.hr_platform) == platform) & (col(Interview.hr_user_id) == user_id),
                col(Interview.id).in_(shared),
            )
        )
    return [(i, c) for i, c in (await session.exec(stmt)).all()]


async def share_interview(
    session: AsyncSession, *, interview_id: int, person_key: str, shared_by: str, now: datetime
) -> bool:
    """Share once; False if it was shared with that person already. Commits."""
    session.add(InterviewShare(interview_id=interview_id, person_key=person_key, shared_by=shared_by, created_at=now))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def latest_open_action(
    session: AsyncSession,
    *,
    requester: str,
    chat_id: str | None,
    now: datetime,
    actions: Sequence[str] | None = None,
    action_id: int | None = None,
) -> PendingAction | None:
    """The newest open, unexpired action of ``requester`` (in ``chat_id`` when given)."""
    stmt = select(PendingAction).where(
        PendingAction.requester == requester,
        PendingAction.state == "open",
        PendingAction.expires_at > now,
    )
    if chat_id is not None:
        stmt = stmt.where(PendingAction.chat_id == chat_id)
    if actions is not None:
        stmt = stmt.where(col(PendingAction.action).in_(list(actions)))
    if action_id is not None:
        stmt = stmt.where(PendingAction.id == action_id)
    return (await session.exec(stmt.order_by(col(PendingAction.id).desc()))).first()


async def close_action(session: AsyncSession, *, action_id: int, state: str, now: datetime) -> bool:
    """open → ``state``, once. False if it was already closed or expired."""
    stmt = (
        update(PendingAction)
        .where(
            col(PendingAction.id) == action_id,
            col(PendingAction.state) == "open",
            col(PendingAction.expires_at) > now,
        )
        .values(state=state)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def audit_for_interview(session: AsyncSession, *, interview_id: int, limit: int = 20) -> Sequence[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.interview_id == interview_id)
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(limit)
    )
    return (await session.exec(stmt)).all()


async def open_todos(session: AsyncSession, *, assignee: str | None = None) -> Sequence[Todo]:
    stmt = select(Todo).where(col(Todo.done).is_(False)).order_by(col(Todo.id))
    if assignee is not None:
        stmt = stmt.where(Todo.assignee == assignee)
    return (await session.exec(stmt)).all()


async def open_todos_with_interviews(
    session: AsyncSession, *, assignee: str
) -> Sequence[tuple[Todo, Interview | None]]:
    """An assignee's open to-dos, each with its interview (None for to-dos about no interview)."""
    stmt = (
        select(Todo, Interview)
        .outerjoin(Interview, col(Interview.id) == col(Todo.interview_id))
        .where(col(Todo.done).is_(False), Todo.assignee == assignee)
        .order_by(col(Todo.id))
    )
    return [(todo, interview) for todo, interview in (await session.exec(stmt)).all()]


async def finish_todo(session: AsyncSession, *, todo_id: int, assignee: str | None, now: datetime) -> bool:
    """Mark an open to-do done (only the assignee's, unless ``assignee`` is None)."""
    stmt = update(Todo).where(col(Todo.id) == todo_id, col(Todo.done).is_(False)).values(done=True, done_at=now)
    if assignee is not None:
        stmt = stmt.where(col(Todo.assignee) == assignee)
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


async def people_named(session: AsyncSession, *, platform: str, name_or_id: str) -> Sequence[Person]:
    stmt = select(Person).where(
        Person.platform == platform, or_(col(Person.name) == name_or_id, col(Person.user_id) == name_or_id)
    )
    return (await session.exec(stmt)).all()


# --- scheduled work: reminders, idle timeouts, daily summaries -------------------------


def _due_reminder(now: datetime) -> Any:
    return or_(
        (col(Reminder.state) == ReminderState.pending.value) & (col(Reminder.due_at) <= now),
        # A claim left by a crashed replica expires and may be taken over.
        (col(Reminder.state) == ReminderState.claimed.value) & (col(Reminder.claimed_until) < now),
    )


async def reminders_for_interview(session: AsyncSession, *, interview_id: int) -> dict[str, Reminder]:
    rows = (await session.exec(select(Reminder).where(Reminder.interview_id == interview_id))).all()
    return {r.kind: r for r in rows}


async def due_reminder_ids(session: AsyncSession, *, now: datetime, limit: int) -> list[int]:
    # Two index range scans on (state, due_at) rather than one OR, which PostgreSQL plans as a
    # bitmap scan plus sort even when nothing is due.
    pending = (
        select(Reminder.id)
        .where(col(Reminder.state) == ReminderState.pending.value, col(Reminder.due_at) <= now)
        .order_by(col(Reminder.due_at))
        .limit(limit)
    )
    stale = (
        select(Reminder.id)
        .where(col(Reminder.state) == ReminderState.claimed.value, col(Reminder.claimed_until) < now)
        .limit(limit)
    )
    ids = [*(await session.exec(stale)).all(), *(await session.exec(pending)).all()]
    return [i for i in ids if i is not None][:limit]


async def claim_reminder(
    session: AsyncSession, *, reminder_id: int, worker: str, now: datetime, until: datetime
) -> bool:
    """Take one due reminder (pending, or claimed by someone whose claim expired). True if this caller won."""
    stmt = (
        update(Reminder)
        .where(col(Reminder.id) == reminder_id, _due_reminder(now))
        .values(state=ReminderState.claimed.value, claimed_by=worker, claimed_until=until, updated_at=now)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def idle_interviews(
    session: AsyncSession, *, active_before: datetime, active_since: datetime | None = None, limit: int = 200
) -> Sequence[Interview]:
    """In-progress interviews whose last activity is older than ``active_before`` (and not older than
    ``active_since``), not being terminated right now."""
    stmt = select(Interview).where(
        Interview.status == "in_progress",
        col(Interview.last_activity_at) < active_before,
        col(Interview.terminating_by).is_(None),
    )
    if active_since is not None:
        stmt = stmt.where(col(Interview.last_activity_at) >= active_since)
    return (await session.exec(stmt.order_by(col(Interview.last_activity_at)).limit(limit))).all()


async def existing_dedupe_keys(session: AsyncSession, *, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    found = await session.exec(select(Notice.dedupe_key).where(col(Notice.dedupe_key).in_(list(keys))))
    return {k for k in found.all() if k is not None}


async def summaries_for_day(session: AsyncSession, *, day: date) -> dict[str, DailySummary]:
    rows = (await session.exec(select(DailySummary).where(DailySummary.day == day))).all()
    return {r.recipient: r for r in rows}


async def claim_summary(
    session: AsyncSession, *, day: date, recipient: str, worker: str, now: datetime, until: datetime
) -> bool:
    """Claim the summary for (day, recipient): insert it, or take over a claim that expired unsent."""
    session.add(DailySummary(day=day, recipient=recipient, claimed_by=worker, claimed_until=until))
    try:
        await session.commit()
        return True
    except IntegrityError:
        await session.rollback()
    stmt = (
        update(DailySummary)
        .where(
            col(DailySummary.day) == day,
            col(DailySummary.recipient) == recipient,
            col(DailySummary.state) == "claimed",
            col(DailySummary.claimed_until) < now,
        )
        .values(claimed_by=worker, claimed_until=until)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def summary_chart(session: AsyncSession, *, token: str) -> bytes | None:
    found = await session.exec(select(DailySummary.chart_png).where(DailySummary.chart_token == token))
    return found.first()


async def exit_counts(session: AsyncSession, *, start: datetime, end: datetime) -> list[tuple[str, str, int]]:
    """(reason, source, count) of exits in [start, end), counted by the database."""
    stmt = (
        select(ExitRecord.reason, ExitRecord.source, func.count())
        .where(col(ExitRecord.at) >= start, col(ExitRecord.at) < end)
        .group_by(col(ExitRecord.reason), col(ExitRecord.source))
    )
    return [(reason, source, int(n)) for reason, source, n in (await session.exec(stmt)).all()]


async def open_todo_counts(session: AsyncSession) -> list[tuple[str, int]]:
    """(assignee, open to-dos), most first."""
    n = func.count().label("n")
    stmt = (
        select(Todo.assignee, n)
        .where(col(Todo.done).is_(False))
        .group_by(col(Todo.assignee))
        .order_by(n.desc(), col(Todo.assignee))
    )
    return [(assignee, int(count)) for assignee, count in (await session.exec(stmt)).all()]


async def stuck_interviews(
    session: AsyncSession, *, started_before: datetime, limit: int
) -> tuple[int, Sequence[tuple[Interview, Candidate]]]:
    """How many interviews are still in progress after starting before ``started_before``, and the oldest few."""
    where = (col(Interview.status) == "in_progress", col(Interview.started_at) < started_before)
    total = (await session.exec(select(func.count()).select_from(Interview).where(*where))).one()
    stmt = (
        select(Interview, Candidate)
        .join(Candidate, col(Candidate.id) == col(Interview.candidate_id))
        .where(*where)
        .order_by(col(Interview.started_at))
        .limit(limit)
    )
    return int(total), [(i, c) for i, c in (await session.exec(stmt)).all()]


async def open_actions(session: AsyncSession, *, action: str, now: datetime) -> Sequence[PendingAction]:
    stmt = select(PendingAction).where(
        PendingAction.action == action, PendingAction.state == "open", PendingAction.expires_at > now
    )
    return (await session.exec(stmt.order_by(col(PendingAction.id)))).all()


async def transition_action(session: AsyncSession, *, action_id: int, from_state: str, to_state: str) -> bool:
    """Move an action between states once (a claim across replicas); no expiry check."""
    stmt = (
        update(PendingAction)
        .where(col(PendingAction.id) == action_id, col(PendingAction.state) == from_state)
        .values(state=to_state)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def notice_exists(session: AsyncSession, *, dedupe_key: str) -> bool:
    return (await session.exec(select(Notice.id).where(Notice.dedupe_key == dedupe_key))).first() is not None


# --- access tokens shared by replicas -------------------------------------------


async def get_shared_token(session: AsyncSession, *, key: str) -> SharedToken | None:
    return await session.get(SharedToken, key)


async def store_shared_token(
    session: AsyncSession, *, key: str, value: str, expires_at: datetime, now: datetime
) -> None:
    """Upsert and commit; a concurrent insert by another replica wins harmlessly (both are valid)."""
    row = await session.get(SharedToken, key)
    if row is None:
        session.add(SharedToken(key=key, value=value, expires_at=expires_at, updated_at=now))
    else:
        row.value, row.expires_at, row.updated_at = value, expires_at, now
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()


async def expire_shared_token(session: AsyncSession, *, key: str, value: str, now: datetime) -> None:
    """Expire ``value`` only if it is still the stored token (a newer one is left alone)."""
    await session.exec(
        update(SharedToken)
        .where(col(SharedToken.key) == key, col(SharedToken.value) == value)
        .values(expires_at=now, updated_at=now)
    )
    await session.commit()


async def purge_processed(session: AsyncSession, *, kind: str, before: datetime) -> int:
    """Delete delivered rows of ``kind`` created before ``before`` (e.g. processed inbound messages)."""
    stmt = delete(Notice).where(
        col(Notice.kind) == kind, col(Notice.status) == NoticeStatus.sent.value, col(Notice.created_at) < before
    )
    result = await session.exec(stmt)
    await session.commit()
    return int(result.rowcount or 0)
