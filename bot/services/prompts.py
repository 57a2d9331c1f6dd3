"""Open questions a chat user answers (numbered picks, confirmations): open, find, close.

A prompt that records why it was opened writes that audit event in the same transaction as
the ``PendingAction`` row, so the two never disagree after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from bot.services.context import Core
from storage import repo
from storage.models import ActionState, PendingAction

__all__ = [
    "Audit",
    "PendingAction",
    "PromptView",
    "audit",
    "cancel",
    "close",
    "latest_open",
    "open_of",
    "open_prompt",
    "read",
    "take",
]


@dataclass(frozen=True)
class Audit:
    """An audit event to write with a prompt change."""

    actor: str
    action: str
    chat: str | None = None
    interview_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _write(session: Any, core: Core, entry: Audit) -> None:
    repo.audit(
        session,
        at=core.clock.now(),
        actor=entry.actor,
        action=entry.action,
        interview_id=entry.interview_id,
        chat=entry.chat,
        detail=entry.detail,
    )


async def audit(core: Core, entry: Audit) -> None:
    """Write one audit event on its own (a refusal, a cancelled prompt, an acknowledged request)."""
    async with core.sessions() as session:
        _write(session, core, entry)
        await session.commit()


async def open_prompt(
    core: Core,
    *,
    requester: str,
    chat_id: str,
    action: str,
    params: dict[str, Any],
    ttl: int | None = None,
    audit: Audit | None = None,
) -> PendingAction:
    """Store a question that ``requester`` answers in ``chat_id``, with ``audit`` in the same transaction."""
    now = core.clock.now()
    seconds = ttl if ttl is not None else core.settings.confirm_ttl_seconds
    async with core.sessions() as session:
        row = PendingAction(
            requester=requester,
            chat_id=chat_id,
            action=action,
            params=params,
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
        )
        session.add(row)
        if audit is not None:
            _write(session, core, audit)
        await session.commit()
        return row


async def latest_open(
    core: Core,
    *,
    requester: str,
    chat_id: str | None,
    actions: Sequence[str] | None = None,
    action_id: int | None = None,
) -> PendingAction | None:
    """The requester's newest open, unexpired prompt of these kinds (in this chat; any chat for None).
    Within a batch, that there is none is remembered (see ``memo``)."""

    async def load() -> PendingAction | None:
        async with core.reads() as session:
            return await repo.latest_open_action(
                session,
                requester=requester,
                chat_id=chat_id,
                now=core.clock.now(),
                actions=actions,
                action_id=action_id,
            )

    key = ("open_prompt", requester, chat_id, tuple(actions) if actions is not None else None, action_id)
    return await core.lookups.lookup(key, load, keep=lambda found: found is None)


async def open_of(core: Core, *, requester: str, action: str) -> Sequence[PendingAction]:
    """Every open, unexpired prompt of kind ``action`` the requester has (any chat), oldest first."""
    async with core.sessions() as session:
        return await repo.open_actions_of(session, requester=requester, action=action, now=core.clock.now())


async def close(
    core: Core, action_id: int | None, state: ActionState = ActionState.answered, *, by: str | None = None
) -> bool:
    """Close one prompt (``by``: the message that closes it); False if someone (or something)
    closed it first or it expired."""
    if action_id is None:
        return False
    async with core.sessions() as session:
        return await repo.close_action_and_commit(
            session, action_id=action_id, state=state, now=core.clock.now(), by=by
        )


async def closed_by(core: Core, *, requester: str, by: str) -> PendingAction | None:
    """The requester's prompt that the message ``by`` closed (it is being processed again)."""
    async with core.sessions() as session:
        return await repo.action_closed_by(session, requester=requester, by=by)


async def take(
    core: Core,
    *,
    requester: str,
    chat_id: str,
    actions: Sequence[str],
    state: ActionState,
    action_id: int | None = None,
    by: str | None = None,
) -> PendingAction | None:
    """Close the requester's newest open prompt of these kinds in this chat, once (``by``: the
    message that closes it)."""
    action = await latest_open(core, requester=requester, chat_id=chat_id, actions=actions, action_id=action_id)
    if action is None or action.id is None:
        return None
    if not await close(core, action.id, state, by=by):
        return None
    return action


async def cancel(
    core: Core, *, requester: str, chat_id: str, actions: Sequence[str], chat: str, action_id: int | None = None
) -> PendingAction | None:
    """Cancel the requester's newest open prompt of these kinds and audit ``<action>.cancelled``."""
    action = await take(
        core, requester=requester, chat_id=chat_id, actions=actions, state=ActionState.cancelled, action_id=action_id
    )
    if action is not None:
        await audit(core, Audit(requester, f"{action.action}.cancelled", chat=chat, detail=action.params))
    return action


# Where one prompt stands for the person who pressed (or typed) its button.
PromptStatus = Literal["open", "expired", "confirmed", "cancelled", "closed", "not_yours", "missing"]


@dataclass(frozen=True)
class PromptView:
    """One prompt as its requester may see it: ``action`` is None when it is not theirs (nothing of
    someone else's prompt is given away) or does not exist."""

    status: PromptStatus
    action: PendingAction | None = None

    @property
    def ttl_minutes(self) -> int:
        """How long the prompt was open for, in whole minutes (at least one)."""
        if self.action is None:
            return 0
        return max(1, int((self.action.expires_at - self.action.created_at).total_seconds()) // 60)


async def read(core: Core, action_id: int, *, requester: str, chat_id: str | None) -> PromptView:
    """Prompt ``action_id`` for ``requester`` pressing its button in ``chat_id`` (None: any chat):
    open, expired (never answered in time), confirmed, cancelled, closed otherwise (answered,
    carried out), not theirs (someone else's, or asked in another chat) or missing."""
    async with core.sessions() as session:
        action = await repo.get_action(session, action_id)
    if action is None:
        return PromptView("missing")
    if action.requester != requester or (chat_id is not None and action.chat_id != chat_id):
        return PromptView("not_yours")
    state = action.state
    if state == ActionState.open.value:
        return PromptView("open" if action.expires_at > core.clock.now() else "expired", action)
    if state == ActionState.confirmed.value:
        return PromptView("confirmed", action)
    if state == ActionState.cancelled.value:
        return PromptView("cancelled", action)
    return PromptView("closed", action)
