"""Prometheus metrics (``GET /metrics``) and what readiness (``GET /readyz``) asks of long connections.

Each application has its own ``Metrics`` (its own ``CollectorRegistry``, never the process-wide
default one), so several apps in one process (the tests) do not share or collide on counters.
It lives on ``Core`` (``core.metrics``): the intake counts callbacks and the items it processed,
the dispatcher times commands, the outbox counts attempts, the scheduler times sweeps. Gauges that
come from the database (chat messages not processed yet, intake items given up on, pending outbox
rows by channel, dead notices) are computed by two grouped queries at most every ``DB_GAUGES_TTL``
seconds, not per scrape line or per scrape.

Long connections (a chat platform's Stream/WebSocket) report their states through the channel
contract (``bot.channels.registry.connections(app)``: up, connecting, standby, stopped); the
``/metrics`` handler passes them to ``exposition`` for ``bot_channel_connected{channel}`` (1 when
up, else 0), and ``/readyz`` reads them too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, exposition, generate_latest

from storage import repo
from storage.db import SessionMaker
from storage.models import INTAKE_OPEN_STATUSES, PLATFORM_EVENTS, IntakeStatus

CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST
DB_GAUGES_TTL = 5.0
CallbackResult = Literal["accepted", "duplicate", "rejected"]
IntakeResult = Literal["done", "retried", "failed"]


class Metrics:
    def __init__(self, *, db_ttl: float = DB_GAUGES_TTL) -> None:
        self.db_ttl = db_ttl  # seconds the database gauges are reused for
        self.registry = CollectorRegistry()
        r = self.registry
        self.callbacks = Counter(
            "bot_callbacks", "Chat platform callbacks by result", ["platform", "result"], registry=r
        )
        self.command_seconds = Histogram(
            "bot_command_duration_seconds",
            "Time to handle one chat command (or an answer to an open question)",
            ["command"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.intake_items = Counter(
            "bot_intake_items",
            "Intake items (chat messages, platform events) by source and how their try ended",
            ["source", "result"],
            registry=r,
        )
        self.notice_attempts = Counter(
            "bot_notice_attempts", "Outbox delivery tries by channel and result", ["channel", "result"], registry=r
        )
        self.sweep_seconds = Histogram(
            "bot_scheduler_sweep_seconds",
            "Duration of one scheduled sweep run",
            ["sweep"],
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0),
        )
        self.llm_proposals = Counter(
            "bot_llm_proposals", "Language model proposal requests by outcome", ["outcome"], registry=r
        )
        self.console_login_refused = Counter(
            "bot_console_login_refused",
            "Console login links refused, by reason (unknown, used, expired; throttled: not even checked)",
            ["reason"],
            registry=r,
        )
        self.inbound_pending = Gauge("bot_inbound_pending", "Chat messages received and not yet processed", registry=r)
        self.outbox_pending = Gauge(
            "bot_outbox_pending", "Outbox rows waiting to be sent (or being sent), by channel", ["channel"], registry=r
        )
        self.intake_failed = Gauge(
            "bot_intake_failed", "Intake items given up on after their last try, by source", ["source"], registry=r
        )
        self.notices_dead = Gauge("bot_notices_dead", "Outbox rows (notices, replies) given up on", registry=r)
        self.channel_connected = Gauge(
            "bot_channel_connected", "1 when the long connection is up, else 0", ["channel"], registry=r
        )
        self._db_at: float | None = None
        self._db_lock = asyncio.Lock()
        self._outbox_channels: set[str] = set()
        self._failed_sources: set[str] = set()
        self._connection_names: set[str] = set()

    def callback(self, platform: str, result: CallbackResult) -> None:
        self.callbacks.labels(platform=platform, result=result).inc()

    def intake(self, source: str, result: IntakeResult, n: int = 1) -> None:
        if n:
            self.intake_items.labels(source=source, result=result).inc(n)

    def attempt(self, channel: str, result: str) -> None:
        self.notice_attempts.labels(channel=channel, result=result).inc()

    async def refresh_db_gauges(self, sessions: SessionMaker) -> None:
        """Recompute the database gauges when the last computation is older than ``db_ttl`` seconds."""
        async with self._db_lock:
            if self._db_at is not None and time.monotonic() - self._db_at < self.db_ttl:
                return
            async with sessions() as session:
                counts = await repo.outbox_counts(session)
                intake = await repo.intake_counts(session)
            self.inbound_pending.set(
                sum(
                    n
                    for (source, status), n in intake.items()
                    if source != PLATFORM_EVENTS and status in INTAKE_OPEN_STATUSES
                )
            )
            failed = {source: n for (source, status), n in intake.items() if status == IntakeStatus.failed.value}
            for source in self._failed_sources - set(failed):
                self.intake_failed.labels(source=source).set(0)
            for source, n in failed.items():
                self.intake_failed.labels(source=source).set(n)
            self._failed_sources |= set(failed)
            self.notices_dead.set(counts.dead)
            for channel in self._outbox_channels - set(counts.pending_by_channel):
                self.outbox_pending.labels(channel=channel).set(0)  # drained: 0, not a stale value
            for channel, n in counts.pending_by_channel.items():
                self.outbox_pending.labels(channel=channel).set(n)
            self._outbox_channels |= set(counts.pending_by_channel)
            self._db_at = time.monotonic()

    def exposition(self, connections: Mapping[str, str]) -> bytes:
        """The text format; ``connections``: each long connection's state (``LinkState`` values)."""
        states = dict(connections)
        for name in self._connection_names - set(states):
            self.channel_connected.remove(name)  # stopped: no series rather than a stale one
        for name, state in states.items():
            self.channel_connected.labels(channel=name).set(1 if state == "up" else 0)
        self._connection_names = set(states)
        return generate_latest(self.registry)
