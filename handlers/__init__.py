"""Chat command handlers. Routers are listed here explicitly (aiogram habit)."""

from __future__ import annotations

from bot.dispatcher import HandlerFn, Router
from handlers import candidate, console, help_requests, people, reschedule, share, stats, status, terminate, todos
from handlers import help as help_

ROUTERS: tuple[Router, ...] = (
    terminate.router,
    help_requests.router,
    reschedule.router,
    status.router,
    stats.router,
    todos.router,
    people.router,
    share.router,
    console.router,
    help_.router,
)

# What answers a candidate writing to a customer-service chat (``Dispatcher(candidate=...)``).
CANDIDATE: HandlerFn = candidate.handle
