"""The Feishu open platform APIs we call, through the app's one ``aiohttp.ClientSession``.

- ``auth/v3/tenant_access_token/internal``: the app's tenant token (2 hours), kept by
  ``bot.channels.tokens.TokenCache`` (memory + the shared row + single flight).
- ``im/v1/messages`` (create, to a person or chat by ``receive_id_type``) and
  ``im/v1/messages/:message_id/reply``; ``im/v1/images`` (upload a chart); ``bot/v3/info`` (the
  bot's own open_id, to tell its @-mention apart).

Every answer is ``{"code": 0, "msg": ..., "data": ...}``; a non-zero code is an error whatever the
HTTP status. A refused tenant token (99991663 invalid, 99991661 missing, 99991668 invalid for
the call) is dropped, here and for the other replicas, and the call tried once more with a new
one. Rate limits (HTTP 429, 99991400, 230020, 11232) are raised as ``throttled`` with Feishu's
``x-ogw-ratelimit-reset`` so the outbox retries later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.channels.tokens import TokenCache
from bot.clock import Clock
from storage.db import SessionMaker

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=10)
TOKEN_MARGIN_SECONDS = 300
TOKEN_CODES = frozenset({99991663, 99991661, 99991668})
THROTTLE_CODES = frozenset({99991400, 230020, 11232, 11233})
# Codes where retrying the same request will not help.
PERMANENT_CODES = frozenset(
    {
        230001,  # invalid parameter
        230002,  # the bot is not in the chat
        230006,  # bot ability not enabled
        230013,  # the user is outside the app's availability
        230099,  # card content invalid
        99992402,  # field validation failed
        99992361,  # open_id of another app
        99992364,  # user_id invalid
        10003,  # app id / secret invalid
        10014,  # app secret invalid
    }
)
# The message replied to is gone (withdrawn or deleted): send to the chat instead.
GONE_CODES = frozenset({230011, 231003})


class FeishuError(Exception):
    def __init__(self, message: str, *, status: int | None = None, code: int = -1, retry_after: float | None = None):
        super().__init__(f"{message} (status={status}, code={code})")
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def token_refused(self) -> bool:
        return self.code in TOKEN_CODES

    @property
    def throttled(self) -> bool:
        return self.status == 429 or self.code in THROTTLE_CODES

    @property
    def gone(self) -> bool:
        return self.code in GONE_CODES

    @property
    def permanent(self) -> bool:
        if self.throttled or self.token_refused:
            return False
        return self.code in PERMANENT_CODES or self.status in (400, 403, 404)


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("x-ogw-ratelimit-reset")
    try:
        return max(1.0, min(float(value), 3600.0)) if value else None
    except ValueError:
        return None


async def _answer(resp: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
    raw = await resp.read()
    try:
        data = json.loads(raw) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = {"msg": raw[:200].decode(errors="replace")}
    if not isinstance(data, dict):
        data = {}
    code = data.get("code")
    if resp.status == 200 and code == 0:
        return data
    raise FeishuError(
        f"{what}: {str(data.get('msg') or '')[:200]}",
        status=resp.status,
        code=code if isinstance(code, int) else -1,
        retry_after=_retry_after(resp),
    )


class FeishuApi:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        sessions: SessionMaker,
        clock: Clock,
        app_id: str,
        app_secret: str,
        base_url: str,
    ) -> None:
        self._http = http
        self._clock = clock
        self._app_id = app_id
        self._app_secret = app_secret
        self.base = base_url.rstrip("/")
        self.tokens = TokenCache(key=f"feishu:{app_id}", fetch=self._fetch_token, sessions=sessions, clock=clock)
        self._bot_open_id: str | None = None

    async def _fetch_token(self) -> tuple[str, datetime]:
        now = self._clock.now()
        url = f"{self.base}/open-apis/auth/v3/tenant_access_token/internal"
        body = {"app_id": self._app_id, "app_secret": self._app_secret}
        async with self._http.post(url, json=body, timeout=TIMEOUT) as resp:
            data = await _answer(resp, "tenant_access_token")
        token = data.get("tenant_access_token")
        if not isinstance(token, str) or not token:
            raise FeishuError("tenant_access_token: no token in the answer", status=200)
        expire = int(data.get("expire") or 7200)
        log.info("fetched a Feishu tenant access token valid for %ss", expire)
        return token, now + timedelta(seconds=max(60, expire - TOKEN_MARGIN_SECONDS))

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        """One API call; a refused token is dropped and the call tried once more."""
        for attempt in (1, 2):
            token = await self.tokens.get()
            headers = {"Authorization": f"Bearer {token}"}
            try:
                async with self._http.request(
                    method,
                    f"{self.base}{path}",
                    params=params,
                    json=json_body,
                    data=form,
                    headers=headers,
                    timeout=TIMEOUT,
                ) as resp:
                    return await _answer(resp, path)
            except FeishuError as exc:
                if exc.token_refused and attempt == 1:
                    log.warning("Feishu refused the tenant token (%s); fetching a new one", exc.code)
                    await self.tokens.invalidate(token)
                    continue
                raise
        raise AssertionError("unreachable")

    async def send(
        self, receive_id_type: str, receive_id: str, msg_type: str, content: Mapping[str, Any], uuid: str
    ) -> str | None:
        """im/v1/messages: a message to a person (open_id/user_id) or a chat (chat_id)."""
        body = {
            "receive_id": receive_id,
            "msg_type": msg_type,
            "content": json.dumps(content, ensure_ascii=False),
            "uuid": uuid[:50],
        }
        data = await self.call(
            "POST", "/open-apis/im/v1/messages", params={"receive_id_type": receive_id_type}, json_body=body
        )
        return _message_id(data)

    async def reply(self, message_id: str, msg_type: str, content: Mapping[str, Any], uuid: str) -> str | None:
        """im/v1/messages/:message_id/reply: a reply quoting the message."""
        body = {"msg_type": msg_type, "content": json.dumps(content, ensure_ascii=False), "uuid": uuid[:50]}
        data = await self.call("POST", f"/open-apis/im/v1/messages/{message_id}/reply", json_body=body)
        return _message_id(data)

    async def upload_image(self, image: bytes) -> str:
        form = aiohttp.FormData()
        form.add_field("image_type", "message")
        form.add_field("image", image, filename="chart.png", content_type="image/png")
        data = await self.call("POST", "/open-apis/im/v1/images", form=form)
        key = (data.get("data") or {}).get("image_key")
        if not isinstance(key, str) or not key:
            raise FeishuError("im/v1/images: no image_key", status=200)
        return key

    async def bot_open_id(self) -> str:
        """The bot's own open_id (asked once per process)."""
        if self._bot_open_id is None:
            data = await self.call("GET", "/open-apis/bot/v3/info")
            bot = data.get("bot") or {}
            open_id = bot.get("open_id") if isinstance(bot, Mapping) else None
            if not isinstance(open_id, str) or not open_id:
                raise FeishuError("bot/v3/info: no open_id", status=200)
            self._bot_open_id = open_id
        return self._bot_open_id


def _message_id(data: Mapping[str, Any]) -> str | None:
    inner = data.get("data")
    value = inner.get("message_id") if isinstance(inner, Mapping) else None
    return str(value) if value else None
