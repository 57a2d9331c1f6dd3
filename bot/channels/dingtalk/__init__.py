"""The DingTalk (钉钉) channel: internal-app robot (HTTP or Stream mode) and custom group robot.

``setup(app)`` registers the HTTP callback route (routes must exist before the app starts)
and the cleanup context that registers the outbox senders and runs the Stream connection.

Modules: ``sign`` (HMAC), ``parse`` (callback → IncomingMessage), ``api`` (token, OpenAPI,
webhooks), ``sender`` (outbox senders), ``inbound`` (durable take-in and processing),
``http`` (HTTP mode), ``stream`` (Stream mode).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.channels.dingtalk.api import OpenApi
from bot.channels.dingtalk.http import CALLBACK_PATH, INBOUND, callback
from bot.channels.dingtalk.inbound import Inbound, InboundSender
from bot.channels.dingtalk.sender import CHANNEL, DingTalkSender, RobotSender
from bot.channels.dingtalk.stream import STREAM, StreamRunner
from bot.keys import BACKGROUND, CORE, DISPATCHER, HTTP, OUTBOX, SETTINGS

log = logging.getLogger(__name__)

__all__ = ["INBOUND", "STREAM", "cleanup_ctx", "setup"]


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    if settings.dingtalk_enabled and settings.dingtalk_mode == "http":
        app.router.add_post(CALLBACK_PATH, callback)
    app.cleanup_ctx.append(cleanup_ctx)


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    core, http, outbox = app[CORE], app[HTTP], app[OUTBOX]
    s = core.settings
    inbound: Inbound | None = None
    runner: StreamRunner | None = None
    if s.dingtalk_enabled and s.dingtalk_app_key and s.dingtalk_app_secret:
        api = OpenApi(
            http,
            sessions=core.sessions,
            clock=core.clock,
            app_key=s.dingtalk_app_key,
            app_secret=s.dingtalk_app_secret.get_secret_value(),
            robot_code=s.dingtalk_robot_code or s.dingtalk_app_key,
            base_url=s.dingtalk_api_base,
        )
        outbox.register(DingTalkSender(http, api, clock=core.clock, oapi_base=s.dingtalk_oapi_base))
        outbox.register(InboundSender(core, app[DISPATCHER]))
        core.staff_channels.add(CHANNEL)
        inbound = Inbound(core, outbox, app[BACKGROUND])
        app[INBOUND] = inbound
        if s.dingtalk_mode == "stream":
            runner = StreamRunner(
                http,
                app_key=s.dingtalk_app_key,
                app_secret=s.dingtalk_app_secret.get_secret_value(),
                api_base=s.dingtalk_api_base,
                inbound=inbound,
            )
            app[STREAM] = runner
            runner.start()
        log.info("DingTalk robot enabled (%s mode)", s.dingtalk_mode)
    if s.dingtalk_robot_webhook:
        secret = s.dingtalk_robot_secret.get_secret_value() if s.dingtalk_robot_secret else None
        outbox.register(RobotSender(http, clock=core.clock, webhook=s.dingtalk_robot_webhook, secret=secret))
        if secret is None:
            log.warning("DINGTALK_ROBOT_SECRET is not set: custom robot posts are unsigned (加签 recommended)")
    yield
    if runner is not None:
        await runner.stop()
    if inbound is not None:
        await inbound.close()
