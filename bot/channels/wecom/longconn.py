"""The AI bot's long connection (智能机器人 API 模式 → 长连接): an outbound WebSocket, no public URL.

Wire format (developer.work.weixin.qq.com/document/path/101463, and the official
``@wecom/aibot-node-sdk``, whose Python port ``wecom-aibot-sdk`` our tests connect to our fake):
every frame is JSON ``{"cmd", "headers": {"req_id"}, "body"}``; an answer to a frame we sent
carries no ``cmd``, our ``req_id`` and ``errcode``/``errmsg``.

- We send ``aibot_subscribe`` (body ``bot_id``, ``secret``) first; errcode 0 means subscribed.
  A wrong id or secret is refused (seen as 853000 "invalid bot_id or secret"): we back off long
  (1 min doubling to 15 min) and keep trying, and the rest of the service keeps serving.
- ``ping`` every 30 s (an application frame, not a WebSocket ping); two unanswered pings in a
  row and the socket is closed and opened again.
- WeCom pushes ``aibot_msg_callback`` (messages) and ``aibot_event_callback`` (enter_chat,
  template_card_event, feedback_event, disconnected_event). ``disconnected_event`` means a newer
  connection of the same bot replaced this one: ``run`` returns and does not reconnect, so two
  replicas never take the connection from each other (``bot.services.leases.Leased`` decides who
  holds it).
- We answer a callback with ``aibot_respond_msg`` under the callback's ``req_id`` (only on the
  connection it came on), update a clicked card with ``aibot_respond_update_msg`` (within 5 s of
  the click), and push with ``aibot_send_msg`` (``chatid``: a user id for a 1:1 chat, else the
  group's chatid). Every request waits for its answer (``request``).

Other drops reconnect with capped exponential backoff (1 s doubling to 60 s) plus jitter. The
connection is cancelled with the app (or when the lease is lost) and closes at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import aiohttp

from bot.channels.reconnect import Backoff
from bot.services.leases import LinkState

log = logging.getLogger(__name__)

SUBSCRIBE = "aibot_subscribe"
PING = "ping"
RESPOND = "aibot_respond_msg"
RESPOND_UPDATE = "aibot_respond_update_msg"
SEND = "aibot_send_msg"
MSG_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
DISCONNECTED_EVENT = "disconnected_event"

# errcodes on a reply meaning the callback's req_id can no longer be answered (seen from WeCom:
# 846605 "invalid req_id", 846608 "stream message update expired"): push to the chat instead.
REQ_ID_GONE = frozenset({846605, 846608})
# A callback's req_id is answered only this long after it arrived (WeCom's limit for a reply
# to a callback; later we push to the chat instead).
REQ_ID_TTL = 300.0

HEARTBEAT_SECONDS = 30.0
MISSED_PINGS = 2
ACK_TIMEOUT = 10.0
SUBSCRIBE_TIMEOUT = 10.0
STABLE_SECONDS = 60.0  # a connection up this long resets the backoff
AUTH_BACKOFF_FIRST = 60.0
AUTH_BACKOFF_MAX = 900.0
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0)

Frame = Mapping[str, Any]
FrameHandler = Callable[[Frame, str], Coroutine[Any, Any, None]]


class LinkError(Exception):
    """A request on the long connection failed; ``sent`` tells whether the frame went out."""

    def __init__(self, message: str, *, sent: bool, errcode: int | None = None) -> None:
        super().__init__(message)
        self.sent = sent
        self.errcode = errcode


def new_req_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class AiBotLink:
    """One bot's long connection. ``run`` (run under a lease) keeps it open until cancelled, or
    returns when WeCom says a newer connection replaced it."""

    def __init__(self, http: aiohttp.ClientSession, *, url: str, bot_id: str, secret: str, on_frame: FrameHandler):
        self._http = http
        self._url = url
        self._bot_id = bot_id
        self._secret = secret
        self._on_frame = on_frame
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.backoff = Backoff()  # drops and failures
        self.auth_backoff = Backoff(AUTH_BACKOFF_FIRST, AUTH_BACKOFF_MAX)  # refused subscriptions
        self.state = LinkState.connecting
        self.connections = 0  # subscriptions made so far
        self.auth_failures = 0  # refused subscriptions in a row
        self.conn_id: str | None = None  # the current subscribed connection, None when down
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, asyncio.Future[Frame]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._frames: set[asyncio.Task[None]] = set()
        self._missed = 0

    # --- the connection loop --------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                self.state = LinkState.connecting
                try:
                    outcome = await self._serve()
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    log.warning("WeCom AI bot connection failed: %s: %s", type(exc).__name__, exc)
                    outcome = "failed"
                if outcome == "replaced":
                    self.state = LinkState.stopped
                    log.warning(
                        "WeCom AI bot: a newer connection of this bot replaced ours (disconnected_event);"
                        " not reconnecting"
                    )
                    return
                if outcome == "refused":
                    self.auth_failures += 1
                    pause = self.auth_backoff.next_pause()
                else:
                    self.auth_backoff.reset()
                    if outcome == "served":
                        self.backoff.reset()
                    pause = self.backoff.next_pause()
                log.info("reconnecting to the WeCom AI bot in %.1fs", pause)
                await asyncio.sleep(pause)
        finally:
            if self.state != LinkState.stopped:
                self.state = LinkState.standby

    async def _serve(self) -> str:
        async with self._http.ws_connect(self._url, heartbeat=None, autoping=True, timeout=WS_TIMEOUT) as ws:
            self._ws = ws
            try:
                if not await self._subscribe(ws):
                    return "refused"
                self.conn_id = uuid.uuid4().hex
                self.connections += 1
                self.auth_failures = 0
                self.state = LinkState.up
                log.info("WeCom AI bot long connection subscribed (%d so far)", self.connections)
                beat = asyncio.create_task(self._heartbeat(ws), name="wecom-aibot-ping")
                try:
                    return await self._read(ws, self.conn_id)
                finally:
                    beat.cancel()
                    await asyncio.gather(beat, return_exceptions=True)
            finally:
                self._ws = None
                self.conn_id = None
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(LinkError("the connection closed before WeCom answered", sent=True))
                self._pending.clear()

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        req_id = new_req_id(SUBSCRIBE)
        await ws.send_str(_dump(SUBSCRIBE, req_id, {"bot_id": self._bot_id, "secret": self._secret}))
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while True:
            msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed before the subscription was answered ({msg.type.name})")
            frame = _load(msg.data)
            if frame is None or _req_id(frame) != req_id:
                continue
            errcode = _errcode(frame)
            if errcode == 0:
                return True
            log.error(
                "WeCom refused the AI bot subscription: errcode %s %s (check WECOM_BOT_ID and WECOM_BOT_SECRET)",
                errcode,
                frame.get("errmsg", ""),
            )
            return False

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, conn_id: str) -> str:
        served = False  # it carried a callback, or stayed up a while: the backoff starts over
        opened = time.monotonic()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise ws.exception() or ConnectionError("websocket error")
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = _load(msg.data)
            if frame is None:
                log.warning("skipping a WeCom AI bot frame that is not a JSON object")
                continue
            cmd = frame.get("cmd")
            if cmd in (MSG_CALLBACK, EVENT_CALLBACK):
                served = True
                if _event_type(frame) == DISCONNECTED_EVENT:
                    return "replaced"
                self._spawn(frame, conn_id)
                continue
            req_id = _req_id(frame)
            if req_id.startswith(PING + "_"):
                self._missed = 0
                continue
            fut = self._pending.pop(req_id, None)
            if fut is not None and not fut.done():
                fut.set_result(frame)
        log.info("the WeCom AI bot connection closed (code %s)", ws.close_code)
        return "served" if served or time.monotonic() - opened > STABLE_SECONDS else "closed"

    def _spawn(self, frame: Frame, conn_id: str) -> None:
        # Not awaited here: taking a frame in may send requests whose answers this loop reads.
        task = asyncio.create_task(self._on_frame(frame, conn_id), name="wecom-aibot-frame")
        self._frames.add(task)
        task.add_done_callback(self._frame_done)

    def _frame_done(self, task: asyncio.Task[None]) -> None:
        self._frames.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("taking in a WeCom AI bot frame failed: %r", task.exception())

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._missed = 0
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            if self._missed >= MISSED_PINGS:
                log.warning("WeCom AI bot: %d pings unanswered, reconnecting", self._missed)
                await ws.close()
                return
            self._missed += 1
            await ws.send_str(_dump(PING, new_req_id(PING)))

    async def drain(self, grace: float) -> None:
        """Let frames being taken in finish (at shutdown, after ``run`` was cancelled)."""
        if self._frames:
            _, still = await asyncio.wait(set(self._frames), timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still)

    # --- requests ---------------------------------------------------------------------------

    async def request(self, cmd: str, body: Mapping[str, Any], *, req_id: str | None = None) -> Frame:
        """Send one frame and wait for WeCom's answer. Frames under one req_id go one at a time.
        ``LinkError``: not connected (``sent`` False), no answer in time or a refusal (``errcode``)."""
        rid = req_id or new_req_id(cmd)
        lock = self._locks.setdefault(rid, asyncio.Lock())
        try:
            async with lock:
                ws = self._ws
                if ws is None or ws.closed or self.conn_id is None:
                    raise LinkError("the WeCom AI bot long connection is not open in this process", sent=False)
                fut: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
                self._pending[rid] = fut
                try:
                    await ws.send_str(_dump(cmd, rid, body))
                except (aiohttp.ClientError, ConnectionError) as exc:
                    raise LinkError(f"sending failed: {exc}", sent=False) from exc
                try:
                    answer = await asyncio.wait_for(fut, ACK_TIMEOUT)
                except TimeoutError as exc:
                    raise LinkError(f"no answer to {cmd} within {ACK_TIMEOUT:.0f}s", sent=True) from exc
                finally:
                    self._pending.pop(rid, None)
        finally:
            if not lock.locked():
                self._locks.pop(rid, None)
        errcode = _errcode(answer)
        if errcode != 0:
            raise LinkError(f"{cmd} refused: errcode {errcode} {answer.get('errmsg', '')}", sent=True, errcode=errcode)
        return answer


def _dump(cmd: str, req_id: str, body: Mapping[str, Any] | None = None) -> str:
    frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": req_id}}
    if body is not None:
        frame["body"] = dict(body)
    return json.dumps(frame, ensure_ascii=False)


def _load(raw: str) -> dict[str, Any] | None:
    try:
        frame = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return frame if isinstance(frame, dict) else None


def _req_id(frame: Frame) -> str:
    headers = frame.get("headers")
    value = headers.get("req_id") if isinstance(headers, Mapping) else None
    return value if isinstance(value, str) else ""


def _errcode(frame: Frame) -> int:
    value = frame.get("errcode", 0)
    return value if isinstance(value, int) else -1


def _event_type(frame: Frame) -> str:
    body = frame.get("body")
    event = body.get("event") if isinstance(body, Mapping) else None
    value = event.get("eventtype") if isinstance(event, Mapping) else None
    return value if isinstance(value, str) else ""


def frame_req_id(frame: Frame) -> str:
    return _req_id(frame)
