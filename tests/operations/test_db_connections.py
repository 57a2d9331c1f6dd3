"""Pooled PostgreSQL connections: one that idled is pinged before use (a dead one is replaced), one
used a moment ago is not (no round trip per session)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

import storage.db
from storage.db import create_engine


async def test_an_idle_connection_killed_by_the_server_is_replaced_and_a_busy_one_is_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("connection pinging is for PostgreSQL (SQLite has no server to lose)")
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 0.2)
    engine = create_engine(database_url)
    killer = create_engine(database_url)
    pings: list[str] = []
    dialect = engine.sync_engine.dialect
    real_ping = dialect.do_ping

    def counted_ping(dbapi_conn: object) -> bool:
        pings.append("ping")
        return bool(real_ping(dbapi_conn))

    monkeypatch.setattr(dialect, "do_ping", counted_ping)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        for _ in range(20):  # used again at once: no ping
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() == first
        assert pings == []

        async with killer.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        await asyncio.sleep(0.3)  # the pooled connection idles past PING_AFTER_IDLE_SECONDS
        async with engine.connect() as conn:
            second = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first  # the dead one failed its ping and a fresh connection served
        assert pings == ["ping"]
    finally:
        await engine.dispose()
        await killer.dispose()
