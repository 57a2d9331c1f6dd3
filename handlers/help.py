"""帮助: only the commands the asker may use, each with one line on what it does and an example."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.language.intents import Kind
from templates.labels import LABELS

router = Router("help")


@router.command("帮助", "help", kind=Kind.help)
async def show_help(ctx: Context) -> list[Reply]:
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    about = LABELS["command_help"]
    commands = [
        {"usage": cmd.usage, "about": about.get(cmd.names[0], ""), "example": cmd.example}
        for cmd in dispatcher.visible_commands(ctx.person)
    ]
    return [Reply(ctx.core.templates.render("chat/help.txt.j2", commands=commands))]


@router.command(kind=Kind.how_to)
async def how_to(ctx: Context) -> list[Reply]:
    """怎么终止面试? — the usage of that command, never the command itself."""
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    target = dispatcher.by_kind.get(Kind(ctx.intent.args)) if ctx.intent.args in set(Kind) else None
    if target is None or not target.names:
        return await show_help(ctx)
    about = LABELS["command_help"].get(target.names[0], "")
    text = ctx.core.templates.render("chat/how_to.txt.j2", usage=target.usage, about=about, example=target.example)
    return [Reply(text)]
