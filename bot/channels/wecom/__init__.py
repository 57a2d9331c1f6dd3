"""WeCom (企业微信) channel: self-built app, AI bot (智能机器人) and group robot.

``CHANNEL`` (a ``WeComChannel``, listed in ``bot.channels.registry``) decides from the settings
what is on, adds the callback routes, and ``running(app, outbox)`` wires everything to the app's
database, HTTP session, dispatcher and outbox. Each part is switched on by its settings; a missing
or unusable secret switches only that part off, with a WARNING at start-up, and its callback URL
answers 503.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial

from aiohttp import web
from pydantic import SecretStr

from bot.channels.wecom.aibot_ws import AIBOT_WS_CHANNEL, AiBotLongConn, AiBotWsSender, AiBotWsStaffSender, summary_rows
from bot.channels.wecom.api import WeComApi
from bot.channels.wecom.chat import WeComChat
from bot.channels.wecom.crypto import CallbackCrypto, ConfigError
from bot.channels.wecom.kf import KF_CHANNEL, KfSender, WeComKf
from bot.channels.wecom.sender import (
    APP_CHANNEL,
    ROBOT_CHANNEL,
    WeComAiBotSender,
    WeComAppSender,
    WeComRobotSender,
    robot_notice,
)
from bot.channels.wecom.settings import WeComSettings, wecom_settings
from bot.channels.wecom.webhook import WECOM, WeComState, routes
from bot.delivery import GroupPost, GroupPoster, Reach
from bot.keys import BACKGROUND, CORE, DISPATCHER, HTTP
from bot.outbox import Outbox
from bot.services.context import Core
from bot.settings import Settings
from storage.models import Notice

log = logging.getLogger(__name__)


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def _unset(*pairs: tuple[str, object]) -> str | None:
    missing = [name for name, value in pairs if not value]
    return f"{', '.join(missing)} not set" if missing else None


# --- what this channel's settings (settings.py) switch on -----------------------------------


def app_problem(s: WeComSettings) -> str | None:
    """Why the self-built app is off (None when its settings are all there)."""
    return _unset(
        ("WECOM_CORP_ID", s.wecom_corp_id),
        ("WECOM_AGENT_ID", s.wecom_agent_id),
        ("WECOM_SECRET", _secret(s.wecom_secret)),
        ("WECOM_TOKEN", _secret(s.wecom_token)),
        ("WECOM_AES_KEY", _secret(s.wecom_aes_key)),
    )


def bot_problem(s: WeComSettings) -> str | None:
    return _unset(("WECOM_BOT_TOKEN", _secret(s.wecom_bot_token)), ("WECOM_BOT_AES_KEY", _secret(s.wecom_bot_aes_key)))


def longconn_problem(s: WeComSettings) -> str | None:
    """Why the AI bot's long connection is off (None when its Bot ID and Secret are set)."""
    return _unset(("WECOM_BOT_ID", s.wecom_bot_id), ("WECOM_BOT_SECRET", _secret(s.wecom_bot_secret)))


def kf_problem(s: WeComSettings) -> str | None:
    if not s.wecom_kf_enabled:
        return "WECOM_KF_ENABLED is off"
    return None if app_problem(s) is None else "needs the WeCom app settings"


def robot_key(s: WeComSettings) -> str:
    return _secret(s.wecom_robot_key)


def _crypto(what: str, token: str, aes_key: str, receive_id: str, *, quiet: bool = False) -> CallbackCrypto | None:
    try:
        return CallbackCrypto(token, aes_key, receive_id)
    except ConfigError as exc:
        if not quiet:
            log.warning("disabled: %s (%s)", what, exc)
        return None


def _app_crypto(s: WeComSettings, *, quiet: bool = False) -> CallbackCrypto | None:
    if app_problem(s) is not None:
        return None
    return _crypto(
        "WeCom app callback (WECOM_AES_KEY)",
        _secret(s.wecom_token),
        _secret(s.wecom_aes_key),
        s.wecom_corp_id or "",
        quiet=quiet,
    )


def _bot_crypto(s: WeComSettings) -> CallbackCrypto | None:
    if bot_problem(s) is not None:
        return None
    return _crypto(
        "WeCom AI bot callback (WECOM_BOT_AES_KEY)", _secret(s.wecom_bot_token), _secret(s.wecom_bot_aes_key), ""
    )


def _robot_rows(post: GroupPost) -> list[Notice]:
    rows = [
        robot_notice(kind=post.kind, now=post.now, msgtype="markdown", text=post.markdown, dedupe_key=post.dedupe_key)
    ]
    if post.image is not None:
        rows.append(
            robot_notice(
                kind=post.kind, now=post.now, msgtype="image", image=post.image, dedupe_key=f"{post.dedupe_key}:image"
            )
        )
    return rows


