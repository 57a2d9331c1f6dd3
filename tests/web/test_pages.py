"""Bounded pages: the interview timeline (console 面试详情 and the admin API) and the admin API's
lists answer a page at a time, with a ``next`` link, however much an interview has gathered."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import insert

from bot.clock import FrozenClock
from bot.keys import CORE
from storage import repo
from storage.models import AuditEvent, Notice, NoticeAttempt, PlatformEvent, Todo
from tests.conftest import AppFactory, admin_headers, event, post_event, started_interview
from tests.console import console_setup, signed_in

BIG = 10_000
log = logging.getLogger(__name__)


async def api(client: TestClient, path: str) -> Any:
    resp = await client.get(path, headers=admin_headers())
    assert resp.status == 200, (path, await resp.text())
    return await resp.json()


async def api_pages(client: TestClient, path: str, key: str) -> list[list[Any]]:
    """Every page of a paged list, following ``next`` to the end."""
    pages: list[list[Any]] = []
    link: str | None = path
    while link is not None:
        body = await api(client, link)
        pages.append(body[key])
        link = body["next"]
        assert len(pages) < 1000
    return pages


async def answers(client: TestClient, clock: FrozenClock, interview_id: str, numbers: range) -> set[str]:
    """Post an answer_saved event for each question number, a second apart; their event ids."""
    ids = set()
    for n in numbers:
        clock.advance(seconds=1)
        payload = event(
            "interview.answer_saved",
            interview_id,
            event_id=f"{interview_id}:a{n}",
            occurred_at=clock.now(),
            data={"question_no": n, "media_url": f"oss://a/{n}.mp4"},
        )
        resp = await post_event(client, clock, payload)
        assert resp.status == 200, await resp.text()
        ids.add(payload["event_id"])
    return ids


async def test_timeline_api_pages_through_everything_once(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await started_interview(client, clock, "iv-1")
    posted = await answers(client, clock, "iv-1", range(3, 83))
    body = await api(client, "/api/interviews/iv-1/timeline?limit=200")
    everything = body["items"]
    assert body["next"] is None

    pages = await api_pages(client, "/api/interviews/iv-1/timeline?limit=7", "items")
    assert all(len(p) == 7 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 7
    flat = [item for page in pages for item in page]
    # The same entries as one big page, newest first, none twice, none left out.
    assert flat == everything
    assert [i["at"] for i in flat] == sorted((i["at"] for i in flat), reverse=True)
    seen = [i["event_id"] for i in flat if i["kind"] == "event"]
    assert len(seen) == len(set(seen)) and posted <= set(seen)
    assert sum(1 for i in flat if i["kind"] == "audit" and i["action"] == "interview.answer_saved") == 82

    # An entry added after the first page was read shows on no later page: the cursor holds.
    first = await api(client, "/api/interviews/iv-1/timeline?limit=10")
    await answers(client, clock, "iv-1", range(83, 84))
    rest = await api_pages(client, first["next"], "items")
    assert [i for p in rest for i in p] == everything[10:]

    for bad in ("limit=0", "limit=201", "limit=x", "cursor=abc", "cursor=1-9-1x"):
        resp = await client.get(f"/api/interviews/iv-1/timeline?{bad}", headers=admin_headers())
        assert resp.status == 400, bad
        assert (await resp.json())["error"] in ("bad_limit", "bad_cursor")


async def test_api_lists_page(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    for n in range(1, 6):
        await started_interview(client, clock, f"iv-{n}")
    await _bulk(client, _notices(await _interview_id(client, "iv-1"), 5, clock))
    whole = (await api(client, "/api/interviews"))["interviews"]
    assert len(whole) == 5
    pages = await api_pages(client, "/api/interviews?limit=2&status=in_progress", "interviews")
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i["id"] for p in pages for i in p] == [i["id"] for i in whole] == [f"iv-{n}" for n in range(5, 0, -1)]

    # The outbox list pages the same way.
    notices = (await api(client, "/api/notices"))["notices"]
    assert len(notices) >= 5
    pages = await api_pages(client, "/api/notices?limit=2", "notices")
    assert [n["id"] for p in pages for n in p] == [n["id"] for n in notices]

    for path in ("/api/interviews?limit=501", "/api/notices?cursor=-1", "/api/notices?limit=1.5"):
        resp = await client.get(path, headers=admin_headers())
        assert resp.status == 400, path


async def test_detail_lists_page(make_client: AppFactory, clock: FrozenClock) -> None:
    """The detail's answers, to-dos and notices are first pages; ``next`` leads to the rest."""
    client = await make_client()
    await started_interview(client, clock, "iv-1")
    await answers(client, clock, "iv-1", range(3, 121))
    interview = await _interview_id(client, "iv-1")
    await _bulk(client, _todos(interview, 60, clock) + _notices(interview, 60, clock))
    detail = await api(client, "/api/interviews/iv-1")
    assert [a["question_no"] for a in detail["progress"]["answered"]] == list(range(1, 101))
    assert len(detail["todos"]) == 50 and len(detail["notices"]) == 50
    assert detail["timeline"] == "/api/interviews/iv-1/timeline"
    rest = await api_pages(client, detail["next"]["answered"], "answered")
    assert [a["question_no"] for p in rest for a in p] == list(range(101, 121))
    todos = [t["id"] for t in detail["todos"]] + [
        t["id"] for p in await api_pages(client, detail["next"]["todos"], "todos") for t in p
    ]
    assert len(todos) == len(set(todos)) == 60 and todos == sorted(todos)
    notices = [n["id"] for n in detail["notices"]]
    notices += [n["id"] for p in await api_pages(client, detail["next"]["notices"], "notices") for n in p]
    assert len(notices) == len(set(notices)) and len(notices) >= 60 and notices == sorted(notices)
    assert detail["next"]["exit_answered"] is None
    # A small interview's detail has no next pages at all.
    await started_interview(client, clock, "iv-2")
    assert set((await api(client, "/api/interviews/iv-2"))["next"].values()) == {None}


