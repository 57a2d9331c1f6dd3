"""Database faults injected at the database itself: a trigger that makes the real SQLite or
PostgreSQL refuse inserts into a table while a fault is armed (our code runs unchanged)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


class Faults:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.tables: list[str] = []

    async def install(self, table: str, when: str = "TRUE") -> None:
        """Inserts into ``table`` fail while armed and ``when`` (SQL over NEW) holds."""
        async with self.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS injected_fault (name VARCHAR(64) PRIMARY KEY)"))
            if self.pg:
                await conn.execute(
                    text(
                        f"CREATE OR REPLACE FUNCTION injected_fault_{table}() RETURNS trigger AS $$ BEGIN "
                        f"IF EXISTS (SELECT 1 FROM injected_fault WHERE name = '{table}') AND ({when}) THEN "
                        "RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                    )
                )
                await conn.execute(
                    text(
                        f"CREATE TRIGGER injected_fault_{table} BEFORE INSERT ON {table} "
                        f"FOR EACH ROW EXECUTE FUNCTION injected_fault_{table}()"
                    )
                )
            else:
                await conn.execute(
                    text(
                        f"CREATE TRIGGER injected_fault_{table} BEFORE INSERT ON {table} "
                        f"WHEN EXISTS (SELECT 1 FROM injected_fault WHERE name = '{table}') AND ({when}) "
                        "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                    )
                )
        self.tables.append(table)

    async def arm(self, table: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("INSERT INTO injected_fault (name) VALUES (:t)"), {"t": table})

    async def disarm(self, table: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM injected_fault WHERE name = :t"), {"t": table})

    async def remove(self) -> None:
        async with self.engine.begin() as conn:
            for table in self.tables:
                await conn.execute(
                    text(f"DROP TRIGGER IF EXISTS injected_fault_{table}" + (f" ON {table}" if self.pg else ""))
                )
                if self.pg:
                    await conn.execute(text(f"DROP FUNCTION IF EXISTS injected_fault_{table}()"))
            await conn.execute(text("DROP TABLE IF EXISTS injected_fault"))
