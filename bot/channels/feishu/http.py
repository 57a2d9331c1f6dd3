"""HTTP mode: Feishu POSTs events and card callbacks to ``/feishu/callback``.

In this order, before anything is stored:

1. the body goes through the bounded JSON loader (``bot.bounded``) → else 400;
2. with an Encrypt Key, the body must be ``{"encrypt": …}`` and, unless it is the url_verification
   challenge (which Feishu does not sign), carry a valid ``X-Lark-Signature`` over the raw bytes
   (``crypto.verify_signature``) → else 401; it is then decrypted with the SDK's AESCipher → 400;
3. the Verification Token (``token`` of url_verification, ``header.token`` of 2.0 events) and the
   ``app_id`` must be ours → else 401;
4. url_verification is answered with its challenge; a message or one of our card clicks is
   stored through the durable intake (``chat.FeishuChat.receive``) and answered at once; other events are
   acknowledged and ignored (so Feishu does not push them again).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.bounded import BadInput, load_json
from bot.channels.feishu.chat import FeishuChat
from bot.channels.feishu.crypto import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CryptoError,
    decrypt,
    token_matches,
    verify_signature,
)
from bot.channels.feishu.parse import CARD_EVENT, MESSAGE_EVENT, URL_VERIFICATION, NotForUs, ParseError, envelope
from bot.channels.feishu.settings import feishu_settings
from bot.keys import CORE

log = logging.getLogger(__name__)

CALLBACK_PATH = "/feishu/callback"
CHAT = web.AppKey("feishu_chat", FeishuChat)


def _refuse(request: web.Request, status: int, problem: str) -> web.Response:
    log.warning("refused a Feishu callback from %s: %s", request.remote, problem)
    error = "unauthorized" if status == 401 else "malformed_callback"
    message = "invalid signature or token" if status == 401 else f"not a Feishu event: {problem}"
    return web.json_response({"error": error, "message": message}, status=status)


def _object(raw: bytes | str) -> dict[str, Any]:
    data = load_json(raw)
    if not isinstance(data, dict):
        raise BadInput("malformed_json", "not a JSON object")
    return data


async def callback(request: web.Request) -> web.Response:
    core = request.app[CORE]
    s = feishu_settings(core.settings)
    if s.feishu_verification_token is None:
        raise web.HTTPNotFound()
    token = s.feishu_verification_token.get_secret_value()
    key = s.feishu_encrypt_key.get_secret_value() if s.feishu_encrypt_key else ""
    raw = await request.read()
    try:
        body = _object(raw)
    except BadInput as exc:
        return _refuse(request, 400, str(exc))
    signed = all(request.headers.get(h) for h in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER))
    if key:
        if "encrypt" not in body:
            return _refuse(request, 401, "plaintext callback while FEISHU_ENCRYPT_KEY is set")
        if signed:
            try:
                verify_signature(request.headers, key, raw)
            except CryptoError as exc:
                return _refuse(request, 401, str(exc))
        try:
            body = _object(decrypt(body["encrypt"], key))
        except (CryptoError, BadInput) as exc:
            return _refuse(request, 400, str(exc))
    if body.get("type") == URL_VERIFICATION:
        if not token_matches(body.get("token"), token):
            return _refuse(request, 401, "url_verification with a wrong token")
        challenge = body.get("challenge")
        if not isinstance(challenge, str) or len(challenge) > 200:
            return _refuse(request, 400, "url_verification without a challenge")
        return web.json_response({"challenge": challenge})
    if key and not signed:
        return _refuse(request, 401, "unsigned event")
    try:
        env = envelope(body)
    except ParseError as exc:
        return _refuse(request, 400, str(exc))
    if not token_matches(env.token, token):
        return _refuse(request, 401, "wrong verification token")
    if env.app_id and env.app_id != s.feishu_app_id:
        return _refuse(request, 401, "event for another app")
    if env.event_type not in (MESSAGE_EVENT, CARD_EVENT):
        log.info("ignoring Feishu event %s", env.event_type)
        return web.json_response({})
    try:
        await request.app[CHAT].receive(body)
    except NotForUs as exc:
        log.info("ignoring a Feishu event: %s", exc)
    except ParseError as exc:
        return _refuse(request, 400, str(exc))
    # A card callback may answer with a toast or a new card; an empty object leaves the card as is.
    return web.json_response({})
