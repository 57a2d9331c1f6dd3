"""待办 and 完成 <编号>: the asker's follow-ups."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.services import todos
from bot.services.people import Role
from bot.services.todos import Interview, Todo
from handlers.common import local

router = Router("todos")


@router.command("待办", usage="待办", example="待办")
async def my_todos(ctx: Context) -> list[Reply]:
    rows = await todos.open_for(ctx.core, ctx.actor)
    if not rows:
        return [Reply("你没有未完成的待办。")]
    lines = [f"你的待办({len(rows)} 项):", *(_line(ctx, t, i) for t, i in rows), "完成后发送「完成 编号」。"]
    return [Reply("\n".join(lines))]


def _line(ctx: Context, todo: Todo, interview: Interview | None) -> str:
    """One to-do; the interview's position and time tell two candidates of one name apart."""
    if interview is None:
        return f"#{todo.id} {todo.title}"
    about = " · ".join(part for part in (interview.position, local(ctx, interview.scheduled_at)) if part)
    return f"#{todo.id} {todo.title}({about})"


@router.command("完成", usage="完成 <待办编号>", example="完成 12")
async def finish(ctx: Context) -> list[Reply]:
    number = ctx.args.lstrip("#").split(" ")[0] if ctx.args else ""
    if not number.isdigit():
        return [Reply("用法:完成 <待办编号>,例如:完成 12(发送「待办」查看编号)")]
    is_admin = ctx.person is not None and ctx.person.role == Role.admin.value
    assignee = None if is_admin else ctx.actor
    done = await todos.finish(ctx.core, todo_id=int(number), assignee=assignee, actor=ctx.actor, chat=ctx.chat)
    if not done:
        return [Reply(f"没有你的未完成待办 #{number}。")]
    return [Reply(f"待办 #{number} 已完成。")]
