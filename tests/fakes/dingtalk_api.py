"""A fake DingTalk on loopback speaking the documented JSON.

It plays every DingTalk part the bot talks to: the OpenAPI (access token, 1:1 and group robot
messages), sessionWebhook endpoints, the custom group robot (checking the 加签 query
parameters), the Stream gateway (connections/open and the WebSocket), and the sender of
signed HTTP callbacks. Signatures are computed here independently of the bot's code.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.clock import Clock, FrozenClock, SystemClock
from tests.fakes.loopback import LoopbackFake

# The documented DingTalk samples, kept in tests/fixtures/ so a fresh clone runs the tests too.
SAMPLES = json.loads((Path(__file__).parents[1] / "fixtures" / "dingtalk_samples.json").read_text())
APP_KEY = "dingappkey123"
APP_SECRET = "app-secret-for-tests"
ROBOT_TOKEN = "robot-access-token"
ROBOT_SECRET = "SEC0123456789abcdef"


def reference_sign(secret: str, timestamp: str) -> str:
    """The documented algorithm: base64(HMAC-SHA256(secret, timestamp + "\\n" + secret))."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), digestmod=hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def ms(clock: FrozenClock) -> int:
    return int(clock.now().timestamp() * 1000)


@dataclass
class FakeDingTalk(LoopbackFake):
    server: TestServer | None = None
    # OpenAPI
    token_fetches: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    batch_sends: list[dict[str, Any]] = field(default_factory=list)
    group_sends: list[dict[str, Any]] = field(default_factory=list)
    flow_controlled: set[str] = field(default_factory=set)
    # Queued (status, body) answers for the next robot OpenAPI calls, e.g. a QPS limit.
    api_failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # sessionWebhook
    session_posts: list[dict[str, Any]] = field(default_factory=list)
    # Set: a sessionWebhook post is shown in the chat and then never answered.
    hang_session: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    # custom robot
    robot_calls: int = 0
    robot_throttle: int = 0  # answer this many next posts with 130101
    robot_posts: list[dict[str, Any]] = field(default_factory=list)
    robot_raw_queries: list[str] = field(default_factory=list)
    robot_sign_failures: int = 0
    # Stream gateway
    open_status: int = 200
    open_calls: int = 0
    open_bodies: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    acks: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _tickets: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _stamps: itertools.count[int] = field(default_factory=itertools.count)
    # DingTalk's idea of now (signature freshness, frame times): tests pass their FrozenClock.
    clock: Clock = field(default_factory=SystemClock)

    # --- life cycle ---------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1.0/oauth2/accessToken", self._token)
        app.router.add_post("/v1.0/robot/oToMessages/batchSend", self._batch_send)
        app.router.add_post("/v1.0/robot/groupMessages/send", self._group_send)
        app.router.add_post("/robot/sendBySession", self._session)
        app.router.add_post("/robot/send", self._robot)
        app.router.add_post("/v1.0/gateway/connections/open", self._open)
        app.router.add_get("/connect", self._connect)

    async def closing(self) -> None:
        self.released.set()
        for ws in list(self.sockets):
            await ws.close()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings overrides that point the bot's DingTalk channel at this fake."""
        values: dict[str, Any] = {
            "dingtalk_app_key": APP_KEY,
            "dingtalk_app_secret": APP_SECRET,
            "dingtalk_api_base": self.base,
            "dingtalk_oapi_base": self.base,
        }
        values.update(extra)
        return values

    def robot_webhook(self) -> str:
        return f"{self.base}/robot/send?access_token={ROBOT_TOKEN}"

    # --- DingTalk pushing messages to the bot ------------------------------------------

    def message(
        self,
        text: str,
        clock: FrozenClock,
        *,
        msg_id: str | None = None,
        sender: str = "hr01",
        group: bool = True,
        webhook_minutes: float = 90,
    ) -> dict[str, Any]:
        """A robot callback body shaped like the documented sample."""
        body = copy.deepcopy(SAMPLES["http_callback_body"])
        now = ms(clock)
        body.update(
            {
                "text": {"content": text},
                "msgId": msg_id or f"msg-{next(self._ids)}",
                "senderStaffId": sender,
                "conversationType": "2" if group else "1",
                "createAt": now,
                "sessionWebhook": f"{self.base}/robot/sendBySession?session=s-{sender}",
                "sessionWebhookExpiredTime": now + int(webhook_minutes * 60_000),
            }
        )
        if not group:
            body.pop("conversationTitle", None)
            body["conversationId"] = f"cid-dm-{sender}"
        return body

    async def post_callback(
        self,
        client: TestClient,
        body: dict[str, Any],
        clock: FrozenClock,
        *,
        timestamp: int | None = None,
        secret: str = APP_SECRET,
    ) -> Any:
        # DingTalk's timestamp is the send time in ms; a sign is good for one message only, so
        # callbacks sent while the test clock stands still get distinct milliseconds.
        ts = str(timestamp if timestamp is not None else ms(clock) - next(self._stamps))
        headers = {"timestamp": ts, "sign": reference_sign(secret, ts), "Content-Type": "application/json"}
        return await client.post("/dingtalk/callback", data=json.dumps(body, ensure_ascii=False), headers=headers)

    def frame(self, body: dict[str, Any], message_id: str = "m-1") -> dict[str, Any]:
        """A Stream CALLBACK frame carrying ``body``, shaped like the documented sample."""
        frame = copy.deepcopy(SAMPLES["stream_frame"])
        frame["headers"]["messageId"] = message_id
        frame["headers"]["time"] = str(int(self.clock.now().timestamp() * 1000))
        frame["data"] = json.dumps(body, ensure_ascii=False)
        return frame

    async def push(self, frame: dict[str, Any]) -> None:
        """Send a frame down the newest Stream connection."""
        await self.sockets[-1].send_str(json.dumps(frame, ensure_ascii=False))

    # --- OpenAPI --------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("appKey") != APP_KEY or body.get("appSecret") != APP_SECRET:
            return web.json_response(
                {"code": "invalidClientIdOrSecret", "message": "无效的clientId或者clientSecret"}, status=400
            )
        self.token_fetches += 1
        token = f"token-{self.token_fetches}"
        self.valid_tokens.add(token)
        return web.json_response({"accessToken": token, "expireIn": 7200})

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    async def _robot_api(self, request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
        if request.headers.get("x-acs-dingtalk-access-token") not in self.valid_tokens:
            answer = {"code": "InvalidAuthentication", "message": "不合法的access_token", "requestid": "r-1"}
            return None, web.json_response(answer, status=401)
        if self.api_failures:
            status, answer = self.api_failures.pop(0)
            return None, web.json_response(answer, status=status)
        body = await request.json()
        if body.get("robotCode") != APP_KEY:
            return None, web.json_response({"code": "invalidParameter.robotCode.notExist"}, status=400)
        try:
            param = json.loads(body["msgParam"])  # must be a JSON *string*
            assert isinstance(param, dict)
        except (KeyError, TypeError, ValueError, AssertionError):
            answer = {"code": "invalidParameter.msgParam.invalid", "message": "msgParam must be JSON"}
            return None, web.json_response(answer, status=400)
        return {**body, "param": param}, None

    async def _batch_send(self, request: web.Request) -> web.Response:
        body, error = await self._robot_api(request)
        if error is not None:
            return error
        assert body is not None
        users = body.get("userIds") or []
        if not users or len(users) > 20:
            return web.json_response({"code": "invalidParameter.userIds.overMax"}, status=400)
        throttled = [u for u in users if u in self.flow_controlled]
        if not throttled:
            self.batch_sends.append(body)
        return web.json_response(
            {
                "processQueryKey": f"pqk-{next(self._ids)}",
                "invalidStaffIdList": [],
                "flowControlledStaffIdList": throttled,
            }
        )

    async def _group_send(self, request: web.Request) -> web.Response:
        body, error = await self._robot_api(request)
        if error is not None:
            return error
        assert body is not None
        if not body.get("openConversationId"):
            return web.json_response({"code": "invalid.openConversationId"}, status=400)
        self.group_sends.append(body)
        return web.json_response({"processQueryKey": f"pqk-{next(self._ids)}"})

    # --- webhooks -------------------------------------------------------------------

    async def _session(self, request: web.Request) -> web.Response:
        self.session_posts.append({"session": request.query.get("session"), "body": await request.json()})
        if self.hang_session:
            await self.released.wait()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _robot(self, request: web.Request) -> web.Response:
        self.robot_calls += 1
        self.robot_raw_queries.append(request.url.raw_query_string)
        if request.query.get("access_token") != ROBOT_TOKEN:
            return web.json_response({"errcode": 300001, "errmsg": "token is not exist"})
        ts, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
        if not ts.isdigit() or abs(self.clock.now().timestamp() * 1000 - int(ts)) > 3600_000:
            return web.json_response({"errcode": 310000, "errmsg": "invalid timestamp"})
        if not hmac.compare_digest(sign, reference_sign(ROBOT_SECRET, ts)):
            self.robot_sign_failures += 1
            return web.json_response({"errcode": 310000, "errmsg": "sign not match"})
        if self.robot_throttle > 0:
            self.robot_throttle -= 1
            return web.json_response({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        self.robot_posts.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    # --- Stream gateway ---------------------------------------------------------------

    async def _open(self, request: web.Request) -> web.Response:
        self.open_calls += 1
        body = await request.json()
        self.open_bodies.append(body)
        if self.open_status != 200:
            return web.json_response({"code": "ServiceUnavailable"}, status=self.open_status)
        if body.get("clientId") != APP_KEY or body.get("clientSecret") != APP_SECRET:
            return web.json_response({"code": "invalidClientIdOrSecret"}, status=400)
        ticket = f"ticket-{next(self._ids)}"
        self._tickets.add(ticket)
        endpoint = self.base.replace("http://", "ws://") + "/connect"
        return web.json_response({"endpoint": endpoint, "ticket": ticket})

    async def _connect(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            raise web.HTTPForbidden()
        self._tickets.discard(ticket)  # single use
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self.sockets.append(ws)
        try:
            async for msg in ws:
                self.acks.append(json.loads(msg.data))
        finally:
            self.sockets.remove(ws)
        return ws

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.connections < count or not self.sockets:
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not connect ({self.connections} connections)")
            await asyncio.sleep(0.02)
