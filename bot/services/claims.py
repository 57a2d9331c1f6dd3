"""Who is claiming due rows, and how long a claim lasts before another replica may take it over."""

from __future__ import annotations

import functools
import os
import socket
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CLAIM_FOR = timedelta(minutes=2)


@functools.cache
def worker_id() -> str:
    """This process, as written into ``claimed_by`` columns."""
    return f"{socket.gethostname()}:{os.getpid()}"[:160]


def local_text(when: datetime | None, tz: ZoneInfo) -> str:
    """A time for people: ``2026-11-26 14:00`` in BOT_TIMEZONE."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else ""
