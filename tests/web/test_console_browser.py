"""The web console in a real headless Chromium (Debian's chromium + chromedriver, through Selenium).

The real app serves on a real TCP port (the aiohttp test server, on the test clock and database);
the browser is started once for this module. Selenium's calls block, so each runs in a thread
while the event loop serves the browser's requests.

BOT_SCREENSHOTS=1 also writes docs/console-*.png (kept in the repo, shown in the README); CI
leaves them alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import Interview
from tests.chat import ChatUser
from tests.conftest import AppFactory, admin_headers, started_interview
from tests.console import console_setup, login_token

CHROMIUM = os.environ.get("BOT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BOT_TEST_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")
DOCS = Path(__file__).resolve().parents[2] / "docs"
SCREENSHOTS = os.environ.get("BOT_SCREENSHOTS") == "1"
DESKTOP = (1280, 860)
PHONE = (390, 844)

T = TypeVar("T")


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    """One headless Chromium for the whole module (installed by .ci/run: apt chromium chromium-driver)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    assert not missing, f"install Debian's chromium and chromium-driver (as .ci/run does): missing {missing}"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=zh-CN"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


class Browser:
    """The module's browser, used from async tests: every call runs in a thread."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base.rstrip("/")

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.to_thread(fn)

    async def open(self, path: str) -> None:
        url = path if path.startswith("http") else self.base + path
        await self.run(lambda: self.driver.get(url))

    async def text(self, css: str = "main") -> str:
        def read() -> str:
            for _ in range(3):  # a page that reloads itself may swap the element between the two calls
                try:
                    return str(self.driver.find_element(By.CSS_SELECTOR, css).text)
                except StaleElementReferenceException:
                    continue
            return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

        return await self.run(read)

    async def title(self) -> str:
        return await self.run(lambda: self.driver.title)

    async def path(self) -> str:
        url: str = await self.run(lambda: self.driver.current_url)
        return url.removeprefix(self.base)

    async def click(self, css: str) -> None:
        """Click something that stays on this page (a <summary>)."""
        await self.run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click())

    async def submit(self, css: str) -> None:
        """Click a button that loads another page, and wait until that page has loaded."""

        def press() -> None:
            # The old page is marked; the new one has no mark. (Selenium's staleness_of asks about
            # an element of the old page, which chromedriver may answer with an "unknown error"
            # while that page is being torn down; asking mid-navigation may fail too: retried.)
            self.driver.execute_script("window.__oldPage = true;")
            self.driver.find_element(By.CSS_SELECTOR, css).click()
            wait = WebDriverWait(self.driver, 20, ignored_exceptions=(WebDriverException,))
            wait.until(lambda d: d.execute_script("return !window.__oldPage && document.readyState === 'complete';"))

        await self.run(press)

    async def choose(self, css: str, value: str) -> None:
        await self.run(lambda: Select(self.driver.find_element(By.CSS_SELECTOR, css)).select_by_value(value))

    async def type(self, css: str, text: str) -> None:
        await self.run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).send_keys(text))

    async def js(self, script: str, *args: Any) -> Any:
        return await self.run(lambda: self.driver.execute_script(script, *args))

    async def cookies(self) -> dict[str, dict[str, Any]]:
        found = await self.run(self.driver.get_cookies)
        return {c["name"]: c for c in found}

    async def size(self, width: int, height: int, *, mobile: bool = False) -> None:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1, "mobile": mobile}
        await self.run(lambda: self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics))  # type: ignore[attr-defined]

    async def screenshot(self, name: str) -> None:
        if SCREENSHOTS:
            DOCS.mkdir(exist_ok=True)
            ok = await self.run(lambda: self.driver.save_screenshot(str(DOCS / name)))
            assert ok, name

    async def full_page_screenshot(self, name: str) -> None:
        """The whole page, as tall as its content (up to 3000 px)."""
        if SCREENSHOTS:
            height = int(await self.js("return document.documentElement.scrollHeight;"))
            await self.size(DESKTOP[0], min(height, 3000))
            await self.screenshot(name)
            await self.size(*DESKTOP)

    async def overflow(self) -> int:
        """How many CSS pixels the page is wider than the viewport (0: no horizontal scrolling)."""
        return int(await self.js("return document.documentElement.scrollWidth - window.innerWidth;"))


async def fresh(driver: WebDriver, client: TestClient) -> Browser:
    """This test's server in the module's browser, with no cookies left from an earlier test."""
    browser = Browser(driver, str(client.make_url("/")))
    await browser.size(*DESKTOP)
    await browser.open("/healthz")
    await browser.run(driver.delete_all_cookies)
    return browser


async def login(browser: Browser, app: web.Application, user_id: str) -> str:
    """Open a console link as ``user_id`` and press 进入后台; the link's URL."""
    url = f"{browser.base}/console/login?token={await login_token(app, user_id)}"
    await browser.open(url)
    assert "一次性登录链接" in await browser.text()
    await browser.submit("main form button[type=submit]")
    assert await browser.path() == "/console", await browser.text()
    return url


