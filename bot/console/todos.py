"""待办: the signed-in person's open to-dos, and 完成."""

from __future__ import annotations

from aiohttp import web

from bot.console.web import PREFIX, Form, action, core_of, page, redirect, render
from bot.services import todos
from bot.services.console_auth import ConsoleUser

routes = web.RouteTableDef()


@routes.get(f"{PREFIX}/todos")
@page
async def todo_list(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    rows = await todos.open_for(core_of(request), user.key)
    return render(request, "todos", user=user, rows=rows, error="", done=request.query.get("done", ""))


async def _finish(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    number = int(raw)
    # Like 完成 in chat: admins may close anyone's, everyone else only their own.
    assignee = None if user.is_admin else user.key
    done = await todos.finish(core_of(request), todo_id=number, assignee=assignee, actor=user.key, source="console")
    if not done:
        rows = await todos.open_for(core_of(request), user.key)
        return render(request, "todos", status=409, user=user, rows=rows, error="not_yours", number=number, done="")
    raise redirect(f"{PREFIX}/todos", done=str(number))


routes.post(PREFIX + "/todos/{id}/done")(action(_finish))
