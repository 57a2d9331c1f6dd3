"""Helpers for the scheduled-work tests: people and platform events at chosen times, rows to look at."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services.context import Core
from storage.models import Interview, Notice, Person, Reminder
from tests.conftest import CLOCK_START, admin_headers, event, post_event
from tests.fakes.smtp import SmtpServer

SH = ZoneInfo("Asia/Shanghai")
DAY = CLOCK_START.astimezone(SH).date()
"""The local day the test clock starts on."""


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """That local (Asia/Shanghai) time on ``day``."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH)


def core_of(client: TestClient) -> Core:
    app = client.server.app
    assert app is not None
    return app[CORE]


async def send_event(
    client: TestClient,
    clock: FrozenClock,
    kind: str,
    interview_id: str = "iv-1",
    *,
    at: datetime | None = None,
    **kw: Any,
) -> None:
    """Post a platform event that happened now (by the FrozenClock); ``at`` is the scheduled start."""
    payload = event(kind, interview_id, occurred_at=clock.now(), **kw)
    if at is not None:
        payload["interview"]["scheduled_at"] = at.isoformat()
    resp = await post_event(client, clock, payload)
    assert resp.status == 200, await resp.text()


async def notices(core: Core, *, kind: str | None = None) -> Sequence[Notice]:
    async with core.sessions() as session:
        stmt = select(Notice).order_by(col(Notice.id))
        if kind is not None:
            stmt = stmt.where(Notice.kind == kind)
        return (await session.exec(stmt)).all()


async def reminders(core: Core, interview_id: str = "iv-1") -> dict[str, Reminder]:
    async with core.sessions() as session:
        stmt = select(Reminder).join(Interview, col(Interview.id) == col(Reminder.interview_id))
        rows = (await session.exec(stmt.where(Interview.platform_id == interview_id))).all()
    return {r.kind: r for r in rows}


async def interview(core: Core, interview_id: str = "iv-1") -> Interview:
    async with core.sessions() as session:
        return (await session.exec(select(Interview).where(Interview.platform_id == interview_id))).one()


def mail_text(smtp: SmtpServer, index: int) -> str:
    body = smtp.messages[index].get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def subjects(smtp: SmtpServer) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages]


async def add_people(client: TestClient, *people: tuple[str, str, str, str, str | None]) -> None:
    """(platform, user_id, name, role, email) each, all with one mobile number."""
    core = core_of(client)
    async with core.sessions() as session:
        for platform, user_id, name, role, email in people:
            session.add(
                Person(
                    platform=platform,
                    user_id=user_id,
                    name=name,
                    role=role,
                    mobile="13912345678",
                    email=email,
                    created_at=core.clock.now(),
                )
            )
        await session.commit()


async def exit_at(
    client: TestClient, clock: FrozenClock, n: int, when: datetime, reason: str, hr: str = "hr01"
) -> None:
    """Interview iv-<n> (候选人<n>) scheduled, started and ended by an admin at ``when`` for ``reason``."""
    clock.set(when)
    who = {"name": f"候选人{n}", "email": f"c{n}@example.com", "mobile": f"1390000{n:04d}", "hr": ("wecom", hr)}
    await send_event(client, clock, "interview.scheduled", f"iv-{n}", **who)
    await send_event(client, clock, "interview.started", f"iv-{n}", **who)
    resp = await client.post(f"/api/interviews/iv-{n}/terminate", json={"reason": reason}, headers=admin_headers())
    assert resp.status == 200, await resp.text()
