"""Termination jobs left by a crashed replica on another host: resumed once its replica lease (or the
job's own claim) expires.

The job row is seeded as that replica left it (the kill -9 cases on this host run real processes
in tests/services/test_termination_crash.py); the sweep, the platform calls and the chat notice are real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot import jobs
from bot.clock import FrozenClock
from bot.keys import CORE
from storage import repo
from storage.models import JobState, Notice, TerminationJob
from tests.chat import add_person
from tests.conftest import AppFactory, admin_headers, eventually, replica_alive, started_interview
from tests.fakes.dingtalk_api import FakeDingTalk
from tests.fakes.platform import FakePlatform

# A replica on another host, and the claim token of its run of a job.
OTHER_HOST = "replica-b:4242/0badbeef"
OTHER_RUN = f"{OTHER_HOST}#0badcafe"


@pytest.fixture
async def dingtalk() -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk()
    await fake.start()
    yield fake
    await fake.close()


async def crashed_job(client: TestClient, clock: FrozenClock, state: JobState, *, lease_seconds: int = 120) -> int:
    """The rows a replica on another host leaves when it dies after committing ``state``."""
    assert client.server.app is not None
    core = client.server.app[CORE]
    now = clock.now()
    async with core.sessions() as session:
        assert (await session.exec(select(TerminationJob))).first() is None
        iv = await repo.get_interview(session, platform_id="iv-1")
        assert iv is not None and iv.id is not None
        iv.terminating_by, iv.terminating_since = "dingtalk:hr01", now
        job = TerminationJob(
            interview_id=iv.id,
            open_key=f"{iv.id}:1",
            reason_code="candidate_quit",
            operator="dingtalk:hr01",
            source="chat",
            chat="dingtalk:cid-dm-hr01",
            notify_to="dingtalk:hr01",
            state=state.value,
            save_result={"saved_by": "platform", "platform": {"saved": True}} if state != JobState.saving else {},
            claimed_by=OTHER_RUN,
            claimed_until=now + timedelta(minutes=2),
            created_at=now,
            updated_at=now,
        )
        session.add(job)
        await session.commit()
        assert job.id is not None
    # It renewed its replica lease just before it died.
    await replica_alive(core.sessions, OTHER_HOST, now=now, until=now + timedelta(seconds=lease_seconds))
    return job.id


async def detail(client: TestClient) -> dict:
    return await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()


async def test_another_hosts_job_is_resumed_after_its_claim_expires(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform, dingtalk: FakeDingTalk
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")), **dingtalk.settings())
    assert client.server.app is not None
    core = client.server.app[CORE]
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock, hr=("dingtalk", "hr01"))
    job_id = await crashed_job(client, clock, JobState.terminating)

    # While the job is open nobody starts a second one: the admin API is told to wait.
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "系统故障"}, headers=admin_headers())
    assert resp.status == 409
    assert (await resp.json())["error"] == "termination_in_progress"
    assert await jobs.sweep_terminations(core) == 0  # the other replica's claim still holds
    assert fake_platform.calls == []

    clock.advance(minutes=3)
    assert await jobs.sweep_terminations(core) == 1
    assert fake_platform.keys == [("terminate", "iv-1", f"terminate-{job_id}")]  # no second save
    body = await detail(client)
    assert body["status"] == "terminated"
    assert body["exit"]["operator"] == "dingtalk:hr01" and body["exit"]["reason"] == "候选人放弃"
    assert body["exit"]["progress_snapshot"]["platform"] == {"saved": True}
    assert [n["kind"] for n in body["notices"]].count("terminated") == 1

    async def told() -> bool:
        return any("现已完成" in s["param"]["content"] for s in dingtalk.batch_sends)

    await eventually(told)
    assert await jobs.sweep_terminations(core) == 0  # done: nothing to resume again
    async with core.sessions() as session:
        outcome = (await session.exec(select(Notice).where(Notice.kind == "termination_outcome"))).all()
    assert len(outcome) == 1


async def test_a_dead_replicas_job_is_resumed_once_its_replica_lease_expires(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform, dingtalk: FakeDingTalk
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")), **dingtalk.settings())
    assert client.server.app is not None
    core = client.server.app[CORE]
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock, hr=("dingtalk", "hr01"))
    job_id = await crashed_job(client, clock, JobState.terminating, lease_seconds=5)

    clock.advance(seconds=4)  # its lease still runs: it may be alive and working on the job
    assert await jobs.sweep_terminations(core) == 0
    assert fake_platform.calls == []

    clock.advance(seconds=2)  # it stopped renewing: taken over long before the job's claim (2 min) ends
    assert await jobs.sweep_terminations(core) == 1
    assert fake_platform.keys == [("terminate", "iv-1", f"terminate-{job_id}")]
    async with core.sessions() as session:
        job = await session.get(TerminationJob, job_id)
    assert job is not None and job.state == "done" and job.resumed
    assert job.claimed_by is not None and job.claimed_by.startswith(f"{core.worker_id}#")
    assert await jobs.sweep_terminations(core) == 0
    body = await detail(client)
    assert body["status"] == "terminated"
    assert [n["kind"] for n in body["notices"]].count("terminated") == 1


async def test_a_resumed_job_the_platform_refuses_fails_and_tells_the_hr(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform, dingtalk: FakeDingTalk
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")), **dingtalk.settings())
    assert client.server.app is not None
    core = client.server.app[CORE]
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock, hr=("dingtalk", "hr01"))
    await crashed_job(client, clock, JobState.saving)
    fake_platform.save_status = 400

    clock.advance(minutes=3)
    assert await jobs.sweep_terminations(core) == 0
    assert fake_platform.actions() == ["save"]
    body = await detail(client)
    assert body["status"] == "in_progress" and body["exit"] is None

    async def told() -> bool:
        return any("没有成功" in s["param"]["content"] for s in dingtalk.batch_sends)

    await eventually(told)
    text = next(s["param"]["content"] for s in dingtalk.batch_sends if "没有成功" in s["param"]["content"])
    assert "张三" in text and "保存作答进度失败(HTTP 400)" in text

    # The interview is free again: the HR can retry at once.
    fake_platform.save_status = 200
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200, await resp.text()
