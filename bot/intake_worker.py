"""The one worker rule of the intake (``intake_item``), for items of every source.

A source (platform events, each chat channel) has one ``IntakeWorker`` per process. It claims a
batch of its source's items in one statement (``repo.claim_intake_and_commit``: oldest first; the
items of one ``order_key`` — an interview, a chat sender — one worker at a time and in order, not
past one that waits for its retry; items whose claim expired or whose claimer is gone,
``leases.claimer_gone``, are taken by the same statement), hands them to its source's ``run``, which
finishes each item in the same transaction as its results (``repo.finish_intake``), and claims
again until a claim finds nothing. It is woken when something is stored here and otherwise sweeps now and then
(retries, items a crash or another replica left). At start it takes over what an earlier boot of
this instance left claimed (``take_over_intake_and_commit``, ``gone_owners``).

One retry policy: a failed try goes back to ``received`` after ``retry_delay`` (doubling from
``RETRY_BASE`` up to ``RETRY_MAX``); the ``MAX_ATTEMPTS``-th try failing leaves it ``failed`` with
its ``last_error`` (``GET /api/intake?status=failed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.services.claims import CLAIM_FOR
from bot.services.context import Core
from storage import repo
from storage.models import IntakeItem

log = logging.getLogger(__name__)

# Tries of one item (an event, a chat message) before it is left failed.
MAX_ATTEMPTS = 6
RETRY_BASE = timedelta(seconds=2)
RETRY_MAX = timedelta(minutes=5)

RunBatch = Callable[[list[IntakeItem]], Awaitable[None]]


def retry_delay(attempts: int) -> timedelta:
    """How long an item waits after its ``attempts``-th try failed."""
    return min(RETRY_BASE * (2 ** max(0, attempts - 1)), RETRY_MAX)


def final_try(item: IntakeItem) -> bool:
    """Whether this try of a claimed item (its attempts counted by the claim) is its last one."""
    return item.attempts >= MAX_ATTEMPTS


def gone_owners(core: Core) -> list[str]:
    """Claims known to belong to processes that are gone, taken over at once: every earlier boot
    of this instance (``<instance>/``; a worker asks before it has claimed anything). Claims of
    other instances are taken when they expire (``CLAIM_FOR``) or their replica lease does."""
    return [f"{core.instance}/"]


def brief(exc: BaseException) -> str:
    """An error for the log and ``last_error`` without SQL parameters (they may hold message text)."""
    orig = getattr(exc, "orig", None) or getattr(exc.__cause__, "orig", None) or exc
    text = str(orig).splitlines()[0][:200] if str(orig) else ""
    return f"{type(orig).__name__}: {text}"


class IntakeWorker:
    """Claims and runs one source's items in batches (see the module docstring)."""

    def __init__(
        self,
        core: Core,
        background: set[asyncio.Task[None]],
        *,
        source: str,
        run: RunBatch,
        limit: int,
        sweep: float,
        counted: Callable[[int, int], None] | None = None,
        before_claim: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.core = core
        self.source = source
        self._background = background
        self._run = run
        self._limit = limit
        self._sweep = sweep
        self._counted = counted  # told the backlog and the highest id at each claim (platform events' backpressure)
        self._before_claim = before_claim
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while there is nothing to do
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=f"intake-work:{self.source}")
        self._background.add(self._task)
        self._task.add_done_callback(self._background.discard)

    def wake(self) -> None:
        """Something was stored: claim now rather than at the next sweep."""
        self._wake.set()

    def stopping(self) -> None:
        """Claim nothing more; the batch in flight goes on."""
        self._stopping = True
        self._wake.set()

    async def stop(self, grace: float) -> None:
        """Claim nothing more and let the batch in flight finish for ``grace`` seconds; what is cut
        off stays claimed by this process, and is taken over once it is gone (or at its restart)."""
        self.stopping()
        task, self._task = self._task, None
        if task is None or task.done():
            return
        _, pending = await asyncio.wait({task}, timeout=grace)
        if pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settled(self) -> None:
        """Wait until everything due is processed (tests; a running service never waits)."""
        async with asyncio.timeout(10):
            while not self._idle.is_set() or self._wake.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    async def _loop(self) -> None:
        core = self.core
        async with core.sessions() as session:
            taken = await repo.take_over_intake_and_commit(session, source=self.source, owners=gone_owners(core))
        if taken:
            log.warning("taking over %d %s item(s) left by an earlier run of %s", taken, self.source, core.instance)
        while not self._stopping:
            try:
                if self._before_claim is not None:
                    await self._before_claim()
                    if self._stopping:
                        break
                claimed = await self.once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming or processing %s items failed; they are tried again", self.source)
                claimed = 0
            if claimed:
                await asyncio.sleep(0)  # more may be waiting; what is being stored goes first for a moment
                continue
            self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep)
            self._wake.clear()
            self._idle.clear()  # until a claim finds nothing again

    async def once(self) -> int:
        """Claim one batch and run it; how many items were claimed."""
        core = self.core
        now = core.clock.now()
        async with core.sessions() as session:
            items = await repo.claim_intake_and_commit(
                session, source=self.source, worker=core.worker_id, now=now, until=now + CLAIM_FOR, limit=self._limit
            )
            if self._counted is not None:
                self._counted(*await repo.intake_backlog(session, source=self.source))
        if items:
            await self._run(items)
        return len(items)

    async def failed(self, item: IntakeItem, exc: BaseException, *, final: bool | None = None) -> None:
        """A try of ``item`` failed: tried again after ``retry_delay``, or, on its last try (or when
        ``final``), left failed with its error."""
        assert item.id is not None
        final = final_try(item) if final is None else final
        core = self.core
        retry_at = None if final else core.clock.now() + retry_delay(item.attempts)
        error = brief(exc)
        if final:
            log.error("%s item %s failed for good after %d tries: %s", self.source, item.key, item.attempts, error)
        else:
            log.warning(
                "%s item %s failed (try %d), tried again later: %s", self.source, item.key, item.attempts, error
            )
        core.metrics.intake(self.source, "failed" if final else "retried")
        async with core.sessions() as session:
            await repo.retry_intake_and_commit(
                session, item_id=item.id, worker=core.worker_id, error=error, retry_at=retry_at
            )
