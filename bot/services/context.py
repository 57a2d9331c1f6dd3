"""The dependencies services share, built once by the app factory or the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.platform_client import PlatformClient
from bot.services.claims import instance_name, new_worker_id
from bot.settings import Settings
from bot.templating import Templates
from storage.db import SessionMaker


@dataclass
class Core:
    settings: Settings
    sessions: SessionMaker
    clock: Clock
    templates: Templates
    platform: PlatformClient | None = None
    # Channels that can reach colleagues by platform user id ("wecom", "dingtalk").
    staff_channels: set[str] = field(default_factory=set)
    # Called after notices are committed, so the outbox worker sends them at once.
    wake_outbox: Callable[[], None] = lambda: None
    # This replica (stable) and this process ("<instance>/<boot id>"), for claims.
    instance: str = ""
    worker_id: str = ""

    def __post_init__(self) -> None:
        if not self.instance:
            self.instance = instance_name(self.settings.instance_id, self.settings.port)
        if not self.worker_id:
            self.worker_id = new_worker_id(self.instance)
