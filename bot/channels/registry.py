"""The one list of chat channels, and what the rest of the application asks of them.

Adding a channel is one package with a ``CHANNEL`` object that fits ``Channel`` plus one line in
``CHANNELS``. The app factory, the CLI, the start-up summary, the daily summary's group posts and
the candidate notice plan learn about channels only from here (through ``bot.delivery.Reach``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, cast

import aiohttp
from aiohttp import web
from pydantic import BaseModel, create_model

from bot.channels import dingtalk, feishu, wecom
from bot.delivery import Reach
from bot.outbox import Outbox
from bot.services.context import Core
from bot.settings import Settings


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

    async def purge(self, core: Core, *, before: datetime) -> None:
        """Housekeeping: forget what it keeps beside the intake's items of messages received before
        ``before`` (through a service: channels reach storage only through the intake and services)."""
        ...

    def connections(self, app: web.Application) -> dict[str, str]:
        """Its long connections (none for callback-only channels) by name, each a
        ``bot.services.leases.LinkState`` value: up, connecting, standby (another replica holds
        it) or stopped. For the readiness check and the metrics."""
        ...

    def running(self, app: web.Application, outbox: Outbox) -> AbstractAsyncContextManager[None]:
        """Registers its outbox senders (including the one that sends replies to its messages),
        starts its connections and its chat intake; on exit stops them. Entered before the outbox worker
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
        ats_systems=frozenset().union(*(p.ats_systems for p in parts)),
    )


async def ats_reasons(
    settings: Settings, core: Core, http: aiohttp.ClientSession, system: str
) -> list[dict[str, Any]] | None:
    """A connected recruiting system's own termination reasons (``id``, ``name``,
    ``termination_type``, ``active``), for the admin's mapping; None when no channel serves ``system``.
    A channel that serves one has ``async ats_reasons(settings, core, http, system)``."""
    for c in CHANNELS:
        fetch = getattr(c, "ats_reasons", None)
        if fetch is not None and system in c.reach(settings).ats_systems:
            reasons: list[dict[str, Any]] = await fetch(settings, core, http, system)
            return reasons
    return None


def feature_status(settings: Settings) -> list[tuple[str, str | None]]:
    """Every switchable feature with None when it is on, else why it is off."""
    return [*settings.feature_status(), *(f for c in CHANNELS for f in c.features(settings))]


def disabled_features(settings: Settings) -> list[str]:
    """Features switched off, each with the reason (a missing secret, an option left off)."""
    return [f"{name} ({why})" for name, why in feature_status(settings) if why]


def startup_warnings(settings: Settings) -> list[str]:
    """What people would be told or not told because of a setting left unset, in plain words:
    terminations that reach no platform, candidate notices that give no way to reach anyone."""
    warnings: list[str] = []
    platform_off = dict(settings.feature_status()).get("platform calls")
    if platform_off:
        warnings.append(
            f"platform calls: off ({platform_off}): terminations are recorded here only,"
            " the interview on the platform is not touched and no answers are saved"
        )
    if not settings.company_contact and settings.notice_hr_contact == "none":
        warnings.append(
            "candidate contact: none (BOT_COMPANY_CONTACT not set, BOT_NOTICE_HR_CONTACT=none):"
            " candidate notices give no phone or mailbox to reach anyone"
        )
    return warnings


def startup_summary(settings: Settings) -> str:
    """One line for the start-up log: what is on, what is off and why, and what that means for
    people (``startup_warnings``)."""
    status = feature_status(settings)
    on = [name for name, why in status if not why]
    off = [f"{name} ({why})" for name, why in status if why]
    usable = settings.candidate_channels() | reach(settings).candidate_chats
    reached = [c for c in settings.notice_channels if c in usable]
    notices = ", ".join(reached) if reached else "NONE (candidates cannot be notified)"
    # HR notices (help requests, timeouts, terminations by others): their chat, else their email.
    staff = sorted(reach(settings).staff_channels) + (["email (HR with an address)"] if settings.smtp_enabled else [])
    hr = ", ".join(staff) if staff else "NONE (HR get only to-dos in the console)"
    parts = [
        f"enabled: {', '.join(on) or 'nothing'}",
        f"disabled: {'; '.join(off) or 'nothing'}",
        *startup_warnings(settings),
        f"HR notices can go by: {hr}",
        f"candidate notices ({settings.notice_plan}) can go by: {notices}",
    ]
    return " | ".join(parts)


def chat_channels_on(settings: Settings) -> list[str]:
    """The channels with at least one part switched on (people talk to the bot there, or it posts there)."""
    return [c.name for c in CHANNELS if any(why is None for _, why in c.features(settings))]


def startup_notes(settings: Settings, console_url: str) -> list[tuple[int, str]]:
    """Start-up log lines after the summary, with their levels: where the web console is; the next
    step when no chat channel is configured; a warning when links people open on their phones
    (console logins from chat, the daily summary's) can only point at this machine."""
    notes = [(logging.INFO, f"web console: {console_url}")]
    first = names()[0]
    if not chat_channels_on(settings):
        notes.append(
            (
                logging.INFO,
                "no chat channel is configured. To try the bot from this machine (same .env): "
                f"python -m bot people add --platform {first} --user-id hr01 --name <name> --role hr; "
                f"python -m bot demo --hr {first}:hr01 (sample interviews; needs PLATFORM_WEBHOOK_SECRET); "
                f"python -m bot chat --as {first}:hr01, or "
                f"python -m bot console-link --platform {first} --user-id hr01 and open the link",
            )
        )
    elif not settings.public_base_url:
        notes.append(
            (
                logging.WARNING,
                f"BOT_PUBLIC_BASE_URL is not set: console login links sent in chat point at {console_url}, "
                "which opens only on this machine; set it to the address people and platforms reach this service at",
            )
        )
    return notes
