"""Everyday Chinese time phrases (明天下午2点, 周五上午10:30, 11月28日 14:00) → aware datetimes.

``bot.services.timephrases`` reads the phrase (it replaced jionlp, whose word-segmentation model
jiojio alone was 148 MB installed, for the few phrases a booking needs; it gave the same answers
on every phrase the README and the tests promise). On top of it, times are read as people mean
them when they book an interview:
- a month and day without a year that has already passed this year means next year
  (1月5日 typed on 1 December is next January);
- a bare hour from 1 to 7 without 上午/下午/晚上 (3点, 3:30) is in the afternoon;
- a day without a time of day (明天) is returned as a day, so the caller can ask for the hour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.services import timephrases

# "明天下午2点" spans an hour (a time); "明天" spans a day (a day without a time).
MAX_SPAN_SECONDS = 3600
DAY_SECONDS = 86400
WEEKDAYS = "一二三四五六日"
# Afternoon hours people write without 下午 (nobody books an interview for 3 a.m.).
BARE_AFTERNOON_HOURS = range(1, 8)

_YEAR = re.compile(r"\d+\s*年|[今明去前后]年|\d{4}\s*[-/.]\s*\d")
_MONTH_DAY = re.compile(r"\d{1,2}\s*月\s*\d{1,2}|\d{1,2}\s*/\s*\d{1,2}")
_DAY_PART = re.compile(r"[早晚午夜]|凌晨|傍晚|清晨|am|pm", re.IGNORECASE)


@dataclass(frozen=True)
class Understood:
    """What a time phrase names: a time to the minute (``at``), or only a day (``day``)."""

    at: datetime | None = None
    day: date | None = None


def _next_year(when: datetime) -> datetime:
    try:
        return when.replace(year=when.year + 1)
    except ValueError:  # 29 February
        return when.replace(year=when.year + 1, day=28)


def understand_sync(text: str, *, now: datetime, tz: ZoneInfo, on_day: date | None = None) -> Understood | None:
    """What ``text`` names, relative to ``now`` (or to ``on_day``, for an hour that completes a day);
    None if it names no time. Times are read in ``tz`` (the zone applied to the parser's naive answer)."""
    local_now = now.astimezone(tz).replace(tzinfo=None)
    base = datetime.combine(on_day, time()) if on_day is not None else local_now
    named = timephrases.parse(text, base=base)
    if named is None:
        return None
    start, length = named
    end = start + length
    if _MONTH_DAY.search(text) and not _YEAR.search(text) and start.date() < local_now.date():
        start, end = _next_year(start), _next_year(end)
    span = (end - start).total_seconds()
    if span > MAX_SPAN_SECONDS:
        if span <= DAY_SECONDS and start.time() == time():
            return Understood(day=start.date())
        return None  # a week, a month: no day or time of day was given
    if start.hour in BARE_AFTERNOON_HOURS and not _DAY_PART.search(text):
        start += timedelta(hours=12)
    return Understood(at=start.replace(tzinfo=tz))


async def understand(text: str, *, now: datetime, tz: ZoneInfo, on_day: date | None = None) -> Understood | None:
    return understand_sync(text, now=now, tz=tz, on_day=on_day)


def parse_time_sync(text: str, *, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The start of the time point ``text`` names, relative to ``now``; None if it names none
    (or only a day)."""
    understood = understand_sync(text, now=now, tz=tz)
    return understood.at if understood is not None else None


async def parse_time(text: str, *, now: datetime, tz: ZoneInfo) -> datetime | None:
    return parse_time_sync(text, now=now, tz=tz)


def day_text(day: date) -> str:
    """``2027-01-05 周二``."""
    return f"{day:%Y-%m-%d} 周{WEEKDAYS[day.weekday()]}"


def full_text(when: datetime, tz: ZoneInfo) -> str:
    """``2027-01-05 周二 10:00`` in ``tz``: the time as understood, stated in full."""
    local = when.astimezone(tz)
    return f"{day_text(local.date())} {local:%H:%M}"


def locate(text: str) -> tuple[int, int] | None:
    """The span of the first time phrase in ``text`` (a day, a time of day, or both side by side)."""
    spans = sorted(
        (m.start(), m.end())
        for pattern in (timephrases._DAY, timephrases._TIME)
        for m in pattern.finditer(text)
        if m.group(0).strip()
    )
    if not spans:
        return None
    start, end = spans[0]
    for s, e in spans[1:]:
        if s <= end or not re.sub(r"[\s,,的]", "", text[end:s]):
            end = max(end, e)
        else:
            break
    return start, end
