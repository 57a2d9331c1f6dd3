"""Calls to the AI-interview platform: save progress, then terminate. Signed like its events.

The contract (README, 面试平台对接):

- ``POST {base}/interviews/{id}/save`` and ``.../terminate``; ``{id}`` is one path segment,
  percent-encoded, so no interview id can reach another path of the platform.
- Every call carries ``Idempotency-Key`` (``save-<job id>`` / ``terminate-<job id>``): a resumed
  termination repeats the same key and the platform must answer it without doing the work twice.
- Success is a 2xx answer whose body is a JSON object (or a 204 with no body), and not
  ``{"ok": false}``. Anything else (an HTML page from a proxy, a JSON list, garbage) is a failure.
- ``409`` with ``{"status": "terminated"}`` means the interview is already terminated there:
  that counts as success and is reported as ``already_terminated``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from bot.clock import Clock
from bot.settings import Settings
from bot.signing import platform_signature

log = logging.getLogger(__name__)

# The key in a result dict that says the platform had terminated the interview already.
ALREADY_TERMINATED = "already_terminated"


class SaveRequest(BaseModel):
    """The body of ``POST {base}/interviews/{id}/save``: an empty object."""

    model_config = ConfigDict(extra="forbid")


class TerminateRequest(BaseModel):
    """The body of ``POST {base}/interviews/{id}/terminate``."""

    model_config = ConfigDict(extra="forbid")
    reason_code: str = Field(
        description="The exit reason's stable code: `candidate_quit`, `system_failure`, `unfamiliar`, "
        "`process_change`, `idle_timeout`, `other`, or a code the company added."
    )
    reason: str = Field(description="The exit reason's name as the company calls it (Chinese, editable).")
    operator: str = Field(
        description="Who ended it: `<chat platform>:<user id>`, `admin…`, `system` (idle timeout) or `candidate`."
    )


class PlatformError(Exception):
    """The platform could not do what was asked; ``message`` is shown to people (Chinese)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def interview_path(platform_id: str, action: str) -> str:
    """``/interviews/<id>/<action>`` with the id quoted as a single path segment."""
    return f"/interviews/{quote(platform_id, safe='')}/{action}"


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def success_body(status: int, text: str) -> dict[str, Any] | None:
    """The platform's answer if it is the documented success, else None."""
    if status == 409:
        data = _json_object(text)
        if data is not None and data.get("status") == "terminated":
            return {**data, ALREADY_TERMINATED: True}
        return None
    if not 200 <= status < 300:
        return None
    if status == 204 and not text.strip():
        return {}
    data = _json_object(text)
    if data is None or data.get("ok") is False:
        return None
    return data


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

    @classmethod
    def configured(cls, settings: Settings, http: aiohttp.ClientSession, clock: Clock) -> PlatformClient | None:
        """The client for the platform in ``settings`` (PLATFORM_API_BASE and its secret), or None:
        the service and the terminal console terminate on the platform alike."""
        if not (settings.platform_api_base and settings.platform_webhook_secret):
            return None
        return cls(
            http,
            base_url=settings.platform_api_base,
            secret=settings.platform_webhook_secret.get_secret_value(),
            clock=clock,
            timeout=settings.platform_timeout_seconds,
        )

    async def save_progress(self, platform_id: str, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Ask the platform to persist the candidate's answers; returns what it reports."""
        body = SaveRequest().model_dump()
        return await self._post(interview_path(platform_id, "save"), body, what="保存作答进度", key=idempotency_key)

    async def terminate(
        self, platform_id: str, *, reason_code: str, reason: str, operator: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        body = TerminateRequest(reason_code=reason_code, reason=reason, operator=operator).model_dump()
        return await self._post(interview_path(platform_id, "terminate"), body, what="终止面试", key=idempotency_key)

    async def _post(self, path: str, payload: dict[str, Any], *, what: str, key: str | None) -> dict[str, Any]:
        body = json.dumps(payload, ensure_ascii=False).encode()
        last: PlatformError | None = None
        for attempt in range(1, self._attempts + 1):
            ts = str(int(self._clock.now().timestamp()))
            headers = {
                "Content-Type": "application/json",
                "X-Bot-Timestamp": ts,
                "X-Bot-Signature": platform_signature(self._secret, ts, body),
            }
            if key:
                headers["Idempotency-Key"] = key
            try:
                async with self._http.post(
                    self._base + path, data=body, headers=headers, timeout=self._timeout
                ) as resp:
                    text = await resp.text(errors="replace")
                    answer = success_body(resp.status, text)
                    if answer is not None:
                        return answer
                    if resp.status < 300:
                        last = PlatformError(f"面试平台{what}失败(无法识别的应答)", status=resp.status)
                        break  # a 2xx we cannot read: retrying might do the work twice
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
