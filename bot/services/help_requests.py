"""Candidates' 求助: prompt the HR owner, remind once, escalate to managers, or end it per policy.

A help request is a ``PendingAction`` row per person who may answer it (the HR owner, later
the managers), sharing ``params["key"]`` (the platform event id) so that the first answer
closes them all. A candidate's own exit (policy "self") is a ``candidate_exit`` row processed
right away and retried by the sweep until the termination goes through.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.chat.messages import Reply
from bot.chat.payload import reply_to_payload
from bot.services import notices, outbound, termination
from bot.services.context import Core
from bot.services.lifecycle import HELP_ACTION, close_help_request, help_todo_ref
from bot.services.reasons import match_reason
from storage import repo
from storage.models import ActionState, Candidate, Interview, PendingAction, ReasonCode, Role, Todo

log = logging.getLogger(__name__)

# Who a candidate's 求助 reached (``open_help_request``); the kf answer says which.
HelpReached = Literal["hr", "managers", "self", "nobody"]

EXIT_ACTION = "candidate_exit"
HELP_BUTTONS = (("确认终止", "确认终止"), ("协助继续", "协助继续"), ("重新安排", "重新安排"))
LIFETIME = timedelta(hours=24)


def _prompt(core: Core, params: dict[str, Any], *, escalated: bool = False) -> Reply:
    text = core.templates.render(
        "chat/help_request.txt.j2",
        candidate_name=params["candidate_name"],
        position=params["position"],
        wants_exit=params["wants_exit"],
        reason=params["reason"],
        escalated=escalated,
        minutes=2 * core.settings.help_remind_seconds // 60,
    )
    return Reply(text, kind="confirm", title="候选人求助", buttons=HELP_BUTTONS)


async def _ask(
    session: AsyncSession, core: Core, *, person_key: str, params: dict[str, Any], now: datetime, escalated: bool
) -> None:
    """A prompt row for one person who may answer, and the chat message that shows it."""
    _, _, user_id = person_key.partition(":")
    session.add(
        PendingAction(
            requester=person_key,
            chat_id=user_id,
            action=HELP_ACTION,
            params={**params, "escalated": escalated},
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    reply = _prompt(core, params, escalated=escalated)
    await notices.notify_staff(
        session,
        core,
        kind="help_requested",
        person_key=person_key,
        interview=None,
        now=now,
        text=reply.text,
        dedupe_key=f"help:{params['key']}:{person_key}"[:200],
        payload={"reply": reply_to_payload(reply)},
    )


async def open_help_request(
    session: AsyncSession,
    core: Core,
    *,
    interview: Interview,
    candidate: Candidate,
    event_id: str,
    reason: str,
    wants_exit: bool,
    now: datetime,
) -> HelpReached:
    """Called inside the platform event's (or the kf message's) transaction. Who was reached:
    the HR owner; the managers and admins at once when the interview has no HR owner (so the
    request is never left with nobody); "self" when the candidate's wish to stop is granted by
    policy; "nobody" when there is no one to ask at all (audited, and said so to the candidate)."""
    policy = core.settings.candidate_exit_policy
    await outbound.help_requested(
        session, core, interview=interview, candidate=candidate, reason=reason, wants_exit=wants_exit, now=now
    )
    params: dict[str, Any] = {
        "key": event_id,
        "platform_id": interview.platform_id,
        "candidate_name": candidate.name,
        "position": interview.position,
        "reason": reason,
        "wants_exit": wants_exit,
    }
    if wants_exit and policy == "self":
        session.add(
            PendingAction(
                requester="candidate",
                chat_id="",
                action=EXIT_ACTION,
                params=params,
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
        return "self"
    hr = interview.hr_key
    want = "希望结束面试" if wants_exit else "请求协助"
    reached: HelpReached = "nobody"
    if hr:
        title = f"候选人{candidate.name}{want}:{reason or '未说明原因'}"
        ref = help_todo_ref(event_id)
        session.add(Todo(assignee=hr, interview_id=interview.id, title=title[:200], ref=ref, created_at=now))
        await _ask(session, core, person_key=hr, params=params, now=now, escalated=False)
        reached = "hr"
    else:
        managers = [p.key for p in await repo.list_people(session) if p.role in (Role.manager.value, Role.admin.value)]
        for manager in managers:
            await _ask(session, core, person_key=manager, params=params, now=now, escalated=True)
        if managers:
            reached = "managers"
        else:
            log.warning("help request %s reached nobody: no HR owner, no manager or admin", event_id)
        action = "help.escalated" if managers else "help.unassigned"
        repo.audit(session, at=now, actor="system", action=action, detail={"key": event_id, "to": managers})
    if wants_exit and policy == "deny":
        await notices.notify_candidate(
            session,
            core,
            kind="help_contact_hr",
            interview=interview,
            candidate=candidate,
            now=now,
            context={},
            dedupe_key=f"help_contact_hr:{event_id}",
        )
    return reached


async def close_siblings(core: Core, key: str, *, state: ActionState, by: str) -> int:
    """Close every open prompt of one help request (HR's and managers') and the HR owner's to-do
    for it, as answered by ``by``, in one transaction; returns how many prompts were closed."""
    async with core.sessions() as session:
        closed = await close_help_request(session, key=key, state=state, by=by, now=core.clock.now())
        await session.commit()
    return closed


async def run_candidate_exits(core: Core) -> int:
    """End interviews whose candidates asked to leave (policy "self"); returns how many ended."""
    now = core.clock.now()
    async with core.sessions() as session:
        pending = await repo.open_actions(session, action=EXIT_ACTION, now=now)
        reasons = await repo.list_reasons(session)
    ended = 0
    for action in pending:
        assert action.id is not None
        async with core.sessions() as session:
            if not await repo.transition_action_and_commit(
                session, action_id=action.id, from_state=ActionState.open, to_state=ActionState.running
            ):
                continue  # another replica has it
        # No HR is there to pick: words that name no reason end as 其他, the words kept as detail.
        reason = match_reason(action.params.get("reason", ""), reasons)
        final = ActionState.done
        try:
            await termination.terminate(
                core,
                platform_id=action.params["platform_id"],
                reason_text=reason.code if reason else ReasonCode.other,
                operator="candidate",
                source="candidate_request",
                detail=action.params.get("reason", ""),
            )
            ended += 1
        except (termination.SaveFailed, termination.PlatformTerminateFailed, termination.TerminationInProgress) as exc:
            log.warning("candidate exit for %s will be retried: %s", action.params["platform_id"], exc.message)
            final = ActionState.open
        except termination.TerminationError as exc:  # already ended, completed, or gone: nothing to retry
            log.info("candidate exit for %s not needed: %s", action.params["platform_id"], exc.message)
        async with core.sessions() as session:
            await repo.transition_action_and_commit(
                session, action_id=action.id, from_state=ActionState.running, to_state=final
            )
    return ended


async def sweep_help_requests(core: Core) -> None:
    """Remind the HR owner once after BOT_HELP_REMIND_SECONDS; after twice that, ask the managers.

    Reminders and escalations are notices with unique dedupe keys, so replicas racing here
    send each once: the loser's transaction fails on the key and is rolled back whole.
    """
    await run_candidate_exits(core)
    now = core.clock.now()
    wait = timedelta(seconds=core.settings.help_remind_seconds)
    async with core.sessions() as session:
        actions = await repo.open_actions(session, action=HELP_ACTION, now=now)
        managers = [p.key for p in await repo.list_people(session) if p.role in (Role.manager.value, Role.admin.value)]
    groups: dict[str, list[PendingAction]] = {}
    for action in actions:
        groups.setdefault(action.params["key"], []).append(action)
    for key, group in groups.items():
        if any(a.params.get("escalated") for a in group):
            continue  # managers were asked already
        owner = group[0]
        age = now - owner.created_at
        if age >= 2 * wait:
            targets = [m for m in managers if m != owner.requester]
            await _commit_once(core, partial(_escalate, core=core, owner=owner, targets=targets, now=now))
        elif age >= wait:
            build = partial(_remind, core=core, owner=owner, age=age, now=now)
            await _commit_once(core, build, key=f"help_remind:{key}")


async def _remind(session: AsyncSession, *, core: Core, owner: PendingAction, age: timedelta, now: datetime) -> None:
    text = core.templates.render(
        "chat/help_reminder.txt.j2",
        candidate_name=owner.params["candidate_name"],
        minutes=int(age.total_seconds() // 60),
    )
    await notices.notify_staff(
        session,
        core,
        kind="help_reminder",
        person_key=owner.requester,
        interview=None,
        now=now,
        text=text,
        dedupe_key=f"help_remind:{owner.params['key']}"[:200],
    )


async def _escalate(
    session: AsyncSession, *, core: Core, owner: PendingAction, targets: list[str], now: datetime
) -> None:
    for manager in targets:
        await _ask(session, core, person_key=manager, params=dict(owner.params), now=now, escalated=True)
    if targets:
        repo.audit(
            session, at=now, actor="system", action="help.escalated", detail={"key": owner.params["key"], "to": targets}
        )


async def _commit_once(core: Core, build: Callable[[AsyncSession], Awaitable[None]], key: str | None = None) -> bool:
    """Build rows in one transaction; False when a unique dedupe key shows another did it first."""
    async with core.sessions() as session:
        if key is not None and await repo.notice_exists(session, dedupe_key=key):
            return False
        await build(session)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return False
    core.wake_outbox()
    return True