async def setup(make_client: AppFactory, clock: FrozenClock, *, refresh: int = 0) -> tuple[TestClient, web.Application]:
    """tests/console.py's people and interviews, 9 minutes into both interviews. The 进行中 page
    reloads itself every ``refresh`` seconds: off unless a test is about that (a reload in the
    middle of a step makes the element it holds stale)."""
    client, app = await console_setup(make_client, clock, console_refresh_seconds=refresh)
    clock.advance(minutes=9)
    return client, app


async def status_of(app: web.Application, platform_id: str) -> str:
    async with app[CORE].sessions() as session:
        return (await session.exec(select(Interview).where(Interview.platform_id == platform_id))).one().status


async def test_terminate_from_the_live_page(driver: WebDriver, make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    browser = await fresh(driver, client)
    link = await login(browser, app, "hr01")
    cookie = (await browser.cookies())["console_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    assert await browser.js("return document.cookie;") == ""  # not readable by scripts

    row = "#row-iv-1"
    assert "张三" in await browser.text(row) and "9 分钟" in await browser.text(row)
    assert "李四" not in await browser.text()  # HR: own interviews only
    await browser.click(f"{row} summary")
    await browser.choose(f"{row} select[name=reason]", "candidate_quit")
    await browser.type(f"{row} textarea[name=note]", "候选人说家里有事")
    await browser.submit(f"{row} form button[type=submit]")
    assert await browser.path() == "/console?done=recorded"  # no platform connected: recorded here only
    shown = await browser.text(row)
    assert "已终止" in shown and "候选人放弃" in shown

    api = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert api["status"] == "terminated" and api["exit"]["source"] == "console"
    assert api["exit"]["operator"] == "wecom:hr01" and api["exit"]["detail"] == "候选人说家里有事"

    # The used link, opened again in a browser without the session: a clear page, no access.
    await browser.run(driver.delete_all_cookies)
    await browser.open(link)
    assert "已经用过" in await browser.text() and "后台" in await browser.text()
    assert "console_session" not in await browser.cookies()
    await browser.open("/console")
    assert await browser.path() == "/console/welcome"
    assert "请先登录" in await browser.text() and "张三" not in await browser.text()


async def test_the_live_page_reloads_itself_but_not_while_a_form_is_open(
    driver: WebDriver, make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock, refresh=1)
    browser = await fresh(driver, client)
    await login(browser, app, "hr01")
    assert "每 1 秒自动刷新" in await browser.text()

    def stale_within(seconds: float) -> bool:
        """Whether the page is replaced by a new one (loaded) within ``seconds``."""
        driver.execute_script("window.__oldPage = true;")
        wait = WebDriverWait(driver, seconds, ignored_exceptions=(WebDriverException,))
        try:
            wait.until(lambda d: d.execute_script("return !window.__oldPage && document.readyState === 'complete';"))
        except TimeoutException:
            return False
        return True

    assert await browser.run(lambda: stale_within(10))  # reloaded by itself
    await browser.run(lambda: WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "row-iv-1")))
    await browser.click("#row-iv-1 summary")  # the terminate form is open: no reload now
    assert not await browser.run(lambda: stale_within(2.5))
    assert await browser.js("return document.querySelector('#row-iv-1 details').open;") is True


