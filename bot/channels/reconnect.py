"""One reconnect rule for the long connections (WeCom AI bot, DingTalk stream, Feishu ws).

Capped exponential backoff: the first pause is ``first`` seconds, each failure in a row doubles it up
to ``cap``, and a connection that served (carried messages or stayed up a while) starts it over. One
jitter rule for all three: each pause is stretched by up to a quarter, at random, so replicas and
restarted processes do not reconnect in step.
"""

from __future__ import annotations

import random
from collections.abc import Callable

JITTER = 0.25  # a pause is base × [1, 1 + JITTER)
FIRST_SECONDS = 1.0
CAP_SECONDS = 60.0


class Backoff:
    """The pauses between reconnects of one long connection."""

    def __init__(
        self,
        first: float = FIRST_SECONDS,
        cap: float = CAP_SECONDS,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if first <= 0 or cap < first:
            raise ValueError("backoff needs 0 < first <= cap")
        self.first = first
        self.cap = cap
        self._rng = rng
        self._base = first

    def reset(self) -> None:
        """The connection served: the next failure waits ``first`` again."""
        self._base = self.first

    def next_pause(self) -> float:
        """The pause before the next attempt; the one after it doubles (up to ``cap``)."""
        base = min(self._base, self.cap)
        self._base = min(self.cap, base * 2)
        return base * (1.0 + JITTER * self._rng())
