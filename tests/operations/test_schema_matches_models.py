"""The migrations build exactly the schema the models describe (alembic's own comparison), on
SQLite and on PostgreSQL: a column added to a model without a migration (or the other way round)
fails here instead of in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401 - the models register their tables
from storage.db import create_engine


def _differences(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata))


async def test_migrated_database_matches_the_models(clean_db: str) -> None:
    engine = create_engine(clean_db)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
