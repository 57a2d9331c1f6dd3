"""The time phrases the README promises for 重新安排 (and the tests use), read relative to fixed
instants: each gives the time (or the day) people mean. These answers are the ones jionlp gave
before bot.services.timephrases replaced it (checked side by side on these and 360 more phrase ×
instant pairs), except "25:00", which jionlp read as 10:25 today."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bot.services.dates import Understood, understand_sync
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
    (TUE, "下周", None),
    (TUE, "下个月", None),
    (TUE, "明天中午", None),
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
