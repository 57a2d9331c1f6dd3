"""One holder at a time for a lease shared through the database (bot/services/leases.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest

from bot.clock import FrozenClock
from bot.services.context import Core
from bot.services.leases import Leased
from bot.templating import Templates
from storage import repo
from storage.db import create_engine, session_maker
from tests.conftest import eventually, make_settings

RENEW = 0.02  # seconds between renewals in these tests
LEASE_FOR = timedelta(seconds=30)


@pytest.fixture
async def cores(clean_db: str, clock: FrozenClock) -> AsyncIterator[Callable[[str], Core]]:
    """Cores of separate replicas (distinct worker ids) on one database and one test clock."""
    engine = create_engine(clean_db)
    sessions = session_maker(engine)

    def core(instance: str) -> Core:
        settings = make_settings(clean_db)
        return Core(settings=settings, sessions=sessions, clock=clock, templates=Templates(), instance=instance)

    yield core
    await engine.dispose()


def worker(log: list[str], name: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        log.append(f"{name} start")
        try:
            await asyncio.Event().wait()
        finally:
            log.append(f"{name} stop")

    return run


async def test_one_replica_holds_the_lease_and_a_standby_takes_over_when_it_dies(
    cores: Callable[[str], Core], clock: FrozenClock
) -> None:
    log: list[str] = []
    a, b = cores("a"), cores("b")
    first = Leased(a, "link", worker(log, "a"), lease_for=LEASE_FOR, renew_every=RENEW)
    second = Leased(b, "link", worker(log, "b"), lease_for=LEASE_FOR, renew_every=RENEW)
    first.start()
    await eventually(lambda: first.holding and log == ["a start"], 5.0, "the first replica to hold the lease")
    second.start()
    await asyncio.sleep(RENEW * 10)  # many renewals: the second only stands by
    assert log == ["a start"] and not second.holding

    # The first replica dies without releasing (its renewals stop; the row stays).
    assert first._loop_task is not None
    first._loop_task.cancel()
    await asyncio.sleep(RENEW * 5)
    assert not second.holding, "a lease that has not expired is not taken"
    clock.advance(seconds=LEASE_FOR.total_seconds() + 1)
    await eventually(lambda: second.holding and "b start" in log, 5.0, "the standby to take over after expiry")
    async with b.sessions() as session:
        lease = await repo.get_lease(session, name="link")
    assert lease is not None and lease.holder == b.worker_id
    await first.stop()
    await second.stop()
    assert log[-1] == "b stop"


async def test_a_clean_stop_releases_the_lease_at_once(cores: Callable[[str], Core]) -> None:
    log: list[str] = []
    a, b = cores("a"), cores("b")
    first = Leased(a, "link", worker(log, "a"), renew_every=RENEW)
    first.start()
    await eventually(lambda: first.holding, 5.0, "the first replica to hold the lease")
    await first.stop()
    assert log == ["a start", "a stop"]
    async with a.sessions() as session:
        assert await repo.get_lease(session, name="link") is None
    second = Leased(b, "link", worker(log, "b"), renew_every=RENEW)
    second.start()
    await eventually(lambda: second.holding and log[-1] == "b start", 5.0, "the standby to take it without waiting")
    await second.stop()


async def test_work_that_returns_is_not_restarted_and_the_lease_stays_held(cores: Callable[[str], Core]) -> None:
    """A connection the platform replaced (disconnected_event) must not reconnect in a loop, and no
    other replica should open it again either."""
    runs: list[int] = []
    a, b = cores("a"), cores("b")

    async def once() -> None:
        runs.append(1)

    first = Leased(a, "link", once, renew_every=RENEW)
    first.start()
    await eventually(lambda: first.finished, 5.0, "the work to stop on purpose")
    second = Leased(b, "link", once, renew_every=RENEW)
    second.start()
    await asyncio.sleep(RENEW * 10)
    assert runs == [1] and first.holding and not second.holding
    await first.stop()
    await second.stop()


async def test_work_that_fails_is_started_again(cores: Callable[[str], Core]) -> None:
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise ConnectionError("boom")
        await asyncio.Event().wait()

    leased = Leased(cores("a"), "link", flaky, renew_every=RENEW)
    leased.start()
    await eventually(lambda: len(runs) == 3, 5.0, "the third start")
    assert not leased.finished
    await leased.stop()
