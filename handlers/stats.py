"""统计 [今天|本周|本月]: exit counts by reason."""

from __future__ import annotations

from datetime import timedelta

from bot.chat.messages import Reply
from bot.dispatcher import MANAGERS, Context, Router
from bot.services.reports import exit_report

router = Router("stats")

PERIODS = ("今天", "本周", "本月")


@router.command("统计", roles=MANAGERS, usage="统计 [今天|本周|本月]", example="统计 本周")
async def stats(ctx: Context) -> list[Reply]:
    period = ctx.args.split(" ")[0] if ctx.args else "今天"
    if period not in PERIODS:
        return [Reply(f"请选择统计范围:{'、'.join(PERIODS)},例如:统计 本周")]
    today = ctx.core.clock.now().astimezone(ctx.core.settings.tz).date()
    start = {"今天": today, "本周": today - timedelta(days=today.weekday()), "本月": today.replace(day=1)}[period]
    report = await exit_report(ctx.core, start=start, end=today)
    lines = [f"{period}退出统计({start} ~ {today}):共 {report.total} 场"]
    for name, count in sorted(report.by_reason.items(), key=lambda kv: -kv[1]):
        if count:
            lines.append(f"· {name}:{count}")
    if report.total == 0:
        lines.append("暂无提前结束的面试。")
    return [Reply("\n".join(lines))]
