"""A fake WeCom server API on loopback, speaking the documented JSON, plus a 'WeCom side' that
encrypts callbacks with wechatpy exactly as WeCom would.

The fake records every request and can be told to answer errcodes (42001, 45009, ...) or HTTP
errors for the next calls of one endpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from bot.channels.wecom.crypto import signature
from bot.clock import Clock, SystemClock
from tests.fakes.loopback import LoopbackFake

# The official Tencent sample app (its vectors: tests/fixtures/wecom_vectors.json).
CORP_ID = "ww1436e0e65a779aee"
TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
AGENT_ID = 1000002
SECRET = "app-secret-for-tests"
BOT_TOKEN = "bot-token-for-tests"
BOT_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
ROBOT_KEY = "robot-key-for-tests"


@dataclass
class Call:
    path: str
    query: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeWeCom(LoopbackFake):
    corp_id: str = CORP_ID
    secret: str = SECRET
    robot_key: str = ROBOT_KEY
    expires_in: int = 7200
    calls: list[Call] = field(default_factory=list)
    # path → queued answers for the next calls: an int is an HTTP status, a dict is a JSON body.
    failures: dict[str, list[int | dict[str, Any]]] = field(default_factory=dict)
    tokens_issued: list[str] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)
    used_response_codes: set[str] = field(default_factory=set)
    server: TestServer | None = None
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    # 微信客服: every message customers sent, in order; sync_msg pages through it by cursor.
    kf_messages: list[dict[str, Any]] = field(default_factory=list)
    kf_page: int = 1000
    kf_cursors_seen: list[str] = field(default_factory=list)
    # message/send as members see it: WeCom shows a repeat sent with enable_duplicate_check within
    # duplicate_check_interval (default 1800 s) only once.
    delivered: list[dict[str, Any]] = field(default_factory=list)
    _delivered_at: dict[str, float] = field(default_factory=dict)
    # Set: message/send delivers the message and then never answers (the caller is killed meanwhile).
    hang_sends: bool = False
    released: asyncio.Event = field(default_factory=asyncio.Event)
    # WeCom's idea of now (message send_time): tests pass their FrozenClock.
    clock: Clock = field(default_factory=SystemClock)

    # --- control -------------------------------------------------------------------

    def fail_next(self, path: str, *answers: int | dict[str, Any]) -> None:
        self.failures.setdefault(path, []).extend(answers)

    def expire_tokens(self) -> None:
        """Every token issued so far is now answered with 42001."""
        self.expired.update(self.tokens_issued)

    def sent(self, path: str) -> list[dict[str, Any]]:
        return [c.body for c in self.calls if c.path == path]

    @property
    def base_url(self) -> str:
        return self.base

    def response_url(self, code: str) -> str:
        return f"{self.base_url}/cgi-bin/aibot/response?response_code={code}"

    # --- endpoints -------------------------------------------------------------------

    def _queued(self, path: str) -> web.Response | None:
        queue = self.failures.get(path)
        if not queue:
            return None
        answer = queue.pop(0)
        if isinstance(answer, int):
            return web.json_response({"errcode": -1, "errmsg": "system busy"}, status=answer)
        return web.json_response(answer)

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token")
        if not token:
            return web.json_response({"errcode": 41001, "errmsg": "access_token missing"})
        if token in self.expired:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if token not in self.tokens_issued:
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        return None

    async def _record(self, request: web.Request, path: str) -> dict[str, Any]:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        self.calls.append(Call(path, dict(request.query), body))
        return body

    async def gettoken(self, request: web.Request) -> web.Response:
        await self._record(request, "gettoken")
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if queued := self._queued("gettoken"):
            return queued
        token = f"token-{next(self._seq)}"
        self.tokens_issued.append(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in})

    async def message_send(self, request: web.Request) -> web.Response:
        body = await self._record(request, "message/send")
        if problem := self._token_error(request):
            return problem
        if queued := self._queued("message/send"):
            return queued
        msgtype = body.get("msgtype", "")
        key = json.dumps([body.get("touser"), msgtype, body.get(msgtype)], sort_keys=True, ensure_ascii=False)
        window = float(body.get("duplicate_check_interval") or 1800)
        last = self._delivered_at.get(key)
        if not (body.get("enable_duplicate_check") == 1 and last is not None and time.monotonic() - last < window):
            self.delivered.append(body)
            self._delivered_at[key] = time.monotonic()
        if self.hang_sends:
            await self.released.wait()
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"msg-{len(self.calls)}"}
        if body.get("msgtype") == "template_card":
            answer["response_code"] = f"send-code-{len(self.calls)}"
        return web.json_response(answer)

    async def update_template_card(self, request: web.Request) -> web.Response:
        body = await self._record(request, "message/update_template_card")
        if problem := self._token_error(request):
            return problem
        if queued := self._queued("message/update_template_card"):
            return queued
        code = body.get("response_code", "")
        if not code or code in self.used_response_codes:
            return web.json_response({"errcode": 40001, "errmsg": "response_code used or invalid"})
        self.used_response_codes.add(code)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def webhook_send(self, request: web.Request) -> web.Response:
        await self._record(request, "webhook/send")
        if request.query.get("key") != self.robot_key:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        if queued := self._queued("webhook/send"):
            return queued
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def aibot_response(self, request: web.Request) -> web.Response:
        await self._record(request, "aibot/response")
        code = request.query.get("response_code", "")
        if queued := self._queued("aibot/response"):
            return queued
        if code in self.used_response_codes:
            return web.json_response({"errcode": 40001, "errmsg": "response_url already used"})
        self.used_response_codes.add(code)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def kf_customer_says(self, external_userid: str, text: str, open_kfid: str = "wkTESTKF") -> str:
        msgid = f"from_msgid_{next(self._seq)}"
        self.kf_messages.append(
            {
                "msgid": msgid,
                "open_kfid": open_kfid,
                "external_userid": external_userid,
                "send_time": int(self.clock.now().timestamp()),
                "origin": 3,
                "msgtype": "text",
                "text": {"content": text},
            }
        )
        return msgid

    async def kf_sync_msg(self, request: web.Request) -> web.Response:
        body = await self._record(request, "kf/sync_msg")
        if problem := self._token_error(request):
            return problem
        if queued := self._queued("kf/sync_msg"):
            return queued
        cursor = str(body.get("cursor") or "")
        self.kf_cursors_seen.append(cursor)
        start = int(cursor[1:]) if cursor.startswith("c") else 0
        limit = min(int(body.get("limit") or 1000), self.kf_page)
        page = [m for m in self.kf_messages[start : start + limit] if m["open_kfid"] == body.get("open_kfid")]
        end = min(start + limit, len(self.kf_messages))
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "next_cursor": f"c{end}",
                "has_more": 1 if end < len(self.kf_messages) else 0,
                "msg_list": page,
            }
        )

    async def kf_send_msg(self, request: web.Request) -> web.Response:
        body = await self._record(request, "kf/send_msg")
        if problem := self._token_error(request):
            return problem
        if queued := self._queued("kf/send_msg"):
            return queued
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "msgid": body.get("msgid") or f"kfmsg-{len(self.calls)}"}
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/kf/sync_msg", self.kf_sync_msg)
        app.router.add_post("/cgi-bin/kf/send_msg", self.kf_send_msg)
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/message/send", self.message_send)
        app.router.add_post("/cgi-bin/message/update_template_card", self.update_template_card)
        app.router.add_post("/cgi-bin/webhook/send", self.webhook_send)
        app.router.add_post("/cgi-bin/aibot/response", self.aibot_response)

    async def closing(self) -> None:
        self.released.set()


# --- the WeCom side of callbacks -----------------------------------------------------------


class WeComSide:
    """Builds encrypted, signed callbacks the way WeCom's servers do (wechatpy as the client)."""

    def __init__(self, token: str = TOKEN, aes_key: str = AES_KEY, corp_id: str = CORP_ID) -> None:
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self._nonce = itertools.count(1000)

    def nonce(self) -> str:
        return str(next(self._nonce))

    def app_post(self, plaintext_xml: str, timestamp: int | None = None) -> tuple[str, bytes]:
        """(path with query, body) for POST /wecom/callback."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = self.nonce()
        envelope = self.crypto.encrypt_message(plaintext_xml, nonce, ts)
        # encrypt_message returns <xml><Encrypt/><MsgSignature/>...; WeCom puts the signature in the URL.
        enc = envelope.split("<Encrypt><![CDATA[", 1)[1].split("]]></Encrypt>", 1)[0]
        sig = signature(self.token, ts, nonce, enc)
        body = (
            f"<xml><ToUserName><![CDATA[{self.crypto.corp_id}]]></ToUserName>"
            f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        )
        query = urlencode({"msg_signature": sig, "timestamp": ts, "nonce": nonce})
        return f"/wecom/callback?{query}", body.encode()

    def bot_post(self, payload: dict[str, Any], timestamp: int | None = None) -> tuple[str, bytes]:
        """(path with query, body) for POST /wecom/bot/callback: JSON {"encrypt": ...}, receiveid ""."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = self.nonce()
        enc = PrpCrypto(self.crypto.key).encrypt(json.dumps(payload, ensure_ascii=False), "").decode()
        sig = signature(self.token, ts, nonce, enc)
        query = urlencode({"msg_signature": sig, "timestamp": ts, "nonce": nonce})
        return f"/wecom/bot/callback?{query}", json.dumps({"encrypt": enc}).encode()


