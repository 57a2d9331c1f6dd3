"""Local (Asia/Shanghai) times the tests name, relative to the fixed test clock, and how a reply states one."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from bot.clock import FrozenClock
from tests.conftest import SHANGHAI

WEEKDAYS = "一二三四五六日"


def in_full(when: datetime) -> str:
    """How a reply states a time: 2027-01-05 周二 10:00."""
    local = when.astimezone(SHANGHAI)
    return f"{local:%Y-%m-%d} 周{WEEKDAYS[local.weekday()]} {local:%H:%M}"


def local_at(clock: FrozenClock, month: int, day: int, hour: int, minute: int = 0, *, year_offset: int = 0) -> datetime:
    """That local time in the clock's year (plus ``year_offset``)."""
    return datetime(clock.now().astimezone(SHANGHAI).year + year_offset, month, day, hour, minute, tzinfo=SHANGHAI)


def tomorrow_at(clock: FrozenClock, hour: int, minute: int = 0) -> datetime:
    today = clock.now().astimezone(SHANGHAI).date()
    return datetime.combine(today + timedelta(days=1), time(hour, minute), SHANGHAI)
