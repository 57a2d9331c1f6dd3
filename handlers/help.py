"""帮助: only the commands the asker may use, each with one line on what it does and an example."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from templates.labels import LABELS

router = Router("help")


@router.command("帮助", "help")
async def show_help(ctx: Context) -> list[Reply]:
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    about = LABELS["command_help"]
    commands = [
        {"usage": cmd.usage, "about": about.get(cmd.names[0], ""), "example": cmd.example}
        for cmd in dispatcher.visible_commands(ctx.person)
    ]
    return [Reply(ctx.core.templates.render("chat/help.txt.j2", commands=commands))]
