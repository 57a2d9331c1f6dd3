"""What every console page shares: rendering, the session cookie, sign-in checks and CSRF.

Pages are rendered from ``templates/console/*.html.j2`` (autoescaped). A page handler is wrapped
by ``page`` (GET: needs a session, else a redirect to the explanation page) or ``action`` (POST:
needs a session and the session's CSRF token in the form, else 403; nothing is changed).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from bot.keys import CORE
from bot.services import console_auth
from bot.services.console_auth import ConsoleUser
from bot.services.context import Core

COOKIE = "console_session"
# Before sign-in: the login form's double-submit token (the link's token is the credential).
PRE_COOKIE = "console_login"
PREFIX = "/console"
WELCOME = f"{PREFIX}/welcome"

# No outside resources at all; scripts and styles only from the service itself.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]
PageFn = Callable[[web.Request, ConsoleUser], Awaitable[web.StreamResponse]]
ActionFn = Callable[[web.Request, ConsoleUser, Form], Awaitable[web.StreamResponse]]


def core_of(request: web.Request) -> Core:
    return request.app[CORE]


def render(
    request: web.Request, template: str, /, *, status: int = 200, user: ConsoleUser | None = None, **context: Any
) -> web.Response:
    core = core_of(request)
    text = core.templates.render(
        f"console/{template}.html.j2",
        user=user,
        path=request.path,
        tz=core.settings.tz,
        now=core.clock.now(),
        **context,
    )
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=SECURITY_HEADERS)


def redirect(location: str, **query: Any) -> web.HTTPSeeOther:
    shown = {k: v for k, v in query.items() if v not in (None, "")}
    return web.HTTPSeeOther(location + (f"?{urlencode(shown)}" if shown else ""), headers=SECURITY_HEADERS)


def set_session_cookie(core: Core, response: web.StreamResponse, sid: str) -> None:
    response.set_cookie(
        COOKIE,
        sid,
        path=PREFIX,
        max_age=core.settings.console_session_hours * 3600,
        httponly=True,
        samesite="Lax",
        secure=console_auth.secure_cookies(core),
    )


def clear_cookie(response: web.StreamResponse, name: str = COOKIE) -> None:
    response.del_cookie(name, path=PREFIX)


async def current_user(request: web.Request) -> ConsoleUser | None:
    return await console_auth.session_user(core_of(request), request.cookies.get(COOKIE))


def page(fn: PageFn) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page for signed-in people; without a session, a redirect to the explanation page."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        user = await current_user(request)
        if user is None:
            raise redirect(WELCOME)
        return await fn(request, user)

    return handler


def admin_page(fn: PageFn) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(fn)
    async def inner(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
        if not user.is_admin:
            return forbidden(request, user)
        return await fn(request, user)

    return page(inner)


def manager_page(fn: PageFn) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET page for managers and admins only (统计), as chat's 统计 command."""

    @functools.wraps(fn)
    async def inner(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
        if not user.is_manager:
            return forbidden(request, user, why="managers_only")
        return await fn(request, user)

    return page(inner)


def forbidden(request: web.Request, user: ConsoleUser | None, *, why: str = "admin_only") -> web.Response:
    return render(request, "refused", status=403, user=user, why=why)


def csrf_ok(user: ConsoleUser, form: Mapping[str, Any]) -> bool:
    given = form.get("csrf")
    return isinstance(given, str) and hmac.compare_digest(given.encode(), user.csrf.encode())


def action(fn: ActionFn, *, admin: bool = False) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A form POST: a session and its CSRF token are required (403 without); admins only if ``admin``."""

    @functools.wraps(fn)
    async def handler(request: web.Request) -> web.StreamResponse:
        user = await current_user(request)
        form = await request.post()
        if user is None:
            return render(request, "refused", status=403, why="no_session")
        if not csrf_ok(user, form):
            return render(request, "refused", status=403, user=user, why="csrf")
        if admin and not user.is_admin:
            return forbidden(request, user)
        return await fn(request, user, form)

    return handler


def admin_action(fn: ActionFn) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    return action(fn, admin=True)


def text_field(form: Mapping[str, Any], name: str, *, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""
