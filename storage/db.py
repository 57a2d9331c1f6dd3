"""Engine, sessions and schema migrations."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session as SyncSession
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import sqlite_driver

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

SessionMaker = async_sessionmaker[AsyncSession]
# The session type, for code above storage that passes sessions to the repositories.
Session = AsyncSession


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and foreign keys.

    ``hide_parameters``: errors are logged, and their SQL parameters would put candidates'
    mobiles and emails into the logs.
    """
    _ensure_sqlite_dir(url)
    if make_url(url).get_backend_name() == "sqlite":
        # One trip to the connection's thread per statement (storage.sqlite_driver).
        connect_args = {"timeout": 30, "async_creator_fn": sqlite_driver.connect}
        engine = create_async_engine(url, connect_args=connect_args, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            sqlite_driver.note_journal_mode(dbapi_conn.driver_connection, cur.fetchone())
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


# A pooled connection idle longer than this is pinged before it is used again.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling (SQLAlchemy's "pre ping"), but only for a connection that sat
    in the pool for ``PING_AFTER_IDLE_SECONDS``: one that was used a moment ago is alive, and a
    ping before every checkout was a round trip per session (a third of a chat lookup's). A dead
    connection raises ``DisconnectionError``, and the pool replaces it with a fresh one."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure of the ping means a connection to replace
            raise DisconnectionError(f"pooled connection failed its ping: {type(exc).__name__}") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


def read_only(sessions: SessionMaker) -> SessionMaker:
    """Sessions for reads that need no transaction of their own (one lookup): on PostgreSQL in
    autocommit, so a lookup is one round trip instead of BEGIN, SELECT and ROLLBACK; on SQLite the
    same sessions (a read there opens no transaction). Never commit in them."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        return sessions
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        class_=AsyncSession,
        sync_session_class=sessions.kw.get("sync_session_class", SyncSession),
        expire_on_commit=False,
    )


def single_writer(sessions: SessionMaker) -> bool:
    """Whether the database takes one writing transaction at a time (SQLite)."""
    engine = sessions.kw["bind"]
    return bool(engine.dialect.name == "sqlite")


def session_maker(
    engine: AsyncEngine,
    *,
    after_commit: Callable[[], None] | None = None,
    on_load: Callable[[Any], None] | None = None,
) -> SessionMaker:
    """Sessions on ``engine``. ``after_commit`` is called after each of their commits and
    ``on_load(obj)`` for each object they load from the database; both reach only these sessions (their own
    Session class), never another app's in the same process."""
    if after_commit is None and on_load is None:
        return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

    class WatchedSession(SyncSession):
        """The sessions of one session maker, with its own event listeners."""

    if after_commit is not None:
        event.listen(WatchedSession, "after_commit", lambda _session: after_commit())
    if on_load is not None:
        event.listen(WatchedSession, "loaded_as_persistent", lambda _session, obj: on_load(obj))
    return async_sessionmaker(engine, class_=AsyncSession, sync_session_class=WatchedSession, expire_on_commit=False)


def watched(
    sessions: SessionMaker,
    *,
    after_commit: Callable[[], None] | None = None,
    on_load: Callable[[Any], None] | None = None,
) -> SessionMaker:
    """``sessions``' engine with hooks of its own (see ``session_maker``)."""
    engine = sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return session_maker(engine, after_commit=after_commit, on_load=on_load)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def schema_head() -> str | None:
    """The newest migration's revision id (read once from the migration scripts)."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; raises if it cannot be read (no database, no table)."""
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()


def migrate(url: str) -> None:
    """Bring the schema up to date (blocking; call from a thread inside a loop)."""
    _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), "head")
    log.info("database schema is up to date")


async def migrate_async(url: str) -> None:
    await asyncio.to_thread(migrate, url)
