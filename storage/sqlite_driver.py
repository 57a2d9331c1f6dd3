"""aiosqlite with one trip to its thread per statement, for SQLAlchemy's ``sqlite+aiosqlite`` dialect.

aiosqlite runs each sqlite3 call on the connection's own thread, and SQLAlchemy's adapter makes four
such calls per statement (create a cursor, execute, fetch, close) plus a ROLLBACK when a read-only
session ends. Every call is a hand-over between threads (and, on a busy core, a wait for the
scheduler), which profiling showed to be most of the chat intake's time. Here a statement is one
call (create, execute, fetch everything, close on the connection's thread), and COMMIT / ROLLBACK
are skipped when sqlite3 has no transaction open (it would do nothing then anyway). Results are
the same sqlite3 results: a cursor's rows are fetched at once, as SQLAlchemy's adapter already does
for every non-streaming statement.

Plugged in by ``storage.db.create_engine`` through the dialect's ``async_creator_fn`` argument.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite

_Result = tuple[Any, list[Any], int, int | None]


class OneTripCursor:
    """The cursor SQLAlchemy's adapter sees: ``execute`` does the whole statement in one trip."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: collections.deque[Any] = collections.deque()

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @staticmethod
    def _run(raw: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> _Result:
        cursor = raw.cursor()
        try:
            if many:
                cursor.executemany(sql, parameters)
            elif parameters is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, parameters)
            description = cursor.description
            rows = cursor.fetchall() if description else []
            return description, rows, cursor.rowcount, cursor.lastrowid
        finally:
            cursor.close()

    async def _trip(self, sql: str, parameters: Any, many: bool) -> OneTripCursor:
        connection = self._connection
        raw = connection.raw_if_idle()
        if raw is not None and connection.wal and not many and sql.lstrip()[:6].upper() == "SELECT":
            # A read outside a transaction: in WAL mode it never waits for a lock, so it runs here
            # instead of being handed to the thread and back; other tasks get their turn first,
            # as they would while the thread ran it.
            await asyncio.sleep(0)
            result = self._run(raw, sql, parameters, many)
        else:
            result = await connection.run(partial(self._run, sql=sql, parameters=parameters, many=many))
        self.description, rows, self.rowcount, self.lastrowid = result
        self._rows = collections.deque(rows)
        return self

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        return await self._trip(sql, parameters, False)

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneTripCursor:
        return await self._trip(sql, parameters, True)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        n = min(size or self.arraysize, len(self._rows))
        return [self._rows.popleft() for _ in range(n)]

    async def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def __aiter__(self) -> AsyncIterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def close(self) -> None:
        self._rows.clear()


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors make one trip per statement."""

    # In WAL mode (set when the engine connects) a read never waits for a writer.
    wal = False

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def run(self, fn: Any) -> Any:
        """``fn(raw sqlite3 connection)`` on the connection's thread."""
        return await self._execute(lambda: fn(self._conn))

    def raw_if_idle(self) -> sqlite3.Connection | None:
        """The sqlite3 connection when no transaction is open on it (sqlite3 knows without a trip);
        None when one is, or when it cannot be used from this thread (check_same_thread)."""
        raw = self._connection
        if raw is None:
            return None
        try:
            return None if raw.in_transaction else raw
        except sqlite3.ProgrammingError:
            return None

    def _idle(self) -> bool:
        return self.raw_if_idle() is not None

    async def commit(self) -> None:
        if not self._idle():
            await super().commit()

    async def rollback(self) -> None:
        if not self._idle():
            await super().rollback()


def note_journal_mode(connection: Any, row: Any) -> None:
    """Record on a ``OneTripConnection`` whether ``PRAGMA journal_mode=WAL`` answered ``wal``."""
    if isinstance(connection, OneTripConnection):
        connection.wal = bool(row) and str(row[0]).lower() == "wal"


def connect(database: str, **kwargs: Any) -> OneTripConnection:
    """What ``aiosqlite.connect`` does, with ``OneTripConnection`` (awaited by the dialect)."""
    connection = OneTripConnection(partial(sqlite3.connect, database, **kwargs), 64)
    connection._thread.daemon = True  # as the dialect does for aiosqlite's own connections
    return connection