_ENTRY = re.compile(r'<li class="(event|audit|exit|todo|notice|reminder)">')
_OLDER = re.compile(r'<a class="btn" href="([^"]+)">更早的记录</a>')


async def test_console_timeline_pages(make_client: AppFactory, clock: FrozenClock) -> None:
    client, _ = await console_setup(make_client, clock)
    await answers(client, clock, "iv-1", range(3, 123))
    await signed_in(client, "root")
    link: str | None = "/console/interviews/iv-1"
    questions: list[int] = []
    pages = 0
    while link is not None:
        resp = await client.get(link.replace("&amp;", "&"))
        assert resp.status == 200
        html = await resp.text()
        timeline = html[html.index("时间线") :]
        assert len(_ENTRY.findall(timeline)) <= 50
        found = [int(n) for n in re.findall(r'<span class="k">平台事件</span>[^<]*第 (\d+) 题', timeline)]
        assert found == sorted(found)  # oldest first on each page
        questions = found + questions
        if pages == 0:
            assert "显示最新的 50 条记录" in timeline and "最新记录</a>" not in timeline
        else:
            assert "这里是较早的记录" in timeline and "最新记录</a>" in timeline
        older = _OLDER.search(timeline)
        link = older.group(1) if older else None
        pages += 1
    assert pages >= 5
    assert questions == list(range(1, 123))  # every answer event once, in order

    resp = await client.get("/console/interviews/iv-1?before=nonsense")
    assert resp.status == 400 and "翻页位置不正确" in await resp.text()


# --- a 10,000-event interview --------------------------------------------------------------


async def _interview_id(client: TestClient, platform_id: str) -> int:
    app = client.server.app
    assert app is not None
    async with app[CORE].sessions() as session:
        interview = await repo.get_interview(session, platform_id=platform_id)
    assert interview is not None and interview.id is not None
    return interview.id


Rows = list[tuple[Any, list[dict[str, Any]]]]


async def _bulk(client: TestClient, batches: Rows) -> None:
    app = client.server.app
    assert app is not None
    async with app[CORE].sessions() as session:
        for model, rows in batches:
            for start in range(0, len(rows), 2000):
                await session.exec(insert(model), params=rows[start : start + 2000])
        await session.commit()


def _todos(interview: int, n: int, clock: FrozenClock) -> Rows:
    at = clock.now()
    rows = [
        {"assignee": "wecom:hr01", "interview_id": interview, "title": f"处理候选人张三的求助 {k}", "created_at": at}
        for k in range(n)
    ]
    return [(Todo, rows)]


def _notices(interview: int, n: int, clock: FrozenClock) -> Rows:
    at = clock.now()
    body = "候选人张三在面试中求助:摄像头打不开,请尽快联系候选人。手机 13800001234。" * 3
    rows = [
        {
            "kind": "help_request",
            "channel": "email",
            "recipient": "hr01@example.com",
            "interview_id": interview,
            "subject": "候选人求助",
            "body": body,
            "status": "sent",
            "attempts": 0,
            "next_attempt_at": at,
            "created_at": at,
            "sent_at": at,
            "dedupe_key": f"bulk:{interview}:{k}",
        }
        for k in range(n)
    ]
    return [(Notice, rows)]


