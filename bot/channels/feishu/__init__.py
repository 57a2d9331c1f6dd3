"""The Feishu / Lark (飞书) channel: a self-built app's bot, in HTTP or long-connection mode.

``CHANNEL`` (a ``FeishuChannel``, listed in ``bot.channels.registry``) decides from its settings
(``settings.py``) what is on, adds ``POST /feishu/callback`` in HTTP mode, and ``running`` registers
the outbox senders and, in ws mode, holds the long connection under a database lease.

Modules: ``crypto`` (signature, Encrypt Key), ``parse`` (event → IncomingMessage), ``api``
(tenant token, messages, images), ``sender`` (outbox senders, cards), ``chat`` (its messages
through the intake), ``http`` (HTTP mode), ``ws`` (long connection).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.channels.feishu.api import FeishuApi, FeishuError
from bot.channels.feishu.chat import FeishuChat
from bot.channels.feishu.hire import PERMISSION_CODES, HireApi, HireSender
from bot.channels.feishu.hire import SYSTEM as HIRE_SYSTEM
from bot.channels.feishu.http import CALLBACK_PATH, CHAT, callback
from bot.channels.feishu.sender import CHANNEL as APP_CHANNEL
from bot.channels.feishu.sender import GROUP_CHANNEL, FeishuGroupSender, FeishuSender, group_notice
from bot.channels.feishu.settings import FeishuSettings, feishu_settings
from bot.channels.feishu.ws import WsRunner
from bot.delivery import GroupPost, GroupPoster, Reach
from bot.keys import BACKGROUND, CORE, DISPATCHER, HTTP
from bot.outbox import Outbox
from bot.services import ats
from bot.services.context import Core
from bot.services.errors import refusal
from bot.services.leases import Leased, LinkState
from bot.settings import Settings
from storage.models import Notice

log = logging.getLogger(__name__)

__all__ = ["CHANNEL", "CHAT", "LINK", "FeishuChannel"]

LINK = web.AppKey("feishu_link", Leased)
RUNNER = web.AppKey("feishu_ws", WsRunner)
LINK_NAME = "feishu long connection"


def bot_problem(s: FeishuSettings) -> str | None:
    """Why the bot is off (None when it can run in its mode)."""
    missing = [
        name
        for name, value in (("FEISHU_APP_ID", s.feishu_app_id), ("FEISHU_APP_SECRET", s.feishu_app_secret))
        if not value
    ]
    if s.feishu_mode == "http" and not s.feishu_verification_token:
        missing.append("FEISHU_VERIFICATION_TOKEN")
    return f"{', '.join(missing)} not set" if missing else None


def hire_problem(s: FeishuSettings) -> str | None:
    """Why 飞书招聘 write-back is off (None when it is on)."""
    if not s.feishu_hire_enabled:
        return "FEISHU_HIRE_ENABLED is off"
    missing = [
        name
        for name, value in (("FEISHU_APP_ID", s.feishu_app_id), ("FEISHU_APP_SECRET", s.feishu_app_secret))
        if not value
    ]
    return f"{', '.join(missing)} not set" if missing else None


def feishu_api(core: Core, http: aiohttp.ClientSession, s: FeishuSettings) -> FeishuApi:
    assert s.feishu_app_id and s.feishu_app_secret
    return FeishuApi(
        http,
        sessions=core.sessions,
        clock=core.clock,
        app_id=s.feishu_app_id,
        app_secret=s.feishu_app_secret.get_secret_value(),
        base_url=s.feishu_api_base,
    )


def _summary_rows(chat_id: str) -> Callable[[GroupPost], list[Notice]]:
    def build(post: GroupPost) -> list[Notice]:
        rows = [
            group_notice(
                chat_id,
                kind=post.kind,
                now=post.now,
                title=post.title,
                markdown=post.markdown,
                dedupe_key=post.dedupe_key,
            )
        ]
        if post.image is not None:
            rows.append(
                group_notice(
                    chat_id, kind=post.kind, now=post.now, image=post.image, dedupe_key=f"{post.dedupe_key}:image"
                )
            )
        return rows

    return build


class FeishuChannel:
    name = "feishu"
    settings_model = FeishuSettings

    def features(self, settings: Settings) -> list[tuple[str, str | None]]:
        s = feishu_settings(settings)
        problem = bot_problem(s)
        summary = None if s.feishu_summary_chat_id else "FEISHU_SUMMARY_CHAT_ID not set"
        return [
            (f"Feishu bot in {s.feishu_mode} mode", problem),
            ("Feishu summary group", problem or summary),
            ("Feishu Hire write-back", hire_problem(s)),
        ]

    def reach(self, settings: Settings) -> Reach:
        s = feishu_settings(settings)
        ats = frozenset({HIRE_SYSTEM}) if hire_problem(s) is None else frozenset()
        if bot_problem(s) is not None:
            return Reach(ats_systems=ats)
        chat_id = s.feishu_summary_chat_id
        posters = (
            (GroupPoster(channel=GROUP_CHANNEL, takes_images=True, build=_summary_rows(chat_id)),) if chat_id else ()
        )
        return Reach(staff_channels=frozenset({APP_CHANNEL}), group_posters=posters, ats_systems=ats)

    def routes(self, settings: Settings) -> Iterable[web.AbstractRouteDef]:
        s = feishu_settings(settings)
        if bot_problem(s) is None and s.feishu_mode == "http":
            return [web.post(CALLBACK_PATH, callback)]
        return []

    async def purge(self, core: Core, *, before: datetime) -> None:
        """Nothing beside the intake's items."""

    async def ats_reasons(
        self, settings: Settings, core: Core, http: aiohttp.ClientSession, system: str
    ) -> list[dict[str, Any]]:
        """飞书招聘's termination reasons (``registry.ats_reasons``)."""
        s = feishu_settings(settings)
        assert system == HIRE_SYSTEM and hire_problem(s) is None
        try:
            reasons = await HireApi(feishu_api(core, http, s)).termination_reasons()
        except (FeishuError, aiohttp.ClientError, TimeoutError) as exc:
            denied = isinstance(exc, FeishuError) and exc.code in PERMISSION_CODES
            raise ats.AtsError(
                refusal(core, "ats_reasons_failed", system=system, denied=denied, detail=str(exc)[:200])
            ) from exc
        return [
            {"id": r.id, "name": r.name, "termination_type": r.termination_type, "active": r.active} for r in reasons
        ]

    def connections(self, app: web.Application) -> dict[str, str]:
        link, runner = app.get(LINK), app.get(RUNNER)
        if link is None or runner is None:
            return {}
        if link.finished:
            state = LinkState.stopped
        elif not link.holding:
            state = LinkState.standby
        else:
            state = LinkState.up if runner.connected else LinkState.connecting
        return {LINK_NAME: state.value}

    @asynccontextmanager
    async def running(self, app: web.Application, outbox: Outbox) -> AsyncIterator[None]:
        core, http = app[CORE], app[HTTP]
        s = feishu_settings(core.settings)
        chat: FeishuChat | None = None
        link: Leased | None = None
        if hire_problem(s) is None:
            outbox.register(HireSender(HireApi(feishu_api(core, http, s))))
            log.info("Feishu Hire write-back enabled")
        if bot_problem(s) is None and s.feishu_app_id and s.feishu_app_secret:
            secret = s.feishu_app_secret.get_secret_value()
            api = feishu_api(core, http, s)
            outbox.register(FeishuSender(api))
            outbox.register(FeishuGroupSender(api))
            chat = FeishuChat(core, app[DISPATCHER], api, app[BACKGROUND])
            chat.start()
            app[CHAT] = chat
            if s.feishu_mode == "ws":
                runner = WsRunner(
                    http,
                    app_id=s.feishu_app_id,
                    app_secret=secret,
                    api_base=s.feishu_api_base,
                    encrypt_key=s.feishu_encrypt_key.get_secret_value() if s.feishu_encrypt_key else "",
                    chat=chat,
                )
                link = Leased(core, f"{LINK_NAME}:{s.feishu_app_id}", runner.run)
                app[RUNNER], app[LINK] = runner, link
                link.start()
            log.info("Feishu bot enabled (%s mode)", s.feishu_mode)
            if s.feishu_mode == "http" and not s.feishu_encrypt_key:
                log.warning("FEISHU_ENCRYPT_KEY is not set: Feishu callbacks are neither encrypted nor signed")
        yield
        if link is not None:
            await link.stop()
        if chat is not None:
            await chat.close()


CHANNEL = FeishuChannel()
