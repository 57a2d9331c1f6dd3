"""A reader of the Chinese time phrases people type when they move an interview.

It finds the words of a phrase and what each names; ``bot.services.dates`` applies the booking
rules on top (next year for a passed month and day, afternoon for a bare 1–7 o'clock, what a
part of the day does to an hour, what is still missing). It reads, in any order separated by
spaces (or 的) or nothing:

- days: 今天 / 明天 / 后天 / 大后天 / 昨天 / 前天 / 大前天, 3天后, 周五 / 星期五 / 礼拜五 (this week),
  下周五 / 下下周五 / 上周五, 11月28日 (or 号), 十二月二十日, 2027年1月5日, 2027-01-05, 2027/1/5,
  and month.day / month-day / month/day (12.20, 12-20, 1/5);
- a day and a part of it in one word: 今早, 明早, 今晚, 明晚, 昨晚, 今晨, 明晨;
- a week without a day: 这周, 本周, 下周, 下个星期, 下下周, 上周;
- parts of the day: 凌晨, 早上, 早晨, 清晨, 上午, 中午, 下午, 傍晚, 晚上, 夜里 (and 早 / 晚 before an hour);
- times: 14:00, 10:30, 2点, 2点钟, 2点半, 2点一刻, 2点30, 2点30分, 十点, 15时;
- a time from now: 两小时后, 半小时后, 一个半小时后, 30分钟后, 3小时以后, 过两个小时, 一刻钟后;
- the traditional forms of these words (點, 鐘, 後, 週, 禮拜, 兩, 個, 時, 號, 過, 這, …).

``read`` takes a whole answer (None when words other than a time are left); ``locate`` finds the
time words inside a longer sentence and leaves names, reasons, 第3题 and phone numbers alone.
Chinese numerals are read by cn2an.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import cn2an

# Traditional (and full-width) forms of the characters this reader knows, one character for one,
# so that a span found in the converted text is the same span in the text as typed.
_SIMPLIFIED = str.maketrans(
    {
        "點": "点",
        "鐘": "钟",
        "鍾": "钟",
        "後": "后",
        "週": "周",
        "禮": "礼",
        "兩": "两",
        "個": "个",
        "時": "时",
        "號": "号",
        "過": "过",
        "這": "这",
        "裡": "里",
        "裏": "里",
        "間": "间",
        "頭": "头",
        "題": "题",
        "兒": "儿",
        "淩": "凌",
        "：": ":",
        **{chr(0xFF10 + i): str(i) for i in range(10)},
    }
)

# Canonical parts of the day, as ``Reading.part`` and ``bot.services.dates`` use them.
EARLY, MORNING, NOON, AFTERNOON, EVENING = "凌晨", "上午", "中午", "下午", "晚上"
PARTS = {
    "凌晨": EARLY,
    "半夜": EARLY,
    "早上": MORNING,
    "早晨": MORNING,
    "清晨": MORNING,
    "上午": MORNING,
    "早": MORNING,
    "晨": MORNING,
    "中午": NOON,
    "午后": AFTERNOON,
    "下午": AFTERNOON,
    "傍晚": EVENING,
    "晚上": EVENING,
    "晚间": EVENING,
    "夜里": EVENING,
    "夜间": EVENING,
    "晚": EVENING,
}
RELATIVE_DAYS = {
    "大前天": -3,
    "前天": -2,
    "昨天": -1,
    "昨日": -1,
    "昨儿": -1,
    "今天": 0,
    "今日": 0,
    "今儿": 0,
    "明天": 1,
    "明日": 1,
    "明儿": 1,
    "后天": 2,
    "大后天": 3,
}
DAY_OF_WORD = {"昨": -1, "今": 0, "明": 1}  # 今早, 明晚
WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
WEEKS = {None: 0, "": 0, "这": 0, "本": 0, "下": 1, "下下": 2, "上": -1}
MINUTES = {"小时": 60, "钟头": 60, "分钟": 1, "刻钟": 15}

_CN = "零〇一二两三四五六七八九十"
_NUM = rf"\d{{1,2}}|[{_CN}]{{1,3}}"
_WEEK_WORD = r"(?:周|星期|礼拜)"
_TOKENS = re.compile(
    # A time from now: 两小时后, 一个半小时后, 过30分钟.
    rf"(?:(?P<off_pre>过)\s*)?(?P<off_n>\d{{1,3}}|[{_CN}]{{1,3}}|半)\s*个?\s*(?P<off_half>半)?\s*个?\s*"
    rf"(?P<off_unit>小时|钟头|分钟|刻钟)(?:\s*(?P<off_post>以后|之后|后))?"
    rf"|(?P<ndays>{_NUM})\s*天\s*(?:以后|之后|后)"
    rf"|(?P<rel>大后天|大前天|后天|前天|明天|明日|明儿|今天|今日|今儿|昨天|昨日|昨儿)"
    rf"|(?P<rel_day>[今明昨])(?P<rel_part>早|晚|晨)"
    rf"|(?P<nm>下个?月|这个?月|本月)\s*(?:(?P<nm_end>底|末)|(?P<nm_d>{_NUM})\s*[日号])"
    rf"|(?<![下这本个])(?P<me>月底|月末)"
    rf"|(?P<wd_this>这|本)?(?P<wd_next>下下|下|上)?个?{_WEEK_WORD}(?P<wd>[一二三四五六日天七])"
    rf"|(?P<wk>这|本|下下|下|上)个?{_WEEK_WORD}"
    rf"|(?:(?P<y>\d{{4}})\s*年\s*)?(?P<m>{_NUM})\s*月\s*(?P<d>{_NUM})(?:\s*[日号])?"
    rf"|(?<![\d.])(?P<y2>\d{{4}})(?P<sep2>[-/.])(?P<m2>\d{{1,2}})(?P=sep2)(?P<d2>\d{{1,2}})(?![\d.])"
    rf"|(?<![\d./:-])(?P<m3>\d{{1,2}})[-/.](?P<d3>\d{{1,2}})(?![\d./:-]|\s*[%％分元倍个题])"
    rf"|(?<![\d.:])(?P<h>\d{{1,2}}):(?P<mi>\d{{2}})(?![\d:])"
    # An hour right after a weekday is one (周五10点, 周五十点), after another numeral it is not (十五点).
    rf"|(?<![\d第])(?<!(?<![周期拜])[{_CN}])(?P<h2>{_NUM})\s*(?P<unit>点|时)(?P<oclock>钟)?"
    rf"(?:\s*(?P<half>半)|\s*(?P<quarter>一刻|三刻)|\s*(?P<mi2>\d{{1,2}}|[{_CN}]{{1,3}})(?:\s*分)?)?"
    rf"|(?P<part>凌晨|半夜|早上|早晨|清晨|上午|中午|午后|下午|傍晚|晚上|晚间|夜里|夜间|(?:早|晚)(?=\s*(?:\d|[{_CN}])))"
)
# What may stand between the words of one phrase, and what may be left around a whole answer.
_JOINER = re.compile(r"[\s的]*")
_FILLER = re.compile(r"(?:\s|[,,、。.!!~～]|的|吧|啊|呀|呢|哈|哦|左右)*")


@dataclass(frozen=True)
class Reading:
    """What one phrase names, before the booking rules: a day (``day``) or a week (``week``, its
    Monday), a part of the day (canonical: 凌晨/上午/中午/下午/晚上), an hour and minute as
    written (``hour`` None: no time of day), or a time from now (``offset``)."""

    start: int
    end: int
    day: date | None = None
    week: date | None = None
    part: str | None = None
    hour: int | None = None
    minute: int = 0
    offset: timedelta | None = None
    month_day: bool = False  # a month and day written without a year


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    match: re.Match[str]

    @property
    def kind(self) -> str:
        g = self.match.groupdict()
        if g["off_unit"]:
            return "offset"
        if g["ndays"] or g["rel"] or g["wd"] or g["m"] or g["m2"] or g["m3"] or g["nm"] or g["me"]:
            return "day"
        if g["rel_day"]:
            return "day+part"
        if g["wk"]:
            return "week"
        if g["h"] or g["h2"]:
            return "clock"
        return "part"

    @property
    def weak(self) -> bool:
        """一点 / 两点 alone in a sentence is as often "a bit" / "two points" as an hour."""
        g = self.match.groupdict()
        return bool(g["h2"]) and not g["h2"].isdigit() and not (g["oclock"] or g["half"] or g["quarter"] or g["mi2"])


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    try:
        return int(cn2an.cn2an(text, "normal"))
    except ValueError:
        return None


def _simplified(text: str) -> str:
    return text.translate(_SIMPLIFIED)


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.start(), m.end(), m) for m in _TOKENS.finditer(text)]


@dataclass
class _Parts:
    day: tuple[str, int, int, int] | None = None  # (kind, a, b, c): see _resolve_day
    week: int | None = None
    part: str | None = None
    hour: int | None = None
    minute: int = 0
    offset: timedelta | None = None


def _combine(tokens: Sequence[_Token]) -> _Parts | None:
    """The parts the tokens name together; None when they contradict each other or one is not valid."""
    parts = _Parts()
    for token in tokens:
        g = token.match.groupdict()
        kind = token.kind
        if kind == "offset":
            if parts.offset is not None or not (g["off_pre"] or g["off_post"]):
                return None
            minutes_each = MINUTES[g["off_unit"]]
            if g["off_n"] == "半":
                if g["off_half"] or minutes_each != 60:
                    return None
                amount = 0.5
            else:
                n = _number(g["off_n"])
                if n is None:
                    return None
                amount = n + (0.5 if g["off_half"] else 0)
            parts.offset = timedelta(minutes=amount * minutes_each)
            continue
        if kind in ("day", "day+part"):
            if parts.day is not None or parts.week is not None:
                return None
            day = _day_spec(g)
            if day is None:
                return None
            parts.day = day
        if kind in ("part", "day+part"):
            if parts.part is not None:
                return None
            parts.part = PARTS[g["part"] or g["rel_part"] or ""]
        elif kind == "week":
            if parts.day is not None or parts.week is not None:
                return None
            parts.week = WEEKS[g["wk"]]
        elif kind == "clock":
            if parts.hour is not None:
                return None
            clock = _clock(g)
            if clock is None:
                return None
            parts.hour, parts.minute = clock
    if parts.offset is not None and (parts.day or parts.week is not None or parts.part or parts.hour is not None):
        return None
    if parts.week is not None and (parts.part or parts.hour is not None):
        return None  # 下周下午3点: which day?
    return parts


def _day_spec(g: dict[str, str | None]) -> tuple[str, int, int, int] | None:
    if g["ndays"]:
        n = _number(g["ndays"])
        return None if n is None else ("relative", n, 0, 0)
    if g["rel"]:
        return ("relative", RELATIVE_DAYS[g["rel"]], 0, 0)
    if g["rel_day"]:
        return ("relative", DAY_OF_WORD[g["rel_day"]], 0, 0)
    if g["wd"]:
        prefixed = 1 if (g["wd_this"] or g["wd_next"]) else 0
        return ("weekday", WEEKS[g["wd_next"]], WEEKDAY[g["wd"]], prefixed)
    if g["nm"] or g["me"]:
        # 下个月2号, 下月底, 月底 (this month's last day): months ahead, and a day (0: the last).
        ahead = 1 if g["nm"] and g["nm"].startswith("下") else 0
        if g["nm_d"]:
            n = _number(g["nm_d"])
            return None if n is None or not 1 <= n <= 31 else ("month", ahead, n, 0)
        return ("month", ahead, 0, 0)
    if g["m"] and g["d"]:
        month, day = _number(g["m"]), _number(g["d"])
        year = int(g["y"]) if g["y"] else 0
    elif g["m2"] and g["d2"] and g["y2"]:
        year, month, day = int(g["y2"]), int(g["m2"]), int(g["d2"])
    else:
        assert g["m3"] and g["d3"]
        year, month, day = 0, int(g["m3"]), int(g["d3"])
    if month is None or day is None or not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return ("date", year, month, day)


def _clock(g: dict[str, str | None]) -> tuple[int, int] | None:
    hour: int | None
    minute: int | None
    if g["h"]:
        assert g["mi"] is not None
        hour, minute = int(g["h"]), int(g["mi"])
    else:
        assert g["h2"] is not None
        if g["unit"] == "时" and not g["h2"].isdigit():
            return None  # 一时 is "for a moment" more often than one o'clock
        hour = _number(g["h2"])
        if g["half"]:
            minute = 30
        elif g["quarter"]:
            minute = 15 if g["quarter"] == "一刻" else 45
        else:
            minute = _number(g["mi2"]) if g["mi2"] else 0
    if hour is None or minute is None or hour > 23 or minute > 59:
        return None
    return hour, minute


def _resolve_day(spec: tuple[str, int, int, int], today: date, week: date | None) -> date | None:
    kind, a, b, c = spec
    if kind == "relative":
        return today + timedelta(days=a)
    if kind == "month":
        year, month = today.year + (today.month - 1 + a) // 12, (today.month - 1 + a) % 12 + 1
        last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
        try:
            return date(year, month, b or last)
        except ValueError:
            return None
    if kind == "weekday":
        # A weekday without 这/下/上 is in the week already named (the answer to 哪一天), else this week.
        monday = week if (week is not None and not c) else today - timedelta(days=today.weekday())
        return monday + timedelta(weeks=a, days=b)
    try:
        return date(a or today.year, b, c)
    except ValueError:
        return None


def _reading(tokens: Sequence[_Token], today: date, week: date | None) -> Reading | None:
    parts = _combine(tokens)
    if parts is None:
        return None
    start, end = tokens[0].start, tokens[-1].end
    day: date | None = None
    if parts.day is not None:
        day = _resolve_day(parts.day, today, week)
        if day is None:
            return None
    monday: date | None = None
    if parts.week is not None:
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=parts.week)
    month_day = parts.day is not None and parts.day[0] == "date" and parts.day[1] == 0
    return Reading(start, end, day, monday, parts.part, parts.hour, parts.minute, parts.offset, month_day)


def read(text: str, *, today: date, week: date | None = None) -> Reading | None:
    """What the whole of ``text`` names, days counted from ``today`` (a weekday without 这/下 in
    ``week`` when given); None when it names nothing, contradicts itself, or leaves other words."""
    simple = _simplified(text)
    tokens = _tokens(simple)
    if not tokens:
        return None
    pos = 0
    for token in tokens:
        if not _FILLER.fullmatch(simple, pos, token.start):
            return None
        pos = token.end
    if not _FILLER.fullmatch(simple, pos):
        return None
    return _reading(tokens, today, week)


def _runs(text: str, tokens: list[_Token]) -> list[list[_Token]]:
    """Tokens next to each other (nothing but spaces or 的 between them)."""
    runs: list[list[_Token]] = []
    for token in tokens:
        if runs and _JOINER.fullmatch(text, runs[-1][-1].end, token.start):
            runs[-1].append(token)
        else:
            runs.append([token])
    return runs


def locate(text: str) -> tuple[int, int] | None:
    """The span of the time phrase inside ``text`` (the most complete one, if several), or None.

    A phrase whose words contradict each other is cut to its longest part that does not (周一鸣明天
    下午3点 → 明天下午3点); a Chinese-numeral hour alone (有两点意见, 好一点) is not taken."""
    simple = _simplified(text)
    best: tuple[int, int, int] | None = None  # (words, length, -start)
    span: tuple[int, int] | None = None
    for run in _runs(simple, _tokens(simple)):
        for i in range(len(run)):
            for j in range(len(run), i, -1):
                piece = run[i:j]
                if len(piece) == 1 and piece[0].weak:
                    continue
                if _combine(piece) is None:
                    continue
                start, end = piece[0].start, piece[-1].end
                rank = (len(piece), end - start, -start)
                if best is None or rank > best:
                    best, span = rank, (start, end)
                break
    return span
