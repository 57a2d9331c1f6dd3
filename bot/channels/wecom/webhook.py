"""aiohttp routes for WeCom callbacks.

- ``GET  /wecom/callback``      self-built app URL verification (answer the echostr plaintext as-is)
- ``POST /wecom/callback``      self-built app messages and events (encrypted XML)
- ``GET  /wecom/bot/callback``  AI bot (智能机器人) URL verification, receiveid ""
- ``POST /wecom/bot/callback``  AI bot messages (encrypted JSON)

A POST is verified, decrypted, parsed and stored (``chat.WeComChat.receive``), then answered with
an empty 200 at once; the intake's worker processes it. Refusals: bad or missing signature or a
stale timestamp → 401 with nothing written; malformed XML/JSON → 400; a body over
``BOT_MAX_BODY_BYTES`` → 413 (aiohttp's ``client_max_size``); channel not configured → 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from bot.channels.wecom.aibot_ws import AiBotLongConn
from bot.channels.wecom.chat import Source, WeComChat
from bot.channels.wecom.crypto import CallbackCrypto, CallbackError, SignatureError
from bot.channels.wecom.kf import WeComKf, kf_event
from bot.channels.wecom.parse import PLATFORM, WeComEnvelope, parse_aibot_json, parse_app_xml
from bot.clock import Clock
from bot.keys import CORE

log = logging.getLogger(__name__)

# WeCom retries within seconds; an older signed request is a replay. Keep this well inside the
# seven days processed intake items (the dedupe keys) are kept (bot.app.INTAKE_KEEP).
MAX_SKEW = timedelta(hours=24)

APP_MISSING = "WeCom app not configured (needs WECOM_CORP_ID, WECOM_AGENT_ID, WECOM_SECRET, WECOM_TOKEN, WECOM_AES_KEY)"
BOT_MISSING = "WeCom AI bot not configured (needs WECOM_BOT_TOKEN, WECOM_BOT_AES_KEY)"


@dataclass
class WeComState:
    """What the routes need, built by the channel's cleanup_ctx. ``None`` crypto = not configured."""

    clock: Clock
    chat: WeComChat | None
    app_crypto: CallbackCrypto | None
    bot_crypto: CallbackCrypto | None
    kf: WeComKf | None = None
    longconn: AiBotLongConn | None = None


WECOM = web.AppKey("wecom", WeComState)
routes = web.RouteTableDef()


def _state(request: web.Request) -> WeComState | None:
    return request.app.get(WECOM)


def _unavailable(message: str) -> web.Response:
    return web.Response(status=503, text=message)


def _refuse(exc: CallbackError, where: str) -> web.Response:
    level = logging.WARNING if isinstance(exc, SignatureError) else logging.INFO
    log.log(level, "WeCom %s refused (%s): %s", where, exc.status, exc)
    return web.Response(status=exc.status, text="")


def _params(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(n, "") for n in names]
    if not all(values):
        raise SignatureError("missing " + ", ".join(n for n, v in zip(names, values, strict=True) if not v))
    return values


def _check_fresh(timestamp: str, clock: Clock) -> None:
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise SignatureError("timestamp is not an integer") from exc
    if abs(clock.now().timestamp() - ts) > MAX_SKEW.total_seconds():
        raise SignatureError("stale timestamp")


async def _verify_url(request: web.Request, crypto: CallbackCrypto, where: str) -> web.Response:
    try:
        sig, ts, nonce, echostr = _params(request, "msg_signature", "timestamp", "nonce", "echostr")
        plain = crypto.verify_url(sig, ts, nonce, echostr)
    except CallbackError as exc:
        return _refuse(exc, where)
    log.info("WeCom %s URL verified", where)
    # The plaintext exactly: no quotes, no BOM, no newline.
    return web.Response(body=plain.encode(), content_type="text/plain")


async def _accept(
    request: web.Request,
    state: WeComState,
    crypto: CallbackCrypto,
    where: str,
    decode: Callable[[bytes, str, str, str], WeComEnvelope | None],
    source: Source,
) -> web.Response:
    body = await request.read()  # over client_max_size: HTTPRequestEntityTooLarge → 413
    try:
        sig, ts, nonce = _params(request, "msg_signature", "timestamp", "nonce")
        _check_fresh(ts, state.clock)
        envelope = decode(body, sig, ts, nonce)
    except CallbackError as exc:
        request.app[CORE].metrics.callback(PLATFORM, "rejected")
        return _refuse(exc, where)
    if envelope is not None and state.chat is not None:
        await state.chat.receive(envelope, source=source)
    return web.Response(status=200, text="")


@routes.get("/wecom/callback")
async def app_verify(request: web.Request) -> web.Response:
    state = _state(request)
    if state is None or state.app_crypto is None:
        return _unavailable(APP_MISSING)
    return await _verify_url(request, state.app_crypto, "app callback")


@routes.post("/wecom/callback")
async def app_callback(request: web.Request) -> web.Response:
    state = _state(request)
    if state is None or state.app_crypto is None:
        return _unavailable(APP_MISSING)
    crypto = state.app_crypto
    kf = state.kf

    def decode(body: bytes, sig: str, ts: str, nonce: str) -> WeComEnvelope | None:
        plaintext = crypto.decrypt_xml(body, sig, ts, nonce)
        event = kf_event(plaintext)
        if event is not None:
            # 微信客服: the event carries no message; pull them in the background and ack at once.
            if kf is not None:
                kf.spawn_sync(*event)
            else:
                log.info("ignoring kf_msg_or_event: WECOM_KF_ENABLED is off")
            return None
        return parse_app_xml(plaintext)

    return await _accept(request, state, crypto, "app callback", decode, "app")


@routes.get("/wecom/bot/callback")
async def bot_verify(request: web.Request) -> web.Response:
    state = _state(request)
    if state is None or state.bot_crypto is None:
        return _unavailable(BOT_MISSING)
    return await _verify_url(request, state.bot_crypto, "AI bot callback")


@routes.post("/wecom/bot/callback")
async def bot_callback(request: web.Request) -> web.Response:
    state = _state(request)
    if state is None or state.bot_crypto is None:
        return _unavailable(BOT_MISSING)
    crypto = state.bot_crypto

    def decode(body: bytes, sig: str, ts: str, nonce: str) -> WeComEnvelope | None:
        data = crypto.decrypt_json(body, sig, ts, nonce)
        return parse_aibot_json(data)

    return await _accept(request, state, crypto, "AI bot callback", decode, "aibot")
