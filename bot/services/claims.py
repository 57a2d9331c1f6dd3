"""Who is claiming due rows, and how long a claim lasts before another replica may take it over."""

from __future__ import annotations

import socket
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CLAIM_FOR = timedelta(minutes=2)


def instance_name(instance_id: str | None, port: int) -> str:
    """This replica's stable name (BOT_INSTANCE_ID, else ``<hostname>:<port>``): the same across restarts."""
    return (instance_id or f"{socket.gethostname()}:{port}")[:100]


def new_worker_id(instance: str) -> str:
    """This process, as written into ``claimed_by`` columns: ``<instance>/<boot id>``, new at every start.

    At start-up, rows claimed by an earlier boot of the same instance are taken over at once
    (``storage.repo.take_over_claims``): that process is gone. Another instance's claims may
    belong to a live replica, so they are taken over only when they expire.
    """
    return f"{instance}/{uuid.uuid4().hex}"


def local_text(when: datetime | None, tz: ZoneInfo) -> str:
    """A time for people: ``2026-11-26 14:00`` in BOT_TIMEZONE."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else ""
