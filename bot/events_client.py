"""Posting signed platform events to a running service, as a platform does (``python -m bot demo``,
``python -m bot events send``): ``X-Bot-Timestamp`` and ``X-Bot-Signature`` from ``bot.signing``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from bot.settings import Settings
from bot.signing import platform_signature

PATH = "/api/platform/events"


def service_url(settings: Settings) -> str:
    """Where the running service is reached: BOT_PUBLIC_BASE_URL, else BOT_HOST:BOT_PORT (a
    wildcard host is reached on this machine's loopback)."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104 - compared, not bound
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


class Unreachable(Exception):
    """The service did not answer (not running, wrong address)."""


class Poster:
    """One HTTP session for a few events, each signed at the moment it is sent."""

    def __init__(self, base_url: str, secret: str, *, timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + PATH
        self._secret = secret
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    async def __aenter__(self) -> Poster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()

    async def post(self, body: bytes) -> Answer:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Bot-Timestamp": stamp,
            "X-Bot-Signature": platform_signature(self._secret, stamp, body),
        }
        try:
            async with self._http.post(self.url, data=body, headers=headers) as resp:
                return Answer(resp.status, await resp.text())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
