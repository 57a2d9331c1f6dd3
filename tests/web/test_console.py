"""The web console over HTTP: one-time links, sessions, CSRF, role scope and the interview pages.

The real app on the test database; what a browser does is in tests/web/test_console_browser.py.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from aiohttp import FormData, web
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services import console_auth
from bot.services.reminders import sweep_reminders
from storage import repo
from storage.db import create_engine, session_maker
from storage.models import (
    AuditEvent,
    ConsoleLogin,
    ConsoleSession,
    ExitRecord,
    IntakeItem,
    Interview,
    InterviewShare,
    Notice,
    Person,
    Todo,
)
from tests.chat import ChatUser
from tests.conftest import CLOCK_START, SHANGHAI, AppFactory, admin_headers, started_interview
from tests.console import console_setup, hidden_fields, login_token, sign_in, signed_in
from tests.fakes.platform import FakePlatform
from tests.notices import dead_notice
from tests.serve import run_cli, service_env

setup = console_setup


async def interview(app: web.Application, platform_id: str) -> Interview:
    async with app[CORE].sessions() as session:
        found = (await session.exec(select(Interview).where(Interview.platform_id == platform_id))).one()
        return found


# --- signing in -------------------------------------------------------------------------------


async def test_a_link_signs_in_once_with_a_safe_cookie(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    token = await login_token(app, "hr01")
    async with app[CORE].sessions() as session:
        stored = (await session.exec(select(ConsoleLogin))).one()
    assert stored.token_hash != token and token not in stored.token_hash  # only a hash is kept
    assert stored.expires_at == clock.now() + timedelta(minutes=10)

    page = await client.get("/console/login", params={"token": token})
    assert page.status == 200 and "进入后台" in await page.text()
    resp = await client.post("/console/login", data=hidden_fields(await page.text()), allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/console"
    cookie = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("console_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # the base URL is http here
    assert "Max-Age=43200" in cookie  # BOT_CONSOLE_SESSION_HOURS default 12
    landing = await client.get("/console")
    assert landing.status == 200
    html = await landing.text()
    assert "张三" in html and "王小姐" in html and "李四" not in html  # HR: own interviews only

    # The same link again, from a fresh browser: a clear 410 page, no session.
    client.session.cookie_jar.clear()
    again = await client.get("/console/login", params={"token": token})
    assert again.status == 410 and "已经用过" in await again.text() and "后台" in await again.text()
    assert "console_session" not in {c.key for c in client.session.cookie_jar}
    assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_a_used_link_posted_again_gives_no_session(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    token = await login_token(app, "hr01")
    page = await client.get("/console/login", params={"token": token})
    fields = hidden_fields(await page.text())
    assert (await client.post("/console/login", data=fields, allow_redirects=False)).status == 303
    # A second press of the same form (another tab, a replay): refused, nothing new.
    second = await client.post("/console/login", data=fields, allow_redirects=False)
    assert second.status in (403, 410)
    async with app[CORE].sessions() as session:
        assert len((await session.exec(select(ConsoleSession))).all()) == 1


async def test_a_link_expires_after_ten_minutes(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    token = await login_token(app, "hr01")
    page = await client.get("/console/login", params={"token": token})
    fields = hidden_fields(await page.text())
    clock.advance(minutes=10, seconds=1)
    resp = await client.post("/console/login", data=fields, allow_redirects=False)
    assert resp.status == 410 and "已过期" in await resp.text()
    assert (await client.get("/console/login", params={"token": token})).status == 410
    assert (await client.get("/console", allow_redirects=False)).status == 303
    async with app[CORE].sessions() as session:
        refused = (await session.exec(select(AuditEvent).where(AuditEvent.action == "console.login_refused"))).all()
    assert [e.detail["why"] for e in refused] == ["link_expired"]


async def test_unknown_links_and_people_get_no_session(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    for token in ("", "x" * 300, "not-a-token"):
        resp = await client.get("/console/login", params={"token": token})
        assert resp.status == 404 and "登录链接无效" in await resp.text()
    # Removed after the link was sent: no session.
    token = await login_token(app, "hr02")
    page = await client.get("/console/login", params={"token": token})
    async with app[CORE].sessions() as session:
        person = await repo.get_person(session, platform="wecom", user_id="hr02")
        await session.delete(person)
        await session.commit()
    resp = await client.post("/console/login", data=hidden_fields(await page.text()), allow_redirects=False)
    assert resp.status == 403 and "console_session" not in resp.headers.get("Set-Cookie", "")


async def test_no_session_shows_no_data(make_client: AppFactory, clock: FrozenClock) -> None:
    client, _ = await setup(make_client, clock)
    for path in ("/console", "/console/interviews", "/console/interviews/iv-1", "/console/todos"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/console/welcome", path
    welcome = await client.get("/console")
    html = await welcome.text()
    assert welcome.status == 401 and "请先登录" in html and "后台" in html
    assert "张三" not in html and "iv-1" not in html
    # A forged cookie is no session either.
    client.session.cookie_jar.update_cookies({"console_session": "forged"})
    assert (await client.get("/console", allow_redirects=False)).status == 303


async def test_https_base_url_makes_the_cookie_secure(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock, public_base_url="https://hr.example.com")
    token = await login_token(app, "hr01")
    page = await client.get("/console/login", params={"token": token})
    pre = next(v for v in page.headers.getall("Set-Cookie") if v.startswith("console_login="))
    assert "Secure" in pre and "HttpOnly" in pre
    fields = hidden_fields(await page.text())
    # The test client speaks http, so it holds Secure cookies back: send the login form's one by hand.
    headers = {"Cookie": f"console_login={fields['csrf']}"}
    resp = await client.post("/console/login", data=fields, headers=headers, allow_redirects=False)
    cookie = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith("console_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


async def test_sessions_expire_and_logout_ends_them(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock, console_session_hours=2)
    csrf = await signed_in(client, "hr01")
    sid = next(c.value for c in client.session.cookie_jar if c.key == "console_session")
    clock.advance(hours=1, minutes=59)
    assert (await client.get("/console", allow_redirects=False)).status == 200
    clock.advance(minutes=2)
    assert (await client.get("/console", allow_redirects=False)).status == 303

    clock.advance(minutes=1)
    csrf = await signed_in(client, "hr01")
    sid = next(c.value for c in client.session.cookie_jar if c.key == "console_session")
    assert (await client.post("/console/logout", data={"csrf": csrf})).status == 200
    # The old cookie, replayed: the session is over on the server, not just in this browser.
    client.session.cookie_jar.update_cookies({"console_session": sid})
    assert (await client.get("/console", allow_redirects=False)).status == 303
    async with app[CORE].sessions() as session:
        actions = [e.action for e in (await session.exec(select(AuditEvent).order_by(AuditEvent.id))).all()]
    assert actions.count("console.login") == 2 and actions.count("console.logout") == 1


# --- CSRF and scope ----------------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_is_refused(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "hr01")
    for data in ({"reason": "candidate_quit"}, {"reason": "candidate_quit", "csrf": "wrong"}, {"csrf": ""}):
        resp = await client.post("/console/interviews/iv-1/terminate", data=data)
        assert resp.status == 403 and "安全令牌" in await resp.text()
    assert (await client.post("/console/logout", data={})).status == 403
    assert (await interview(app, "iv-1")).status == "in_progress"
    # Without a session at all: refused too, and nothing changes.
    client.session.cookie_jar.clear()
    resp = await client.post("/console/interviews/iv-1/terminate", data={"reason": "candidate_quit", "csrf": csrf})
    assert resp.status == 403
    assert (await interview(app, "iv-1")).status == "in_progress"


async def test_terminate_from_the_console_runs_the_one_procedure(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "hr01")
    clock.advance(minutes=7)
    data = {"csrf": csrf, "reason": "candidate_quit", "note": "候选人说家里有事", "from": "live"}
    resp = await client.post("/console/interviews/iv-1/terminate", data=data, allow_redirects=False)
    # No platform is connected here: the page says the termination is recorded here only.
    assert resp.status == 303 and resp.headers["Location"] == "/console?done=recorded"
    page = await (await client.get(resp.headers["Location"])).text()
    assert "已终止" in page and "候选人放弃" in page and "张三" in page
    assert "只在本系统记为已终止:未连接面试平台" in page and "作答已保存" not in page

    api = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert api["status"] == "terminated"
    assert api["exit"]["source"] == "console" and api["exit"]["operator"] == "wecom:hr01"
    assert api["exit"]["reason_code"] == "candidate_quit" and api["exit"]["detail"] == "候选人说家里有事"
    assert len(api["exit"]["progress_snapshot"]["answered"]) == 2
    async with app[CORE].sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "interview.terminated"))).one()
    assert event.actor == "wecom:hr01" and event.detail["source"] == "console"

    # Twice: the same message chat gives, and no second exit record.
    again = await client.post("/console/interviews/iv-1/terminate", data=data)
    assert again.status == 409 and "该面试已被 王小姐 终止,无需重复操作" in await again.text()
    async with app[CORE].sessions() as session:
        assert len((await session.exec(select(ExitRecord))).all()) == 1


async def test_bad_terminate_input_changes_nothing(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "hr01")
    resp = await client.post("/console/interviews/iv-1/terminate", data={"csrf": csrf, "reason": "不存在的原因"})
    assert resp.status == 400 and "无法识别的原因" in await resp.text()
    resp = await client.post("/console/interviews/iv-1/terminate", data={"csrf": csrf})
    assert resp.status == 400 and "请选择终止原因" in await resp.text()
    resp = await client.post("/console/interviews/nope/terminate", data={"csrf": csrf, "reason": "candidate_quit"})
    assert resp.status == 404
    assert (await interview(app, "iv-1")).status == "in_progress"


async def test_hr_see_and_act_on_own_and_shared_interviews_only(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "hr01")
    assert "李四" not in await (await client.get("/console/interviews")).text()
    assert (await client.get("/console/interviews/iv-2")).status == 404
    resp = await client.post("/console/interviews/iv-2/terminate", data={"csrf": csrf, "reason": "candidate_quit"})
    assert resp.status == 404
    assert (await interview(app, "iv-2")).status == "in_progress"

    iv2 = await interview(app, "iv-2")
    async with app[CORE].sessions() as session:
        session.add(
            InterviewShare(interview_id=iv2.id, person_key="wecom:hr01", shared_by="wecom:boss", created_at=clock.now())
        )
        await session.commit()
    assert "李四" in await (await client.get("/console")).text()
    assert (await client.get("/console/interviews/iv-2")).status == 200

    client.session.cookie_jar.clear()
    await signed_in(client, "boss")
    html = await (await client.get("/console")).text()
    assert "张三" in html and "李四" in html


# --- pages -------------------------------------------------------------------------------------


async def test_interviews_filter_search_and_pages(make_client: AppFactory, clock: FrozenClock) -> None:
    client, _ = await setup(make_client, clock)
    for n in range(3, 26):
        await started_interview(client, clock, f"iv-{n}", name=f"候选人{n:02d}", email=None, mobile=None)
    await signed_in(client, "boss")
    first = await (await client.get("/console/interviews")).text()
    assert "共 25 场" in first and "第 1/2 页" in first and "下一页" in first
    second = await (await client.get("/console/interviews", params={"page": "2"})).text()
    assert "第 2/2 页" in second and "上一页" in second
    found = await (await client.get("/console/interviews", params={"q": "李"})).text()
    assert "共 1 场" in found and "李四" in found
    assert "共 1 场" in await (await client.get("/console/interviews", params={"q": "iv-25"})).text()
    assert "共 0 场" in await (await client.get("/console/interviews", params={"status": "terminated"})).text()
    # Scheduled days (the events schedule every interview for tomorrow, Asia/Shanghai).
    tomorrow = (clock.now().astimezone(SHANGHAI) + timedelta(days=1)).date()
    days = {"from": tomorrow.isoformat(), "to": tomorrow.isoformat()}
    assert "共 25 场" in await (await client.get("/console/interviews", params=days)).text()
    days = {"from": (tomorrow + timedelta(days=1)).isoformat()}
    assert "共 0 场" in await (await client.get("/console/interviews", params=days)).text()
    for bad in ({"status": "nope"}, {"from": "2026-13-01"}, {"page": "x"}, {"from": "2026-03-10", "to": "2026-03-01"}):
        assert (await client.get("/console/interviews", params=bad)).status == 400, bad


async def test_detail_has_the_whole_history(make_client: AppFactory, clock: FrozenClock) -> None:
    client, _ = await setup(make_client, clock)
    csrf = await signed_in(client, "hr01")
    data = {"csrf": csrf, "reason": "system_failure", "from": "detail"}
    resp = await client.post("/console/interviews/iv-1/terminate", data=data, allow_redirects=False)
    assert resp.headers["Location"] == "/console/interviews/iv-1?done=recorded"  # no platform connected
    html = await (await client.get(resp.headers["Location"])).text()
    assert "平台上的面试没有被终止" in html
    for part in (
        "平台事件",
        "开始面试",
        "保存作答",
        "退出记录",
        "系统故障",
        "网页后台",
        "面试终止通知",
        "待办",
        "跟进候选人张三的面试",
    ):
        assert part in html, part
    assert "提醒" in html and "作答:2 题(本系统的记录)" in html


async def test_reschedule_asks_then_moves_the_interview(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "hr01")
    await client.post("/console/interviews/iv-1/terminate", data={"csrf": csrf, "reason": "candidate_quit"})
    when = (clock.now().astimezone(SHANGHAI) + timedelta(days=2)).replace(hour=15, minute=30, second=0, microsecond=0)
    raw = when.strftime("%Y-%m-%dT%H:%M")
    ask = await client.post("/console/interviews/iv-1/reschedule", data={"csrf": csrf, "when": raw})
    html = await ask.text()
    assert ask.status == 200 and "确认改期" in html and when.strftime("%Y-%m-%d %H:%M") in html
    assert (await interview(app, "iv-1")).status == "terminated"  # asking changes nothing
    done = await client.post(
        "/console/interviews/iv-1/reschedule", data={"csrf": csrf, "when": raw, "confirm": "1"}, allow_redirects=False
    )
    assert done.status == 303
    moved = await interview(app, "iv-1")
    assert moved.status == "scheduled" and moved.scheduled_at == when and moved.attempt == 2
    async with app[CORE].sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "interview.rescheduled"))).one()
    assert event.detail["source"] == "console" and event.actor == "wecom:hr01"
    past = (clock.now().astimezone(SHANGHAI) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    resp = await client.post("/console/interviews/iv-1/reschedule", data={"csrf": csrf, "when": past, "confirm": "1"})
    assert resp.status == 400 and "新的面试时间必须晚于现在" in await resp.text()
    resp = await client.post("/console/interviews/iv-1/reschedule", data={"csrf": csrf, "when": "tomorrow"})
    assert resp.status == 400


async def test_todos_are_mine_and_finished_from_the_page(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    for platform_id in ("iv-1", "iv-2"):
        await client.post(
            "/api/interviews/" + platform_id + "/terminate", json={"reason": "掉线"}, headers=admin_headers()
        )
    csrf = await signed_in(client, "hr01")
    html = await (await client.get("/console/todos")).text()
    assert "跟进候选人张三的面试" in html and "李四" not in html
    async with app[CORE].sessions() as session:
        todos = {t.assignee: t for t in (await session.exec(select(Todo))).all()}
    mine, theirs = todos["wecom:hr01"], todos["wecom:hr02"]
    assert (await client.post(f"/console/todos/{theirs.id}/done", data={"csrf": csrf})).status == 409
    resp = await client.post(f"/console/todos/{mine.id}/done", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert "没有未完成的待办" in await (await client.get("/console/todos")).text()
    async with app[CORE].sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "todo.done"))).one()
    assert event.detail == {"todo": mine.id, "source": "console"}


# --- getting a link --------------------------------------------------------------------------------


async def test_chat_sends_the_link_in_a_direct_chat_only(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    group = await ChatUser(app, "hr01", chat_id="g1", chat_type="group").says("后台")
    assert "/console/login" not in group and "单聊" in group
    direct = await ChatUser(app, "hr01").says("后台")
    assert "10 分钟内有效" in direct
    url = next(line for line in direct.splitlines() if "/console/login?token=" in line)
    token = url.split("token=", 1)[1]
    await sign_in(client, token)
    assert "张三" in await (await client.get("/console")).text()
    assert "/console/login" not in await ChatUser(app, "stranger").says("后台")  # not registered: no link


async def test_cli_prints_the_link_last(clean_db: str) -> None:
    engine = create_engine(clean_db)
    async with session_maker(engine)() as session:
        session.add(Person(platform="wecom", user_id="hr01", name="王小姐", role="hr", created_at=CLOCK_START))
        await session.commit()
    await engine.dispose()
    env = service_env(clean_db, BOT_PUBLIC_BASE_URL="https://hr.example.com/")
    code, out, err = await run_cli(env, "console-link", "--platform", "wecom", "--user-id", "hr01")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("https://hr.example.com/console/login?token=") and len(last.split("token=")[1]) >= 40
    code, out, err = await run_cli(env, "console-link", "--platform", "wecom", "--user-id", "nobody")
    assert code == 1 and "还没有登记" in err and "token=" not in out


# --- admin pages and 统计 -----------------------------------------------------------------------------

ADMIN_PAGES = ("/console/reasons", "/console/people", "/console/notices", "/console/system")


async def test_admin_pages_are_for_admins_only(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    for user_id in ("hr01", "boss"):
        client.session.cookie_jar.clear()
        csrf = await signed_in(client, user_id)
        nav = await (await client.get("/console")).text()
        assert "/console/reasons" not in nav and ("/console/stats" in nav) == (user_id == "boss")
        for path in ADMIN_PAGES:
            assert (await client.get(path)).status == 403, path
        data = {"csrf": csrf, "op": "add", "name": "新原因", "outcome": "未完成", "synonyms": "新词"}
        assert (await client.post("/console/reasons", data=data)).status == 403
        data = {"csrf": csrf, "op": "add", "platform": "wecom", "user_id": "x9", "name": "某人", "role": "admin"}
        assert (await client.post("/console/people", data=data)).status == 403
    async with app[CORE].sessions() as session:
        assert "新原因" not in [r.name for r in await repo.list_reasons(session)]
        assert await repo.get_person(session, platform="wecom", user_id="x9") is None
    client.session.cookie_jar.clear()
    await signed_in(client, "root")
    for path in ADMIN_PAGES:
        assert (await client.get(path)).status == 200, path


async def test_reasons_page_changes_what_chat_understands(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "root")
    data = {
        "csrf": csrf,
        "op": "add",
        "name": "设备被占用",
        "outcome": "需要重新面试",
        "synonyms": "电脑被占用,借不到电脑",
    }
    resp = await client.post("/console/reasons", data=data, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    html = await (await client.get("/console/reasons")).text()
    assert "设备被占用" in html and "借不到电脑" in html
    # What the service itself terminates with (超时未操作) offers no 停用; the others do.
    idle = html.split('id="reason-idle_timeout"')[1].split("</tr>")[0]
    quit_ = html.split('id="reason-candidate_quit"')[1].split("</tr>")[0]
    assert 'value="disable"' not in idle and "不能停用" in idle and 'value="disable"' in quit_
    reply = await ChatUser(app, "hr01").says("终止面试 张三 借不到电脑")
    assert "设备被占用" in reply and "确认" in reply
    # The same phrase twice is refused with the service's words, and nothing changes.
    clash = {"csrf": csrf, "op": "add", "name": "另一个", "outcome": "未完成", "synonyms": "借不到电脑"}
    resp = await client.post("/console/reasons", data=clash)
    assert resp.status == 409 and "借不到电脑" in await resp.text() and "无法区分" in await resp.text()
    async with app[CORE].sessions() as session:
        added = next(r for r in await repo.list_reasons(session) if r.name == "设备被占用")
        assert "另一个" not in [r.name for r in await repo.list_reasons(session, active_only=False)]
        events = (await session.exec(select(AuditEvent).where(AuditEvent.action == "reason.added"))).all()
    assert [e.detail.get("source") for e in events] == ["console"] and events[0].actor == "wecom:root"
    # Disabled: chat no longer takes it.
    resp = await client.post("/console/reasons", data={"csrf": csrf, "op": "disable", "code": added.code})
    assert resp.status == 200
    assert "设备被占用" not in await ChatUser(app, "hr01").says("终止面试 李四 借不到电脑")


async def test_people_page_adds_edits_imports_and_removes(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "root")
    data = {"csrf": csrf, "op": "add", "platform": "wecom", "user_id": "hr09", "name": "钱小姐", "role": "hr"}
    assert (await client.post("/console/people", data=data, allow_redirects=False)).status == 303
    assert "还没有登记" not in await ChatUser(app, "hr09").says("待办")  # chat knows them at once
    edit = {
        "csrf": csrf,
        "op": "edit",
        "platform": "wecom",
        "user_id": "hr09",
        "role": "manager",
        "email": "q@example.com",
    }
    assert (await client.post("/console/people", data=edit, allow_redirects=False)).status == 303
    bad = {**edit, "email": "not-an-email"}
    assert (await client.post("/console/people", data=bad)).status in (400, 409)
    async with app[CORE].sessions() as session:
        person = await repo.get_person(session, platform="wecom", user_id="hr09")
    assert person is not None and person.role == "manager" and person.email == "q@example.com"

    csv = "platform,user_id,name,role,mobile,email\nwecom,hr20,孙小姐,hr,,\nwecom,hr01,王小姐,manager,,\nqq,x,某,hr,,\n"
    form = FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", csv.encode(), filename="people.csv", content_type="text/csv")
    preview = await client.post("/console/people/import", data=form)
    html = await preview.text()
    assert preview.status == 200 and "导入预览" in html and "新增 1" in html and "修改 1" in html and "错误 1" in html
    async with app[CORE].sessions() as session:
        assert await repo.get_person(session, platform="wecom", user_id="hr20") is None  # a preview writes nothing
    fields = {k: v for k, v in hidden_fields(html.split('id="import-preview"')[1]).items()}
    applied = await client.post("/console/people/import", data=fields)
    assert applied.status == 200 and "新增 1 人,修改 1 人" in await applied.text()
    async with app[CORE].sessions() as session:
        assert (await repo.get_person(session, platform="wecom", user_id="hr20")) is not None
        assert (await repo.get_person(session, platform="wecom", user_id="hr01")).role == "manager"  # type: ignore[union-attr]

    remove = {"csrf": csrf, "op": "remove", "platform": "wecom", "user_id": "hr09"}
    assert (await client.post("/console/people", data=remove, allow_redirects=False)).status == 303
    myself = {"csrf": csrf, "op": "remove", "platform": "wecom", "user_id": "root"}
    assert (await client.post("/console/people", data=myself)).status == 409
    async with app[CORE].sessions() as session:
        assert await repo.get_person(session, platform="wecom", user_id="hr09") is None
        assert await repo.get_person(session, platform="wecom", user_id="root") is not None


async def test_notices_page_retries_a_dead_notice(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    dead = await dead_notice(app[CORE])
    csrf = await signed_in(client, "root")
    async with app[CORE].sessions() as session:  # a chat message given up on after its last try
        session.add(
            IntakeItem(
                source="dingtalk",
                key="d-1",
                order_key="hr01",
                payload={},
                status="failed",
                received_at=clock.now(),
                attempts=6,
                last_error="RuntimeError: boom",
            )
        )
        await session.commit()
    html = await (await client.get("/console/notices")).text()
    assert f"notice-{dead.id}" in html and "SMTP 550" in html and "重试" in html
    failed = html.split('id="messages-failed"')[1].split("</section>")[0]
    assert "处理失败的聊天消息(1)" in failed and "钉钉" in failed and "hr01" in failed
    assert "RuntimeError: boom" in failed
    resp = await client.post(f"/console/notices/{dead.id}/retry", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    again = await client.post(f"/console/notices/{dead.id}/retry", data={"csrf": csrf})
    assert again.status == 409  # no longer dead
    async with app[CORE].sessions() as session:
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "notice.retried"))).one()
    assert event.detail["source"] == "console"
    system = await (await client.get("/console/system")).text()
    assert "数据库" in system and ("SQLite" in system or "PostgreSQL" in system)
    # Every line in Chinese: the features by their Chinese names, why one is off, the send errors.
    features = system.split('id="features"')[1].split("</table>")[0]
    assert "调用面试平台" in features and "未设置 PLATFORM_API_BASE" in features and "邮件通知" in features
    assert "企业微信自建应用" in features and "微信客服" in features
    assert "WECOM_KF_ENABLED 未开启" in features
    readable = re.sub(
        r"<code>.*?</code>|<[^>]+>|\b[A-Z][A-Z0-9_]{2,}\b|SQLite|PostgreSQL", " ", system.split("<main>")[1]
    )
    assert not re.search(r"[a-z]{3,}", readable), re.findall(r"[A-Za-z_. ]{4,}", readable)
    assert "通知 #" in system and "失败,此渠道放弃" in system  # the failed attempt of the dead notice


async def test_stats_page_counts_and_downloads(make_client: AppFactory, clock: FrozenClock) -> None:
    client, _ = await setup(make_client, clock)
    for platform_id, reason in (("iv-1", "掉线"), ("iv-2", "候选人放弃")):
        resp = await client.post(
            f"/api/interviews/{platform_id}/terminate", json={"reason": reason}, headers=admin_headers()
        )
        assert resp.status == 200
    await signed_in(client, "boss")
    html = await (await client.get("/console/stats")).text()
    assert '<strong id="total">2</strong>' in html and "系统故障" in html and "候选人放弃" in html
    chart = await client.get("/console/stats/chart.png", params={"period": "week"})
    assert chart.status == 200 and (await chart.read()).startswith(b"\x89PNG")
    csv = await client.get("/console/stats/exits.csv", params={"period": "month"})
    body = await csv.read()
    assert (
        csv.status == 200 and body.startswith("\ufeff".encode()) and "attachment" in csv.headers["Content-Disposition"]
    )
    assert len(body.decode("utf-8-sig").strip().splitlines()) == 3
    assert (
        await client.get("/console/stats", params={"period": "custom", "from": "2026-03-10", "to": "2026-03-01"})
    ).status == 400
    assert (await client.get("/console/stats", params={"period": "year"})).status == 400
    by_owner = html.split('id="by-owner"')[1].split("</table>")[0]
    by_position = html.split('id="by-position"')[1].split("</table>")[0]
    assert "<th>负责 HR</th><th>退出数</th>" in by_owner and "王小姐" in by_owner and "赵先生" in by_owner
    assert "<th>岗位</th><th>退出数</th>" in by_position


async def test_stats_follow_the_chat_rule_managers_and_admins_only(make_client: AppFactory, clock: FrozenClock) -> None:
    """统计 in chat is for managers and admins; the console's 统计 page, chart and CSV are too."""
    client, app = await setup(make_client, clock)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "掉线"}, headers=admin_headers())
    assert resp.status == 200
    refused_in_chat = await ChatUser(app, "hr01").says("统计")
    assert "没有使用该命令的权限" in refused_in_chat and "系统故障" not in refused_in_chat
    assert "系统故障" in await ChatUser(app, "boss").says("统计")

    await signed_in(client, "hr01")
    nav = (await (await client.get("/console")).text()).split("</nav>")[0]
    assert "统计" not in nav and "/console/stats" not in nav
    for path in ("/console/stats", "/console/stats/chart.png", "/console/stats/exits.csv"):
        resp = await client.get(path, params={"period": "week"})
        text = await resp.text() if resp.content_type == "text/html" else ""
        assert resp.status == 403 and "经理和管理员" in text and "系统故障" not in text, path
    for user_id in ("boss", "root"):
        client.session.cookie_jar.clear()
        await signed_in(client, user_id)
        nav = (await (await client.get("/console")).text()).split("</nav>")[0]
        assert "统计" in nav
        page = await client.get("/console/stats")
        assert page.status == 200 and "系统故障" in await page.text()


