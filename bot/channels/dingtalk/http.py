"""HTTP receive mode: DingTalk POSTs robot messages to ``/dingtalk/callback``.

Headers ``timestamp`` (ms) and ``sign`` prove the sender knows the app secret, but the sign
covers only the timestamp, not the body: whoever sees one request (a proxy, a log) could send
any body with its pair. We narrow what that allows, in this order, before anything is stored:

1. the pair must be fresh: within ``DINGTALK_SIGN_WINDOW_SECONDS`` (default 300 s, DingTalk's
   own limit is an hour), compared in constant time on bytes;
2. the body goes through the bounded JSON loader and must parse as a robot message
   (``parse_callback``: sizes, numbers) → else 400;
3. the robot's own field ``robotCode`` must be ours (``DINGTALK_ROBOT_CODE`` or the app key);
4. a sign is accepted for one ``msgId`` only (``bot.services.callback_signs``; the binding row is
   stored with the message in the intake's transaction, shared by replicas): a redelivery of the
   same message passes (the ``msgId`` dedupe makes it a no-op), the same pair with another message
   is refused.

Stream mode has none of these limits (the connection itself is authenticated): prefer it.
We answer 200 as soon as the message is durably taken in (``chat.DingTalkChat.receive``).
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.bounded import BadInput, load_json
from bot.channels.dingtalk.chat import DingTalkChat
from bot.channels.dingtalk.parse import PLATFORM, ParseError, parse_callback
from bot.channels.dingtalk.settings import dingtalk_settings
from bot.channels.dingtalk.sign import verify_callback
from bot.intake import Refused
from bot.keys import CORE
from bot.services import callback_signs
from storage.models import DingTalkSign

log = logging.getLogger(__name__)

CALLBACK_PATH = "/dingtalk/callback"
CHAT = web.AppKey("dingtalk_chat", DingTalkChat)
# A 200 body that makes DingTalk post nothing on our behalf; replies go through the outbox.
EMPTY_ANSWER = {"msgtype": "empty"}


def _unauthorized(request: web.Request, problem: str) -> web.Response:
    request.app[CORE].metrics.callback(PLATFORM, "rejected")
    log.warning("rejected a DingTalk callback from %s: %s", request.remote, problem)
    return web.json_response({"error": "unauthorized", "message": "invalid or expired signature"}, status=401)


async def callback(request: web.Request) -> web.Response:
    core = request.app[CORE]
    settings = dingtalk_settings(core.settings)
    secret = settings.dingtalk_app_secret
    if secret is None:
        raise web.HTTPNotFound()
    now = core.clock.now()
    window = settings.dingtalk_sign_window_seconds
    sign = request.headers.get("sign")
    problem = verify_callback(
        secret.get_secret_value(),
        request.headers.get("timestamp"),
        sign,
        now_ms=int(now.timestamp() * 1000),
        max_skew_ms=window * 1000,
    )
    if problem or sign is None:
        return _unauthorized(request, problem or "missing sign")
    try:
        body = load_json(await request.read())
        if not isinstance(body, dict):
            raise BadInput("malformed_json", "not a JSON object")
        msg = parse_callback(body)
    except (BadInput, ParseError) as exc:
        log.info("refused a DingTalk callback: %s", exc)
        core.metrics.callback(PLATFORM, "rejected")
        answer = {"error": "malformed_callback", "message": f"not a DingTalk robot message: {exc}"}
        return web.json_response(answer, status=400)
    ours = settings.dingtalk_robot_code or settings.dingtalk_app_key
    if ours and body.get("robotCode") != ours:
        return _unauthorized(request, "robotCode is not ours")
    owner = await callback_signs.owner(core, sign=sign.strip())
    if owner is not None and owner != msg.msg_id:
        return _unauthorized(request, "sign already used for another message")
    binding = [] if owner else [DingTalkSign(sign=sign.strip(), msg_id=msg.msg_id, seen_at=now)]
    try:
        await request.app[CHAT].receive(body, binding)
    except Refused:  # the same sign taken by another message in the meantime
        return _unauthorized(request, "sign already used for another message")
    return web.json_response(EMPTY_ANSWER)
