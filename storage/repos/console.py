"""Web console login links and sessions (rows only; the rules are in bot/services/console_auth.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ConsoleLogin, ConsoleSession


def add_console_login(
    session: AsyncSession, *, token_hash: str, person_key: str, now: datetime, expires_at: datetime
) -> ConsoleLogin:
    row = ConsoleLogin(token_hash=token_hash, person_key=person_key, created_at=now, expires_at=expires_at)
    session.add(row)
    return row


async def get_console_login(session: AsyncSession, *, token_hash: str) -> ConsoleLogin | None:
    return await session.get(ConsoleLogin, token_hash, populate_existing=True)


async def spend_console_login(session: AsyncSession, *, token_hash: str, now: datetime) -> bool:
    """Mark an unused, unexpired link used (not committed); True if this caller spent it."""
    stmt = (
        update(ConsoleLogin)
        .where(
            col(ConsoleLogin.token_hash) == token_hash,
            col(ConsoleLogin.used_at).is_(None),
            col(ConsoleLogin.expires_at) > now,
        )
        .values(used_at=now)
    )
    return bool((await session.exec(stmt)).rowcount == 1)


def add_console_session(
    session: AsyncSession, *, id_hash: str, person_key: str, csrf: str, now: datetime, expires_at: datetime
) -> ConsoleSession:
    row = ConsoleSession(id_hash=id_hash, person_key=person_key, csrf=csrf, created_at=now, expires_at=expires_at)
    session.add(row)
    return row


async def get_console_session(session: AsyncSession, *, id_hash: str) -> ConsoleSession | None:
    return await session.get(ConsoleSession, id_hash, populate_existing=True)


async def end_console_session(session: AsyncSession, *, id_hash: str, now: datetime) -> None:
    """Log out (not committed)."""
    stmt = (
        update(ConsoleSession)
        .where(col(ConsoleSession.id_hash) == id_hash, col(ConsoleSession.ended_at).is_(None))
        .values(ended_at=now)
    )
    await session.exec(stmt)


async def purge_console_rows(session: AsyncSession, *, before: datetime) -> None:
    """Drop links and sessions that expired before ``before`` (not committed)."""
    await session.exec(delete(ConsoleLogin).where(col(ConsoleLogin.expires_at) < before))
    await session.exec(
        delete(ConsoleSession).where(
            or_(col(ConsoleSession.expires_at) < before, col(ConsoleSession.ended_at) < before)
        )
    )
