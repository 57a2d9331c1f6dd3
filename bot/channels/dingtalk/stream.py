"""Stream receive mode (DINGTALK_MODE=stream): an outbound WebSocket, no public address needed.

We use the official ``dingtalk-stream`` SDK for what it does well — frame types, the
callback-handler registry, ack building, SYSTEM ping/disconnect handling
(``DingTalkStreamClient.route_message``) — but run our own connection loop instead of
``client.start()``, because 0.24.3's ``start()``:

- opens the connection with blocking ``requests.post`` (no timeout) on the event loop;
- swallows the first ``CancelledError`` (sleeps 10 s and reconnects), so it cannot be
  stopped cleanly with the app;
- spawns an untracked task per frame and retries at a fixed 10 s.

Our loop opens the connection with the app's aiohttp session (``DINGTALK_API_BASE``, with
timeouts), connects the WebSocket with aiohttp (a heartbeat closes a socket that went
quiet), routes each frame through the SDK inline (our handler only schedules work, so acks
go out at once and frames stay in order), reconnects at once when DingTalk sends
``disconnect`` and otherwise with exponential backoff (1 s → 60 s, with jitter), and lets
cancellation through so shutdown takes milliseconds. The SDK's blocking reply helpers are
never used: replies go through the outbox and our own aiohttp client.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import dingtalk_stream
from aiohttp import web
from dingtalk_stream import AckMessage, CallbackMessage, ChatbotMessage, DingTalkStreamClient, SystemMessage
from dingtalk_stream.version import VERSION_STRING

from bot.channels.dingtalk.api import TIMEOUT, DingTalkError
from bot.channels.dingtalk.chat import DingTalkChat
from bot.channels.reconnect import Backoff

log = logging.getLogger(__name__)

OPEN_PATH = "/v1.0/gateway/connections/open"
PING_TOPIC = "ping"
HEARTBEAT_SECONDS = 20.0
STOP_TIMEOUT = 5.0
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)


class ChatbotCallback(dingtalk_stream.CallbackHandler):
    """Acks each robot message at once and hands it to the intake (stored in the background)."""

    def __init__(self, chat: DingTalkChat) -> None:
        super().__init__()
        self._chat = chat

    async def process(self, message: CallbackMessage) -> tuple[int, Any]:
        data = message.data
        if not isinstance(data, dict) or not data:
            return AckMessage.STATUS_BAD_REQUEST, None
        self._chat.receive_detached(data)
        return AckMessage.STATUS_OK, None

    async def raw_process(self, callback_message: CallbackMessage) -> AckMessage:
        ack = await super().raw_process(callback_message)
        ack.message = "OK" if ack.code == AckMessage.STATUS_OK else "bad request"
        return ack


class _AckSocket:
    """What the SDK's ``route_message`` needs of ``client.websocket``: ``send`` and ``close``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    async def send(self, data: str) -> None:
        await self._ws.send_str(data)

    async def close(self) -> None:
        await self._ws.close()


class StreamRunner:
    """Keeps one Stream connection open for the app's lifetime."""

    def __init__(
        self, http: aiohttp.ClientSession, *, app_key: str, app_secret: str, api_base: str, chat: DingTalkChat
    ) -> None:
        self._http = http
        self._app_key = app_key
        self._app_secret = app_secret
        self._open_url = api_base.rstrip("/") + OPEN_PATH
        self.client = DingTalkStreamClient(
            dingtalk_stream.Credential(app_key, app_secret), logger=logging.getLogger("dingtalk_stream.client")
        )
        self.client.register_callback_handler(ChatbotMessage.TOPIC, ChatbotCallback(chat))
        self.connections = 0  # WebSocket connections made so far (for logs and tests)
        self.connected = False  # a connection is open now
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.client.pre_start()
        self._task = asyncio.create_task(self.run(), name="dingtalk-stream")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
        if not done:
            log.error("the DingTalk stream did not stop within %.0fs", STOP_TIMEOUT)

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            outcome = "failed"
            try:
                outcome = await self._connect_and_serve()
            except (aiohttp.ClientError, TimeoutError, DingTalkError, KeyError, ValueError) as exc:
                log.warning("DingTalk stream connection failed: %s: %s", type(exc).__name__, exc)
            except Exception:
                log.exception("DingTalk stream connection failed")
            if outcome == "disconnect":  # DingTalk rotates connections: come back at once
                backoff.reset()
                continue
            if outcome == "served":  # it worked for a while; start the backoff over
                backoff.reset()
            pause = backoff.next_pause()
            log.info("reconnecting to the DingTalk stream in %.1fs", pause)
            await asyncio.sleep(pause)

    async def _open(self) -> tuple[str, str]:
        body = {
            "clientId": self._app_key,
            "clientSecret": self._app_secret,
            "subscriptions": [{"type": "CALLBACK", "topic": topic} for topic in self.client.callback_handler_map],
            "ua": f"dingtalk-sdk-python/v{VERSION_STRING}-union",
            "localIp": "",
        }
        async with self._http.post(self._open_url, json=body, timeout=TIMEOUT) as resp:
            data = await resp.json(content_type=None) if resp.status == 200 else {}
            if resp.status != 200 or not isinstance(data, dict) or not data.get("endpoint"):
                raise DingTalkError("connections/open refused", status=resp.status)
        return str(data["endpoint"]), str(data["ticket"])

    async def _connect_and_serve(self) -> str:
        endpoint, ticket = await self._open()
        async with self._http.ws_connect(
            endpoint, params={"ticket": ticket}, heartbeat=HEARTBEAT_SECONDS, timeout=WS_TIMEOUT
        ) as ws:
            self.connections += 1
            self.connected = True
            self.client.websocket = _AckSocket(ws)
            log.info("connected to the DingTalk stream")
            served = False
            try:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.ERROR:
                        raise ws.exception() or ConnectionError("websocket error")
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    served = True
                    if await self._route(message.data) == DingTalkStreamClient.TAG_DISCONNECT:
                        log.info("DingTalk asked for a new stream connection")
                        return "disconnect"
            finally:
                self.connected = False
            log.info("the DingTalk stream closed (code %s)", ws.close_code)
            return "served" if served else "closed"

    async def _route(self, raw: str) -> str:
        try:
            frame = json.loads(raw)
        except json.JSONDecodeError:
            log.warning("skipping a stream frame that is not JSON")
            return ""
        if not isinstance(frame, dict):
            return ""
        try:
            if frame.get("type") == SystemMessage.TYPE and frame.get("headers", {}).get("topic") == PING_TOPIC:
                # Answered here because the SDK logs every ping as an "unknown topic" warning.
                ack = await self.client.system_handler.raw_process(SystemMessage.from_dict(frame))
                await self.client.websocket.send(json.dumps(ack.to_dict()))
                return ""
            return str(await self.client.route_message(frame) or "")
        except (ConnectionError, aiohttp.ClientError):
            raise
        except Exception:
            log.exception("could not handle a DingTalk stream frame")
            return ""


STREAM = web.AppKey("dingtalk_stream", StreamRunner)
