"""Replicas starting together migrate one at a time: three `python -m bot migrate` processes started
at once on a new, empty PostgreSQL database all succeed and leave it at the newest revision (without
the advisory lock they race on CREATE TABLE and all but one fail). PostgreSQL only."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import schema_head
from tests.serve import service_env

URL = os.environ.get("BOT_TEST_DATABASE_URL") or "sqlite://"
pytestmark = pytest.mark.skipif(
    make_url(URL).get_backend_name() != "postgresql", reason="needs PostgreSQL (set BOT_TEST_DATABASE_URL)"
)


async def admin(sql: str) -> None:
    engine = create_async_engine(make_url(URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


async def test_replicas_migrating_at_once_take_turns() -> None:
    name = f"{make_url(URL).database}_migrate_race"
    await admin(f'DROP DATABASE IF EXISTS "{name}"')
    await admin(f'CREATE DATABASE "{name}"')
    url = make_url(URL).set(database=name).render_as_string(hide_password=False)
    try:
        env = service_env(url)
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "migrate",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=120)
        for proc, (out, _) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            locks = (await conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))).scalar()
        await engine.dispose()
        assert revision == schema_head()
        assert locks == 0  # released by every process
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
