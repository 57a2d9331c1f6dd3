"""Everyday Chinese time phrases (明天下午2点, 周五上午10:30, 11月28日 14:00) → aware datetimes.

jionlp does the parsing; it is imported lazily in a worker thread (it is slow to import and
prints a banner), so neither start-up nor the event loop pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from datetime import datetime
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

# "明天下午2点" spans an hour; "明天" spans a day and is too vague to book.
MAX_SPAN_SECONDS = 3600

_lock = threading.Lock()
_jio: ModuleType | None = None


def _jionlp() -> ModuleType:
    global _jio
    with _lock:
        if _jio is None:
            with contextlib.redirect_stdout(io.StringIO()):
                import jionlp

            _jio = jionlp
    return _jio


def parse_time_sync(text: str, *, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The start of the time point ``text`` names, relative to ``now``; None if it names none.

    Times are read in ``tz`` (the zone applied to jionlp's naive answer).
    """
    base = now.astimezone(tz).replace(tzinfo=None)
    try:
        result: dict[str, Any] = _jionlp().parse_time(text, time_base=base)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    if not result or result.get("type") != "time_point":
        return None
    try:
        start, end = (datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in result["time"][:2])  # noqa: DTZ007
    except (ValueError, TypeError):
        return None
    if (end - start).total_seconds() > MAX_SPAN_SECONDS:
        return None  # a whole day or week: no time of day was given
    return start.replace(tzinfo=tz)


async def parse_time(text: str, *, now: datetime, tz: ZoneInfo) -> datetime | None:
    return await asyncio.to_thread(parse_time_sync, text, now=now, tz=tz)