def text_xml(user: str, content: str, msg_id: int, create_time: int = 1700000000) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    )


def kf_event_xml(token: str, open_kfid: str = "wkTESTKF", create_time: int = 1700000002) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><CreateTime>{create_time}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
        f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>"
    )


def card_click_xml(
    user: str, *, task_id: str, event_key: str, response_code: str, create_time: int = 1700000001
) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{event_key}]]></EventKey>"
        f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
        f"<ResponseCode><![CDATA[{response_code}]]></ResponseCode><AgentID>{AGENT_ID}</AgentID></xml>"
    )


def aibot_text(user: str, content: str, *, msgid: str, response_url: str, chatid: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "msgid": msgid,
        "aibotid": "AIBOTID",
        "chattype": "group" if chatid else "single",
        "from": {"userid": user},
        "response_url": response_url,
        "msgtype": "text",
        "text": {"content": content},
    }
    if chatid:
        data["chatid"] = chatid
    return data


def wecom_settings(fake: FakeWeCom, **overrides: Any) -> dict[str, Any]:
    """Settings overrides that switch on the app, the AI bot and the robot against ``fake``."""
    values: dict[str, Any] = {
        "wecom_corp_id": CORP_ID,
        "wecom_agent_id": AGENT_ID,
        "wecom_secret": SECRET,
        "wecom_token": TOKEN,
        "wecom_aes_key": AES_KEY,
        "wecom_bot_token": BOT_TOKEN,
        "wecom_bot_aes_key": BOT_AES_KEY,
        "wecom_robot_key": ROBOT_KEY,
        "wecom_api_base": fake.base_url,
    }
    values.update(overrides)
    return values