async def _flood(client: TestClient, clock: FrozenClock, platform_id: str) -> None:
    """What 10,000 answer events leave behind (events, their audits, 10,000 saved answers), plus
    500 help to-dos and 500 notices with a try each, inserted in bulk."""
    interview = await _interview_id(client, platform_id)
    start = clock.now()
    events, audits, answered = [], [], []
    for n in range(BIG):
        at = start + timedelta(milliseconds=n)
        data = {"question_no": n + 1, "media_url": f"oss://interviews/{platform_id}/answers/{n + 1}.mp4"}
        events.append(
            {
                "event_id": f"{platform_id}:flood:{n}",
                "type": "interview.answer_saved",
                "interview_platform_id": platform_id,
                "occurred_at": at,
                "received_at": at,
                "payload": {"event_id": f"{platform_id}:flood:{n}", "type": "interview.answer_saved", "data": data},
            }
        )
        audits.append(
            {
                "at": at,
                "actor": "platform",
                "action": "interview.answer_saved",
                "interview_id": interview,
                "detail": {"event_id": f"{platform_id}:flood:{n}", "question_no": n + 1},
            }
        )
        answered.append({**data, "at": at.isoformat()})
    await _bulk(client, [(PlatformEvent, events), (AuditEvent, audits)])
    await _bulk(client, _todos(interview, 500, clock) + _notices(interview, 500, clock))
    app = client.server.app
    assert app is not None
    async with app[CORE].sessions() as session:
        notices = await repo.notices_for_interview(session, interview_id=interview)
        tries = [
            {
                "notice_id": n.id,
                "channel": "email",
                "seq": 1,
                "recipient": n.recipient,
                "idem_key": f"try:{n.id}",
                "result": "sent",
                "started_at": n.created_at,
                "finished_at": n.created_at,
            }
            for n in notices
        ]
        await session.exec(insert(NoticeAttempt), params=tries)
        found = await repo.get_interview(session, platform_id=platform_id)
        assert found is not None
        found.progress = {**found.progress, "answered": answered}
        session.add(found)
        await session.commit()
    clock.advance(seconds=BIG // 1000 + 1)


async def _timed(client: TestClient, path: str, **kw: Any) -> tuple[float, int, bytes]:
    """The best of three answers' time (after one to warm up), with the size and the body."""
    best = float("inf")
    body = b""
    for attempt in range(4):
        began = time.perf_counter()
        resp = await client.get(path, **kw)
        body = await resp.read()
        took = time.perf_counter() - began
        assert resp.status == 200, (path, body[:300])
        if attempt:
            best = min(best, took)
    return best, len(body), body


async def test_a_10000_event_interview_answers_small_and_fast(make_client: AppFactory, clock: FrozenClock) -> None:
    client, _ = await console_setup(make_client, clock)
    await _flood(client, clock, "iv-1")
    await signed_in(client, "root")

    took, size, raw = await _timed(client, "/api/interviews/iv-1", headers=admin_headers())
    log.info(f"detail API: {took * 1000:.1f} ms, {size} bytes")
    assert size < 200_000 and took < 0.2
    assert b'"/api/interviews/iv-1/answers?cursor=100"' in raw

    took, size, raw = await _timed(client, "/api/interviews/iv-1/timeline", headers=admin_headers())
    log.info(f"timeline API: {took * 1000:.1f} ms, {size} bytes")
    assert size < 200_000 and took < 0.2
    # The newest entries come first: the last flood audit and its event are on the first page.
    assert f'"question_no": {BIG}'.encode() in raw

    # The largest page a caller may ask for stays under 200 KB too (four times the entries: a
    # looser time bound, since the machine running the tests is shared).
    took, size, raw = await _timed(client, "/api/interviews/iv-1/timeline?limit=200", headers=admin_headers())
    log.info(f"timeline API, 200 entries: {took * 1000:.1f} ms, {size} bytes")
    assert size < 200_000 and took < 0.4

    took, size, raw = await _timed(client, "/console/interviews/iv-1")
    log.info(f"console detail: {took * 1000:.1f} ms, {size} bytes")
    assert size < 200_000 and took < 0.2
    html = raw.decode()
    assert "更早的记录" in html and f"第 {BIG} 题" in html

    # A page deep in the history (past 4,000 entries) costs what the first one does.
    body = await api(client, "/api/interviews/iv-1/timeline?limit=200")
    for _ in range(20):
        body = await api(client, body["next"])
    deep = body["next"].replace("limit=200", "limit=50")
    took, size, raw = await _timed(client, deep, headers=admin_headers())
    log.info(f"timeline API, 50 entries after 4,200: {took * 1000:.1f} ms, {size} bytes")
    assert size < 200_000 and took < 0.2
    assert len(json.loads(raw)["items"]) == 50
