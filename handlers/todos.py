"""待办 and 完成 <编号>: the asker's follow-ups."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.language.intents import Kind
from bot.services import todos
from bot.services.people import Role
from bot.services.todos import Interview, Todo
from handlers.common import local, say

router = Router("todos")


@router.command("待办", kind=Kind.todos)
async def my_todos(ctx: Context) -> list[Reply]:
    rows = await todos.open_for(ctx.core, ctx.actor)
    if not rows:
        return [say(ctx, "todos/none")]
    return [say(ctx, "todos/list", lines=[_line(ctx, t, i) for t, i in rows])]


def _line(ctx: Context, todo: Todo, interview: Interview | None) -> str:
    """One to-do; the interview's position and time tell two candidates of one name apart."""
    if interview is None:
        return f"#{todo.id} {todo.title}"
    about = " · ".join(part for part in (interview.position, local(ctx, interview.scheduled_at)) if part)
    return f"#{todo.id} {todo.title}({about})"


def todo_number(args: str) -> int | None:
    """完成 12, 完成 #12: the to-do's number."""
    number = args.lstrip("#").split(" ")[0] if args else ""
    try:
        return int(number) if number.isdigit() else None
    except ValueError:  # a digit int() does not read, such as ²
        return None


@router.command("完成", kind=Kind.todo_done, parse=todo_number, bad_args="chat/todos/usage.txt.j2")
async def finish(ctx: Context) -> list[Reply]:
    number: int = ctx.value
    is_admin = ctx.person is not None and ctx.person.role == Role.admin.value
    assignee = None if is_admin else ctx.actor
    done = await todos.finish(ctx.core, todo_id=number, assignee=assignee, actor=ctx.actor, chat=ctx.chat)
    if not done:
        return [say(ctx, "todos/not_yours", number=number)]
    return [say(ctx, "todos/done", number=number)]
