"""One interview as the admin API and the database show it, and what moves it: a help request from the
platform, a termination by an admin."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.db import create_engine, session_maker
from storage.models import Interview
from tests.conftest import admin_headers, event, post_event


async def interview_detail(client: TestClient, interview_id: str = "iv-1") -> dict[str, Any]:
    """The interview as ``GET /api/interviews/<id>`` shows it to an admin."""
    resp = await client.get(f"/api/interviews/{interview_id}", headers=admin_headers())
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def status_of(app: web.Application, platform_id: str = "iv-1") -> str:
    async with app[CORE].sessions() as session:
        row = (await session.exec(select(Interview).where(Interview.platform_id == platform_id))).one()
        return row.status


async def stored_in_progress(url: str, platform_id: str = "iv-1", *, answered: int = 0) -> bool:
    """Whether a service process (another process, on database ``url``) has applied the interview's
    start and at least ``answered`` saved answers: an accepted platform event is stored at once and
    applied a moment later, so a test waits for this before the HR's command names the interview."""
    engine = create_engine(url)
    try:
        async with session_maker(engine)() as session:
            found = (await session.exec(select(Interview).where(Interview.platform_id == platform_id))).first()
    finally:
        await engine.dispose()
    return found is not None and found.status == "in_progress" and found.answered_count >= answered


async def ask_help(client: TestClient, clock: FrozenClock, reason: str = "网络卡顿", wants_exit: bool = True) -> None:
    """The platform reports that the candidate asked for help (now, by the test clock)."""
    payload = event(
        "interview.help_requested", data={"reason": reason, "wants_exit": wants_exit}, occurred_at=clock.now()
    )
    resp = await post_event(client, clock, payload)
    assert resp.status == 200, await resp.text()


async def terminate(client: TestClient) -> web.Application:
    """An admin ends iv-1 with 候选人放弃 over the admin API; the app, to look at what followed."""
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200, await resp.text()
    app = client.server.app
    assert app is not None
    return app