async def test_two_presses_of_one_link_at_once_open_one_session(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await setup(make_client, clock)
    token = await login_token(app, "hr01")
    results = await asyncio.gather(
        *(console_auth.sign_in(app[CORE], token=token) for _ in range(4)), return_exceptions=True
    )
    opened = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, console_auth.LinkRefused)]
    assert len(opened) == 1 and len(refused) == 3, results
    async with app[CORE].sessions() as session:
        assert len((await session.exec(select(ConsoleSession))).all()) == 1


async def test_bad_input_gets_a_4xx_and_changes_nothing(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    csrf = await signed_in(client, "root")
    long_id = "x" * 5000
    gets = [
        "/console/interviews?page=-5",
        "/console/interviews?page=99999999999999999999999",
        "/console/interviews?from=0001-01-01",
        "/console/interviews?q=" + "%" * 500,
        f"/console/interviews/{long_id}",
        "/console/interviews/%00",
        "/console/stats?period=custom&from=2026-01-01&to=2030-01-01",
        "/console/stats/chart.png?period=nope",
        "/console/stats/exits.csv?from=bad&period=custom",
        "/console/static/../../settings.py",
        "/console/login?token=%00",
    ]
    for path in gets:
        resp = await client.get(path)
        assert resp.status < 500, (path, resp.status)
    posts: list[tuple[str, dict[str, str]]] = [
        (f"/console/interviews/{long_id}/terminate", {"reason": "candidate_quit"}),
        ("/console/interviews/iv-1/terminate", {"reason": "x" * 10000, "note": "\x00" * 600}),
        ("/console/interviews/iv-1/reschedule", {"when": "9999-12-31T23:59"}),
        ("/console/interviews/iv-1/reschedule", {"when": "\x00"}),
        ("/console/todos/99999999999999999999/done", {}),
        ("/console/todos/１２/done", {}),
        ("/console/notices/abc/retry", {}),
        ("/console/notices/123456/retry", {}),
        ("/console/reasons", {"op": "edit", "code": "nope", "name": "x"}),
        ("/console/reasons", {"op": "explode"}),
        ("/console/people", {"op": "edit", "platform": "wecom", "user_id": "nobody", "role": "hr"}),
        ("/console/people", {"op": "add", "platform": "qq", "user_id": "a", "name": "b", "role": "hr"}),
        ("/console/people/import", {"data": "!!!not base64!!!", "fingerprint": "x"}),
        ("/console/people/import", {}),
        ("/console/login", {"token": "t", "csrf": "c"}),
    ]
    for path, data in posts:
        resp = await client.post(path, data={"csrf": csrf, **data})
        assert 400 <= resp.status < 500, (path, resp.status, (await resp.text())[:300])
    assert (await interview(app, "iv-1")).status == "in_progress"
    async with app[CORE].sessions() as session:
        actions = {e.action for e in (await session.exec(select(AuditEvent))).all()}
    assert not {a for a in actions if a.startswith(("reason.", "person.", "notice.", "interview.term"))}


async def test_a_failed_save_shows_what_chat_shows(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client, app = await setup(make_client, clock, platform_api_base=str(fake_platform.server.make_url("")))
    fake_platform.save_status = 400  # refused: not retried
    chat = ChatUser(app, "boss")
    await chat.says("终止面试 李四 候选人放弃")
    said = await chat.says("确认")
    assert "未终止面试" in said
    csrf = await signed_in(client, "hr01")
    resp = await client.post("/console/interviews/iv-1/terminate", data={"csrf": csrf, "reason": "candidate_quit"})
    html = await resp.text()
    assert resp.status == 502
    assert said in html, (said, html[:2000])  # the service's refusal, word for word
    assert (await interview(app, "iv-1")).status == "in_progress"
    assert fake_platform.actions().count("terminate") == 0


async def test_with_a_platform_the_console_says_it_saved_and_terminated_there(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client, _ = await setup(make_client, clock, platform_api_base=str(fake_platform.server.make_url("")))
    csrf = await signed_in(client, "hr01")
    data = {"csrf": csrf, "reason": "system_failure", "from": "detail"}
    resp = await client.post("/console/interviews/iv-1/terminate", data=data, allow_redirects=False)
    assert resp.headers["Location"] == "/console/interviews/iv-1?done=terminated"
    assert fake_platform.actions() == ["save", "terminate"]
    html = await (await client.get(resp.headers["Location"])).text()
    assert "面试平台已保存作答并终止面试" in html and "作答:2 题(面试平台已保存并终止面试)" in html
    assert "只在本系统" not in html


def readable(html: str) -> str:
    """The text of a page's <main> as a person reads it (tags, and technical error details, left out)."""
    main = html.split("<main>")[1].split("</main>")[0]
    return re.sub(r"\s+", " ", re.sub(r"<code>.*?</code>|<[^>]+>", " ", main, flags=re.S))


async def test_detail_shows_how_to_reach_the_candidate_and_speaks_chinese(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock, "iv-7", name="孙七", mobile="138 0013 8000", email="sun7@example.com")
    old = (await interview(app, "iv-7")).scheduled_at
    assert old is not None
    hr = ChatUser(app, "hr01")
    await hr.says("终止面试 孙七 候选人放弃")
    await hr.says("确认")
    clock.advance(hours=2)  # the reminders due meanwhile find the interview ended
    await sweep_reminders(app[CORE])
    await hr.says("重新安排 孙七 后天下午3点")
    await hr.says("确认")
    new = (await interview(app, "iv-7")).scheduled_at
    assert new is not None and new != old

    await signed_in(client, "hr01")
    html = await (await client.get("/console/interviews/iv-7")).text()
    assert '<a href="tel:13800138000">138 0013 8000</a>' in html
    assert '<a href="mailto:sun7@example.com">sun7@example.com</a>' in html
    text = readable(html)
    # The reschedule asked for and done: old → new time, by their Chinese names.
    assert "发起改期" in text and "重新安排" in text
    assert f"{old.astimezone(SHANGHAI):%m-%d %H:%M} → {new.astimezone(SHANGHAI):%m-%d %H:%M}" in text
    assert "不再发送" in text  # a cancelled reminder says why, in Chinese
    leftover = re.sub(r"iv-7|sun7@example\.com|oss://\S+|Java|hr01", " ", text)  # ids, data, addresses
    assert not re.search(r"[a-z]{3,}", leftover), leftover

    # Out of scope: another HR sees neither the page nor the contact.
    client.session.cookie_jar.clear()
    await signed_in(client, "hr02")
    other = await client.get("/console/interviews/iv-7")
    assert other.status == 404 and "13800138000" not in await other.text()
    client.session.cookie_jar.clear()
    await signed_in(client, "boss")  # managers see everyone's
    assert 'href="tel:13800138000"' in await (await client.get("/console/interviews/iv-7")).text()


async def test_notices_say_whom_they_are_for_and_retry_only_where_a_channel_delivers(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    core = app[CORE]
    iv1 = await interview(app, "iv-1")
    for_zhang = await dead_notice(core)
    on_sms = await dead_notice(core)
    async with core.sessions() as session:
        for row, channel in ((for_zhang, "email"), (on_sms, "sms")):
            stored = await session.get(Notice, row.id)
            assert stored is not None
            stored.interview_id, stored.channel, stored.payload = iv1.id, channel, {"audience": "candidate"}
            session.add(stored)
        await session.commit()
    csrf = await signed_in(client, "root")
    html = await (await client.get("/console/notices")).text()
    email_row = html.split(f'id="notice-{for_zhang.id}"')[1].split("</tr>")[0]
    sms_row = html.split(f'id="notice-{on_sms.id}"')[1].split("</tr>")[0]
    assert '候选人 <a href="/console/interviews/iv-1">张三</a>' in email_row and "重试" in email_row
    # SMS is not configured here: no 重试, and why; a forged POST is refused and changes nothing.
    assert "张三" in sms_row and "重试" not in readable(f"<main>{sms_row}</main>").replace("不能重试", "")
    assert "短信" in sms_row and "现在不能发送" in sms_row
    resp = await client.post(f"/console/notices/{on_sms.id}/retry", data={"csrf": csrf})
    assert resp.status == 409 and "短信" in await resp.text() and "没有配置" in await resp.text()
    async with core.sessions() as session:
        assert (await session.get(Notice, on_sms.id)).status == "dead"  # type: ignore[union-attr]


async def test_forms_offer_what_a_person_picks(make_client: AppFactory, clock: FrozenClock) -> None:
    """超时未操作 is the idle sweep's reason, not a choice; a new person is HR unless changed;
    the pages without a session name all three chat apps."""
    client, _ = await setup(make_client, clock)
    welcome = readable(await (await client.get("/console/welcome")).text())
    assert "企业微信" in welcome and "钉钉" in welcome and "飞书" in welcome
    await signed_in(client, "hr01")
    for path in ("/console", "/console/interviews/iv-1"):
        form = (await (await client.get(path)).text()).split('name="reason"')[1].split("</select>")[0]
        assert "候选人放弃" in form and "其他" in form and "idle_timeout" not in form and "超时未操作" not in form
    client.session.cookie_jar.clear()
    await signed_in(client, "root")
    people_page = await (await client.get("/console/people")).text()
    add = people_page.split('id="person-new"')[1].split('name="role"')[1].split("</select>")[0]
    assert re.findall(r'<option value="(\w+)" selected>', add) == ["hr"]
