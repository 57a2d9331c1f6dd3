"""HTTP receive mode: DingTalk POSTs robot messages to ``/dingtalk/callback``.

Headers ``timestamp`` (ms) and ``sign`` prove the sender knows the app secret; the sign
covers only the timestamp, so a captured request can be replayed within the hour: the
``msgId`` dedupe in the database makes a replay a no-op. We answer 200 as soon as the
message is durably taken in (see ``inbound``) and process it in the background.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from bot.channels.dingtalk.inbound import Inbound
from bot.channels.dingtalk.sign import verify_callback
from bot.keys import CORE

log = logging.getLogger(__name__)

CALLBACK_PATH = "/dingtalk/callback"
INBOUND = web.AppKey("dingtalk_inbound", Inbound)
# A 200 body that makes DingTalk post nothing on our behalf; replies go through the outbox.
EMPTY_ANSWER = {"msgtype": "empty"}


async def callback(request: web.Request) -> web.Response:
    core = request.app[CORE]
    secret = core.settings.dingtalk_app_secret
    if secret is None:
        raise web.HTTPNotFound()
    now_ms = int(core.clock.now().timestamp() * 1000)
    problem = verify_callback(
        secret.get_secret_value(), request.headers.get("timestamp"), request.headers.get("sign"), now_ms=now_ms
    )
    if problem:
        log.warning("rejected a DingTalk callback from %s: %s", request.remote, problem)
        return web.json_response({"error": "unauthorized", "message": "签名无效或已过期"}, status=401)
    try:
        body = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        return web.json_response({"error": "malformed_json", "message": "请求体不是 JSON 对象"}, status=400)
    await request.app[INBOUND].receive(body)
    return web.json_response(EMPTY_ANSWER)
