"""Calls to the AI-interview platform: save progress, then terminate. Signed like its events."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.signing import platform_signature

log = logging.getLogger(__name__)


class PlatformError(Exception):
    """The platform could not do what was asked; ``message`` is shown to people (Chinese)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class PlatformClient:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        secret: str,
        clock: Clock,
        timeout: float = 10.0,
        attempts: int = 3,
        retry_delay: float = 0.2,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._secret = secret
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._attempts = attempts
        self._retry_delay = retry_delay

    async def save_progress(self, platform_id: str) -> dict[str, Any]:
        """Ask the platform to persist the candidate's answers; returns what it reports."""
        return await self._post(f"/interviews/{platform_id}/save", {}, what="保存作答进度")

    async def terminate(self, platform_id: str, *, reason_code: str, reason: str, operator: str) -> dict[str, Any]:
        body = {"reason_code": reason_code, "reason": reason, "operator": operator}
        return await self._post(f"/interviews/{platform_id}/terminate", body, what="终止面试")

    async def _post(self, path: str, payload: dict[str, Any], *, what: str) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False).encode()
        last: PlatformError | None = None
        for attempt in range(1, self._attempts + 1):
            ts = str(int(self._clock.now().timestamp()))
            headers = {
                "Content-Type": "application/json",
                "X-Bot-Timestamp": ts,
                "X-Bot-Signature": platform_signature(self._secret, ts, body),
            }
            try:
                async with self._http.post(
                    self._base + path, data=body, headers=headers, timeout=self._timeout
                ) as resp:
                    text = await resp.text()
                    if resp.status < 300:
                        try:
                            data = json.loads(text) if text.strip() else {}
                        except json.JSONDecodeError:
                            data = {}
                        return data if isinstance(data, dict) else {}
                    last = PlatformError(f"面试平台{what}失败(HTTP {resp.status})", status=resp.status)
                    if resp.status < 500 and resp.status != 429:
                        break  # the platform refused: retrying will not help
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = PlatformError(f"面试平台{what}失败(无法连接:{type(exc).__name__})")
            log.warning("platform %s %s failed (attempt %d): %s", what, path, attempt, last)
            if attempt < self._attempts:
                await asyncio.sleep(self._retry_delay * attempt)
        assert last is not None
        raise last
