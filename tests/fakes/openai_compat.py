"""A fake OpenAI-compatible Chat Completions endpoint on loopback (``POST /v1/chat/completions``).

It speaks the wire format the official ``openai`` client parses (tests/language/test_llm.py checks that):
a request JSON with ``model``, ``messages`` and optional ``tools``; an answer with
``choices[0].message.tool_calls[{id, type: "function", function: {name, arguments}}]``,
``finish_reason: "tool_calls"`` and ``usage``. Errors are ``{"error": {message, type, param, code}}``.

Scripted by the test: ``answer`` (a ``ToolCall``, plain text for an answer without a tool call, or
None for that with empty text), ``delay`` (seconds before answering; released when the fake
closes), ``status`` (an error status to answer with), ``raw_body`` (bytes answered verbatim). It
checks ``Authorization: Bearer <api_key>`` and answers 401 otherwise, as OpenAI does. Every request
that passed the key check is kept in ``requests`` (parsed JSON) and ``raw``; refused ones are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes.loopback import LoopbackFake

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class ToolCall:
    """The function call to answer with; ``arguments`` is the JSON text as sent (may be malformed)."""

    name: str
    arguments: str = "{}"

    @classmethod
    def of(cls, name: str, **arguments: Any) -> ToolCall:
        return cls(name, json.dumps(arguments, ensure_ascii=False))


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class FakeChatCompletions(LoopbackFake):
    api_key: str
    answer: ToolCall | str | None = None
    delay: float = 0.0
    status: int = 200
    raw_body: bytes | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    rejected: int = 0
    server: TestServer | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _count: int = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self._completions)

    async def closing(self) -> None:
        self._release.set()

    @property
    def url(self) -> str:
        """The base URL a client is configured with (the OpenAI SDK's ``base_url``)."""
        return self.base + "/v1"

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.rejected += 1
            return web.json_response(
                error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), status=401
            )
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response(
                error_body("We could not parse the JSON body.", "invalid_request_error"), status=400
            )
        self.raw.append(raw)
        self.requests.append(body)
        problem = self._problem(body)
        if problem:
            return web.json_response(error_body(problem, "invalid_request_error"), status=400)
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), self.delay)
        if self.status != 200:
            return web.json_response(error_body("The server had an error.", "server_error"), status=self.status)
        if self.raw_body is not None:
            return web.Response(body=self.raw_body, content_type="application/json")
        return web.json_response(self._completion(body))

    @staticmethod
    def _problem(body: Any) -> str | None:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return "you must provide a model parameter"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: expected a non-empty array"
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool"):
                return "messages: invalid role"
        tools = body.get("tools", [])
        if not isinstance(tools, list) or any(t.get("type") != "function" for t in tools):
            return "tools: each tool must be of type function"
        return None

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        self._count += 1
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if isinstance(self.answer, ToolCall):
            message["tool_calls"] = [
                {
                    "id": f"call_fake{self._count}",
                    "type": "function",
                    "function": {"name": self.answer.name, "arguments": self.answer.arguments},
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = self.answer or ""
            finish = "stop"
        prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 2 + 1
        return {
            "id": f"chatcmpl-fake{self._count}",
            "object": "chat.completion",
            "created": 1_773_108_000,
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": 12, "total_tokens": prompt + 12},
        }
