"""Bad console login links: counted in /metrics, logged without the token, and an address that keeps
failing is held off (429 with Retry-After) while other addresses still sign in."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.clock import FrozenClock
from bot.console.throttle import FailureThrottle
from bot.keys import CORE
from storage.models import AuditEvent, ConsoleSession
from tests.conftest import AppFactory, admin_headers, make_settings
from tests.console import console_setup, hidden_fields, login_token

OTHER = "127.0.0.2"  # a second loopback address: the same machine seen as another client


async def refused_counts(client: TestClient) -> dict[str, float]:
    text = await (await client.get("/metrics", headers=admin_headers())).text()
    found = re.findall(r'^bot_console_login_refused_total\{reason="(\w+)"\} ([0-9.]+)$', text, re.M)
    return {reason: float(n) for reason, n in found}


async def test_refused_links_are_counted_and_logged_without_the_token(
    make_client: AppFactory, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    client, app = await console_setup(make_client, clock)
    assert await refused_counts(client) == {}
    guessed = secrets.token_urlsafe(32)
    used = await login_token(app, "hr01")
    expired = await login_token(app, "hr02")
    caplog.set_level(logging.INFO)

    assert (await client.get("/console/login", params={"token": guessed})).status == 404
    page = await client.get("/console/login", params={"token": used})
    resp = await client.post("/console/login", data=hidden_fields(await page.text()), allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/console/login", params={"token": used})).status == 410
    page = await client.get("/console/login", params={"token": expired})
    clock.advance(minutes=11)
    resp = await client.post("/console/login", data=hidden_fields(await page.text()), allow_redirects=False)
    assert resp.status == 410

    assert await refused_counts(client) == {"unknown": 1.0, "used": 1.0, "expired": 1.0}
    warnings = [r.getMessage() for r in caplog.records if r.name == "bot.console.login"]
    assert warnings == [
        "console login link refused from 127.0.0.1: unknown",
        "console login link refused from 127.0.0.1: used",
        "console login link refused from 127.0.0.1: expired",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "bot.console.login")
    # No line the service logs carries a token (the test server's own aiohttp access log, which
    # the service replaces with bot.logs.PathAccessLogger, prints query strings; it is left out).
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]
    for token in (guessed, used, expired):
        assert not [r for r in ours if token in r.getMessage() or token in str(r.args)]


async def _sign_in_from(client: TestClient, address: str, token: str) -> aiohttp.ClientResponse:
    """Open the link and press 进入后台 from another local address (its own browser)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        page = await browser.get(client.make_url("/console/login"), params={"token": token})
        assert page.status == 200, await page.text()
        resp = await browser.post(
            client.make_url("/console/login"), data=hidden_fields(await page.text()), allow_redirects=False
        )
        await resp.read()
        return resp


