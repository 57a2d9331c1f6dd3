"""What an app keeps while it works (remembered lookups, candidates loaded for a group reply) is its
own: two apps in one process, as in tests, never see or clear each other's (bot.services.context.Core)."""

from collections.abc import AsyncIterator

import pytest

from bot.clock import FrozenClock
from bot.services.context import Core
from bot.templating import Templates
from storage.db import create_engine, session_maker
from storage.models import Candidate
from tests.conftest import make_settings


@pytest.fixture
async def two_cores(clean_db: str, clock: FrozenClock) -> AsyncIterator[tuple[Core, Core, int]]:
    engine = create_engine(clean_db)
    settings = make_settings(clean_db)
    a, b = (
        Core(settings=settings, sessions=session_maker(engine), clock=clock, templates=Templates()) for _ in range(2)
    )
    async with a.sessions() as session:
        candidate = Candidate(
            name="张三", mobile="13800001234", email="zs@example.com", created_at=clock.now(), updated_at=clock.now()
        )
        session.add(candidate)
        await session.commit()
        assert candidate.id is not None
    yield a, b, candidate.id
    await engine.dispose()


async def test_a_group_reply_collects_the_contacts_its_own_app_loaded(two_cores: tuple[Core, Core, int]) -> None:
    a, b, candidate_id = two_cores
    with a.contacts.collecting() as known:
        async with b.sessions() as session:  # another app's load is not this reply's
            assert await session.get(Candidate, candidate_id) is not None
        assert not known.values
        async with a.sessions() as session:
            assert await session.get(Candidate, candidate_id) is not None
    assert known.values == {"13800001234", "zs@example.com"}
    async with a.sessions() as session:  # outside the block nothing is collected
        assert await session.get(Candidate, candidate_id) is not None
    assert known.values == {"13800001234", "zs@example.com"}


async def test_a_batch_forgets_its_lookups_on_its_own_apps_commits_only(two_cores: tuple[Core, Core, int]) -> None:
    a, b, _ = two_cores
    loads: list[int] = []

    async def load() -> int:
        loads.append(len(loads))
        return len(loads)

    with a.lookups.remembering():
        assert [await a.lookups.lookup("k", load, keep=lambda _: True) for _ in range(2)] == [1, 1]
        assert await b.lookups.lookup("k", load, keep=lambda _: True) == 2  # b is in no batch: loads
        async with b.sessions() as session:
            await session.commit()
        assert await a.lookups.lookup("k", load, keep=lambda _: True) == 1  # b's commit is not a's
        async with a.sessions() as session:
            await session.commit()
        assert await a.lookups.lookup("k", load, keep=lambda _: True) == 3  # a's commit: loaded again
        assert await a.lookups.lookup("k", load, keep=lambda _: False) == 3
    assert await a.lookups.lookup("k", load, keep=lambda _: True) == 4  # outside the batch: always loaded
    assert len(loads) == 4


async def test_a_job_run_is_live_only_in_the_app_that_started_it(two_cores: tuple[Core, Core, int]) -> None:
    a, b, _ = two_cores
    token = a.runs.start(a.worker_id)
    assert not a.runs.owner_gone(token, instance=a.instance, worker=a.worker_id)
    # Even under the same worker id, another app knows no such run: its registry is its own.
    assert b.runs.owner_gone(token, instance=b.instance, worker=a.worker_id)
    a.runs.end(token)
    assert a.runs.owner_gone(token, instance=a.instance, worker=a.worker_id)
