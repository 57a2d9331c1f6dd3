"""The one list of chat channels, and what the rest of the application asks of them.

Adding a channel is one package with a ``CHANNEL`` object that fits ``Channel`` plus one line in
``CHANNELS``. The app factory, the CLI, the start-up summary, the daily summary's group posts and
the candidate notice plan learn about channels only from here (through ``bot.delivery.Reach``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, cast

from aiohttp import web
from pydantic import BaseModel, create_model

from bot.channels import dingtalk, feishu, wecom
from bot.delivery import Reach
from bot.outbox import Outbox
from bot.settings import Settings
from storage.db import AsyncSession


class Channel(Protocol):
    """A chat platform, decided by its own settings and started and stopped with the application."""

    name: str  # the platform of IncomingMessage and Person ("wecom", …)

    @property
    def settings_model(self) -> type[BaseModel]:
        """Its own settings: a pydantic model whose fields carry their environment names (e.g.
        WECOM_CORP_ID), mixed into ``AppSettings``; the channel reads them back with
        ``bot.settings.part(settings, <model>)``."""
        ...

    def features(self, s: Settings) -> list[tuple[str, str | None]]:
        """Its switchable parts for the start-up summary: None when on, else why it is off."""
        ...

    def reach(self, s: Settings) -> Reach:
        """Whom it can reach: staff by user id, candidates, groups (see ``bot.delivery``)."""
        ...

    def routes(self, s: Settings) -> Iterable[web.AbstractRouteDef]:
        """Its callback routes (added before the app starts)."""
        ...

    async def purge(self, session: AsyncSession, *, before: datetime) -> None:
        """Housekeeping: forget what it keeps of messages received before ``before`` (commits)."""
        ...

    def connections(self, app: web.Application) -> dict[str, str]:
        """Its long connections (none for callback-only channels) by name, each a
        ``bot.services.leases.LinkState`` value: up, connecting, standby (another replica holds
        it) or stopped. For the readiness check and the metrics."""
        ...

    def running(self, app: web.Application, outbox: Outbox) -> AbstractAsyncContextManager[None]:
        """Registers its outbox senders (including the one that sends replies to its messages),
        starts its connections and workers; on exit stops them. Entered before the outbox worker
        starts and left while it still runs."""
        ...


CHANNELS: tuple[Channel, ...] = (
    wecom.CHANNEL,
    dingtalk.CHANNEL,
    feishu.CHANNEL,
)


def _app_settings() -> type[Settings]:
    bases: tuple[type[BaseModel], ...] = (Settings, *(c.settings_model for c in CHANNELS))
    # Mixed-in models share one namespace: a field or validator defined twice would silently
    # shadow the other, so prefix them with the channel's name (wecom_…, _wecom_…).
    seen: dict[str, str] = {}
    for model in bases:
        own = [*model.model_fields, *model.__pydantic_decorators__.field_validators]
        for name in own:
            if name in seen and seen[name] != model.__name__:
                raise TypeError(f"{model.__name__}.{name} is also defined by {seen[name]}")
            seen[name] = model.__name__
    composed: type[BaseModel] = create_model("AppSettings", __base__=bases, __module__=__name__)
    return cast("type[Settings]", composed)


# The application's settings: the core ``Settings`` with every channel's own model mixed in.
AppSettings = _app_settings()


# The process environment variable naming the settings file: unset, ``.env`` in the working
# directory; empty, no file at all (the tests set it so a developer's ``.env`` is never read).
ENV_FILE_VARIABLE = "BOT_ENV_FILE"


def env_file() -> str | None:
    """The settings file ``load_settings`` reads (None: none), from ``BOT_ENV_FILE``."""
    value = os.environ.get(ENV_FILE_VARIABLE)
    if value is None:
        return ".env"
    return value or None


def load_settings(**overrides: object) -> Settings:
    """Read every setting from the environment (and the file ``env_file`` names); overrides (by
    field name, ``_env_file`` among them) win."""
    overrides.setdefault("_env_file", env_file())
    return AppSettings(**overrides)  # type: ignore[arg-type]


def connections(app: web.Application) -> dict[str, str]:
    """Every channel's long connections and their states (``Channel.connections``)."""
    return {name: state for c in CHANNELS for name, state in c.connections(app).items()}


def names() -> list[str]:
    return [c.name for c in CHANNELS]


def reach(settings: Settings) -> Reach:
    """What all configured channels together can reach."""
    parts = [c.reach(settings) for c in CHANNELS]
    return Reach(
        staff_channels=frozenset().union(*(p.staff_channels for p in parts)),
        candidate_chats=frozenset().union(*(p.candidate_chats for p in parts)),
        group_posters=tuple(poster for p in parts for poster in p.group_posters),
    )


def feature_status(settings: Settings) -> list[tuple[str, str | None]]:
    """Every switchable feature with None when it is on, else why it is off."""
    return [*settings.feature_status(), *(f for c in CHANNELS for f in c.features(settings))]


def disabled_features(settings: Settings) -> list[str]:
    """Features switched off, each with the reason (a missing secret, an option left off)."""
    return [f"{name} ({why})" for name, why in feature_status(settings) if why]


def startup_summary(settings: Settings) -> str:
    """One line for the start-up log: what is on, what is off and why."""
    status = feature_status(settings)
    on = [name for name, why in status if not why]
    off = [f"{name} ({why})" for name, why in status if why]
    usable = settings.candidate_channels() | reach(settings).candidate_chats
    reached = [c for c in settings.notice_channels if c in usable]
    notices = ", ".join(reached) if reached else "NONE (candidates cannot be notified)"
    return (
        f"enabled: {', '.join(on) or 'nothing'} | disabled: {'; '.join(off) or 'nothing'}"
        f" | candidate notices ({settings.notice_plan}) can go by: {notices}"
    )