class WeComChannel:
    name = "wecom"
    settings_model = WeComSettings

    def features(self, settings: Settings) -> list[tuple[str, str | None]]:
        """Start-up summary entries: None when on, else why it is off."""
        s = wecom_settings(settings)
        return [
            ("WeCom app", app_problem(s)),
            ("WeCom customer service kf", kf_problem(s)),
            ("WeCom AI bot", bot_problem(s)),
            ("WeCom AI bot long connection", longconn_problem(s)),
            ("WeCom group robot", None if robot_key(s) else "WECOM_ROBOT_KEY not set; robot posts wait in the outbox"),
        ]

    def reach(self, settings: Settings) -> Reach:
        s = wecom_settings(settings)
        # HR and managers registered on wecom get their notices (e.g. "interview terminated")
        # when the app's callback can run.
        # (or, without the app, when the AI bot's long connection can push to them).
        app_on = _app_crypto(s, quiet=True) is not None
        staff = {APP_CHANNEL} if app_on or longconn_problem(s) is None else set()
        posters = (GroupPoster(channel=ROBOT_CHANNEL, takes_images=True, build=_robot_rows),) if robot_key(s) else ()
        chatid = s.wecom_bot_summary_chatid
        if chatid and longconn_problem(s) is None:
            poster = GroupPoster(channel=AIBOT_WS_CHANNEL, takes_images=False, build=partial(summary_rows, chatid))
            posters = (*posters, poster)
        return Reach(
            staff_channels=frozenset(staff),
            candidate_chats=frozenset({KF_CHANNEL} if kf_problem(s) is None else ()),
            group_posters=posters,
        )

    def routes(self, s: Settings) -> Iterable[web.AbstractRouteDef]:
        return routes  # always: an unconfigured part answers 503

    async def purge(self, core: Core, *, before: datetime) -> None:
        """Nothing beside the intake's items."""

    def connections(self, app: web.Application) -> dict[str, str]:
        state = app.get(WECOM)
        if state is None or state.longconn is None:
            return {}  # callbacks only
        return {"wecom aibot": state.longconn.state().value}

    @asynccontextmanager
    async def running(self, app: web.Application, outbox: Outbox) -> AsyncIterator[None]:
        state = build_state(app, outbox)
        app[WECOM] = state
        yield
        if state.longconn is not None:
            await state.longconn.stop()
        if state.chat is not None:
            await state.chat.close()
        if state.kf is not None:
            await state.kf.close()


def build_state(app: web.Application, outbox: Outbox) -> WeComState:
    core, http = app[CORE], app[HTTP]
    settings = wecom_settings(core.settings)
    kf: WeComKf | None = None
    app_crypto = _app_crypto(settings)
    bot_crypto = _bot_crypto(settings)
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
        outbox.register(WeComAppSender(api, source=core.settings.company_name))
        if kf_problem(settings) is None:
            kf = WeComKf(core, api, app[DISPATCHER], app[BACKGROUND])
            outbox.register(KfSender(core, api))
            kf.start()
    if bot_crypto is not None:
        outbox.register(WeComAiBotSender(http, api_base=settings.wecom_api_base))
    key = robot_key(settings)
    if key:  # when it is not set, the start-up summary says so
        outbox.register(WeComRobotSender(http, base_url=settings.wecom_api_base, key=key))
    chat = None
    longconn_on = longconn_problem(settings) is None
    if app_crypto is not None or bot_crypto is not None or longconn_on:
        chat = WeComChat(core, app[DISPATCHER], background=app[BACKGROUND], app_replies=app_crypto is not None)
        chat.start()
    longconn = None
    if longconn_on and chat is not None:
        longconn = AiBotLongConn(
            core,
            http,
            chat,
            url=settings.wecom_bot_ws_url,
            bot_id=settings.wecom_bot_id or "",
            secret=_secret(settings.wecom_bot_secret),
        )
        outbox.register(AiBotWsSender(longconn, source=core.settings.company_name))
        if app_crypto is None:  # staff notices on "wecom" are pushed by the bot
            outbox.register(AiBotWsStaffSender(longconn, source=core.settings.company_name))
        longconn.start()
    return WeComState(
        clock=core.clock, chat=chat, app_crypto=app_crypto, bot_crypto=bot_crypto, kf=kf, longconn=longconn
    )


CHANNEL = WeComChannel()

__all__ = ["CHANNEL", "WECOM", "WeComChannel"]