async def test_a_burst_from_one_address_is_held_off_and_others_still_sign_in(
    make_client: AppFactory, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    client, app = await console_setup(make_client, clock, console_login_failures=5, console_login_window_seconds=60)
    caplog.set_level(logging.INFO)
    good = await login_token(app, "hr01")
    for n in range(5):
        clock.advance(seconds=1)
        resp = await client.get("/console/login", params={"token": secrets.token_urlsafe(32)})
        assert resp.status == 404, n
    # The sixth try, even with a good link, is held off until the first failure is a minute old.
    for token in (secrets.token_urlsafe(32), good):
        held = await client.get("/console/login", params={"token": token})
        assert held.status == 429
        assert held.headers["Retry-After"] == "56"
        assert "登录尝试过多" in await held.text() and "56 秒后" in await held.text()
    posted = await client.post("/console/login", data={"token": good, "csrf": "x"}, allow_redirects=False)
    assert posted.status == 429 and posted.headers["Retry-After"] == "56"
    assert await refused_counts(client) == {"unknown": 5.0, "throttled": 3.0}

    # Another address signs in meanwhile.
    other = await login_token(app, "hr02")
    resp = await _sign_in_from(client, OTHER, other)
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    async with app[CORE].sessions() as session:
        assert len((await session.exec(select(ConsoleSession))).all()) == 1
        [audit] = (await session.exec(select(AuditEvent).where(AuditEvent.action == "console.login_throttled"))).all()
    assert audit.detail == {"source": "console", "address": "127.0.0.1", "failures": 5, "seconds": 56}
    held_logs = [r.getMessage() for r in caplog.records if "holding it off" in r.getMessage()]
    assert held_logs == ["console login: 127.0.0.1 had 5 links refused within 60 s; holding it off for 56 s"]

    # Once the oldest failure leaves the window, the held link (never looked at) still works.
    clock.advance(seconds=56)
    page = await client.get("/console/login", params={"token": good})
    assert page.status == 200
    resp = await client.post("/console/login", data=hidden_fields(await page.text()), allow_redirects=False)
    assert resp.status == 303
    assert (await client.get("/console")).status == 200


def test_the_throttle_keeps_a_bounded_state() -> None:
    start = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    throttle = FailureThrottle(limit=3, window=timedelta(seconds=60), max_sources=100)
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", start)
    assert len(throttle) == 100  # the least recently failing addresses were forgotten
    assert throttle.retry_after("10.0.3.231", start) is None  # one failure of three
    for _ in range(2):
        throttle.failed("10.0.3.231", start + timedelta(seconds=10))
    assert throttle.retry_after("10.0.3.231", start + timedelta(seconds=10)) == 50
    assert throttle.retry_after("10.0.3.230", start + timedelta(seconds=10)) is None
    assert throttle.retry_after("10.0.3.231", start + timedelta(seconds=60)) is None  # the first one left
    assert len(throttle) == 100
    # Failures that left the window are dropped when their address is next looked at.
    later = start + timedelta(seconds=61)
    assert all(throttle.retry_after(f"10.0.3.{n}", later) is None for n in range(132, 232))
    assert len(throttle) == 1


async def _bad_links(client: TestClient, n: int, **headers: str) -> list[int]:
    statuses = []
    for _ in range(n):
        resp = await client.get("/console/login", params={"token": secrets.token_urlsafe(32)}, headers=headers)
        statuses.append(resp.status)
    return statuses


async def test_forwarded_for_is_read_only_from_a_trusted_proxy(make_client: AppFactory, clock: FrozenClock) -> None:
    # Without BOT_TRUSTED_PROXIES a header cannot make one source look like many.
    client, _ = await console_setup(make_client, clock, console_login_failures=3)
    statuses = [s for n in range(4) for s in await _bad_links(client, 1, **{"X-Forwarded-For": f"203.0.113.{n}"})]
    assert statuses == [404, 404, 404, 429]


async def test_behind_a_trusted_proxy_each_client_counts_alone(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await console_setup(
        make_client, clock, console_login_failures=3, trusted_proxies="127.0.0.1, 10.9.0.0/16"
    )
    assert await _bad_links(client, 4, **{"X-Forwarded-For": "203.0.113.7"}) == [404, 404, 404, 429]
    # What a client writes before the proxy's own entry is not believed: this is still 203.0.113.7,
    # forwarded through a second trusted proxy.
    assert await _bad_links(client, 1, **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.9.4.4"}) == [429]
    # Another client behind the same proxy signs in.
    token = await login_token(app, "hr01")
    page = await client.get("/console/login", params={"token": token}, headers={"X-Forwarded-For": "198.51.100.1"})
    assert page.status == 200
    resp = await client.post(
        "/console/login",
        data=hidden_fields(await page.text()),
        headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.1"},
        allow_redirects=False,
    )
    assert resp.status == 303
    async with app[CORE].sessions() as session:
        [audit] = (await session.exec(select(AuditEvent).where(AuditEvent.action == "console.login_throttled"))).all()
    assert audit.detail["address"] == "203.0.113.7"


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="BOT_TRUSTED_PROXIES"):
        make_settings("sqlite+aiosqlite:///:memory:", trusted_proxies="caddy")
    assert make_settings("sqlite+aiosqlite:///:memory:", trusted_proxies=" 10.0.0.1 ,fd00::/8").trusted_proxies == (
        "10.0.0.1,fd00::/8"
    )
