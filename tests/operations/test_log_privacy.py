"""Logs never hold a candidate's contact details: not in database errors, not in delivery errors."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.db import create_engine, session_maker
from storage.models import Candidate, Notice
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.smtp import SmtpServer

MOBILE = "13987654321"
EMAIL = "secret.person@example.com"


def candidate(candidate_id: int, clock: FrozenClock, name: str = "张三") -> Candidate:
    now = clock.now()
    return Candidate(id=candidate_id, name=name, mobile=MOBILE, email=EMAIL, created_at=now, updated_at=now)


async def test_database_errors_do_not_carry_contacts(
    clean_db: str, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("bot.test")
    engine = create_engine(clean_db)
    sessions = session_maker(engine)
    try:
        async with sessions() as session:
            session.add(candidate(4242, clock))
            await session.commit()
        # A unique violation whose statement carries the candidate's mobile and email.
        with caplog.at_level(logging.ERROR), pytest.raises(IntegrityError) as caught:
            async with sessions() as session:
                session.add(candidate(4242, clock))
                try:
                    await session.commit()
                except IntegrityError:
                    log.exception("storing a candidate failed")
                    raise
        assert "INSERT INTO candidate" in str(caught.value)  # the error is still useful...
        assert "storing a candidate failed" in caplog.text
        # A NUL in a name: PostgreSQL refuses it (SQLite stores it); either way no contact is logged.
        async with sessions() as session:
            session.add(candidate(4343, clock, name="张\x00三"))
            try:
                await session.commit()
            except DBAPIError:
                log.exception("storing a candidate failed")
    finally:
        await engine.dispose()
    assert MOBILE not in caplog.text and EMAIL not in caplog.text  # ...without the parameters
    assert MOBILE not in str(caught.value) and EMAIL not in str(caught.value)


async def test_a_refused_address_is_not_logged(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.inbox.refuse = 550
    client = await make_client()
    app = client.server.app
    assert app is not None
    with caplog.at_level(logging.INFO):
        await started_interview(client, clock, email=EMAIL, mobile=MOBILE)
        resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "放弃"}, headers=admin_headers())
        assert resp.status == 200

        async def dead() -> bool:
            async with app[CORE].sessions() as session:
                rows = [n for n in (await session.exec(Notice.__table__.select())).all() if n.kind == "terminated"]
            return bool(rows) and rows[0].status == "dead"

        await eventually(dead)
    # What this service logs (the fake SMTP server's own log, mail.log, is the outside world's).
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail."))
    assert "recipient refused: 550" in ours  # the failure is logged...
    assert EMAIL not in ours and MOBILE not in ours  # ...without the address
