"""Work that only one replica may do at a time, such as holding a platform's single long connection.

``Leased`` runs a coroutine only while this process holds a named lease in the database (the
``lease`` table). The holder renews it every ``renew_every`` seconds; the other replicas stand
by and try as often, and take over once the holder has stopped renewing for ``lease_for`` (it
died or lost the database; BOT_LEASE_SECONDS, 30 by default). A clean stop releases the lease,
so a standby takes over at its next try.

``heartbeat`` is the same renewal for a whole process: every process that claims work (each
serving replica, and the terminal console) holds its own lease ``replica:<boot id>`` while it runs
(``alive``). Rows it claims (inbound messages, outbox rows, termination
jobs) carry its worker id; once its lease has expired (kill -9, lost database) or been given up
(a clean stop), any other replica takes them over by a compare-and-set on the old claim
(``storage.repo.claimer_gone`` is that one rule, in SQL), so a dead replica's work resumes within
about BOT_LEASE_SECONDS instead of waiting for each claim's own lock to run out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.exc import SQLAlchemyError

from bot.services.context import Core
from storage import repo

log = logging.getLogger(__name__)


class LinkState(StrEnum):
    """A long connection as the readiness check and metrics see it."""

    up = "up"  # connected and serving
    connecting = "connecting"  # this replica should hold it and is (re)connecting
    standby = "standby"  # another replica holds the lease: not ours to open
    stopped = "stopped"  # stopped on purpose (e.g. the platform said a newer connection replaced it)


class Leased:
    """Runs ``run`` while this process holds the lease ``name``; cancels it when the lease is lost.

    ``run`` owns its own reconnects. When it returns, it stopped on purpose and is not started
    again (the lease stays held, so no other replica fights for the connection either); when it
    raises, it is logged and started again at the next renewal.
    """

    def __init__(
        self,
        core: Core,
        name: str,
        run: Callable[[], Awaitable[None]],
        *,
        lease_for: timedelta | None = None,
        renew_every: float | None = None,
    ) -> None:
        """By default the lease lasts BOT_LEASE_SECONDS and is renewed every third of that."""
        self._core, self.name, self._run = core, name, run
        seconds = core.settings.lease_seconds
        self._lease_for = lease_for or timedelta(seconds=seconds)
        self._renew_every = renew_every if renew_every is not None else seconds / 3
        self.holding = False
        self.finished = False
        self._loop_task: asyncio.Task[None] | None = None
        self._work: asyncio.Task[None] | None = None

    async def hold_first(self) -> bool:
        """Take (or renew) the lease once now, before anything relies on it; ``start`` then keeps it."""
        self.holding = await self._hold()
        return self.holding

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name=f"lease:{self.name}")

    async def stop(self) -> None:
        """Stop the work and the renewals, and give the lease up."""
        for task in (self._loop_task, self._work):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._loop_task = self._work = None
        if self.holding:
            self.holding = False
            try:
                async with self._core.sessions() as session:
                    await repo.release_lease_and_commit(session, name=self.name, holder=self._core.worker_id)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("could not release lease %s: %s (it expires by itself)", self.name, exc)

    async def _hold(self) -> bool:
        now = self._core.clock.now()
        try:
            async with self._core.sessions() as session:
                return await repo.hold_lease_and_commit(
                    session, name=self.name, holder=self._core.worker_id, now=now, until=now + self._lease_for
                )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not renew lease %s: %s", self.name, exc)
            return False

    async def _loop(self) -> None:
        while True:
            won = await self._hold()
            if won and not self.holding:
                log.info("holding lease %s", self.name)
            if not won and self.holding:
                log.warning("lost lease %s: stopping its work (another replica takes over)", self.name)
                await self._cancel_work()
            self.holding = won
            if won and not self.finished and (self._work is None or self._work.done()):
                self._work = asyncio.create_task(self._guarded(), name=f"leased:{self.name}")
            await asyncio.sleep(self._renew_every)

    async def _guarded(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("work under lease %s failed; it starts again at the next renewal", self.name)
            return
        self.finished = True
        log.info("work under lease %s stopped on purpose; not restarted", self.name)

    async def _cancel_work(self) -> None:
        work, self._work = self._work, None
        if work is not None and not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)


def heartbeat(core: Core) -> Leased:
    """This process's replica lease (``replica:<boot id>``, held by its worker id): alive while renewed.

    Call ``hold_first`` before the process claims anything (a claim without a live lease is taken
    over at once), then ``start``; ``stop`` gives it up after the process's work has stopped."""
    boot = core.worker_id.rsplit("/", 1)[-1]
    return Leased(core, f"{repo.REPLICA_LEASE}{boot}"[:100], _alive)


@asynccontextmanager
async def alive(core: Core) -> AsyncIterator[Leased]:
    """Hold this process's replica lease for the block: any process that claims rows (a serving
    replica, or ``python -m bot chat`` running a termination) must, or the replicas' sweeps take
    its claims over as a dead process's while it still works on them."""
    beat = heartbeat(core)
    if not await beat.hold_first():
        log.warning("could not take this process's lease %s yet; renewing it in the background", beat.name)
    beat.start()
    try:
        yield beat
    finally:
        await beat.stop()


async def _alive() -> None:
    """The heartbeat's work: nothing but being held (cancelled when the lease is lost or at stop)."""
    await asyncio.Event().wait()
