"""Slowing a source that keeps failing to sign in: per address, bounded, in memory, per app.

A login token is 256 bits, so guessing is hopeless; the throttle is there so that a flood of bad
links from one address costs it a wait (429 with ``Retry-After``) instead of a database lookup
each, and shows up once in the log and the audit rather than as a silent load. Each address has
its own count: one address's failures never hold back another. The state is a bounded LRU of
addresses, each with at most ``limit`` failure times, kept on the application (one per app and
replica; a replica restart forgets it, which only lets a source try ``limit`` more times).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta

# Addresses remembered at once; the least recently failing one is forgotten first.
MAX_SOURCES = 10_000


class FailureThrottle:
    def __init__(self, *, limit: int, window: timedelta, max_sources: int = MAX_SOURCES) -> None:
        self.limit = limit
        self.window = window
        self.max_sources = max_sources
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, source: str, now: datetime) -> int | None:
        """Whole seconds ``source`` must wait before trying again, or None if it may try now."""
        times = self._recent(source, now)
        if times is None or len(times) < self.limit:
            return None
        return max(1, math.ceil((times[0] + self.window - now).total_seconds()))

    def failed(self, source: str, now: datetime) -> bool:
        """Count one failure of ``source``; True when this one makes it wait (the throttle starts)."""
        times = self._recent(source, now)
        if times is None:
            times = self._failures[source] = deque(maxlen=self.limit)
        times.append(now)
        self._failures.move_to_end(source)
        while len(self._failures) > self.max_sources:
            self._failures.popitem(last=False)
        return len(times) == self.limit

    def _recent(self, source: str, now: datetime) -> deque[datetime] | None:
        """The source's failures still inside the window (older ones dropped), or None."""
        times = self._failures.get(source)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[source]
            return None
        return times
