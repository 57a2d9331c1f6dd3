"""WeCom (企业微信) channel: self-built app, AI bot (智能机器人) and group robot.

``setup(app)`` adds the callback routes and the cleanup_ctx that wires everything to the
app's database, HTTP session, dispatcher and outbox. Each part is switched on by its settings;
a missing or unusable secret switches only that part off, with a WARNING at start-up, and its
callback URL answers 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import SecretStr

from bot.channels.wecom.api import WeComApi
from bot.channels.wecom.crypto import CallbackCrypto, ConfigError
from bot.channels.wecom.inbox import InboxSender, WeComInbox
from bot.channels.wecom.kf import KfSender, WeComKf
from bot.channels.wecom.sender import APP_CHANNEL, WeComAiBotSender, WeComAppSender, WeComRobotSender
from bot.channels.wecom.webhook import WECOM, WeComState, routes
from bot.keys import BACKGROUND, CORE, DISPATCHER, HTTP, OUTBOX, SETTINGS

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 5.0


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.cleanup_ctx.append(wecom_ctx)


def _crypto(what: str, token: str, aes_key: str, receive_id: str) -> CallbackCrypto | None:
    try:
        return CallbackCrypto(token, aes_key, receive_id)
    except ConfigError as exc:
        log.warning("disabled: %s (%s)", what, exc)
        return None


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def build_state(app: web.Application) -> WeComState:
    settings = app[SETTINGS]
    core, http, outbox = app[CORE], app[HTTP], app[OUTBOX]
    app_crypto = bot_crypto = None
    kf: WeComKf | None = None
    if settings.wecom_app_enabled:
        app_crypto = _crypto(
            "WeCom app callback (WECOM_AES_KEY)",
            _secret(settings.wecom_token),
            _secret(settings.wecom_aes_key),
            settings.wecom_corp_id or "",
        )
    if settings.wecom_bot_enabled:
        bot_crypto = _crypto(
            "WeCom AI bot callback (WECOM_BOT_AES_KEY)",
            _secret(settings.wecom_bot_token),
            _secret(settings.wecom_bot_aes_key),
            "",
        )
    if app_crypto is not None:
        api = WeComApi(
            http,
            base_url=settings.wecom_api_base,
            corp_id=settings.wecom_corp_id or "",
            agent_id=settings.wecom_agent_id or 0,
            secret=_secret(settings.wecom_secret),
            sessions=core.sessions,
            clock=core.clock,
        )
        outbox.register(WeComAppSender(api, source=settings.company_name))
        if settings.kf_enabled:
            kf = WeComKf(core, api, app[BACKGROUND])
            outbox.register(KfSender(core, api))
        # HR and managers registered on wecom now get their notices (e.g. "interview terminated").
        core.staff_channels.add(APP_CHANNEL)
    if bot_crypto is not None:
        outbox.register(WeComAiBotSender(http, api_base=settings.wecom_api_base))
    robot_key = _secret(settings.wecom_robot_key)
    if robot_key:  # when it is not set, the start-up summary says so
        outbox.register(WeComRobotSender(http, base_url=settings.wecom_api_base, key=robot_key))
    inbox = None
    if app_crypto is not None or bot_crypto is not None:
        inbox = WeComInbox(
            core,
            app[DISPATCHER],
            background=app[BACKGROUND],
            deliver=outbox.deliver,
            app_replies=app_crypto is not None,
        )
        outbox.register(InboxSender(inbox))
        inbox.start()
    return WeComState(clock=core.clock, inbox=inbox, app_crypto=app_crypto, bot_crypto=bot_crypto, kf=kf)


async def wecom_ctx(app: web.Application) -> AsyncIterator[None]:
    state = build_state(app)
    app[WECOM] = state
    yield
    if state.inbox is not None:
        state.inbox.work.stopping()
        await state.inbox.stop()
        # Let in-flight messages finish; anything cut off is finished by the outbox later.
        await state.inbox.work.close(SHUTDOWN_GRACE_SECONDS)


__all__ = ["WECOM", "setup", "wecom_ctx"]
