"""Concurrent platform events: a new interview's first events at once, and redeliveries at once.

Real concurrent signed POSTs (asyncio.gather) against the real app on SQLite or PostgreSQL:
never a 500, each event applied once, no answer lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlmodel import func, select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import Candidate, Interview, PlatformEvent
from tests.conftest import AppFactory, admin_headers, event, post_event


async def test_five_distinct_first_events_for_a_new_interview(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    at = clock.now()
    events = [
        event("interview.scheduled", "iv-new", occurred_at=at),
        event("interview.started", "iv-new", occurred_at=at),
        event("interview.activity", "iv-new", occurred_at=at),
        *(
            event(
                "interview.answer_saved", "iv-new", occurred_at=at, data={"question_no": q, "media_url": f"oss://{q}"}
            )
            for q in (1, 2)
        ),
    ]
    responses = await asyncio.gather(*(post_event(client, clock, e) for e in events))
    answers = [(r.status, (await r.json())["status"]) for r in responses]
    assert answers == [(200, "accepted")] * 5

    assert client.server.app is not None
    async with client.server.app[CORE].sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Interview))).one() == 1
        assert (await session.exec(select(func.count()).select_from(Candidate))).one() == 1
        assert (await session.exec(select(func.count()).select_from(PlatformEvent))).one() == 5
    detail = await (await client.get("/api/interviews/iv-new", headers=admin_headers())).json()
    assert [a["question_no"] for a in detail["progress"]["answered"]] == [1, 2]
    assert detail["status"] == "in_progress"


async def test_each_event_three_times_at_once_applies_once_and_keeps_every_answer(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    at = clock.now()
    first = event("interview.started", "iv-burst", occurred_at=at)
    answers = [
        event("interview.answer_saved", "iv-burst", occurred_at=at, data={"question_no": q, "media_url": f"oss://{q}"})
        for q in range(1, 31)
    ]
    posts = [first] * 3 + [a for a in answers for _ in range(3)]
    responses = await asyncio.gather(*(post_event(client, clock, e) for e in posts))
    statuses = Counter(r.status for r in responses)
    assert statuses == {200: len(posts)}
    outcomes = Counter([(await r.json())["status"] for r in responses])
    assert outcomes == {"accepted": 31, "duplicate": 62}

    detail = await (await client.get("/api/interviews/iv-burst", headers=admin_headers())).json()
    assert [a["question_no"] for a in detail["progress"]["answered"]] == list(range(1, 31))
