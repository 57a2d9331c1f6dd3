"""The time phrases the README promises for 重新安排 (and the tests use), read relative to fixed
instants: each gives the time (or the day, the day and part of it, the week) people mean. The
first table's answers are the ones jionlp gave before bot.services.timephrases replaced it
(checked side by side on these and 360 more phrase × instant pairs), except "25:00", which jionlp
read as 10:25 today; the phrases after it are the ones jionlp-time got wrong (see bot.services.dates)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from bot.services.dates import Understood, locate, understand_sync
from tests.conftest import SHANGHAI

TUE = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)  # CLOCK_START: a Tuesday morning
DEC = datetime(2026, 12, 1, 14, 35, tzinfo=SHANGHAI)  # a Tuesday afternoon in December


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> Understood:
    return Understood(at=datetime(y, m, d, hh, mm, tzinfo=SHANGHAI))


CASES = [
    # The README's examples.
    (TUE, "明天下午2点", at(2026, 3, 11, 14)),
    (TUE, "周五上午10:30", at(2026, 3, 13, 10, 30)),
    (TUE, "11月28日 14:00", at(2026, 11, 28, 14)),
    (DEC, "1月5日 10:00", at(2027, 1, 5, 10)),  # a passed month and day is next year
    (DEC, "3点", at(2026, 12, 1, 15)),  # a bare 1–7 o'clock is in the afternoon
    (TUE, "明天", Understood(day=date(2026, 3, 11))),  # a day only: the hour is asked for
    (TUE, "下午3点", at(2026, 3, 10, 15)),
    (TUE, "15:00", at(2026, 3, 10, 15)),
    # What the chat tests type.
    (DEC, "12月3日 10:00", at(2026, 12, 3, 10)),
    # A weekday followed at once by its hour (a numeral after 周五 is an hour, after 十 it is not).
    (TUE, "周五10点", at(2026, 3, 13, 10)),
    (TUE, "周五十点", at(2026, 3, 13, 10)),
    (TUE, "礼拜三两点", at(2026, 3, 11, 14)),
    (TUE, "十五点", at(2026, 3, 10, 15)),
    # Months ahead and the end of a month.
    (TUE, "下个月2号上午10点", at(2026, 4, 2, 10)),
    (TUE, "下月底下午3点", at(2026, 4, 30, 15)),
    (TUE, "这个月20号 14:00", at(2026, 3, 20, 14)),
    (TUE, "月底", Understood(day=date(2026, 3, 31))),
    (DEC, "下个月2号", Understood(day=date(2027, 1, 2))),
    (TUE, "2026年3月12日 15:00", at(2026, 3, 12, 15)),
    (DEC, "凌晨3点", at(2026, 12, 1, 3)),  # said plainly: the morning (and refused as past)
    (DEC, "明天上午9点", at(2026, 12, 2, 9)),
    (TUE, "后天", Understood(day=date(2026, 3, 12))),
    (TUE, "明天上午10:30", at(2026, 3, 11, 10, 30)),
    (TUE, "16:30", at(2026, 3, 10, 16, 30)),
    (TUE, "3月12日 14:00", at(2026, 3, 12, 14)),
    # Other everyday forms.
    (TUE, "下周三下午4点", at(2026, 3, 18, 16)),
    (TUE, "星期五 14:00", at(2026, 3, 13, 14)),
    (TUE, "这周五", Understood(day=date(2026, 3, 13))),
    (TUE, "明天下午两点半", at(2026, 3, 11, 14, 30)),
    (TUE, "明天十点", at(2026, 3, 11, 10)),
    (TUE, "今天晚上8点", at(2026, 3, 10, 20)),
    (TUE, "中午12点", at(2026, 3, 10, 12)),
    (TUE, "下午2点30分", at(2026, 3, 10, 14, 30)),
    (TUE, "2026-03-12 15:00", at(2026, 3, 12, 15)),
    (TUE, "3/12 15:00", at(2026, 3, 12, 15)),
    (TUE, "11月28号 14:00", at(2026, 11, 28, 14)),
    (TUE, "礼拜六上午10点", at(2026, 3, 14, 10)),
    (TUE, "明天下午2点钟", at(2026, 3, 11, 14)),
    # Not a time point.
    (TUE, "随便什么时候", None),
    (TUE, "随便", None),
    (TUE, "下个月", None),
    (TUE, "13月40日 10:00", None),
    (TUE, "25:00", None),
]


@pytest.mark.parametrize(("now", "text", "expected"), CASES, ids=[c[1] for c in CASES])
def test_phrase(now: datetime, text: str, expected: Understood | None) -> None:
    assert understand_sync(text, now=now, tz=SHANGHAI) == expected


def test_an_hour_completes_the_day_asked_about() -> None:
    day = date(2026, 3, 12)
    assert understand_sync("下午3点", now=TUE, tz=SHANGHAI, on_day=day) == at(2026, 3, 12, 15)
    assert understand_sync("16:30", now=TUE, tz=SHANGHAI, on_day=day) == at(2026, 3, 12, 16, 30)


# Everything below is relative to TUE (Tuesday 2026-03-10 10:00): ``on(n, hh, mm)`` is that time n
# days after it, ``day(n)`` that day.
TODAY = TUE.date()


def on(days: int, hh: int, mm: int = 0) -> Understood:
    return Understood(
        at=datetime.combine(TODAY + timedelta(days=days), datetime.min.time(), SHANGHAI).replace(hour=hh, minute=mm)
    )


def day(days: int, part: str | None = None) -> Understood:
    return Understood(day=TODAY + timedelta(days=days), part=part)


def later(minutes: int) -> Understood:
    return Understood(at=TUE + timedelta(minutes=minutes))


NEXT_MONDAY = TODAY + timedelta(days=7 - TODAY.weekday())

MORE = [
    # A time from now.
    ("两小时后", later(120)),
    ("半小时后", later(30)),
    ("半个小时之后", later(30)),
    ("一个半小时后", later(90)),
    ("30分钟后", later(30)),
    ("3小时以后", later(180)),
    ("过两个小时", later(120)),
    ("一刻钟后", later(15)),
    # A day and a part of it in one word, and the other everyday forms.
    ("今晚8点", on(0, 20)),
    ("明早9点", on(1, 9)),
    ("明早 9:30", on(1, 9, 30)),
    ("明晚7点", on(1, 19)),
    ("后天上午十点", on(2, 10)),
    ("周五下午三点半", on(3, 15, 30)),
    ("周五下午三点一刻", on(3, 15, 15)),
    ("下周一上午10点", on(6, 10)),
    ("下个星期一 9:00", on(6, 9)),
    ("12月20日下午2点", Understood(at=datetime(2026, 12, 20, 14, tzinfo=SHANGHAI))),
    ("十二月二十日 下午两点", Understood(at=datetime(2026, 12, 20, 14, tzinfo=SHANGHAI))),
    ("12.20 14:00", Understood(at=datetime(2026, 12, 20, 14, tzinfo=SHANGHAI))),
    ("12.20 下午2点", Understood(at=datetime(2026, 12, 20, 14, tzinfo=SHANGHAI))),
    ("12-20 14:00", Understood(at=datetime(2026, 12, 20, 14, tzinfo=SHANGHAI))),
    ("1/5 10:00", Understood(at=datetime(2027, 1, 5, 10, tzinfo=SHANGHAI))),  # passed: next year
    ("明天下午3:30", on(1, 15, 30)),
    ("明天 15点", on(1, 15)),
    ("明天15:00", on(1, 15)),
    ("明天15时", on(1, 15)),
    ("后天 下午 两点", on(2, 14)),
    ("明天的下午3点", on(1, 15)),
    ("3天后", day(3)),
    # Traditional characters and full-width digits.
    ("明天下午三點", on(1, 15)),
    ("後天下午兩點鐘", on(2, 14)),
    ("下週一上午10點", on(6, 10)),
    ("禮拜五 下午3點", on(3, 15)),
    ("明天下午３：３０", on(1, 15, 30)),
    # What is missing is said: the hour of a day (and its part), the day of a week.
    ("明天下午", day(1, "下午")),
    ("明天上午", day(1, "上午")),
    ("明天早上", day(1, "上午")),
    ("明天晚上", day(1, "晚上")),
    ("明天中午", day(1, "中午")),
    ("今早", day(0, "上午")),
    ("明天", day(1)),
    ("下周", Understood(week_of=NEXT_MONDAY)),
    ("下周吧", Understood(week_of=NEXT_MONDAY)),
    ("下个礼拜", Understood(week_of=NEXT_MONDAY)),
    ("下下周", Understood(week_of=NEXT_MONDAY + timedelta(weeks=1))),
    ("这周", Understood(week_of=NEXT_MONDAY - timedelta(weeks=1))),
    # The past is understood (and refused by the caller as past).
    ("昨天下午3点", on(-1, 15)),
    ("前天", day(-2)),
    ("今天上午9点", on(0, 9)),
    ("周一上午10点", on(-1, 10)),  # this week's Monday
    ("上周五", day(-4)),
    # Not a time, or not one time.
    ("下周下午3点", None),  # which day?
    ("明天后天", None),
    ("明天下午3点 4点", None),
    ("明天随便", None),
    ("3小时", None),  # a length, not a time
    ("第3题", None),
    ("李明", None),
    ("网络卡顿", None),
    ("2月30日 10:00", None),
    ("明天24:00", None),
    ("一时", None),
]


@pytest.mark.parametrize(("text", "expected"), MORE, ids=[c[0] for c in MORE])
def test_more_phrases(text: str, expected: Understood | None) -> None:
    assert understand_sync(text, now=TUE, tz=SHANGHAI) == expected


def test_a_time_from_now_counts_from_the_minute() -> None:
    now = TUE + timedelta(minutes=7, seconds=41)
    assert understand_sync("两小时后", now=now, tz=SHANGHAI) == later(127)


def test_an_hour_is_read_in_the_part_of_the_day_asked_about() -> None:
    tomorrow = TODAY + timedelta(days=1)
    assert understand_sync("3点", now=TUE, tz=SHANGHAI, on_day=tomorrow, part="下午") == on(1, 15)
    assert understand_sync("10点", now=TUE, tz=SHANGHAI, on_day=tomorrow, part="上午") == on(1, 10)
    assert understand_sync("8点", now=TUE, tz=SHANGHAI, on_day=tomorrow, part="晚上") == on(1, 20)
    assert understand_sync("12点半", now=TUE, tz=SHANGHAI, on_day=tomorrow, part="中午") == on(1, 12, 30)
    assert understand_sync("1点", now=TUE, tz=SHANGHAI, on_day=tomorrow, part="中午") == on(1, 13)
    # Without a part, 10点 stays in the morning and 3点 is in the afternoon.
    assert understand_sync("10点", now=TUE, tz=SHANGHAI, on_day=tomorrow) == on(1, 10)
    # An hour with its own part of the day keeps it.
    assert understand_sync("晚上8点", now=TUE, tz=SHANGHAI, on_day=tomorrow, part="上午") == on(1, 20)
    assert understand_sync("15:00", now=TUE, tz=SHANGHAI, on_day=tomorrow, part="上午") == on(1, 15)


def test_a_weekday_is_read_in_the_week_asked_about() -> None:
    assert understand_sync("周二下午3点", now=TUE, tz=SHANGHAI, week_of=NEXT_MONDAY) == on(7, 15)
    assert understand_sync("周三", now=TUE, tz=SHANGHAI, week_of=NEXT_MONDAY) == day(8)
    # 下周二 says its week itself; 明天 is still tomorrow.
    assert understand_sync("下周二 10:00", now=TUE, tz=SHANGHAI, week_of=NEXT_MONDAY) == on(7, 10)
    assert understand_sync("明天上午10点", now=TUE, tz=SHANGHAI, week_of=NEXT_MONDAY) == on(1, 10)


LOCATED = [
    ("李明网络不好,改到明天下午三点重新面", "明天下午三点"),
    ("改期 王芳 下周一上午10点 谢谢", "下周一上午10点"),
    ("张三摄像头坏了 两小时后再面", "两小时后"),
    ("王芳 12.20 下午2点", "12.20 下午2点"),
    ("改到明天的下午3点吧", "明天的下午3点"),
    ("李明家里有事,下周吧", "下周"),
    ("改期 周一鸣 明天下午3点", "明天下午3点"),  # a surname and a given name that start like 周一
    ("周一鸣明天下午3点重新面", "明天下午3点"),
    ("王芳 明天下午三點", "明天下午三點"),  # the span is in the text as typed
    ("李明", None),
    ("王芳", None),
    ("网络卡顿", None),
    ("李明网络卡顿,答到第3题", None),
    ("答到第几题", None),
    ("候选人电话13812345678", None),
    ("电话 138-1234-5678", None),
    ("网络好一点了", None),
    ("我有两点想说", None),
    ("评分3.5分", None),
]


@pytest.mark.parametrize(("text", "words"), LOCATED, ids=[c[0] for c in LOCATED])
def test_locate_takes_out_exactly_the_time_words(text: str, words: str | None) -> None:
    span = locate(text)
    if words is None:
        assert span is None
        return
    assert span is not None
    start, end = span
    assert text[start:end] == words
    # What the caller keeps is the rest, and the words found read as a time.
    assert understand_sync(text[start:end], now=TUE, tz=SHANGHAI) is not None


def test_reading_is_fast() -> None:
    """Called once or twice per chat message: well under 2 ms a phrase (about 0.05 ms measured)."""
    import time

    phrases = [text for text, _ in MORE] + [text for text, _ in LOCATED]
    understand_sync("明天下午3点", now=TUE, tz=SHANGHAI)
    start = time.perf_counter()
    for text in phrases:
        understand_sync(text, now=TUE, tz=SHANGHAI)
        locate(text)
    per_phrase = (time.perf_counter() - start) / len(phrases)
    assert per_phrase < 0.002


def test_the_traditional_table_covers_the_words_read() -> None:
    """Every character of the reader's words whose traditional form differs is in the table, mapped
    as OpenCC maps it (checked where OpenCC is installed; the reader itself does not need it)."""
    opencc = pytest.importorskip("opencc")
    from bot.services import timephrases

    words = timephrases._TOKENS.pattern + "".join(timephrases.PARTS) + "".join(timephrases.RELATIVE_DAYS)
    vocabulary = {ch for ch in words if "\u4e00" <= ch <= "\u9fff"}
    table = {chr(k): v for k, v in timephrases._SIMPLIFIED.items()}
    for config in ("s2t", "s2tw", "s2hk"):
        to_traditional = opencc.OpenCC(config)
        for ch in vocabulary:
            traditional = to_traditional.convert(ch)
            if traditional != ch:
                assert table.get(traditional) == ch, (config, ch, traditional)
    to_simplified = opencc.OpenCC("t2s")
    for traditional, simplified in table.items():
        if "\u4e00" <= traditional <= "\u9fff":
            assert to_simplified.convert(traditional) == simplified, traditional
