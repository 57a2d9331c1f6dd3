"""Confirmation prompts waiting for an answer (``PendingAction``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ActionState, PendingAction


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
        PendingAction.state == ActionState.open.value,
        PendingAction.expires_at > now,
    )
    if chat_id is not None:
        stmt = stmt.where(PendingAction.chat_id == chat_id)
    if actions is not None:
        stmt = stmt.where(col(PendingAction.action).in_(list(actions)))
    if action_id is not None:
        stmt = stmt.where(PendingAction.id == action_id)
    return (await session.exec(stmt.order_by(col(PendingAction.id).desc()))).first()


async def open_actions_of(
    session: AsyncSession, *, requester: str, action: str, now: datetime
) -> Sequence[PendingAction]:
    """The requester's open, unexpired prompts of kind ``action`` (any chat), oldest first."""
    stmt = select(PendingAction).where(
        PendingAction.requester == requester,
        PendingAction.action == action,
        PendingAction.state == ActionState.open.value,
        PendingAction.expires_at > now,
    )
    return (await session.exec(stmt.order_by(col(PendingAction.id)))).all()


async def get_action(session: AsyncSession, action_id: int) -> PendingAction | None:
    """One prompt by id, whatever its state, requester or expiry."""
    return await session.get(PendingAction, action_id)


async def open_actions(session: AsyncSession, *, action: str, now: datetime) -> Sequence[PendingAction]:
    stmt = select(PendingAction).where(
        PendingAction.action == action,
        PendingAction.state == ActionState.open.value,
        PendingAction.expires_at > now,
    )
    return (await session.exec(stmt.order_by(col(PendingAction.id)))).all()


async def close_action_and_commit(
    session: AsyncSession, *, action_id: int, state: ActionState, now: datetime, by: str | None = None
) -> bool:
    """open → ``state``, once, and commit (``by``: the message that closed it). False if it was
    already closed or expired."""
    stmt = (
        update(PendingAction)
        .where(
            col(PendingAction.id) == action_id,
            col(PendingAction.state) == ActionState.open.value,
            col(PendingAction.expires_at) > now,
        )
        .values(state=str(state), closed_by=by)
    )
    result = await session.exec(stmt)
    await session.commit()
    return bool(result.rowcount == 1)


async def action_closed_by(session: AsyncSession, *, requester: str, by: str) -> PendingAction | None:
    """The requester's prompt that the message ``by`` closed, if any."""
    stmt = select(PendingAction).where(PendingAction.requester == requester, PendingAction.closed_by == by)
    return (await session.exec(stmt.order_by(col(PendingAction.id).desc()))).first()


async def transition_action(
    session: AsyncSession, *, action_id: int, from_state: ActionState, to_state: ActionState
) -> bool:
    """Move an action between states once (a claim across replicas); no expiry check, not committed."""
    stmt = (
        update(PendingAction)
        .where(col(PendingAction.id) == action_id, col(PendingAction.state) == str(from_state))
        .values(state=str(to_state))
    )
    result = await session.exec(stmt)
    return bool(result.rowcount == 1)


async def transition_action_and_commit(
    session: AsyncSession, *, action_id: int, from_state: ActionState, to_state: ActionState
) -> bool:
    """``transition_action``, committed."""
    moved = await transition_action(session, action_id=action_id, from_state=from_state, to_state=to_state)
    await session.commit()
    return moved
