"""WeCom server API over the app's one ``aiohttp.ClientSession``.

- The access token comes from ``GET /cgi-bin/gettoken`` and is kept by ``bot.channels.tokens``
  (memory + shared ``shared_token`` row + single flight), renewed TOKEN_MARGIN before it expires.
- A call answered 40014/42001/40001/41001 (token invalid, expired, bad credential, missing)
  drops that token, refreshes once and is retried once.
- Errors carry ``retryable``: HTTP 5xx, network failures, timeouts, -1 (busy) and 45009
  (frequency limit) are worth retrying; other errcodes are not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from bot.channels.tokens import TokenCache
from bot.clock import Clock
from storage.db import SessionMaker

log = logging.getLogger(__name__)

TOKEN_ERRCODES = frozenset({40014, 42001, 40001, 41001})
RETRYABLE_ERRCODES = frozenset({-1, 45009})
# Refresh this long before WeCom says the token expires.
TOKEN_MARGIN = timedelta(minutes=5)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)
# message/send duplicate_check_interval (WeCom allows up to 4 h). Identical text to the same member
# within it is shown once; confirm cards differ by task_id.
DUPLICATE_CHECK_SECONDS = 600
_SECRETS_IN_URL = re.compile(r"((?:access_token|key|corpsecret|response_code)=)[^&\s'\"]+")


def redact(text: str) -> str:
    """Error texts end up in logs and outbox rows: never with a token, robot key or secret."""
    return _SECRETS_IN_URL.sub(r"\1***", text)


class WeComError(Exception):
    def __init__(self, message: str, *, errcode: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.retryable = retryable


def _check(data: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    errcode = data.get("errcode", 0)
    if not isinstance(errcode, int):
        raise WeComError(f"{what}: bad errcode {errcode!r}", retryable=True)
    if errcode != 0:
        raise WeComError(
            f"{what}: errcode {errcode} {data.get('errmsg', '')}",
            errcode=errcode,
            retryable=errcode in RETRYABLE_ERRCODES,
        )
    return data


async def _request_json(
    http: aiohttp.ClientSession, method: str, url: str, *, what: str, **kwargs: Any
) -> Mapping[str, Any]:
    try:
        async with http.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs) as resp:
            if resp.status >= 500 or resp.status == 429:
                raise WeComError(f"{what}: HTTP {resp.status}", retryable=True)
            if resp.status >= 400:
                raise WeComError(f"{what}: HTTP {resp.status}")
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise WeComError(redact(f"{what}: {type(exc).__name__}: {exc}"), retryable=True) from exc
    except ValueError as exc:  # not JSON
        raise WeComError(f"{what}: answer is not JSON", retryable=True) from exc
    if not isinstance(data, Mapping):
        raise WeComError(f"{what}: answer is not a JSON object", retryable=True)
    return data


class WeComApi:
    """The self-built app's API (token-authenticated calls) plus the token-less robot endpoints."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        base_url: str,
        corp_id: str,
        agent_id: int,
        secret: str,
        sessions: SessionMaker,
        clock: Clock,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self.sessions = sessions
        self.clock = clock
        self.tokens = TokenCache(
            key=f"wecom:{corp_id}:{agent_id}",
            fetch=self._fetch_token,
            sessions=sessions,
            clock=clock,
            margin=TOKEN_MARGIN,
        )

    # --- access token (bot.channels.tokens) ------------------------------------

    @property
    def token_key(self) -> str:
        return self.tokens.key

    async def token(self) -> str:
        return await self.tokens.get()

    async def _fetch_token(self) -> tuple[str, datetime]:
        data = _check(
            await _request_json(
                self.http,
                "GET",
                f"{self.base_url}/cgi-bin/gettoken",
                params={"corpid": self.corp_id, "corpsecret": self._secret},
                what="gettoken",
            ),
            "gettoken",
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComError("gettoken: no access_token in answer", retryable=True)
        expires_in = data.get("expires_in", 7200)
        seconds = expires_in if isinstance(expires_in, int) and expires_in > 0 else 7200
        log.info("WeCom access token refreshed for agent %s (valid %ss)", self.agent_id, seconds)
        return token, self.clock.now() + timedelta(seconds=seconds)

    async def invalidate(self, token: str) -> None:
        await self.tokens.invalidate(token)

    async def call(self, path: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
        """POST ``payload`` to ``/cgi-bin/<path>?access_token=``; one refresh-and-retry on token errors."""
        for attempt in (1, 2):
            token = await self.token()
            data = await _request_json(
                self.http,
                "POST",
                f"{self.base_url}/cgi-bin/{path}",
                params={"access_token": token},
                json=payload,
                what=path,
            )
            if data.get("errcode") in TOKEN_ERRCODES and attempt == 1:
                log.warning("WeCom %s: token rejected (errcode %s), refreshing once", path, data.get("errcode"))
                await self.invalidate(token)
                continue
            return _check(data, path)
        raise AssertionError("unreachable")

    # --- app messages ---------------------------------------------------------

    async def send_message(self, touser: str, msgtype: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        payload = {
            "touser": touser,
            "msgtype": msgtype,
            "agentid": self.agent_id,
            msgtype: body,
            "safe": 0,
            # WeCom drops a repeat of the same message to the same user within the interval, so a
            # send cut off by a crash (outcome unknown) can be repeated safely (bot.outbox).
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_SECONDS,
        }
        data = await self.call("message/send", payload)
        invalid = [x for x in (data.get("invaliduser"), data.get("unlicenseduser")) if x]
        if invalid:
            raise WeComError(f"message/send: recipient not reachable: {'|'.join(invalid)}")
        return data

    async def send_text(self, touser: str, content: str) -> Mapping[str, Any]:
        return await self.send_message(touser, "text", {"content": content})

    async def send_markdown(self, touser: str, content: str) -> Mapping[str, Any]:
        return await self.send_message(touser, "markdown", {"content": content})

    async def send_template_card(self, touser: str, card: Mapping[str, Any]) -> Mapping[str, Any]:
        return await self.send_message(touser, "template_card", card)

    async def update_card_button(
        self, *, userids: Sequence[str], response_code: str, replace_name: str
    ) -> Mapping[str, Any]:
        """Grey out the buttons of a clicked card (``button`` form of update_template_card)."""
        payload = {
            "userids": list(userids),
            "agentid": self.agent_id,
            "response_code": response_code,
            "button": {"replace_name": replace_name},
        }
        return await self.call("message/update_template_card", payload)


async def robot_send(http: aiohttp.ClientSession, *, base_url: str, key: str, payload: Mapping[str, Any]) -> None:
    """Group robot webhook: ``POST /cgi-bin/webhook/send?key=``."""
    data = await _request_json(
        http,
        "POST",
        f"{base_url.rstrip('/')}/cgi-bin/webhook/send",
        params={"key": key},
        json=payload,
        what="webhook/send",
    )
    _check(data, "webhook/send")


async def aibot_respond(http: aiohttp.ClientSession, *, url: str, payload: Mapping[str, Any]) -> None:
    """AI bot active reply: ``POST <response_url>`` with an unencrypted JSON body (single use, 1 h)."""
    data = await _request_json(http, "POST", url, json=payload, what="aibot response_url")
    _check(data, "aibot response_url")
