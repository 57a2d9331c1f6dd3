"""What closes with a candidate's 求助 and what ends with an interview.

- A 求助 is answered (确认终止, 协助继续, 重新安排, by the HR owner or a manager it was escalated
  to): every prompt of it closes and so does the HR owner's to-do, with who closed it, audited,
  in one transaction (``close_help_request``).
- An interview ends (terminated by any path, including the idle timeout, or completed on the
  platform): its reminders not yet sent and the pending notices that speak of it as still ahead
  (the operation guide, the reminders, the HR's 30-minute note) are cancelled, and a 求助 still
  open about it closes (``interview_ended``), in the transaction that ends it. A terminated
  interview booked again gets its reminders planned anew (``bot.services.reminders``).

Neither commits; both run inside the caller's unit of work.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import NoticeKind
from storage import repo
from storage.models import ActionState, Interview, NoticeStatus

HELP_ACTION = "help_request"

# Pending notices an ended interview makes pointless: what they announce can no longer happen.
ENDED_CANCELS: tuple[str, ...] = (
    NoticeKind.guide,
    NoticeKind.before_1h,
    NoticeKind.at_start,
    NoticeKind.after_30m,
    NoticeKind.idle_warning,
    NoticeKind.hr_after_30m,
)


def help_todo_ref(key: str) -> str:
    """``Todo.ref`` of the HR owner's to-do for the 求助 with platform event id ``key``."""
    return f"help:{key}"[:200]


def ended_note(status: str) -> str:
    """``Reminder.note`` of a reminder cancelled because its interview ended (``status``)."""
    return f"interview {status}"


async def close_help_request(
    session: AsyncSession,
    *,
    key: str,
    state: ActionState,
    by: str,
    now: datetime,
    interview_id: int | None = None,
    why: str = "answered",
) -> int:
    """Close every open prompt of the 求助 ``key`` (HR's and managers') and its to-do, by ``by``;
    returns how many prompts were closed (0: someone else answered first, nothing changes)."""
    closed = 0
    for action in await repo.open_actions(session, action=HELP_ACTION, now=now):
        if action.params.get("key") == key and action.id is not None:
            closed += await repo.transition_action(
                session, action_id=action.id, from_state=ActionState.open, to_state=state
            )
    if not closed:
        return 0
    for todo in await repo.finish_todos_by_ref(session, ref=help_todo_ref(key), by=by, now=now):
        repo.audit(
            session,
            at=now,
            actor=by,
            action="todo.done",
            interview_id=todo.interview_id or interview_id,
            detail={"todo": todo.id, "source": "help_request", "key": key, "why": why},
        )
    return closed


async def interview_ended(session: AsyncSession, *, interview: Interview, actor: str, now: datetime) -> None:
    """Cancel what can no longer be sent for ``interview`` (just ended, status already set) and
    close a 求助 still open about it; audited when anything changed."""
    assert interview.id is not None
    note = ended_note(interview.status)
    reminders = await repo.cancel_pending_reminders(session, interview_id=interview.id, note=note, now=now)
    notices: list[int] = []
    for row in await repo.pending_notices(session, interview_id=interview.id, kinds=ENDED_CANCELS):
        assert row.id is not None
        if await repo.update_pending_notice(session, notice_id=row.id, status=NoticeStatus.cancelled.value):
            notices.append(row.id)
    if reminders or notices:
        repo.audit(
            session,
            at=now,
            actor="system",
            action="reminders.cancelled",
            interview_id=interview.id,
            detail={"why": note, "reminders": reminders, "notice_ids": notices},
        )
    keys = {
        str(action.params["key"])
        for action in await repo.open_actions(session, action=HELP_ACTION, now=now)
        if action.params.get("platform_id") == interview.platform_id and action.params.get("key")
    }
    for key in sorted(keys):
        await close_help_request(
            session,
            key=key,
            state=ActionState.cancelled,
            by=actor,
            now=now,
            interview_id=interview.id,
            why=note,
        )
