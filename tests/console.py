"""Helpers for web console tests: the people and interviews they start with, a login link for a
person, signing in over HTTP, reading forms."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services import console_auth
from tests.chat import add_person
from tests.conftest import AppFactory, started_interview

HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


async def login_token(app: web.Application, user_id: str, platform: str = "wecom") -> str:
    return await console_auth.issue_link(app[CORE], platform=platform, user_id=user_id)


def hidden_fields(html: str) -> dict[str, str]:
    return dict(HIDDEN.findall(html))


async def sign_in(client: TestClient, token: str) -> str:
    """Open the link, press 进入后台; the CSRF token of the session's forms."""
    page = await client.get("/console/login", params={"token": token})
    assert page.status == 200, await page.text()
    fields = hidden_fields(await page.text())
    resp = await client.post("/console/login", data=fields, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    landing = await client.get("/console")
    assert landing.status == 200
    return hidden_fields(await landing.text())["csrf"]


async def signed_in(client: TestClient, user_id: str, platform: str = "wecom") -> str:
    app = client.server.app
    assert app is not None
    return await sign_in(client, await login_token(app, user_id, platform))


async def console_setup(
    make_client: AppFactory, clock: FrozenClock, **overrides: object
) -> tuple[TestClient, web.Application]:
    """The app with two interviews in progress (张三 iv-1 of hr01, 李四 iv-2 of hr02) and four people:
    hr01 王小姐 and hr02 赵先生 (HR), boss 陈经理 (manager), root 管理员甲 (admin)."""
    client = await make_client(**overrides)
    app = client.server.app
    assert app is not None
    await started_interview(client, clock, "iv-1")
    await started_interview(client, clock, "iv-2", name="李四", hr=("wecom", "hr02"), email="li@example.com")
    for user_id, name, role in (("hr01", "王小姐", "hr"), ("hr02", "赵先生", "hr"), ("boss", "陈经理", "manager")):
        await add_person(app, user_id, name, role)
    await add_person(app, "root", "管理员甲", "admin")
    return client, app
