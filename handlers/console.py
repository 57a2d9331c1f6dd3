"""后台: a one-time login link to the web console, in a 1:1 chat only (never in a group)."""

from __future__ import annotations

from bot.chat.messages import Reply
from bot.dispatcher import Context, Router
from bot.language.intents import Kind
from bot.services import console_auth
from handlers.common import say

router = Router("console")


@router.command("后台", "网页后台", kind=Kind.console)
async def console_link(ctx: Context) -> list[Reply]:
    if ctx.msg.chat_type != "direct":
        return [say(ctx, "console/direct_only")]
    token = await console_auth.issue_link(ctx.core, platform=ctx.msg.platform, user_id=ctx.msg.sender_id, chat=ctx.chat)
    minutes = int(console_auth.LINK_VALID.total_seconds() // 60)
    url = console_auth.link_url(ctx.core, token)
    local_only = console_auth.local_only(ctx.core.settings)
    return [say(ctx, "console/link", url=url, minutes=minutes, local_only=local_only)]
