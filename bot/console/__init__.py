"""The web console (/console): server-rendered pages for HR, managers and admins.

A web layer beside ``bot/api``: it reads and changes data only through ``bot/services`` (checked
by tests/operations/test_architecture.py), renders ``templates/console/*.html.j2``, and follows chat's role
rules. Sign-in is a one-time link from chat (后台) or ``python -m bot console-link``.
"""

from __future__ import annotations

from aiohttp import web

from bot.console import admin, interviews, login, stats, todos
from bot.keys import SETTINGS


def add_routes(app: web.Application) -> None:
    """The console's routes, and its per-app state (the login throttle; ``app[SETTINGS]`` is set)."""
    app[login.LOGIN_THROTTLE] = login.login_throttle(app[SETTINGS])
    for module in (login, interviews, todos, stats, admin):
        app.add_routes(module.routes)
