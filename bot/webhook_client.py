"""Outbound events to the company's systems: one signed POST per outbox row (channel ``webhook``).

The contract (README, 对接公司系统):

- ``POST <endpoint URL>`` with the event as a JSON body (``bot/services/outbound.py`` defines it), the
  same bytes on every try of one row.
- Signed like the platform's events: ``X-Bot-Timestamp`` (unix seconds of this try) and
  ``X-Bot-Signature`` = hex HMAC-SHA256(endpoint secret, ``<timestamp>.<raw body>``);
  ``X-Bot-Event`` names the event type.
- ``Idempotency-Key`` is the event id: the same on every try, so a receiver drops a repeat (at least
  once: a try whose answer was lost, or cut off by a crash, is sent again).
- Success is any 2xx answer. ``408``, ``425``, ``429`` and ``5xx`` (or no answer) are retried with
  backoff (``Retry-After`` in seconds is honoured); any other answer is a permanent refusal: the row
  is a dead letter at once, shown in the console's 通知 page, where 重试 sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bot.clock import Clock
from bot.outbox import SendError
from bot.signing import platform_signature
from storage.models import Notice

log = logging.getLogger(__name__)

CHANNEL = "webhook"
RETRIED_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    secret: str


# The endpoint a row goes to now (URL and secret), or None when it was removed or disabled.
Resolve = Callable[[Notice], Awaitable[Endpoint | None]]


def signed_headers(secret: str, timestamp: int, body: bytes, *, event_id: str, event_type: str) -> dict[str, str]:
    stamp = str(timestamp)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "X-Bot-Timestamp": stamp,
        "X-Bot-Signature": platform_signature(secret, stamp, body),
        "X-Bot-Event": event_type,
        "Idempotency-Key": event_id,
    }


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 < seconds <= 24 * 3600 else None


class WebhookSender:
    """The outbox sender of outbound events. ``idempotent``: a try cut off by a crash is sent again
    (the receiver recognises it by ``Idempotency-Key``); ``in_order``: the events of one interview
    to one endpoint (one destination) go one after another."""

    channel = CHANNEL
    rate: tuple[int, float] | None = None
    idempotent = True
    in_order = True

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        clock: Clock,
        resolve: Resolve,
        timeout: float,
        max_attempts: int,
    ) -> None:
        self._http = http
        self._clock = clock
        self._resolve = resolve
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_attempts = max_attempts

    async def send(self, notice: Notice) -> str | None:
        endpoint = await self._resolve(notice)
        if endpoint is None:
            raise SendError("the endpoint was removed or disabled", permanent=True)
        body = notice.body.encode()
        payload = notice.payload or {}
        headers = signed_headers(
            endpoint.secret,
            int(self._clock.now().timestamp()),
            body,
            event_id=str(payload.get("event_id", "")),
            event_type=str(payload.get("event_type", "")),
        )
        try:
            async with self._http.post(
                endpoint.url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(f"POST {endpoint.url} failed: {type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return None
        permanent = 400 <= status < 500 and status not in RETRIED_STATUSES
        # Not the answer's body: a receiver may echo the event, and logs never hold a candidate's contacts.
        raise SendError(f"POST {endpoint.url} answered HTTP {status}", permanent=permanent, retry_after=retry_after)
