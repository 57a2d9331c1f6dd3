"""Who is claiming due rows, and how long a claim lasts before another replica may take it over."""

from __future__ import annotations

import functools
import os
import secrets
import socket
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CLAIM_FOR = timedelta(minutes=2)


@functools.cache
def worker_id() -> str:
    """This process as ``host:pid``: the owner part of termination-job run tokens (see owner_gone)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:160]


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


# Claim tokens of the runs in progress in this process (see run_token / owner_gone).
_LIVE_RUNS: set[str] = set()


def run_token() -> str:
    """A claim token for one run of a job here: ``host:pid#nonce``; release it with ``end_run``."""
    token = f"{worker_id()}#{secrets.token_hex(4)}"
    _LIVE_RUNS.add(token)
    return token


def end_run(token: str) -> None:
    _LIVE_RUNS.discard(token)


def owner_gone(claimed_by: str | None) -> bool:
    """True when a claim token names a run on this host that no longer exists.

    Its process is dead (kill -9, crash), or it is this process reusing the pid of an earlier
    life (pid 1 in a restarted container) and the run is not one of ours: take it over at once
    instead of waiting for the claim to expire. Claims of other hosts wait for expiry.
    """
    if not claimed_by or "#" not in claimed_by:
        return claimed_by is None
    owner = claimed_by.split("#", 1)[0]
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return claimed_by not in _LIVE_RUNS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def local_text(when: datetime | None, tz: ZoneInfo) -> str:
    """A time for people: ``2026-11-26 14:00`` in BOT_TIMEZONE."""
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M") if when else ""
