"""The DingTalk (钉钉) channel: internal-app robot (HTTP or Stream mode) and custom group robot.

``CHANNEL`` (a ``DingTalkChannel``, listed in ``bot.channels.registry``) decides from the settings
what is on, adds the HTTP callback route (routes must exist before the app starts), and
``running(app, outbox)`` registers the outbox senders and runs the Stream connection.

Modules: ``sign`` (HMAC), ``parse`` (callback → IncomingMessage), ``api`` (token, OpenAPI,
webhooks), ``sender`` (outbox senders), ``chat`` (its messages through the intake),
``http`` (HTTP mode), ``stream`` (Stream mode).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime

from aiohttp import web

from bot.channels.dingtalk.api import OpenApi
from bot.channels.dingtalk.chat import DingTalkChat
from bot.channels.dingtalk.http import CALLBACK_PATH, CHAT, callback
from bot.channels.dingtalk.sender import CHANNEL as APP_CHANNEL
from bot.channels.dingtalk.sender import ROBOT_CHANNEL, DingTalkSender, RobotSender, robot_notice
from bot.channels.dingtalk.settings import DingTalkSettings, dingtalk_settings
from bot.channels.dingtalk.stream import STREAM, StreamRunner
from bot.delivery import GroupPost, GroupPoster, Reach
from bot.keys import BACKGROUND, CORE, DISPATCHER, HTTP
from bot.outbox import Outbox
from bot.services import callback_signs
from bot.services.context import Core
from bot.services.leases import LinkState
from bot.settings import Settings
from storage.models import Notice

log = logging.getLogger(__name__)

__all__ = ["CHANNEL", "CHAT", "STREAM", "DingTalkChannel"]


# --- what this channel's settings (settings.py) switch on -----------------------------------


def robot_problem(s: DingTalkSettings) -> str | None:
    """Why the internal-app robot is off (None when its key and secret are set)."""
    secret = s.dingtalk_app_secret.get_secret_value() if s.dingtalk_app_secret else ""
    missing = [
        name for name, value in (("DINGTALK_APP_KEY", s.dingtalk_app_key), ("DINGTALK_APP_SECRET", secret)) if not value
    ]
    return f"{', '.join(missing)} not set" if missing else None


def _enabled(s: DingTalkSettings) -> bool:
    return bool(s.dingtalk_app_key and s.dingtalk_app_secret)


class DingTalkChannel:
    name = "dingtalk"
    settings_model = DingTalkSettings

    def features(self, settings: Settings) -> list[tuple[str, str | None]]:
        """Start-up summary entries: None when on, else why it is off."""
        s = dingtalk_settings(settings)
        return [
            (f"DingTalk robot in {s.dingtalk_mode} mode", robot_problem(s)),
            ("DingTalk custom robot", None if s.dingtalk_robot_webhook else "DINGTALK_ROBOT_WEBHOOK not set"),
        ]

    def reach(self, settings: Settings) -> Reach:
        s = dingtalk_settings(settings)
        posters: tuple[GroupPoster, ...] = ()
        webhook = s.dingtalk_robot_webhook
        if webhook:

            def build(post: GroupPost) -> list[Notice]:
                return [
                    robot_notice(
                        webhook,
                        kind=post.kind,
                        text=post.markdown,
                        now=post.now,
                        title=post.title,
                        markdown=True,
                        dedupe_key=post.dedupe_key,
                    )
                ]

            # A chart goes as a link in the markdown (DingTalk shows it as an image).
            posters = (GroupPoster(channel=ROBOT_CHANNEL, takes_images=False, build=build),)
        return Reach(staff_channels=frozenset({APP_CHANNEL} if _enabled(s) else ()), group_posters=posters)

    def routes(self, settings: Settings) -> Iterable[web.AbstractRouteDef]:
        s = dingtalk_settings(settings)
        if _enabled(s) and s.dingtalk_mode == "http":
            return [web.post(CALLBACK_PATH, callback)]
        return []

    async def purge(self, core: Core, *, before: datetime) -> None:
        await callback_signs.purge(core, before=before)  # HTTP mode's replay guard

    def connections(self, app: web.Application) -> dict[str, str]:
        runner = app.get(STREAM)
        if runner is None:
            return {}
        return {"dingtalk stream": (LinkState.up if runner.connected else LinkState.connecting).value}

    @asynccontextmanager
    async def running(self, app: web.Application, outbox: Outbox) -> AsyncIterator[None]:
        core, http = app[CORE], app[HTTP]
        s = dingtalk_settings(core.settings)
        chat: DingTalkChat | None = None
        runner: StreamRunner | None = None
        if _enabled(s) and s.dingtalk_app_key and s.dingtalk_app_secret:
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
            chat = DingTalkChat(core, app[DISPATCHER], app[BACKGROUND])
            chat.start()
            app[CHAT] = chat
            if s.dingtalk_mode == "stream":
                runner = StreamRunner(
                    http,
                    app_key=s.dingtalk_app_key,
                    app_secret=s.dingtalk_app_secret.get_secret_value(),
                    api_base=s.dingtalk_api_base,
                    chat=chat,
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
        if chat is not None:
            await chat.close()


CHANNEL = DingTalkChannel()
