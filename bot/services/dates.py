"""Everyday Chinese time phrases (明天下午2点, 周五上午10:30, 两小时后) → what they name, as people
mean it when they book an interview.

``bot.services.timephrases`` reads the words (with cn2an for Chinese numerals); this module applies
the product's rules on top:
- a month and day without a year that has already passed this year means next year
  (1月5日 typed on 1 December is next January);
- a bare hour from 1 to 7 without 上午/下午/晚上 (3点, 3:30) is in the afternoon; an hour given as
  the answer to a question about a part of the day (明天下午 → 几点?) is read in that part;
- what is missing is said, not guessed: a day without an hour (明天) and a day with a part of the
  day (明天下午) ask for the hour, a week without a day (下周) asks for the day;
- a time in the past (昨天下午3点, 前天) is still understood, so the caller can say it is past.

Why not a library for the whole job: jionlp's own parser was dropped earlier because its word
segmentation model (jiojio) was 148 MB installed. Its parser alone, ``jionlp-time`` 1.0.0 (a
repackaging by another author, 820 KB), was measured against the phrases this module promises
(fixed clock, Tuesday 2026-03-10 10:00): it read 明早9点 / 明早 9:30 as today, 12.20 下午2点 as
today 14:00, 后天 下午 两点 as 02:00, 明天下午三點 as the whole afternoon, 25:00 as 10:25, and
failed on 今早 and 12.20 14:00; 3小时以后 / 过两个小时 came back as open-ended spans; it has no way
to find a phrase's span in a sentence; its first call takes ~190 ms (lazy set-up) and later ones
0.7–2.7 ms. With that many corrections the adapter would have been larger than the reader, so the
reader stays ours (about 0.05 ms a phrase) and only numerals come from a library (cn2an, whose
import compiles its patterns once at start-up, ~0.2 s). Traditional characters are mapped by a
table of the few this reader knows (opencc would be a 7 MB native package for that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.services import timephrases

WEEKDAYS = "一二三四五六日"
# Afternoon hours people write without 下午 (nobody books an interview for 3 a.m.).
BARE_AFTERNOON_HOURS = range(1, 8)
# Parts of the day whose hours below 12 are after noon (下午3点 is 15:00).
PM_PARTS = (timephrases.AFTERNOON, timephrases.EVENING)


@dataclass(frozen=True)
class Understood:
    """What a time phrase names: a time to the minute (``at``); or only a day (``day``), with the
    part of it when one was given (``part``: 上午/下午/…), so the hour is still to be asked; or only
    a week (``week_of``, its Monday), so the day is still to be asked. Past times are returned too."""

    at: datetime | None = None
    day: date | None = None
    part: str | None = None
    week_of: date | None = None


def _next_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def hour_in_part(hour: int, part: str | None) -> int:
    """The hour of the day ``hour`` o'clock is in ``part`` (None: none given)."""
    if part is None:
        return hour + 12 if hour in BARE_AFTERNOON_HOURS else hour
    if part in PM_PARTS and hour < 12:
        return hour + 12
    if part == timephrases.NOON and hour < 11:
        return hour + 12
    if part == timephrases.EARLY and hour == 12:
        return 0
    return hour


def understand_sync(
    text: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    on_day: date | None = None,
    part: str | None = None,
    week_of: date | None = None,
) -> Understood | None:
    """What ``text`` names, relative to ``now``; None if it names no time (or says something else too).

    ``on_day``: the day an answer completes (days are counted from it, an hour alone is on it);
    ``part``: the part of that day already given (an hour alone is read in it);
    ``week_of``: the week already given (a weekday without 这/下 is in it). Times are in ``tz``."""
    local_now = now.astimezone(tz)
    today = local_now.date()
    base = on_day if on_day is not None else today
    reading = timephrases.read(text, today=base, week=week_of)
    if reading is None:
        return None
    if reading.offset is not None:
        return Understood(at=local_now.replace(second=0, microsecond=0) + reading.offset)
    if reading.week is not None:
        return Understood(week_of=reading.week)
    day = reading.day
    if day is not None and reading.month_day and day < today:
        day = _next_year(day)
    if reading.hour is None:
        return Understood(day=day or base, part=reading.part)
    hour = hour_in_part(reading.hour, reading.part or part)
    return Understood(at=datetime.combine(day or base, time(hour, reading.minute), tz))


async def understand(
    text: str,
    *,
    now: datetime,
    tz: ZoneInfo,
    on_day: date | None = None,
    part: str | None = None,
    week_of: date | None = None,
) -> Understood | None:
    return understand_sync(text, now=now, tz=tz, on_day=on_day, part=part, week_of=week_of)


def locate(text: str) -> tuple[int, int] | None:
    """The span (start, end) of the time phrase inside a longer sentence (改到明天下午三点重新面), or
    None; names, reasons, 第3题 and phone numbers are not taken for a time. Read it with ``understand``."""
    return timephrases.locate(text)


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


def week_text(monday: date) -> str:
    """``2026-03-16 周一 – 2026-03-22 周日``."""
    return f"{day_text(monday)} – {day_text(monday + timedelta(days=6))}"


def full_text(when: datetime, tz: ZoneInfo) -> str:
    """``2027-01-05 周二 10:00`` in ``tz``: the time as understood, stated in full."""
    local = when.astimezone(tz)
    return f"{day_text(local.date())} {local:%H:%M}"
