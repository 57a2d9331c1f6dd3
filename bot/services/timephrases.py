"""A small reader of the Chinese time phrases people type when they move an interview.

It understands a day, a time of day, or both, in any order separated by spaces or nothing:

- days: 今天 / 明天 / 后天 / 大后天, 周五 / 星期五 / 礼拜五 (this week), 下周五 / 下星期五 (next week),
  11月28日 (or 号), 2027年1月5日, 2027-01-05, 2027/1/5, 1/5;
- times: 14:00, 10:30, 2点, 2点钟, 2点半, 2点30, 2点30分, 十点 (Chinese numerals up to 二十四);
- parts of the day before a time: 凌晨, 早上, 早晨, 上午, 中午, 下午, 傍晚, 晚上, 夜里 (下午2点 is 14:00).

It returns the naive local start and the length of what was named (an hour-or-less for a time, a
day for a day), like the library it replaced; ``bot.services.dates`` applies the business rules
(next year for a passed month and day, afternoon for a bare 1–7 o'clock, a day asks for its hour).
Anything else (a week, a month, 随便) is not a time point: None.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

NUMERALS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
# Parts of the day: whether an hour below 12 is moved to the afternoon / evening.
PM_PARTS = ("下午", "傍晚", "晚上", "夜里", "晚")
AM_PARTS = ("凌晨", "早上", "早晨", "清晨", "上午", "早")
NOON = "中午"

_NUM = r"[0-9]{1,2}|[零〇一二两三四五六七八九十]{1,3}"
_DAY = re.compile(
    r"(?P<rel>大后天|后天|明天|明日|今天|今日)"
    r"|(?:这|本)?(?P<next>下下?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天七])"
    r"|(?:(?P<y>\d{4})\s*年\s*)?(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]?"
    r"|(?P<y2>\d{4})\s*[-/.]\s*(?P<m2>\d{1,2})\s*[-/.]\s*(?P<d2>\d{1,2})"
    r"|(?<![\d:])(?P<m3>\d{1,2})\s*/\s*(?P<d3>\d{1,2})(?![\d/])"
)
_PART = "|".join(("凌晨", "早上", "早晨", "清晨", "上午", "中午", "下午", "傍晚", "晚上", "夜里", "早", "晚"))
_TIME = re.compile(
    rf"(?P<part>{_PART})?\s*"
    rf"(?:(?P<h>\d{{1,2}})\s*[:：]\s*(?P<mm>\d{{2}})"
    rf"|(?P<h2>{_NUM})\s*[点时]钟?(?:\s*(?P<half>半)|\s*(?P<mm2>\d{{1,2}}|[零〇一二三四五六七八九十]{{1,3}})\s*分?)?)"
)


# What may stand beside the day and the time: spaces and light punctuation.
_LEFTOVER = re.compile(r"[\s,,的。.]+")


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if "十" in text:
        tens, _, ones = text.partition("十")
        t = NUMERALS.get(tens, -1) if tens else 1
        o = NUMERALS.get(ones, -1) if ones else 0
        return None if t < 0 or o < 0 else t * 10 + o
    value = 0
    for ch in text:
        if ch not in NUMERALS:
            return None
        value = value * 10 + NUMERALS[ch]
    return value


def _day(m: re.Match[str], base: datetime) -> date | None:
    today = base.date()
    if m["rel"]:
        return today + timedelta(days=RELATIVE_DAYS[m["rel"]])
    if m["wd"]:
        weeks = len(m["next"] or "")
        monday = today - timedelta(days=today.weekday())
        return monday + timedelta(weeks=weeks, days=WEEKDAY[m["wd"]])
    year, month, day = (
        (m["y"], m["m"], m["d"]) if m["m"] else (m["y2"], m["m2"], m["d2"]) if m["m2"] else (None, m["m3"], m["d3"])
    )
    try:
        return date(int(year) if year else today.year, int(month), int(day))
    except ValueError:
        return None


def _time(m: re.Match[str]) -> time | None:
    hour = _number(m["h"] or m["h2"])
    minute = 30 if m["half"] else _number(m["mm"] or m["mm2"] or "0")
    if hour is None or minute is None or minute > 59:
        return None
    part = m["part"] or ""
    if part in PM_PARTS and hour < 12:
        hour += 12
    elif part == NOON and hour < 11:
        hour += 12
    elif part in AM_PARTS and hour == 12:
        hour = 0
    if hour == 24 and minute == 0:
        hour = 0  # not used for booking; kept a valid time
    if hour > 23:
        return None
    return time(hour, minute)


def parse(text: str, *, base: datetime) -> tuple[datetime, timedelta] | None:
    """(start, length) of the one day and/or time of day ``text`` names, relative to the naive local
    ``base``; None when it names neither, names several, or leaves words it does not understand."""
    rest = text.strip()
    days = list(_DAY.finditer(rest))
    if len(days) > 1:
        return None
    day: date | None = None
    if days:
        day = _day(days[0], base)
        if day is None:
            return None
        rest = rest[: days[0].start()] + " " + rest[days[0].end() :]
    times = list(_TIME.finditer(rest))
    if len(times) > 1:
        return None
    at: time | None = None
    if times:
        at = _time(times[0])
        if at is None:
            return None
        rest = rest[: times[0].start()] + " " + rest[times[0].end() :]
    if _LEFTOVER.sub("", rest) or (day is None and at is None):
        return None
    if at is None:
        assert day is not None
        return datetime.combine(day, time()), timedelta(days=1)
    return datetime.combine(day or base.date(), at), timedelta(minutes=1)
