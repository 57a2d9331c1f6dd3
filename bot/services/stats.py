"""The 统计 page: exits in a date range by reason, HR owner and position, the 7-day chart, CSV export.

Dates are days in BOT_TIMEZONE; "today" comes from the clock. HR see the exits of interviews they
own or that are shared with them (``hr_key``); managers and admins pass None and see all.
Exits are grouped by reason code and shown with the reason's current name, so a renamed reason
keeps its history together.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from bot.services import people
from bot.services.charts import render_exit_chart
from bot.services.context import Core
from bot.services.errors import ServiceError
from bot.services.reports import day_bounds
from storage import repo
from storage.models import Candidate, ExitRecord, Interview
from templates.labels import LABELS, label

CHART_DAYS = 7
MAX_DAYS = 366


class Period(StrEnum):
    today = "today"
    week = "week"  # Monday to today
    month = "month"  # the 1st to today
    custom = "custom"


class StatsError(ServiceError):
    code = "bad_range"
    http_status = 400


def _refuse(core: Core, error: str, **context: object) -> StatsError:
    return StatsError(core.templates.render("admin/errors.txt.j2", error=error, **context), error=error)


def today(core: Core) -> date:
    return core.clock.now().astimezone(core.settings.tz).date()


def period_range(core: Core, period: str, *, start: date | None = None, end: date | None = None) -> tuple[date, date]:
    """The days (first, last, inclusive) a period covers; ``custom`` uses ``start`` and ``end``
    (each defaulting to today). ``StatsError`` for an unknown period, a reversed or too long range."""
    now = today(core)
    if period == Period.today:
        first, last = now, now
    elif period == Period.week:
        first, last = now - timedelta(days=now.weekday()), now
    elif period == Period.month:
        first, last = now.replace(day=1), now
    elif period == Period.custom:
        first, last = start or now, end or now
    else:
        raise _refuse(core, "period_unknown", period=period)
    if last < first:
        raise _refuse(core, "range_order")
    if (last - first).days + 1 > MAX_DAYS:
        raise _refuse(core, "range_long", limit=MAX_DAYS)
    return first, last


@dataclass
class Count:
    key: str  # reason code, HR key ("" when none) or position
    name: str  # what a person reads
    count: int


@dataclass
class ExitStats:
    start: date
    end: date
    total: int = 0
    by_reason: list[Count] = field(default_factory=list)  # every reason in the configured order
    by_owner: list[Count] = field(default_factory=list)  # most exits first
    by_position: list[Count] = field(default_factory=list)  # most exits first
    # The 7 days ending on ``end``: daily counts by reason name (for ``chart_png``).
    chart_days: list[date] = field(default_factory=list)
    chart_series: dict[str, list[int]] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # reason name -> code (chart without CJK font)


def _ranked(counter: Counter[str], names: dict[str, str]) -> list[Count]:
    return [Count(k, names.get(k, k), n) for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


async def _rows(
    core: Core, start: date, end: date, hr_key: str | None
) -> list[tuple[ExitRecord, Interview, Candidate]]:
    lo, hi = day_bounds(start, end, core.settings.tz)
    async with core.sessions() as session:
        return await repo.exits_with_interviews(session, start=lo, end=hi, hr_key=hr_key)


async def exit_stats(core: Core, *, start: date, end: date, hr_key: str | None) -> ExitStats:
    """Exit counts of [start, end] (days in BOT_TIMEZONE) within ``hr_key``'s scope (None: all)."""
    if end < start:
        raise _refuse(core, "range_order")
    rows = await _rows(core, start, end, hr_key)
    chart_start = end - timedelta(days=CHART_DAYS - 1)
    chart_rows = await _rows(core, chart_start, end, hr_key)
    async with core.sessions() as session:
        reasons = await repo.list_reasons(session, active_only=False)
        owners = await people.display_names(session, (i.hr_key for _, i, _ in rows))
    names = {r.code: r.name for r in reasons}
    for record, _, _ in [*rows, *chart_rows]:
        names.setdefault(record.reason_code, record.reason)
    stats = ExitStats(start=start, end=end, total=len(rows))
    by_reason = Counter(e.reason_code for e, _, _ in rows)
    order = [r.code for r in reasons] + sorted(set(by_reason) - {r.code for r in reasons})
    stats.by_reason = [Count(code, names[code], by_reason.get(code, 0)) for code in order]
    unassigned = LABELS["stats"]["no_owner"]
    stats.by_owner = _ranked(Counter(i.hr_key or "" for _, i, _ in rows), {**owners, "": unassigned})
    no_position = LABELS["stats"]["no_position"]
    stats.by_position = _ranked(Counter(i.position or "" for _, i, _ in rows), {"": no_position})
    stats.chart_days = [chart_start + timedelta(days=n) for n in range(CHART_DAYS)]
    tz = core.settings.tz
    series = {names[code]: [0] * CHART_DAYS for code in order}
    for record, _, _ in chart_rows:
        day = record.at.astimezone(tz).date()
        series.setdefault(names[record.reason_code], [0] * CHART_DAYS)[(day - chart_start).days] += 1
    stats.chart_series = series
    stats.codes = {name: code for code, name in names.items()}
    return stats


async def chart_png(core: Core, stats: ExitStats) -> bytes:
    """The stacked bar chart of ``stats``' 7 days, rendered off the event loop (the daily summary's chart)."""
    return await asyncio.to_thread(
        render_exit_chart, stats.chart_days, stats.chart_series, codes=stats.codes, font_path=core.settings.chart_font
    )


CSV_COLUMNS = ("at", "candidate", "position", "reason", "outcome", "operator", "source", "note")


def _cell(value: str) -> str:
    """A value Excel shows as text: a leading = + - @ (a formula) is quoted with an apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


async def exits_csv(core: Core, *, start: date, end: date, hr_key: str | None) -> bytes:
    """One row per exit of [start, end] within ``hr_key``'s scope, oldest first: time (BOT_TIMEZONE),
    candidate, position, reason, outcome (the pipeline status the exit set), operator, source, note.
    UTF-8 with a BOM, so Excel opens it; Chinese column headers."""
    if end < start:
        raise _refuse(core, "range_order")
    rows = await _rows(core, start, end, hr_key)
    async with core.sessions() as session:
        operators = await people.display_names(session, (e.operator for e, _, _ in rows))
        reasons = {r.code: r for r in await repo.list_reasons(session, active_only=False)}
        audits = await repo.termination_audits(session, interview_ids=sorted({i.id for _, i, _ in rows if i.id}))
    outcome_at = {(a.interview_id, a.at): str(a.detail.get("pipeline", "")) for a in audits}
    headers = LABELS["exit_csv"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([headers[c] for c in CSV_COLUMNS])
    tz = core.settings.tz
    for record, interview, candidate in rows:
        reason = reasons.get(record.reason_code)
        outcome = outcome_at.get((record.interview_id, record.at)) or (reason.outcome if reason else "")
        operator = operators.get(record.operator, record.operator)
        if operator != record.operator:
            operator = f"{operator}({record.operator})"
        writer.writerow(
            [
                _cell(value)
                for value in (
                    record.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    candidate.name,
                    interview.position,
                    record.reason,
                    outcome,
                    operator,
                    label(record.source, "source"),
                    record.detail,
                )
            ]
        )
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")
