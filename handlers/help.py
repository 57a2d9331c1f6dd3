"""帮助: only the commands the asker may use, one example each."""

from __future__ import annotations

from bot.channels.base import Reply
from bot.dispatcher import Context, Router

router = Router("help")


@router.command("帮助", "help", usage="帮助", example="帮助")
async def show_help(ctx: Context) -> list[Reply]:
    dispatcher = ctx.dispatcher
    assert dispatcher is not None
    lines = ["可用命令:"]
    for cmd in dispatcher.visible_commands(ctx.person):
        lines.append(f"· {cmd.usage}  例:{cmd.example}")
    return [Reply("\n".join(lines))]
