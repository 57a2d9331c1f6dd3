"""A fake AI-interview platform on loopback speaking the documented contract.

It checks the bot's signature on every call, like a real platform would.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.signing import verify_platform_signature


@dataclass
class FakePlatform:
    secret: str
    save_status: int = 200
    terminate_status: int = 200
    delay: float = 0.0
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    rejected: int = 0
    server: TestServer | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        problem = verify_platform_signature(
            self.secret,
            request.headers.get("X-Bot-Timestamp"),
            request.headers.get("X-Bot-Signature"),
            raw,
            now=time.time(),
            max_skew=10**9,  # the bot's clock is frozen in tests; the MAC is what matters here
        )
        if problem:
            self.rejected += 1
            return web.json_response({"error": problem}, status=401)
        action = request.match_info["action"]
        interview_id = request.match_info["id"]
        self.calls.append((action, interview_id, json.loads(raw or b"{}")))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.save_status if action == "save" else self.terminate_status
        if status >= 300:
            return web.json_response({"error": "unavailable"}, status=status)
        if action == "save":
            return web.json_response({"saved": True, "answered": 3})
        return web.json_response({"terminated": True})

    def actions(self) -> list[str]:
        return [c[0] for c in self.calls]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/interviews/{id}/{action:save|terminate}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self.server:
            await self.server.close()
