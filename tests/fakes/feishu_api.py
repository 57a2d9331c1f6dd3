"""A fake Feishu open platform on loopback speaking the documented JSON and frames.

It plays every Feishu part the bot talks to: the tenant token endpoint, im/v1/messages (create,
reply, with the ``uuid`` dedupe), im/v1/images, bot/v3/info, the long-connection endpoint and its
WebSocket (frames built with the official SDK's protobuf ``Frame``), and the sender of event
callbacks: encrypted (AES-256-CBC, key sha256(Encrypt Key), random IV) and signed
(sha256(timestamp + nonce + Encrypt Key + body)) by code written here from the documentation,
independently of the bot's; tests check both against lark-oapi's own decrypt and verify code.

Error injection: ``expire_tokens`` (the next call with an old token answers 99991663) and
``failures`` (queued (status, code, headers) answers for the next message calls, e.g. a rate limit).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.fakes.loopback import LoopbackFake

if TYPE_CHECKING:
    from lark_oapi.ws.pb.pbbp2_pb2 import Frame

APP_ID = "cli_a1b2c3d4e5f6"
APP_SECRET = "feishu-app-secret-for-tests"
VERIFICATION_TOKEN = "feishu-verification-token"
ENCRYPT_KEY = "feishu-encrypt-key-for-tests"
BOT_OPEN_ID = "ou_bot000000000000000000000000000"
TENANT_KEY = "2ca1d211f64f6438"
SERVICE_ID = 7
TOKEN_CODES = {"invalid": 99991663}


def new_frame(**fields: Any) -> Frame:
    """The SDK's protobuf Frame. Imported inside the event loop: importing lark-oapi outside one
    makes its ws client module create (and leak) an event loop of its own."""
    from lark_oapi.ws.pb.pbbp2_pb2 import Frame

    return Frame(**fields)


def encrypt(plaintext: bytes, key: str = ENCRYPT_KEY) -> str:
    """What Feishu puts in ``{"encrypt": …}``: base64(iv + AES-256-CBC(PKCS#7(plaintext)))."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(padded) + enc.finalize()).decode()


def reference_signature(timestamp: str, nonce: str, body: bytes, key: str = ENCRYPT_KEY) -> str:
    return hashlib.sha256((timestamp + nonce + key).encode() + body).hexdigest()


@dataclass
class FakeFeishu(LoopbackFake):
    server: TestServer | None = None
    token_fetches: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    expired_tokens: set[str] = field(default_factory=set)
    # Every message shown: {"via": "create"|"reply", "receive_id_type", "receive_id", "reply_to",
    # "msg_type", "content" (parsed), "uuid", "message_id"}.
    messages: list[dict[str, Any]] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    bot_info_calls: int = 0
    # (status, code, headers) answers for the next message calls.
    failures: list[tuple[int, int, dict[str, str]]] = field(default_factory=list)
    failed_calls: int = 0
    gone_messages: set[str] = field(default_factory=set)  # replies to these answer 230011
    # Long connection.
    endpoint_calls: int = 0
    endpoint_code: int = 0
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    connections: int = 0
    most_open: int = 0  # the most sockets open at one time
    pings: int = 0
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)  # by frame message_id
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ping_interval: int = 120
    _by_uuid: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    # --- life cycle ---------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        new_frame()  # import the SDK now (seconds, blocking the loop), not while serving a socket
        return await super().start(port)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/open-apis/auth/v3/tenant_access_token/internal", self._token)
        app.router.add_post("/open-apis/im/v1/messages", self._create)
        app.router.add_post("/open-apis/im/v1/messages/{message_id}/reply", self._reply)
        app.router.add_post("/open-apis/im/v1/images", self._image)
        app.router.add_get("/open-apis/bot/v3/info", self._bot_info)
        app.router.add_post("/callback/ws/endpoint", self._endpoint)
        app.router.add_get("/ws", self._ws)

    async def closing(self) -> None:
        for ws in list(self.sockets):
            await ws.close()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings overrides that point the bot's Feishu channel at this fake."""
        values: dict[str, Any] = {
            "feishu_app_id": APP_ID,
            "feishu_app_secret": APP_SECRET,
            "feishu_verification_token": VERIFICATION_TOKEN,
            "feishu_encrypt_key": ENCRYPT_KEY,
            "feishu_api_base": self.base,
        }
        values.update(extra)
        return values

    # --- events Feishu pushes ----------------------------------------------------------

    def header(self, event_type: str, event_id: str | None = None) -> dict[str, Any]:
        return {
            "event_id": event_id or f"ev-{next(self._ids):08d}",
            "token": VERIFICATION_TOKEN,
            "create_time": "1773108000000",
            "event_type": event_type,
            "tenant_key": TENANT_KEY,
            "app_id": APP_ID,
        }

    def message(
        self,
        text: str,
        *,
        sender: str = "hr01",
        open_id: str | None = None,
        group: bool = False,
        mention_bot: bool = True,
        message_id: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """An im.message.receive_v1 event as documented (in a group, "@_user_1 " first if mentioned)."""
        mentions: list[dict[str, Any]] = []
        if group and mention_bot:
            text = f"@_user_1 {text}"
            mentions.append(
                {
                    "key": "@_user_1",
                    "id": {"union_id": "on_bot", "user_id": "", "open_id": BOT_OPEN_ID},
                    "name": "面试退出助手",
                    "tenant_key": TENANT_KEY,
                }
            )
        return {
            "schema": "2.0",
            "header": self.header("im.message.receive_v1", event_id),
            "event": {
                "sender": {
                    "sender_id": {
                        "union_id": f"on_{sender}",
                        "user_id": sender,
                        "open_id": open_id or f"ou_{sender}",
                    },
                    "sender_type": "user",
                    "tenant_key": TENANT_KEY,
                },
                "message": {
                    "message_id": message_id or f"om_{next(self._ids):08d}",
                    "root_id": "",
                    "parent_id": "",
                    "create_time": "1773108000000",
                    "update_time": "1773108000000",
                    "chat_id": "oc_group0001" if group else f"oc_p2p_{sender}",
                    "chat_type": "group" if group else "p2p",
                    "message_type": "text",
                    "content": json.dumps({"text": text}, ensure_ascii=False),
                    "mentions": mentions,
                    "user_agent": "Mozilla/5.0",
                },
            },
        }

    def card_click(
        self, button: dict[str, Any], *, sender: str = "hr01", card_message: dict[str, Any]
    ) -> dict[str, Any]:
        """A card.action.trigger event for a click on ``button`` of a card we were sent."""
        return {
            "schema": "2.0",
            "header": self.header("card.action.trigger"),
            "event": {
                "operator": {
                    "tenant_key": TENANT_KEY,
                    "user_id": sender,
                    "open_id": f"ou_{sender}",
                    "union_id": f"on_{sender}",
                },
                "token": "c-update-token",
                "action": {"value": button["value"], "tag": "button"},
                "host": "im_message",
                "context": {
                    "open_message_id": card_message["message_id"],
                    "open_chat_id": card_message.get("chat_id") or "oc_p2p_" + sender,
                },
            },
        }

    def callback(
        self, body: dict[str, Any], *, encrypted: bool = True, key: str = ENCRYPT_KEY
    ) -> tuple[bytes, dict[str, str]]:
        """The raw request Feishu sends for ``body``: encrypted and signed, or plain."""
        plain = json.dumps(body, ensure_ascii=False).encode()
        if not encrypted:
            return plain, {"Content-Type": "application/json"}
        raw = json.dumps({"encrypt": encrypt(plain, key)}).encode()
        timestamp, nonce = "1773108000", f"nonce{next(self._ids)}"
        headers = {
            "Content-Type": "application/json",
            "X-Lark-Request-Timestamp": timestamp,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": reference_signature(timestamp, nonce, raw, key),
        }
        return raw, headers

    async def post(self, client: TestClient, body: dict[str, Any], **kw: Any) -> Any:
        raw, headers = self.callback(body, **kw)
        return await client.post("/feishu/callback", data=raw, headers=headers)

    # --- API -----------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("app_id") != APP_ID or body.get("app_secret") != APP_SECRET:
            return web.json_response({"code": 10014, "msg": "app secret invalid"})
        self.token_fetches += 1
        token = f"t-{self.token_fetches}"
        self.valid_tokens.add(token)
        return web.json_response({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": 7200})

    def expire_tokens(self) -> None:
        self.expired_tokens |= self.valid_tokens
        self.valid_tokens.clear()

    def _auth(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or not token:
            return web.json_response({"code": 99991661, "msg": "Missing access token for authorization."}, status=400)
        if token not in self.valid_tokens:
            return web.json_response({"code": 99991663, "msg": "Invalid access token for authorization."}, status=400)
        return None

    def _failure(self) -> web.Response | None:
        if not self.failures:
            return None
        status, code, headers = self.failures.pop(0)
        self.failed_calls += 1
        return web.json_response(
            {"code": code, "msg": "request trigger frequency limit"}, status=status, headers=headers
        )

    def _show(self, record: dict[str, Any]) -> web.Response:
        uuid = record.get("uuid") or ""
        if uuid and uuid in self._by_uuid:  # Feishu: one message per uuid within an hour
            return web.json_response({"code": 0, "msg": "success", "data": {"message_id": self._by_uuid[uuid]}})
        message_id = f"om_sent{next(self._ids):06d}"
        record["message_id"] = message_id
        if uuid:
            self._by_uuid[uuid] = message_id
        self.messages.append(record)
        return web.json_response(
            {"code": 0, "msg": "success", "data": {"message_id": message_id, "chat_id": record.get("chat_id", "")}}
        )

    @staticmethod
    def _content(body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            content = json.loads(body["content"])  # must be a JSON *string*
        except (KeyError, TypeError, ValueError):
            return None
        return content if isinstance(content, dict) else None

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._failure()
        if refused:
            return refused
        body = await request.json()
        id_type = request.query.get("receive_id_type")
        content = self._content(body)
        if (
            id_type not in ("open_id", "user_id", "union_id", "email", "chat_id")
            or not body.get("receive_id")
            or content is None
        ):
            return web.json_response({"code": 230001, "msg": "invalid param"}, status=400)
        record = {
            "via": "create",
            "receive_id_type": id_type,
            "receive_id": body["receive_id"],
            "msg_type": body.get("msg_type"),
            "content": content,
            "uuid": body.get("uuid"),
        }
        if id_type == "chat_id":
            record["chat_id"] = body["receive_id"]
        return self._show(record)

    async def _reply(self, request: web.Request) -> web.Response:
        refused = self._auth(request) or self._failure()
        if refused:
            return refused
        message_id = request.match_info["message_id"]
        if message_id in self.gone_messages:
            return web.json_response({"code": 230011, "msg": "The message was withdrawn."}, status=400)
        body = await request.json()
        content = self._content(body)
        if content is None:
            return web.json_response({"code": 230001, "msg": "invalid param"}, status=400)
        return self._show(
            {
                "via": "reply",
                "reply_to": message_id,
                "msg_type": body.get("msg_type"),
                "content": content,
                "uuid": body.get("uuid"),
            }
        )

    async def _image(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        form = await request.post()
        image = form.get("image")
        if form.get("image_type") != "message" or image is None or isinstance(image, str):
            return web.json_response({"code": 234001, "msg": "Invalid request param."}, status=400)
        self.images.append(image.file.read())
        return web.json_response({"code": 0, "msg": "success", "data": {"image_key": f"img_v2_{len(self.images)}"}})

    async def _bot_info(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused:
            return refused
        self.bot_info_calls += 1
        bot = {
            "activate_status": 2,
            "app_name": "面试退出助手",
            "avatar_url": "",
            "ip_white_list": [],
            "open_id": BOT_OPEN_ID,
        }
        return web.json_response({"code": 0, "msg": "ok", "bot": bot})

    # --- long connection --------------------------------------------------------------

    async def _endpoint(self, request: web.Request) -> web.Response:
        self.endpoint_calls += 1
        body = await request.json()
        if self.endpoint_code:
            return web.json_response({"code": self.endpoint_code, "msg": "system busy"})
        if body.get("AppID") != APP_ID or body.get("AppSecret") != APP_SECRET:
            return web.json_response({"code": 1000040344, "msg": "invalid app credential"})
        device = f"d{next(self._ids)}"
        url = str(self.server.make_url("/ws")).replace("http://", "ws://") if self.server else ""
        config = {
            "ReconnectCount": -1,
            "ReconnectInterval": 120,
            "ReconnectNonce": 30,
            "PingInterval": self.ping_interval,
        }
        return web.json_response(
            {
                "code": 0,
                "msg": "ok",
                "data": {"URL": f"{url}?device_id={device}&service_id={SERVICE_ID}", "ClientConfig": config},
            }
        )

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        if request.query.get("service_id") != str(SERVICE_ID):
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self.sockets.append(ws)
        self.most_open = max(self.most_open, len(self.sockets))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                frame = new_frame()
                frame.ParseFromString(msg.data)
                headers = {h.key: h.value for h in frame.headers}
                if frame.method == 0 and headers.get("type") == "ping":
                    self.pings += 1
                    pong = new_frame(SeqID=0, LogID=0, service=frame.service, method=0)
                    h = pong.headers.add()
                    h.key, h.value = "type", "pong"
                    await ws.send_bytes(pong.SerializeToString())
                elif frame.method == 1:
                    answer = json.loads(frame.payload)
                    self.answers[headers["message_id"]] = {"headers": headers, "payload": answer}
                    self.answered.set()
        finally:
            self.sockets.remove(ws)
        return ws

    async def wait_connected(self, n: int = 1, timeout: float = 5.0) -> None:
        async def check() -> None:
            while self.connections < n or not self.sockets:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(check(), timeout)

    def data_frames(
        self, body: dict[str, Any], *, frame_id: str | None = None, parts: int = 1
    ) -> tuple[str, list[Frame]]:
        """The DATA frames (type "event") carrying ``body``, split into ``parts``."""
        frame_id = frame_id or f"f{next(self._ids)}"
        payload = json.dumps(body, ensure_ascii=False).encode()
        size = -(-len(payload) // parts)
        frames = []
        for seq in range(parts):
            frame = new_frame(SeqID=next(self._ids), LogID=0, service=SERVICE_ID, method=1)
            for key, value in (
                ("type", "event"),
                ("message_id", frame_id),
                ("sum", str(parts)),
                ("seq", str(seq)),
                ("trace_id", "tr-1"),
            ):
                h = frame.headers.add()
                h.key, h.value = key, value
            frame.payload = payload[seq * size : (seq + 1) * size]
            frames.append(frame)
        return frame_id, frames

    async def push(self, body: dict[str, Any], *, parts: int = 1, frame_id: str | None = None) -> str:
        """Push an event down the newest connection; the frame id to find its answer under."""
        frame_id, frames = self.data_frames(body, frame_id=frame_id, parts=parts)
        for frame in frames:
            await self.sockets[-1].send_bytes(frame.SerializeToString())
        return frame_id

    async def answer_to(self, frame_id: str, timeout: float = 5.0) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while frame_id not in self.answers:
                self.answered.clear()
                await self.answered.wait()
            return self.answers[frame_id]

        return await asyncio.wait_for(wait(), timeout)
