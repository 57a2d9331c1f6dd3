"""DingTalk HTTP APIs, all through the app's one ``aiohttp.ClientSession`` with timeouts.

- OpenAPI (``api.dingtalk.com``): access token, 1:1 robot messages (oToMessages/batchSend),
  group robot messages (groupMessages/send). Errors come as non-2xx with ``{"code", "message"}``.
- Webhooks (``oapi.dingtalk.com``): a message's ``sessionWebhook`` and the custom group robot.
  Errors come as HTTP 200 with a non-zero ``errcode``.

The access token is kept by ``bot.channels.tokens`` (memory + shared ``shared_token`` row, fetched
by one coroutine at a time) and dropped when DingTalk calls it invalid.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.channels.dingtalk.sign import dingtalk_sign
from bot.channels.tokens import TokenCache
from bot.clock import Clock
from storage.db import SessionMaker

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=10)
TOKEN_MARGIN_SECONDS = 300  # refresh five minutes before DingTalk says the token expires
# Custom-robot webhook errcodes meaning "too many messages": 20/min per robot, then 10 min blocked.
ROBOT_THROTTLE_CODES = frozenset({"130101", "660026"})


class DingTalkError(Exception):
    """A DingTalk call failed. ``code`` is the OpenAPI ``code`` or the webhook ``errcode``."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(f"{message} (status={status}, code={code or '-'})")
        self.status = status
        self.code = code

    @property
    def auth_failed(self) -> bool:
        return self.status == 401 or self.code == "InvalidAuthentication"

    @property
    def throttled(self) -> bool:
        return "QpsLimit" in self.code or "QpmLimit" in self.code or self.code in ROBOT_THROTTLE_CODES

    @property
    def permanent(self) -> bool:
        """Retrying the same request will not help (bad parameters, unknown user, robot stopped)."""
        if self.throttled or self.auth_failed or self.status is None:
            return False
        return 400 <= self.status < 500 and self.status not in (408, 429)


async def _read_json(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.read()
    try:
        return json.loads(raw) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"message": raw[:200].decode(errors="replace")}


class OpenApi:
    """The robot OpenAPI of one DingTalk internal app."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        sessions: SessionMaker,
        clock: Clock,
        app_key: str,
        app_secret: str,
        robot_code: str,
        base_url: str,
    ) -> None:
        self._http = http
        self._sessions = sessions
        self._clock = clock
        self._app_key = app_key
        self._app_secret = app_secret
        self.robot_code = robot_code
        self._base = base_url.rstrip("/")
        # The stored expiry already has TOKEN_MARGIN_SECONDS taken off (see _fetch_token).
        self.tokens = TokenCache(key=f"dingtalk:{app_key}", fetch=self._fetch_token, sessions=sessions, clock=clock)

    @property
    def token_key(self) -> str:
        return self.tokens.key

    async def access_token(self) -> str:
        return await self.tokens.get()

    async def _fetch_token(self) -> tuple[str, datetime]:
        now = self._clock.now()
        url = f"{self._base}/v1.0/oauth2/accessToken"
        body = {"appKey": self._app_key, "appSecret": self._app_secret}
        async with self._http.post(url, json=body, timeout=TIMEOUT) as resp:
            data = await _read_json(resp)
            if resp.status != 200 or not isinstance(data, dict) or not data.get("accessToken"):
                detail = data.get("message", "") if isinstance(data, dict) else ""
                code = str(data.get("code", "")) if isinstance(data, dict) else ""
                raise DingTalkError(f"access token refused: {detail}", status=resp.status, code=code)
        expire_in = int(data.get("expireIn") or 7200)
        log.info("fetched a DingTalk access token valid for %ss", expire_in)
        return str(data["accessToken"]), now + timedelta(seconds=max(60, expire_in - TOKEN_MARGIN_SECONDS))

    async def invalidate(self, token: str) -> None:
        """Forget a token DingTalk refused, here and for the other replicas."""
        await self.tokens.invalidate(token)

    async def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST one OpenAPI call; a refused token is dropped and the call tried once more."""
        for attempt in (1, 2):
            token = await self.access_token()
            headers = {"x-acs-dingtalk-access-token": token}
            async with self._http.post(f"{self._base}{path}", json=body, headers=headers, timeout=TIMEOUT) as resp:
                data = await _read_json(resp)
                status = resp.status
            if 200 <= status < 300 and isinstance(data, dict):
                return data
            fields = data if isinstance(data, dict) else {}
            error = DingTalkError(
                f"{path}: {fields.get('message', '')}", status=status, code=str(fields.get("code", ""))
            )
            if error.auth_failed and attempt == 1:
                log.warning("DingTalk refused the access token; fetching a new one")
                await self.invalidate(token)
                continue
            raise error
        raise AssertionError("unreachable")

    async def batch_send(self, user_ids: Sequence[str], msg_key: str, msg_param: Mapping[str, Any]) -> dict[str, Any]:
        """1:1 robot messages to at most 20 users; per-user failures are in the answer's lists."""
        return await self.call(
            "/v1.0/robot/oToMessages/batchSend",
            {
                "robotCode": self.robot_code,
                "userIds": list(user_ids),
                "msgKey": msg_key,
                "msgParam": json.dumps(msg_param, ensure_ascii=False),
            },
        )

    async def group_send(self, open_conversation_id: str, msg_key: str, msg_param: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call(
            "/v1.0/robot/groupMessages/send",
            {
                "robotCode": self.robot_code,
                "openConversationId": open_conversation_id,
                "msgKey": msg_key,
                "msgParam": json.dumps(msg_param, ensure_ascii=False),
            },
        )


async def post_webhook(
    http: aiohttp.ClientSession, url: str, body: Mapping[str, Any], *, params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """POST to an oapi-style webhook; a non-zero ``errcode`` (sent with HTTP 200) raises."""
    async with http.post(url, json=body, params=params, timeout=TIMEOUT) as resp:
        data = await _read_json(resp)
        status = resp.status
    fields = data if isinstance(data, dict) else {}
    errcode = fields.get("errcode", 0 if status == 200 else None)
    if status != 200 or errcode != 0:
        raise DingTalkError(f"webhook: {fields.get('errmsg', '')}", status=status, code=str(errcode or ""))
    return fields


async def post_custom_robot(
    http: aiohttp.ClientSession, webhook: str, body: Mapping[str, Any], *, secret: str | None, now_ms: int
) -> dict[str, Any]:
    """Post to a custom group robot. With 加签 the raw base64 sign goes to ``params``, which
    URL-encodes it exactly once (quoting it here as well makes DingTalk answer "sign not match")."""
    params = None
    if secret:
        timestamp = str(now_ms)
        params = {"timestamp": timestamp, "sign": dingtalk_sign(secret, timestamp)}
    return await post_webhook(http, webhook, body, params=params)
