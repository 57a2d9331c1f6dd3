"""The dependencies services share, built once by the app factory or the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.chat.masking import ContactCollector
from bot.clock import Clock
from bot.delivery import GroupPoster, Reach
from bot.metrics import Metrics
from bot.platform_client import PlatformClient
from bot.services.claims import Runs, instance_name, new_worker_id
from bot.services.memo import Lookups
from bot.settings import Settings
from bot.templating import Templates
from storage.db import SessionMaker, read_only, watched


@dataclass
class Core:
    settings: Settings
    sessions: SessionMaker
    clock: Clock
    templates: Templates
    platform: PlatformClient | None = None
    # What the configured chat channels reach (bot.delivery.Reach, from bot.channels.registry):
    # outbox channels that reach colleagues by platform user id, chat channels that reach
    # candidates, group robots.
    staff_channels: set[str] = field(default_factory=set)
    candidate_chats: frozenset[str] = frozenset()
    group_posters: tuple[GroupPoster, ...] = ()
    # Recruiting systems an exit is written back to (bot.services.ats).
    ats_systems: frozenset[str] = frozenset()
    # Called after notices are committed, so the outbox worker sends them at once (given by the
    # app factory; the CLI has no worker of its own).
    wake_outbox: Callable[[], None] = lambda: None
    # This replica (stable) and this process ("<instance>/<boot id>"), for claims.
    instance: str = ""
    worker_id: str = ""
    # This app's Prometheus metrics (its own registry) and long-connection states (bot.metrics).
    metrics: Metrics = field(default_factory=Metrics)
    # Lookups remembered within one batch of chat messages (bot.services.memo) and the candidates
    # loaded while a group reply is made (bot.chat.masking): this app's own, fed by its own sessions
    # (set up in __post_init__), so two apps in one process never see each other's.
    lookups: Lookups = field(default_factory=Lookups)
    contacts: ContactCollector = field(default_factory=ContactCollector)
    # The job runs (termination jobs) in progress in this app, by claim token (bot.services.claims).
    runs: Runs = field(default_factory=Runs)
    # Sessions for single lookups that need no transaction (``storage.db.read_only``): the chat
    # path's reads of the sender, their open question and the interviews a command lists.
    reads: SessionMaker = field(init=False)

    @classmethod
    def reaching(cls, reach: Reach, **kwargs: Any) -> Core:
        """A Core whose channel capabilities are ``reach``."""
        return cls(
            staff_channels=set(reach.staff_channels),
            candidate_chats=reach.candidate_chats,
            group_posters=reach.group_posters,
            ats_systems=reach.ats_systems,
            **kwargs,
        )

    def __post_init__(self) -> None:
        self.sessions = watched(self.sessions, after_commit=self.lookups.forget, on_load=self.contacts.loaded)
        self.reads = read_only(self.sessions)
        if not self.instance:
            self.instance = instance_name(self.settings.instance_id, self.settings.port)
        if not self.worker_id:
            self.worker_id = new_worker_id(self.instance)
