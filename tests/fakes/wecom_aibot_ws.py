"""A fake WeCom AI bot long-connection gateway (wss://openws.work.weixin.qq.com) on loopback.

It speaks the documented frames (developer.work.weixin.qq.com/document/path/101463; the shapes
as typed by the official @wecom/aibot-node-sdk ``src/types``), and is checked against a client
other than ours: tests/channels/test_wecom_longconn.py connects the ``wecom-aibot-sdk`` client (the Python
port of the official SDK, from PyPI) to it.

- ``aibot_subscribe`` with the right bot id and secret → errcode 0; otherwise 853000 "invalid
  bot_id or secret" (the answer WeCom gives a wrong secret). One connection per bot: a newer
  subscription gets the bot, and the older connection is sent ``disconnected_event`` and closed.
- ``ping`` → errcode 0.
- ``aibot_respond_msg`` under the req_id of a message this connection was sent, and
  ``aibot_respond_update_msg`` under the req_id of an event (card click) → errcode 0, recorded;
  any other req_id → 846605 "invalid req_id".
- ``aibot_send_msg`` with a ``chatid`` → errcode 0, recorded.

Tests push callbacks with ``message`` / ``click`` (a new req_id each, like a redelivery), cut the
connection (``drop``), make a newer connection take over (``replace``) or stop answering pings.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.fakes.loopback import LoopbackFake

BOT_ID = "aibot-test-id"
BOT_SECRET = "aibot-test-secret"
WRONG_SECRET = 853000
INVALID_REQ_ID = 846605


@dataclass
class Conn:
    ws: web.WebSocketResponse
    bot_id: str = ""
    subscribed: bool = False
    callbacks: set[str] = field(default_factory=set)  # req_ids of messages sent on it
    events: set[str] = field(default_factory=set)  # req_ids of events sent on it


@dataclass
class FakeAiBotGateway(LoopbackFake):
    bot_id: str = BOT_ID
    secret: str = BOT_SECRET
    server: TestServer | None = None
    conns: list[Conn] = field(default_factory=list)
    subscribes: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    pings: int = 0
    answer_pings: bool = True
    refuse_responds: bool = False  # answer every aibot_respond_msg with 846605
    responds: list[dict[str, Any]] = field(default_factory=list)  # aibot_respond_msg frames
    updates: list[dict[str, Any]] = field(default_factory=list)  # aibot_respond_update_msg frames
    sends: list[dict[str, Any]] = field(default_factory=list)  # aibot_send_msg frames
    rejected: list[dict[str, Any]] = field(default_factory=list)  # replies refused (bad req_id)
    said: list[dict[str, Any]] = field(default_factory=list)  # responds and sends, in order
    max_live: int = 0  # most subscribed connections of the bot at one time
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- server ---------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._socket)

    async def closing(self) -> None:
        for conn in list(self.conns):
            await conn.ws.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.port}/"

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """App settings for long-connection mode only (no public URL, no callback secrets)."""
        values: dict[str, Any] = {"wecom_bot_id": self.bot_id, "wecom_bot_secret": self.secret}
        values["wecom_bot_ws_url"] = self.url
        values.update(overrides)
        return values

    def live(self) -> list[Conn]:
        return [c for c in self.conns if c.subscribed and not c.ws.closed]

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = Conn(ws)
        self.conns.append(conn)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._frame(conn, json.loads(msg.data))
        finally:
            conn.subscribed = False
            self.conns.remove(conn)
        return ws

    async def _answer(self, conn: Conn, req_id: str, errcode: int = 0, errmsg: str = "ok") -> None:
        if not conn.ws.closed:
            await conn.ws.send_json({"headers": {"req_id": req_id}, "errcode": errcode, "errmsg": errmsg})

    async def _frame(self, conn: Conn, frame: dict[str, Any]) -> None:
        cmd = frame.get("cmd")
        req_id = frame["headers"]["req_id"]
        body = frame.get("body") or {}
        if cmd == "aibot_subscribe":
            self.subscribes.append(body)
            if body.get("bot_id") != self.bot_id or body.get("secret") != self.secret:
                self.refused += 1
                await self._answer(conn, req_id, WRONG_SECRET, "invalid bot_id or secret")
                return
            older = [c for c in self.live() if c.bot_id == self.bot_id]
            conn.bot_id, conn.subscribed = self.bot_id, True
            await self._answer(conn, req_id)
            self.max_live = max(self.max_live, len(self.live()))
            for old in older:  # one connection per bot: the newer one wins
                old.subscribed = False
                await self._send(old, "aibot_event_callback", self._event_body("disconnected_event", "sys"))
                await old.ws.close()
            return
        if not conn.subscribed:
            await self._answer(conn, req_id, 40001, "not subscribed")
            return
        if cmd == "ping":
            self.pings += 1
            if self.answer_pings:
                await self._answer(conn, req_id)
            return
        if cmd in ("aibot_respond_msg", "aibot_respond_update_msg"):
            # A message's req_id takes messages; an event's (a card click) takes a card update.
            allowed = conn.callbacks if cmd == "aibot_respond_msg" else conn.events
            if req_id not in allowed or (self.refuse_responds and cmd == "aibot_respond_msg"):
                self.rejected.append(frame)
                await self._answer(conn, req_id, INVALID_REQ_ID, "invalid req_id")
                return
            if cmd == "aibot_respond_msg":
                self.responds.append(frame)
                self.said.append(frame)
            else:
                self.updates.append(frame)
            await self._answer(conn, req_id)
            return
        if cmd == "aibot_send_msg":
            if not body.get("chatid"):
                await self._answer(conn, req_id, 40058, "chatid missing")
                return
            self.sends.append(frame)
            self.said.append(frame)
            await self._answer(conn, req_id)
            return
        await self._answer(conn, req_id, 40008, f"unknown cmd {cmd}")

    # --- what tests push ------------------------------------------------------------------

    async def _send(self, conn: Conn, cmd: str, body: dict[str, Any]) -> str:
        req_id = f"cb_{next(self._ids)}_{int(time.time() * 1000)}"
        (conn.callbacks if cmd == "aibot_msg_callback" else conn.events).add(req_id)
        await conn.ws.send_json({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})
        return req_id

    def _base(self, user: str, msgid: str, chatid: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "msgid": msgid,
            "aibotid": self.bot_id,
            "chattype": "group" if chatid else "single",
            "from": {"userid": user},
            "create_time": int(time.time()),
        }
        if chatid:
            body["chatid"] = chatid
        return body

    def _event_body(self, eventtype: str, user: str, **fields: Any) -> dict[str, Any]:
        body = self._base(user, f"ev{next(self._ids)}", None)
        body["msgtype"] = "event"
        body["event"] = {"eventtype": eventtype, **fields}
        return body

    async def wait_subscribed(self, n: int = 1, timeout: float = 10.0) -> Conn:
        deadline = time.monotonic() + timeout
        while len([s for s in self.subscribes if s.get("secret") == self.secret]) < n or not self.live():
            if time.monotonic() > deadline:
                raise AssertionError(f"no subscribed connection (subscribes: {len(self.subscribes)})")
            await asyncio.sleep(0.02)
        return self.live()[-1]

    async def message(self, user: str, text: str, *, msgid: str, chatid: str | None = None) -> str:
        """An aibot_msg_callback text message on the live connection; its req_id."""
        conn = await self.wait_subscribed()
        body = self._base(user, msgid, chatid)
        body["msgtype"] = "text"
        body["text"] = {"content": text}
        return await self._send(conn, "aibot_msg_callback", body)

    async def click(self, user: str, *, event_key: str, task_id: str, chatid: str | None = None) -> str:
        """A template_card_event (a button of a card pressed)."""
        conn = await self.wait_subscribed()
        body = self._event_body("template_card_event", user, event_key=event_key, task_id=task_id)
        if chatid:
            body["chattype"], body["chatid"] = "group", chatid
        return await self._send(conn, "aibot_event_callback", body)

    async def enter_chat(self, user: str) -> str:
        conn = await self.wait_subscribed()
        return await self._send(conn, "aibot_event_callback", self._event_body("enter_chat", user))

    async def drop(self) -> None:
        """Cut the live connection (network trouble, gateway restart)."""
        for conn in self.live():
            conn.subscribed = False
            await conn.ws.close()

    async def replace(self) -> None:
        """What WeCom does when a newer connection of the bot subscribes elsewhere."""
        for conn in self.live():
            conn.subscribed = False
            await self._send(conn, "aibot_event_callback", self._event_body("disconnected_event", "sys"))
            await conn.ws.close()

    @staticmethod
    def content(frame: dict[str, Any]) -> str:
        """The text of a reply or push frame (stream, markdown or a card's texts)."""
        body = frame["body"]
        kind = body.get("msgtype")
        if kind == "stream":
            return str(body["stream"]["content"])
        if kind == "markdown":
            return str(body["markdown"]["content"])
        return json.dumps(body.get("template_card", body), ensure_ascii=False)
