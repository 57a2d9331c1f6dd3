"""Signing in with a one-time link, signing out, the explanation page and the static files."""

from __future__ import annotations

import hmac
import secrets
from importlib import resources

from aiohttp import web

from bot.console.web import (
    COOKIE,
    PRE_COOKIE,
    PREFIX,
    SECURITY_HEADERS,
    Form,
    action,
    clear_cookie,
    core_of,
    current_user,
    redirect,
    render,
    set_session_cookie,
    text_field,
)
from bot.services import console_auth
from bot.services.console_auth import ConsoleUser

routes = web.RouteTableDef()

STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


@routes.get(f"{PREFIX}/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    """The link opens a page with one button: chat apps fetch links for previews, and a GET that
    spent the token would leave the person a used link. A used or expired link is refused here."""
    token = request.query.get("token", "")
    problem = await console_auth.check_link(core_of(request), token=token)
    if problem is not None:
        return render(request, "login_refused", status=problem.http_status, why=problem.code)
    pre = secrets.token_urlsafe(24)
    response = render(request, "login", token=token, pre=pre)
    response.set_cookie(
        PRE_COOKIE,
        pre,
        path=PREFIX,
        max_age=600,
        httponly=True,
        samesite="Strict",
        secure=console_auth.secure_cookies(core_of(request)),
    )
    return response


@routes.post(f"{PREFIX}/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    pre = request.cookies.get(PRE_COOKIE, "")
    given = text_field(form, "csrf", limit=100)
    if not pre or not hmac.compare_digest(pre.encode(), given.encode()):
        return render(request, "refused", status=403, why="csrf")
    core = core_of(request)
    try:
        sid, _ = await console_auth.sign_in(core, token=text_field(form, "token", limit=200))
    except console_auth.LinkRefused as exc:
        return render(request, "login_refused", status=exc.http_status, why=exc.code)
    response = redirect(PREFIX)
    set_session_cookie(core, response, sid)
    clear_cookie(response, PRE_COOKIE)
    raise response


async def _logout(request: web.Request, user: ConsoleUser, form: Form) -> web.StreamResponse:
    sid = request.cookies.get(COOKIE, "")
    await console_auth.sign_out(core_of(request), sid, actor=user.key)
    response = render(request, "signed_out")
    clear_cookie(response)
    return response


routes.post(f"{PREFIX}/logout")(action(_logout))


@routes.get(f"{PREFIX}/welcome")
async def welcome(request: web.Request) -> web.StreamResponse:
    """Where ``/console`` sends a browser without a session: how to get a link, and no data."""
    if await current_user(request) is not None:
        raise redirect(PREFIX)
    return render(request, "welcome", status=401)


@routes.get("/")
async def root(request: web.Request) -> web.StreamResponse:
    """The service's address opened in a browser: the console (its welcome page without a session)."""
    raise redirect(PREFIX)


@routes.get(f"{PREFIX}/")
async def slash(request: web.Request) -> web.StreamResponse:
    raise redirect(PREFIX)


@routes.get(f"{PREFIX}/static/{{name}}")
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC:
        raise web.HTTPNotFound()
    body = resources.files("bot.console").joinpath("static", name).read_bytes()
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}
    return web.Response(body=body, content_type=STATIC[name], charset="utf-8", headers=headers)