async def test_hr_scope_and_csrf_in_the_browser(driver: WebDriver, make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    browser = await fresh(driver, client)
    await login(browser, app, "hr01")
    await browser.open("/console/interviews")
    assert "张三" in await browser.text() and "李四" not in await browser.text()
    await browser.open("/console/interviews/iv-2")
    assert "找不到面试 iv-2" in await browser.text()

    # A form whose CSRF token is gone (as a forged cross-site form would be): refused, nothing done.
    await browser.open("/console")
    await browser.click("#row-iv-1 summary")
    await browser.choose("#row-iv-1 select[name=reason]", "candidate_quit")
    await browser.js("document.querySelector('#row-iv-1 input[name=csrf]').remove();")
    await browser.submit("#row-iv-1 form button[type=submit]")
    assert "安全令牌" in await browser.text()
    assert await status_of(app, "iv-1") == "in_progress"
    with pytest.raises(NoSuchElementException):
        await browser.run(lambda: driver.find_element(By.CSS_SELECTOR, "input[name=csrf][value='']"))


async def test_pages_fit_a_phone_and_screenshots(
    driver: WebDriver, make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock, "iv-3", name="王五", hr=("wecom", "hr01"), email="w5@example.com")
    clock.advance(minutes=4)
    resp = await client.post("/api/interviews/iv-2/terminate", json={"reason": "掉线"}, headers=admin_headers())
    assert resp.status == 200
    browser = await fresh(driver, client)
    await login(browser, app, "boss")
    assert (
        "张三" in await browser.text()
        and "王五" in await browser.text()
        and "已终止" in await browser.text("#row-iv-2")
    )
    await browser.screenshot("console-live.png")
    await browser.open("/console/interviews/iv-2")
    assert "退出记录" in await browser.text() and "系统故障" in await browser.text()
    assert "赵先生(企业微信 hr02)" in await browser.text()
    await browser.full_page_screenshot("console-detail.png")

    await browser.size(*PHONE, mobile=True)
    for path in ("/console", "/console/interviews", "/console/interviews/iv-2", "/console/todos", "/console/welcome"):
        await browser.open(path)
        assert await browser.js("return window.innerWidth;") == PHONE[0]
        assert await browser.overflow() <= 0, path
    await browser.open("/console")
    await browser.click("#row-iv-1 summary")  # the terminate form, opened, fits too
    assert await browser.overflow() <= 0
    await browser.screenshot("console-live-phone.png")


async def test_a_reason_added_on_the_page_is_understood_in_chat(
    driver: WebDriver, make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    browser = await fresh(driver, client)
    await login(browser, app, "root")
    await browser.open("/console/reasons")
    new = "#reason-new"
    await browser.type(f"{new} input[name=name]", "设备被占用")
    await browser.type(f"{new} input[name=synonyms]", "借不到电脑,电脑被占用")
    await browser.choose(f"{new} select[name=outcome]", "需要重新面试")
    await browser.submit(f"{new} button[type=submit]")
    assert await browser.path() == "/console/reasons?done=add", await browser.text(".msg")
    values = await browser.js("return [...document.querySelectorAll('#reasons input')].map(i => i.value).join('|');")
    assert "设备被占用" in values and "借不到电脑" in values  # in the table's fields, ready to edit

    # Right away, in chat: the synonym picks the new reason, and the terminate ends with it.
    hr = ChatUser(app, "hr01")
    assert "设备被占用" in await hr.says("终止面试 张三 借不到电脑")
    await hr.says("确认")
    api = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert api["status"] == "terminated" and api["exit"]["reason"] == "设备被占用"
    assert api["exit"]["source"] == "chat"

    # The 统计 page counts it under the new reason (and is the third screenshot).
    resp = await client.post("/api/interviews/iv-2/terminate", json={"reason": "掉线"}, headers=admin_headers())
    assert resp.status == 200
    await browser.open("/console/stats?period=week")
    by_reason = await browser.text("#by-reason")
    assert "设备被占用\n1" in by_reason and "系统故障\n1" in by_reason and await browser.text("#total") == "2"
    loaded = await browser.js("const i = document.querySelector('img.chart'); return i.complete && i.naturalWidth;")
    assert loaded and int(loaded) > 100  # the chart PNG was served to the browser
    await browser.full_page_screenshot("console-stats.png")

    await browser.size(*PHONE, mobile=True)
    for path in ("/console/stats", "/console/reasons", "/console/people", "/console/notices", "/console/system"):
        await browser.open(path)
        assert await browser.overflow() <= 0, path


async def test_the_reasons_table_is_compact_and_edits_in_place(
    driver: WebDriver, make_client: AppFactory, clock: FrozenClock
) -> None:
    """One row per reason (it was a full form each, about 3,100 px tall); a name changed in its row
    and saved there is what chat understands next."""
    client, app = await setup(make_client, clock)
    browser = await fresh(driver, client)
    await login(browser, app, "root")
    heights = {}
    for width, height, mobile in ((1366, 768, False), (375, 812, True)):
        await browser.size(width, height, mobile=mobile)
        await browser.open("/console/reasons")
        assert await browser.overflow() <= 0, width
        heights[width] = int(await browser.js("return document.documentElement.scrollHeight;"))
        if SCREENSHOTS or os.environ.get("BOT_REASONS_SHOT"):
            shot = f"{os.environ.get('BOT_REASONS_SHOT', str(DOCS))}/console-reasons-{width}.png"
            await browser.size(width, min(heights[width], 3000), mobile=mobile)
            await browser.run(partial(driver.save_screenshot, shot))
    assert heights[1366] < 1000, heights  # the six built-in reasons and the add form on one screen
    assert heights[375] < 2600, heights
    await browser.size(*DESKTOP)
    await browser.open("/console/reasons")
    headers = await browser.text("#reasons thead")
    assert all(h in headers for h in ("名称", "同义词", "结果", "退出记录", "状态", "操作"))
    row = "#reason-candidate_quit"
    await browser.js(f"document.querySelector('{row} input[name=name]').value = '';")
    await browser.type(f"{row} input[name=name]", "候选人主动放弃")
    await browser.js(f"document.querySelector('{row} input[name=synonyms]').value = '';")
    await browser.type(f"{row} input[name=synonyms]", "不想面了,不面了")
    await browser.submit(f"{row} button[type=submit]")
    assert await browser.path() == "/console/reasons?done=edit", await browser.text(".msg")
    value = await browser.js(f"return document.querySelector('{row} input[name=name]').value;")
    assert value == "候选人主动放弃"
    assert "候选人主动放弃" in await ChatUser(app, "hr01").says("终止面试 张三 不面了")
