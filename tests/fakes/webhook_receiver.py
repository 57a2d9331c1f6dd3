"""A company system receiving outbound events, on loopback: it checks every request the way the
README tells a receiver to (written here from that description, not with our signing code): the
timestamp within 300 s of its clock, ``X-Bot-Signature`` = hex HMAC-SHA256(secret, ts + "." + raw
body), and drops a repeat by ``Idempotency-Key``.

Each path (``/hook/<name>``) is one endpoint with its own secret. ``fail[type] = n`` answers the
next n requests of that event type 500; ``refuse[type] = status`` answers that 4xx; ``down`` answers
every request 503; ``hang`` holds requests of the given type without answering (a process killed
meanwhile never learns the outcome).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackFake

SKEW = 300


@dataclass
class Received:
    endpoint: str
    key: str
    event_type: str
    body: dict[str, Any]
    status: int  # what the receiver answered (0: held, never answered)


@dataclass
class WebhookReceiver(LoopbackFake):
    secrets: dict[str, str]
    now: Callable[[], float] = time.time
    requests: list[Received] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    refuse: dict[str, int] = field(default_factory=dict)  # event type -> the 4xx it is always refused with
    down: bool = False
    hang: str | None = None
    refused: list[str] = field(default_factory=list)  # why requests failed the signature check
    seen: dict[str, set[str]] = field(default_factory=dict)  # endpoint -> idempotency keys accepted
    server: Any = None
    _held: list[asyncio.Future[None]] = field(default_factory=list)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/hook/{name}", self.receive)

    def url(self, name: str) -> str:
        return f"{self.base}/hook/{name}"

    def verify(self, secret: str, request: web.Request, raw: bytes) -> str | None:
        stamp, signature = request.headers.get("X-Bot-Timestamp"), request.headers.get("X-Bot-Signature")
        if not stamp or not signature or not stamp.isdigit():
            return "missing or bad signature headers"
        if abs(self.now() - int(stamp)) > SKEW:
            return "stale timestamp"
        expected = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, signature) else "bad signature"

    async def receive(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = await request.read()
        secret = self.secrets.get(name)
        problem = "unknown endpoint" if secret is None else self.verify(secret, request, raw)
        if problem:
            self.refused.append(problem)
            return web.json_response({"error": problem}, status=401)
        body = json.loads(raw)
        key = request.headers.get("Idempotency-Key", "")
        assert key == body["event_id"], "the idempotency key is the event id"
        assert request.headers.get("X-Bot-Event") == body["type"]
        got = Received(name, key, body["type"], body, 0)
        self.requests.append(got)
        if self.hang is not None and body["type"] == self.hang:
            held: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._held.append(held)
            await held
        if self.down:
            got.status = 503
            return web.json_response({"error": "down"}, status=503)
        if body["type"] in self.refuse:
            got.status = self.refuse[body["type"]]
            return web.json_response({"error": "refused"}, status=got.status)
        if self.fail.get(body["type"], 0) > 0:
            self.fail[body["type"]] -= 1
            got.status = 500
            return web.json_response({"error": "try later"}, status=500)
        got.status = 200
        self.seen.setdefault(name, set()).add(key)  # a repeat is recognised and dropped here
        return web.json_response({"ok": True})

    async def closing(self) -> None:
        for held in self._held:
            if not held.done():
                held.cancel()

    def delivered(self, endpoint: str, event_type: str | None = None) -> list[Received]:
        """Requests answered 200 at ``endpoint`` (of ``event_type``), in arrival order."""
        return [
            r
            for r in self.requests
            if r.endpoint == endpoint and r.status == 200 and (event_type is None or r.event_type == event_type)
        ]

    def tries(self, endpoint: str, event_type: str) -> list[Received]:
        return [r for r in self.requests if r.endpoint == endpoint and r.event_type == event_type]
