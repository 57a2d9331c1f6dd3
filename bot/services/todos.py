"""HR follow-ups: the open to-dos of one person, and marking one done (audited in the same transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.services.context import Core
from storage import repo
from storage.models import Interview, Todo

__all__ = ["Interview", "Todo", "finish", "open_for"]


async def open_for(core: Core, assignee: str) -> Sequence[tuple[Todo, Interview | None]]:
    """``assignee``'s open to-dos, oldest first, each with its interview (if any)."""
    async with core.sessions() as session:
        return await repo.open_todos_with_interviews(session, assignee=assignee)


async def finish(
    core: Core, *, todo_id: int, assignee: str | None, actor: str, chat: str | None = None, source: str = "chat"
) -> bool:
    """Mark to-do ``todo_id`` done (only ``assignee``'s unless None); False if there is no such open to-do."""
    now = core.clock.now()
    async with core.sessions() as session:
        done = await repo.finish_todo(session, todo_id=todo_id, assignee=assignee, now=now, by=actor)
        if done:
            repo.audit(
                session, at=now, actor=actor, action="todo.done", chat=chat, detail={"todo": todo_id, "source": source}
            )
        await session.commit()
    return done
