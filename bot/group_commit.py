"""Group commit: many callers wait for their own item to be stored, one task stores them in batches.

Every source of the intake takes what arrives this way (chat messages in ``bot.intake.ChatStore``,
platform events in ``bot.platform_intake.PlatformIntake``): a caller queues its item and waits for
its future; the writer task takes whatever has queued up (at most ``most`` items) and hands the
batch to the source's ``write``, which stores it in one transaction and settles each future (True:
new, False: a redelivery). Callbacks arriving together so share one commit, which keeps the ack
latency low, above all on SQLite, where concurrent writers queue.

A ``write`` that raises settles the futures it left open with the source's ``refusal`` of the
error (the callers answer with an error, so their senders try again); the writer goes on with the
next batch, unless it is being cancelled. ``stop`` refuses what is still queued the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Waiting(Generic[T]):
    """An item queued to be stored, and the future its caller waits for."""

    item: T
    done: asyncio.Future[bool]

    def settle(self, result: bool | BaseException) -> None:
        if self.done.done():
            return
        if isinstance(result, BaseException):
            self.done.set_exception(result)
        else:
            self.done.set_result(result)


class GroupCommit(Generic[T]):
    """The queue and the writer task (see the module docstring)."""

    def __init__(
        self,
        name: str,
        write: Callable[[list[Waiting[T]]], Awaitable[None]],
        *,
        most: int,
        refusal: Callable[[BaseException], BaseException],
    ) -> None:
        self.name = name
        self._write = write
        self._most = most
        self._refusal = refusal
        self._queue: asyncio.Queue[Waiting[T]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self, background: set[asyncio.Task[None]]) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)
        background.add(self._task)
        self._task.add_done_callback(background.discard)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def queued(self) -> int:
        """Items waiting for the writer (not counting the batch being written)."""
        return self._queue.qsize()

    def put(self, item: T) -> asyncio.Future[bool]:
        """Queue ``item``; the future is settled once its batch is stored (or refused)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Waiting(item, done))
        return done

    async def stop(self, refusal: BaseException) -> None:
        """Stop the writer (the batch being written is refused with what ``refusal`` makes of the
        cancellation) and refuse what is still queued with ``refusal``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            self._queue.get_nowait().settle(refusal)

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._most and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            except BaseException as exc:
                if isinstance(exc, Exception):
                    log.exception("storing %d items (%s) failed", len(batch), self.name)
                failure = self._refusal(exc)
                for waiting in batch:
                    waiting.settle(failure)
                if not isinstance(exc, Exception):
                    raise
