"""Who is claiming due rows, and how long a claim lasts before another replica may take it over."""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CLAIM_FOR = timedelta(minutes=2)


def instance_name(instance_id: str | None, port: int) -> str:
    """This replica's stable name (BOT_INSTANCE_ID, else ``<hostname>:<port>``): the same across restarts."""
    return (instance_id or f"{socket.gethostname()}:{port}")[:100]


def tool_instance(port: int) -> str:
    """A command-line process's name (``<hostname>:<port>~cli<pid>``): never a serving replica's, so
    no replica takes this process's claims for those of an earlier boot of its own, which it would
    resume at once while this process still works on them."""
    return f"{socket.gethostname()}:{port}~cli{os.getpid()}"[:100]


def new_worker_id(instance: str) -> str:
    """This process, as written into ``claimed_by`` columns: ``<instance>/<boot id>``, new at every start.

    At start-up, rows claimed by an earlier boot of the same instance are taken over at once
    (``storage.repo.take_over_claims_and_commit``): that process is gone. Another instance's claims may
    belong to a live replica, so they are taken over only when they expire.
    """
    return f"{instance}/{uuid.uuid4().hex}"


class Runs:
    """The claim tokens of the job runs in progress in one app (``Core.runs``): a run is claimed by
    ``<worker id>#nonce``, so the app can tell its own live runs from runs of its that ended (or
    were cut off) without a process-wide registry two apps in one process would share."""

    def __init__(self) -> None:
        self._live: set[str] = set()

    def start(self, worker: str) -> str:
        """A claim token for one run of a job here; release it with ``end``."""
        token = f"{worker}#{secrets.token_hex(4)}"
        self._live.add(token)
        return token

    def end(self, token: str) -> None:
        self._live.discard(token)

    def owner_gone(self, claimed_by: str | None, *, instance: str, worker: str) -> bool:
        """True when a run token's process, or the run itself, is known to be gone.

        A token of an earlier boot of this instance (``<instance>/<other boot>#…``) belongs to a
        process that no longer runs (kill -9, crash): take its work over at once. A token of this
        process whose run has ended is gone too. Tokens of other instances (replicas that may be
        alive) are judged by their replica lease (``storage.repos.leases.claimer_gone``) or wait
        for their claim to expire.
        """
        if not claimed_by:
            return True
        owner = claimed_by.split("#", 1)[0]
        if owner == worker:
            return claimed_by not in self._live
        return owner.startswith(f"{instance}/")


def local_text(when: datetime | None, tz: ZoneInfo) -> str:
    """A time for people: ``2026-11-26 14:00`` in BOT_TIMEZONE."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else ""
