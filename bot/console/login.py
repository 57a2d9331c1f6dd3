"""Signing in with a one-time link, signing out, the explanation page and the static files.

A refused link (unknown, used, expired) is counted in ``/metrics``
(``bot_console_login_refused_total{reason}``), logged as a warning with the client address and
the reason (never the token), and counted against its address: after BOT_CONSOLE_LOGIN_FAILURES
within BOT_CONSOLE_LOGIN_WINDOW_SECONDS the address gets 429 with ``Retry-After`` (audited once
per hold) until its oldest failure leaves the window; other addresses are not affected."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from datetime import timedelta
from importlib import resources

from aiohttp import web

from bot.console.throttle import FailureThrottle
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
from bot.settings import Settings

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

LOGIN_THROTTLE = web.AppKey("console_login_throttle", FailureThrottle)
# A refused link's code → the reason counted and logged. A good link whose person has since been
# removed (``console_not_listed``) is no bad token and is not counted.
BAD_LINK = {"link_unknown": "unknown", "link_used": "used", "link_expired": "expired"}


def login_throttle(settings: Settings) -> FailureThrottle:
    return FailureThrottle(
        limit=settings.console_login_failures, window=timedelta(seconds=settings.console_login_window_seconds)
    )


def client_address(request: web.Request) -> str:
    """The client's address: the peer as aiohttp sees it, unless the peer is one of
    BOT_TRUSTED_PROXIES; then the nearest X-Forwarded-For entry that is not a trusted proxy (the
    entries before it are whatever the client chose to send, so they are never believed)."""
    peer = request.remote or "-"
    trusted = core_of(request).settings.proxy_networks
    if not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for line in request.headers.getall("X-Forwarded-For", []) for h in line.split(",")]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop if _ip(hop) is not None else peer  # junk a trusted proxy passed on: the proxy
    return peer


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip.version == net.version and ip in net for net in networks)


def _held_off(request: web.Request) -> web.Response | None:
    """429 with Retry-After for an address that failed too often lately (the link is not looked at)."""
    core = core_of(request)
    wait = request.app[LOGIN_THROTTLE].retry_after(client_address(request), core.clock.now())
    if wait is None:
        return None
    core.metrics.console_login_refused.labels(reason="throttled").inc()
    response = render(request, "login_refused", status=429, why="throttled", wait=wait)
    response.headers["Retry-After"] = str(wait)
    return response


async def _refused(request: web.Request, problem: console_auth.LinkRefused) -> web.Response:
    """The refusal page; a bad link is counted, logged (without the token) and throttled."""
    reason = BAD_LINK.get(problem.code)
    if reason is not None:
        core, address = core_of(request), client_address(request)
        core.metrics.console_login_refused.labels(reason=reason).inc()
        log.warning("console login link refused from %s: %s", address, reason)
        throttle, now = request.app[LOGIN_THROTTLE], core.clock.now()
        if throttle.failed(address, now):
            seconds = throttle.retry_after(address, now) or 1
            log.warning(
                "console login: %s had %d links refused within %d s; holding it off for %d s",
                address,
                throttle.limit,
                int(throttle.window.total_seconds()),
                seconds,
            )
            await console_auth.note_throttled(core, source=address, failures=throttle.limit, seconds=seconds)
    return render(request, "login_refused", status=problem.http_status, why=problem.code)


STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


@routes.get(f"{PREFIX}/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    """The link opens a page with one button: chat apps fetch links for previews, and a GET that
    spent the token would leave the person a used link. A used or expired link is refused here."""
    held = _held_off(request)
    if held is not None:
        return held
    token = request.query.get("token", "")
    problem = await console_auth.check_link(core_of(request), token=token)
    if problem is not None:
        return await _refused(request, problem)
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
    held = _held_off(request)
    if held is not None:
        return held
    form = await request.post()
    pre = request.cookies.get(PRE_COOKIE, "")
    given = text_field(form, "csrf", limit=100)
    if not pre or not hmac.compare_digest(pre.encode(), given.encode()):
        return render(request, "refused", status=403, why="csrf")
    core = core_of(request)
    try:
        sid, _ = await console_auth.sign_in(core, token=text_field(form, "token", limit=200))
    except console_auth.LinkRefused as exc:
        return await _refused(request, exc)
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
