"""Posting signed platform events to a running service, as a platform does (``python -m bot demo``,
``python -m bot events send``): ``X-Bot-Timestamp`` and ``X-Bot-Signature`` from ``bot.signing``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from bot.signing import platform_signature

PATH = "/api/platform/events"


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
