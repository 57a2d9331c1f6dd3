"""Platform events through the intake: stored and answered at once, applied in batches by one
worker, in order per interview, each once; heartbeats are cheap; a full backlog is a prompt 503."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE, PLATFORM_INTAKE
from storage import repo
from storage.models import AuditEvent, IntakeItem, Interview, PlatformEvent
from tests.conftest import AppFactory, event, eventually, post_event, started_interview
from tests.faults import Faults
from tests.rawhttp import row_counts


async def items(client: TestClient) -> list[IntakeItem]:
    async with client.app[CORE].sessions() as session:
        return list(await repo.intake_items(session, source="platform"))


async def interview(client: TestClient, platform_id: str) -> Interview:
    async with client.app[CORE].sessions() as session:
        found = await repo.get_interview(session, platform_id=platform_id)
    assert found is not None
    return found


async def test_an_event_is_stored_answered_then_applied_once(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    payload = event("interview.started", event_id="ev-start", occurred_at=clock.now())
    resp = await post_event(client, clock, payload, settle=False)
    assert resp.status == 200
    assert await resp.json() == {"status": "accepted", "event_id": "ev-start"}
    # Answered once stored: the item is there whatever the worker has done with it yet.
    assert [i.key for i in await items(client)] == ["ev-start"]
    await client.app[PLATFORM_INTAKE].settled()
    [item] = await items(client)
    assert (item.status, item.attempts, item.order_key, item.claimed_until) == ("done", 1, "iv-1", None)
    assert (await interview(client, "iv-1")).status == "in_progress"

    again = await post_event(client, clock, payload)
    assert await again.json() == {"status": "duplicate", "event_id": "ev-start"}
    assert len(await items(client)) == 1
    async with client.app[CORE].sessions() as session:
        applied = (await session.exec(select(PlatformEvent).where(PlatformEvent.event_id == "ev-start"))).all()
        audits = (await session.exec(select(AuditEvent).where(AuditEvent.action == "interview.started"))).all()
    assert len(applied) == 1 and len(audits) == 1


async def test_a_malformed_event_is_refused_before_anything_is_stored(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    before = await row_counts(client.app)
    bad = event("interview.answer_saved", data={"question_no": -1})
    resp = await post_event(client, clock, bad)
    assert resp.status == 422
    assert (await resp.json())["details"][0]["loc"] == "question_no"
    assert await row_counts(client.app) == before


async def test_heartbeats_move_last_activity_to_the_latest_and_only_while_open(
    make_client: AppFactory, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    for iv in ("iv-1", "iv-2", "iv-3"):
        await started_interview(client, clock, iv)
    await post_event(client, clock, event("interview.completed", "iv-3", occurred_at=clock.now()))
    ended = (await interview(client, "iv-3")).last_activity_at
    start = clock.now()
    audits_before = len(await _audits(client))
    # Out of order, all at once: they are applied in a batch or a few.
    offsets = [7, 3, 9, 1, 5, 8, 2]
    payloads = [
        event("interview.activity", iv, occurred_at=start + timedelta(seconds=s), event_id=f"beat-{iv}-{s}")
        for iv in ("iv-1", "iv-2", "iv-3")
        for s in offsets
    ]
    answers = await asyncio.gather(*(post_event(client, clock, p, settle=False) for p in payloads))
    assert [a.status for a in answers] == [200] * len(payloads)
    await client.app[PLATFORM_INTAKE].settled()
    assert "together failed" not in caplog.text  # several interviews' heartbeats in one statement
    for iv in ("iv-1", "iv-2"):
        assert (await interview(client, iv)).last_activity_at == start + timedelta(seconds=9)
    assert (await interview(client, "iv-3")).last_activity_at == ended  # completed: no longer moves
    assert all(i.status == "done" for i in await items(client))
    async with client.app[CORE].sessions() as session:
        beats = (await session.exec(select(PlatformEvent).where(PlatformEvent.type == "interview.activity"))).all()
    assert sorted(b.event_id for b in beats) == sorted(p["event_id"] for p in payloads)
    assert len(await _audits(client)) == audits_before  # heartbeats are not audited (as before)

    # A heartbeat that brings a new HR is not only a heartbeat: the interview takes the HR.
    moved = event("interview.activity", "iv-1", hr=("wecom", "hr02"), occurred_at=start + timedelta(seconds=20))
    await post_event(client, clock, moved)
    found = await interview(client, "iv-1")
    assert (found.hr_user_id, found.last_activity_at) == ("hr02", start + timedelta(seconds=20))


async def _audits(client: TestClient) -> list[AuditEvent]:
    async with client.app[CORE].sessions() as session:
        return list((await session.exec(select(AuditEvent))).all())


async def test_a_full_backlog_is_a_prompt_503_and_what_was_stored_applies_in_order(
    make_client: AppFactory, clock: FrozenClock, faults: Faults
) -> None:
    client = await make_client(event_backlog_limit=4)
    # The database refuses to record applied events (a trigger): stored events wait, a backlog grows.
    await faults.install("platform_event")
    await faults.arm("platform_event")
    at = clock.now()
    kinds = [
        ("interview.started", {}),
        ("interview.answer_saved", {"question_no": 1, "media_url": "oss://a/1.mp4"}),
        ("interview.activity", {}),
        ("interview.completed", {}),
    ]
    for n, (kind, data) in enumerate(kinds):
        payload = event(kind, "iv-9", event_id=f"ev-{n}", occurred_at=at + timedelta(seconds=n), data=data)
        resp = await post_event(client, clock, payload, settle=False)
        assert (resp.status, (await resp.json())["status"]) == (200, "accepted")
    # The first failed and waits for its retry; the interview's later events wait behind it (in order).
    await eventually(lambda: _tried(client))
    refused = await post_event(client, clock, event("interview.activity", "iv-9", event_id="ev-late"), settle=False)
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "2"
    assert (await refused.json())["error"] == "busy"
    assert [i.key for i in await items(client)] == ["ev-0", "ev-1", "ev-2", "ev-3"]  # the refused one is not stored
    # All wait for a retry. The worker may have taken the first one alone or with the next ones
    # (however many had arrived): what was tried is a prefix of the interview's events, each with its
    # error, and nothing after an untried event was tried (order per interview).
    stored = await items(client)
    assert {i.status for i in stored} == {"received"}
    tried = [i.attempts > 0 for i in stored]
    assert tried[0] and tried == sorted(tried, reverse=True), tried
    assert [bool(i.last_error) for i in stored] == tried

    await faults.disarm("platform_event")
    clock.advance(seconds=10)  # past the retry time
    await eventually(lambda: _all_done(client), timeout=10)
    found = await interview(client, "iv-9")
    assert found.status == "completed"  # started, answered, heartbeat, completed: in that order
    assert [a["question_no"] for a in found.progress["answered"]] == [1]
    assert found.last_activity_at == at + timedelta(seconds=2)
    resp = await post_event(client, clock, event("interview.activity", "iv-9", event_id="ev-late"))
    assert (resp.status, (await resp.json())["status"]) == (200, "accepted")


async def _tried(client: TestClient) -> bool:
    """The first event was tried and waits for its retry, and no try is under way (the worker may
    have taken the next ones with it, and then tries each alone)."""
    found = [(i.status, i.attempts) for i in await items(client)]
    return found[:1] == [("received", 1)] and all(status != "processing" for status, _ in found)


async def _all_done(client: TestClient) -> bool:
    found = await items(client)
    return bool(found) and all(i.status == "done" for i in found)


async def test_a_heartbeat_is_applied_as_it_is_stored_unless_its_interview_has_events_waiting(
    make_client: AppFactory, clock: FrozenClock, faults: Faults
) -> None:
    client = await make_client()
    for iv in ("iv-1", "iv-2"):
        await started_interview(client, clock, iv)
    # iv-1's answer cannot be recorded (a trigger): it waits for its retry.
    await faults.install("platform_event", when="NEW.type = 'interview.answer_saved'")
    await faults.arm("platform_event")
    at = clock.now()
    answer = event(
        "interview.answer_saved",
        "iv-1",
        event_id="ans-1",
        occurred_at=at + timedelta(seconds=1),
        data={"question_no": 1, "media_url": "oss://a/1.mp4"},
    )
    await post_event(client, clock, answer, settle=False)
    await eventually(lambda: _waiting(client, "ans-1"))
    before = (await interview(client, "iv-1")).last_activity_at

    beats = [
        event("interview.activity", iv, event_id=f"beat-{iv}", occurred_at=at + timedelta(seconds=5))
        for iv in ("iv-1", "iv-2")
    ]
    for payload in beats:
        resp = await post_event(client, clock, payload, settle=False)
        assert (resp.status, (await resp.json())["status"]) == (200, "accepted")
    # Answered means applied for iv-2's heartbeat: done in the transaction that stored it (no try by the worker).
    by_key = {i.key: i for i in await items(client)}
    assert (by_key["beat-iv-2"].status, by_key["beat-iv-2"].attempts) == ("done", 0)
    assert (await interview(client, "iv-2")).last_activity_at == at + timedelta(seconds=5)
    # iv-1's heartbeat waits its turn behind the answer: stored, not applied.
    assert (by_key["beat-iv-1"].status, by_key["beat-iv-1"].attempts) == ("received", 0)
    assert (await interview(client, "iv-1")).last_activity_at == before
    async with client.app[CORE].sessions() as session:
        assert not await repo.platform_event_seen(session, event_id="beat-iv-1")

    await faults.disarm("platform_event")
    clock.advance(seconds=10)  # past the answer's retry time
    await eventually(lambda: _all_done(client), timeout=10)
    found = await interview(client, "iv-1")
    assert 1 in [a["question_no"] for a in found.progress["answered"]]
    assert found.last_activity_at == at + timedelta(seconds=5)
    again = await post_event(client, clock, beats[1])
    assert (await again.json())["status"] == "duplicate"


async def _waiting(client: TestClient, key: str) -> bool:
    return any(i.key == key and i.status == "received" and i.attempts == 1 for i in await items(client))


async def test_a_week_old_heartbeats_and_done_items_are_purged_in_batches_and_nothing_else(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    await started_interview(client, clock, "iv-1")
    for n in range(5):
        await post_event(
            client, clock, event("interview.activity", "iv-1", event_id=f"old-{n}", occurred_at=clock.now())
        )
    clock.advance(days=8)
    answer = event("interview.answer_saved", "iv-1", event_id="ans", occurred_at=clock.now(), data={"question_no": 3})
    await post_event(client, clock, answer)
    await post_event(client, clock, event("interview.activity", "iv-1", event_id="new", occurred_at=clock.now()))
    await client.app[PLATFORM_INTAKE].settled()
    cutoff = clock.now() - timedelta(days=7)
    async with client.app[CORE].sessions() as session:
        beats_gone = await repo.purge_heartbeats_and_commit(session, before=cutoff, batch=2)
        items_gone = await repo.purge_intake_and_commit(session, before=cutoff, batch=2)
        kept = sorted((await session.exec(select(PlatformEvent.event_id))).all())
    assert beats_gone == 5
    assert items_gone == 4 + 5  # the start's four events and the five heartbeats, done a week ago
    # The week-old scheduled, started and two answers stay recorded; of the heartbeats only the new one.
    assert len(kept) == 4 + 2 and not [k for k in kept if k.startswith("old-")]
    assert {"ans", "new"} <= set(kept)
    assert {i.key for i in await items(client)} == {"ans", "new"}  # recent items stay
