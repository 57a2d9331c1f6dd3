"""Exit numbers for any date range, in BOT_TIMEZONE."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
    lo, hi = day_bounds(start, end, core.settings.tz)
    async with core.sessions() as session:
        records = await repo.exits_between(session, start=lo, end=hi)
        reasons = await repo.list_reasons(session, active_only=False)
    report = ExitReport(start=start, end=end, by_reason={r.name: 0 for r in reasons})
    for record in records:
        report.total += 1
        report.by_reason[record.reason] = report.by_reason.get(record.reason, 0) + 1
        report.by_source[record.source] = report.by_source.get(record.source, 0) + 1
    return report
