"""Exit numbers for any date range, in BOT_TIMEZONE."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services.context import Core
from storage import repo


@dataclass
class ExitReport:
    start: date
    end: date  # inclusive
    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "total": self.total,
            "by_reason": self.by_reason,
            "by_source": self.by_source,
        }


def day_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in ``tz``."""
    return datetime.combine(start, time.min, tz), datetime.combine(end + timedelta(days=1), time.min, tz)


async def exit_report(core: Core, *, start: date, end: date) -> ExitReport:
    if end < start:
        raise ValueError("结束日期不能早于开始日期")
    async with core.sessions() as session:
        reasons = await repo.list_reasons(session, active_only=False)
        return await _count(session, core.settings.tz, [r.name for r in reasons], start, end)


async def daily_exit_reports(core: Core, *, start: date, end: date) -> list[ExitReport]:
    """One report per day from ``start`` to ``end`` inclusive (the daily summary's numbers)."""
    if end < start:
        raise ValueError("结束日期不能早于开始日期")
    async with core.sessions() as session:
        names = [r.name for r in await repo.list_reasons(session, active_only=False)]
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        return [await _count(session, core.settings.tz, names, day, day) for day in days]


async def _count(session: AsyncSession, tz: ZoneInfo, names: list[str], start: date, end: date) -> ExitReport:
    lo, hi = day_bounds(start, end, tz)
    report = ExitReport(start=start, end=end, by_reason=dict.fromkeys(names, 0))
    for reason, source, count in await repo.exit_counts(session, start=lo, end=hi):
        report.total += count
        report.by_reason[reason] = report.by_reason.get(reason, 0) + count
        report.by_source[source] = report.by_source.get(source, 0) + count
    return report
