"""The web console over HTTP: one-time links, sessions, CSRF, role scope and the interview pages.

The real app on the test database; what a browser does is in tests/test_console_browser.py.
"""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage import repo
from storage.models import AuditEvent, ConsoleLogin, ConsoleSession, ExitRecord, Interview, InterviewShare, Todo
from tests.chat import ChatUser, add_person
from tests.conftest import SHANGHAI, AppFactory, admin_headers, started_interview
from tests.console import hidden_fields, login_token, sign_in, signed_in
from tests.serve import run_cli, service_env


async def setup(make_client: AppFactory, clock: FrozenClock, **overrides: object) -> tuple[TestClient, web.Application]:
    client = await make_client(**overrides)
    app = client.server.app
    assert app is not None
    await started_interview(client, clock, "iv-1")
    await started_interview(client, clock, "iv-2", name="李四", hr=("wecom", "hr02"), email="li@example.com")
    for user_id, name, role in (("hr01", "王小姐", "hr"), ("hr02", "赵先生", "hr"), ("boss", "陈经理", "manager")):
        await add_person(app, user_id, name, role)
    await add_person(app, "root", "管理员甲", "admin")
    return client, app


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
    assert resp.status == 303 and resp.headers["Location"] == "/console?done=terminated"
    page = await (await client.get(resp.headers["Location"])).text()
    assert "已终止" in page and "候选人放弃" in page and "张三" in page

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
    assert resp.headers["Location"] == "/console/interviews/iv-1?done=terminated"
    html = await (await client.get(resp.headers["Location"])).text()
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
    assert "提醒" in html and "保存的作答:2 题" in html


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


async def test_cli_prints_the_link_last(clean_db: str, tmp_path: object) -> None:
    env = service_env(clean_db, BOT_PUBLIC_BASE_URL="https://hr.example.com/")
    code, out, err = await run_cli(
        env, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "hr"
    )
    assert code == 0, err
    code, out, err = await run_cli(env, "console-link", "--platform", "wecom", "--user-id", "hr01")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("https://hr.example.com/console/login?token=") and len(last.split("token=")[1]) >= 40
    code, out, err = await run_cli(env, "console-link", "--platform", "wecom", "--user-id", "nobody")
    assert code == 1 and "还没有登记" in err and "token=" not in out
