"""Chat command handlers. Routers are listed here explicitly (aiogram habit)."""

from __future__ import annotations

from bot.dispatcher import Router
from handlers import help as help_
from handlers import terminate

ROUTERS: tuple[Router, ...] = (terminate.router, help_.router)
