"""Long-connection mode (FEISHU_MODE=ws): we open a WebSocket to Feishu, no public address needed.

The protocol is the one of the official SDK (``lark_oapi.ws.client``); its protobuf ``Frame`` is
encoded by ``frames`` (checked against the SDK's generated class in the tests):

1. ``POST {FEISHU_API_BASE}/callback/ws/endpoint`` with ``{"AppID", "AppSecret"}`` answers the
   socket URL (its query carries ``device_id`` and ``service_id``) and a ``ClientConfig``
   (``PingInterval`` in seconds, …).
2. Binary frames: ``method`` 0 = control (``type`` header ping/pong; a pong may carry a new
   ClientConfig), 1 = data (``type`` event/card, ``message_id``, ``sum``/``seq`` for an event
   split over several frames). The payload of an event is the same 2.0 JSON as in HTTP mode.
3. Each data frame is answered by sending it back with the payload
   ``{"code": 200, "data": base64(answer)}`` (500 makes Feishu push it again).

The SDK's own client is not used: it binds a module-level event loop, runs blocking ``requests``
calls on it and reconnects on its own schedule. Ours runs on the app's loop and session, answers a
frame only after the event is committed through the intake (so an acknowledged event is never
lost), sends the pings Feishu asks for, treats a socket silent for three ping intervals as dead,
and reconnects with capped exponential backoff and jitter. It runs under a database lease
(``bot.services.leases.Leased``): one replica holds the connection, the others stand by.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bot.bounded import BadInput, load_json
from bot.channels.feishu.api import TIMEOUT, FeishuError
from bot.channels.feishu.chat import FeishuChat
from bot.channels.feishu.crypto import CryptoError, decrypt
from bot.channels.feishu.frames import Frame, FrameError
from bot.channels.feishu.parse import ParseError
from bot.channels.reconnect import Backoff

log = logging.getLogger(__name__)

ENDPOINT_PATH = "/callback/ws/endpoint"
CONTROL, DATA = 0, 1
DEFAULT_PING_SECONDS = 120.0
SPLIT_TTL_SECONDS = 5.0  # parts of one split event are kept this long (as the SDK does)
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)


def ping_frame(service_id: int) -> Frame:
    return Frame(seq_id=0, log_id=0, service=service_id, method=CONTROL, headers=[("type", "ping")])


class WsRunner:
    """Keeps one long connection open while it runs (under the lease)."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        app_id: str,
        app_secret: str,
        api_base: str,
        encrypt_key: str,
        chat: FeishuChat,
    ) -> None:
        self._http = http
        self._app_id = app_id
        self._app_secret = app_secret
        self._endpoint_url = api_base.rstrip("/") + ENDPOINT_PATH
        self._encrypt_key = encrypt_key
        self._chat = chat
        self.connected = False
        self.connections = 0  # sockets opened so far (for logs and tests)
        self.ping_seconds = DEFAULT_PING_SECONDS
        self._parts: dict[str, tuple[float, list[bytes | None]]] = {}
        self._send_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Connect, serve, reconnect with backoff; returns only when cancelled."""
        backoff = Backoff()
        while True:
            served = False
            try:
                served = await self._connect_and_serve()
            except (aiohttp.ClientError, TimeoutError, FeishuError, KeyError, ValueError) as exc:
                log.warning("Feishu long connection failed: %s: %s", type(exc).__name__, exc)
            finally:
                self.connected = False
            if served:
                backoff.reset()
            pause = backoff.next_pause()
            log.info("reconnecting to Feishu in %.1fs", pause)
            await asyncio.sleep(pause)

    async def _endpoint(self) -> str:
        body = {"AppID": self._app_id, "AppSecret": self._app_secret}
        async with self._http.post(self._endpoint_url, json=body, headers={"locale": "zh"}, timeout=TIMEOUT) as resp:
            raw = await resp.read()
            status = resp.status
        try:
            data = json.loads(raw) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = {}
        if status != 200 or not isinstance(data, dict) or data.get("code") != 0:
            detail = data.get("msg", "") if isinstance(data, dict) else ""
            code = data.get("code") if isinstance(data, dict) else None
            raise FeishuError(
                f"ws endpoint refused: {detail}", status=status, code=code if isinstance(code, int) else -1
            )
        inner = data.get("data") or {}
        self._configure(inner.get("ClientConfig"))
        url = inner.get("URL")
        if not isinstance(url, str) or not url:
            raise FeishuError("ws endpoint without URL", status=status, code=0)
        return url

    def _configure(self, config: Any) -> None:
        if (
            isinstance(config, dict)
            and isinstance(config.get("PingInterval"), int | float)
            and config["PingInterval"] > 0
        ):
            self.ping_seconds = float(config["PingInterval"])

    async def _connect_and_serve(self) -> bool:
        url = await self._endpoint()
        service_id = int(parse_qs(urlsplit(url).query)["service_id"][0])
        async with self._http.ws_connect(url, timeout=WS_TIMEOUT, autoping=True) as ws:
            self.connections += 1
            self.connected = True
            log.info("connected to the Feishu long connection")
            pinger = asyncio.create_task(self._ping_loop(ws, service_id), name="feishu-ws-ping")
            served = False
            try:
                while True:
                    try:
                        message = await ws.receive(timeout=self.ping_seconds * 3)
                    except TimeoutError:
                        log.warning("the Feishu long connection went silent; reconnecting")
                        return served
                    if message.type == aiohttp.WSMsgType.BINARY:
                        served = True
                        self._frame(ws, message.data)
                    elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                        log.info("the Feishu long connection closed (code %s)", ws.close_code)
                        return served
                    elif message.type == aiohttp.WSMsgType.ERROR:
                        raise ws.exception() or ConnectionError("websocket error")
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)
                await self._finish_frames()

    async def _ping_loop(self, ws: aiohttp.ClientWebSocketResponse, service_id: int) -> None:
        while True:
            try:
                await self._send(ws, ping_frame(service_id))
            except (aiohttp.ClientError, ConnectionError) as exc:
                log.warning("Feishu ping failed: %s", exc)
            await asyncio.sleep(self.ping_seconds)

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, frame: Frame) -> None:
        async with self._send_lock:
            await ws.send_bytes(frame.encode())

    def _frame(self, ws: aiohttp.ClientWebSocketResponse, raw: bytes) -> None:
        try:
            frame = Frame.decode(raw)
        except FrameError as exc:
            log.warning("skipping a Feishu frame that is not a Frame: %s", exc)
            return
        headers = dict(frame.headers)
        if frame.method == CONTROL:
            if headers.get("type") == "pong" and frame.payload:
                try:
                    self._configure(json.loads(frame.payload))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    log.warning("a Feishu pong carried no JSON config")
            return
        if frame.method != DATA:
            return
        payload = self._combined(headers, bytes(frame.payload))
        if payload is None:
            return  # waiting for the other parts
        task = asyncio.create_task(self._answer(ws, frame, headers, payload), name="feishu-ws-frame")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _combined(self, headers: dict[str, str], payload: bytes) -> bytes | None:
        try:
            total, seq = int(headers.get("sum") or 1), int(headers.get("seq") or 0)
        except ValueError:
            return payload
        if total <= 1:
            return payload
        if not 0 <= seq < total <= 64:
            log.warning("a Feishu frame part %s of %s is out of range", seq, total)
            return None
        now = time.monotonic()
        self._parts = {k: v for k, v in self._parts.items() if now - v[0] < SPLIT_TTL_SECONDS}
        msg_id = headers.get("message_id", "")
        _, parts = self._parts.setdefault(msg_id, (now, [None] * total))
        if len(parts) != total:
            return None
        parts[seq] = payload
        if any(p is None for p in parts):
            return None
        del self._parts[msg_id]
        return b"".join(p for p in parts if p is not None)

    async def _answer(
        self, ws: aiohttp.ClientWebSocketResponse, frame: Frame, headers: dict[str, str], payload: bytes
    ) -> None:
        started = time.monotonic()
        code, answer = await self._take_in(headers.get("type", ""), payload)
        frame.headers.append(("biz_rt", str(int((time.monotonic() - started) * 1000))))
        response: dict[str, Any] = {"code": code}
        if answer is not None:
            response["data"] = base64.b64encode(json.dumps(answer).encode()).decode()
        frame.payload = json.dumps(response).encode()
        try:
            await self._send(ws, frame)
        except (aiohttp.ClientError, ConnectionError) as exc:
            # The event is stored: Feishu pushes it again and the redelivery is dropped.
            log.warning("could not answer a Feishu frame: %s", exc)

    async def _take_in(self, kind: str, payload: bytes) -> tuple[int, dict[str, Any] | None]:
        """(status for Feishu, answer): 200 once stored (or not ours to store), 500 to get it again."""
        if kind != "event":
            return 200, None  # old-style card callbacks ("card") are not used by our cards
        try:
            body = load_json(payload)
            if isinstance(body, dict) and "encrypt" in body and self._encrypt_key:
                body = load_json(decrypt(body["encrypt"], self._encrypt_key))
            if not isinstance(body, dict):
                raise BadInput("malformed_json", "not a JSON object")
            await self._chat.receive(body)
        except (BadInput, CryptoError, ParseError) as exc:
            log.info("ignoring a Feishu event we do not handle: %s", exc)
            return 200, {}
        except Exception:
            log.exception("storing a Feishu event failed; Feishu will push it again")
            return 500, None
        return 200, {}

    async def _finish_frames(self) -> None:
        """Let frames being stored finish briefly (their answers may not get out)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
