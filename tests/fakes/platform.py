"""A fake AI-interview platform on loopback speaking the documented contract.

It checks the bot's signature on every call, like a real platform would, and honours
``Idempotency-Key``: a repeated key gets the first answer again and the work is not redone.
A save or terminate of an interview it has terminated already answers 409 ``{"status": "terminated"}``.

``hang_on`` ("save" or "terminate") makes that call do its work, then never answer: the test
kills the bot while it waits. Requests to any other path are kept in ``stray``.
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
from tests.fakes.loopback import LoopbackFake


@dataclass
class FakePlatform(LoopbackFake):
    secret: str
    save_status: int = 200
    terminate_status: int = 200
    delay: float = 0.0
    # Body of a successful answer, replacing the default JSON (e.g. "<html>" to test bad answers).
    raw_answer: str | None = None
    hang_on: str | None = None
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # (action, interview id, Idempotency-Key header or None) for every signed call
    keys: list[tuple[str, str, str | None]] = field(default_factory=list)
    # interview ids terminated here, in order (each once)
    terminated: list[str] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)
    rejected: int = 0
    server: TestServer | None = None
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _answers: dict[str, tuple[int, str]] = field(default_factory=dict)

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
        key = request.headers.get("Idempotency-Key")
        self.calls.append((action, interview_id, json.loads(raw or b"{}")))
        self.keys.append((action, interview_id, key))
        if key and key in self._answers:  # a retry of work already done: the same answer, no new effect
            status, text = self._answers[key]
            return web.Response(status=status, text=text, content_type="application/json")
        if self.delay:
            await asyncio.sleep(self.delay)
        status, text = self._work(action, interview_id)
        if key and status < 500:
            self._answers[key] = (status, text)
        if self.hang_on == action:
            self.hanging.set()
            await self._release.wait()  # no answer until close(); the bot is killed meanwhile
        return web.Response(status=status, text=text, content_type="application/json")

    def _work(self, action: str, interview_id: str) -> tuple[int, str]:
        status = self.save_status if action == "save" else self.terminate_status
        if status >= 300:
            return status, json.dumps({"error": "unavailable"})
        if interview_id in self.terminated:
            return 409, json.dumps({"status": "terminated"})
        if self.raw_answer is not None:
            return status, self.raw_answer
        if action == "save":
            return status, json.dumps({"saved": True, "answered": 3})
        self.terminated.append(interview_id)
        return status, json.dumps({"terminated": True})

    async def _stray(self, request: web.Request) -> web.Response:
        self.stray.append(request.raw_path)
        return web.json_response({"ok": True})

    def actions(self) -> list[str]:
        return [c[0] for c in self.calls]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/interviews/{id}/{action:save|terminate}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._stray)

    async def closing(self) -> None:
        self._release.set()
