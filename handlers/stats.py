"""统计 [今天|本周|本月]: exit counts by reason."""

from __future__ import annotations

from datetime import timedelta

from bot.chat.messages import Reply
from bot.dispatcher import MANAGERS, Context, Router
from bot.language.intents import Kind
from bot.services.reports import exit_report
from handlers.common import say

router = Router("stats")

PERIODS = ("今天", "本周", "本月")


@router.command("统计", kind=Kind.stats, roles=MANAGERS)
async def stats(ctx: Context) -> list[Reply]:
    period = ctx.args.split(" ")[0] if ctx.args else PERIODS[0]
    if period not in PERIODS:
        assert ctx.cmd is not None
        return [say(ctx, "stats/periods", periods=PERIODS, example=ctx.cmd.example)]
    today = ctx.core.clock.now().astimezone(ctx.core.settings.tz).date()
    start = dict(zip(PERIODS, (today, today - timedelta(days=today.weekday()), today.replace(day=1)), strict=True))
    report = await exit_report(ctx.core, start=start[period], end=today)
    counts = [(name, n) for name, n in sorted(report.by_reason.items(), key=lambda kv: -kv[1]) if n]
    return [say(ctx, "stats/report", period=period, start=start[period], end=today, total=report.total, counts=counts)]
