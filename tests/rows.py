"""Rows the service stored, read back by model and column values."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel import select

from bot.keys import CORE


async def rows(app: web.Application, model: Any, **where: Any) -> list[Any]:
    """Every row of ``model`` whose columns equal ``where``."""
    async with app[CORE].sessions() as session:
        stmt = select(model)
        for name, value in where.items():
            stmt = stmt.where(getattr(model, name) == value)
        return list((await session.exec(stmt)).all())
