"""The managers' daily exit summary: its numbers, its recipients, once per day, the chart, the CLI."""

from __future__ import annotations

import base64
import os
from datetime import timedelta

from aiohttp.test_utils import TestClient

from bot import jobs
from bot.clock import FrozenClock
from bot.services.charts import render_exit_chart
from bot.services.summary import build_summary, send_daily_summary
from tests.conftest import NO_ENV_FILE, AppFactory, eventually
from tests.console import signed_in
from tests.fakes.smtp import SmtpServer
from tests.sched import DAY, add_people, at, core_of, exit_at, notices, send_event, subjects
from tests.serve import run_cli


async def seed_week(client: TestClient, clock: FrozenClock) -> None:
    n = 0
    for back in range(1, 8):  # one 系统故障 on each of the 7 days before
        n += 1
        await exit_at(client, clock, n, at(DAY - timedelta(days=back), 10), "系统故障")
    for _ in range(2):
        n += 1
        await exit_at(client, clock, n, at(DAY - timedelta(days=3), 11), "候选人放弃")
    for _ in range(3):  # today 系统故障 spikes: 3 against an average of 1
        n += 1
        await exit_at(client, clock, n, at(DAY, 9), "网络卡顿")
    await exit_at(client, clock, 99, at(DAY, 23, 59), "候选人放弃", hr="hr02")
    # Still in progress: one for 9 hours (stuck), one for 1 hour.
    clock.set(at(DAY, 9))
    await send_event(client, clock, "interview.started", "iv-stuck", name="赵六", email="zhao@example.com")
    clock.set(at(DAY, 17))
    await send_event(client, clock, "interview.started", "iv-fresh", name="钱七", email="qian@example.com")
    await add_people(
        client,
        ("wecom", "hr01", "王小姐", "hr", None),
        ("wecom", "hr02", "李先生", "hr", None),
        ("wecom", "mgr1", "周经理", "manager", None),  # reachable in WeCom
        ("dingtalk", "mgr2", "吴经理", "manager", "wu@example.com"),  # DingTalk not connected: email
        ("dingtalk", "mgr3", "郑经理", "manager", None),  # unreachable
    )


async def test_summary_numbers(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await seed_week(client, clock)
    clock.set(at(DAY, 18))
    data = await build_summary(core_of(client), day=DAY)
    assert data.total == 4
    assert round(data.week_average, 2) == round(9 / 7, 2)
    lines = {r.name: (r.count, round(r.average, 2), r.spike) for r in data.reasons}
    assert lines == {"系统故障": (3, 1.0, True), "候选人放弃": (1, round(2 / 7, 2), False)}
    assert data.followups == [{"owner": "王小姐", "count": 12}, {"owner": "李先生", "count": 1}]
    assert data.followups_total == 13
    assert data.stuck_total == 1 and [s["platform_id"] for s in data.stuck] == ["iv-stuck"]
    assert data.chart_days == [DAY - timedelta(days=d) for d in range(6, -1, -1)]
    assert data.chart_series["系统故障"] == [1, 1, 1, 1, 1, 1, 3]
    assert data.chart_series["候选人放弃"] == [0, 0, 0, 2, 0, 0, 1]


async def test_no_spike_without_three_days_of_history(make_client: AppFactory, clock: FrozenClock) -> None:
    """Day one of a deployment: 3 exits of one reason are not 异常偏高 (nothing to compare with)
    until 3 of the 7 days before had early exits; then the same day is flagged."""
    client = await make_client()
    core = core_of(client)
    for n in range(3):
        await exit_at(client, clock, n, at(DAY, 9 + n), "候选人放弃")
    clock.set(at(DAY, 18))
    first = await build_summary(core, day=DAY)
    assert (first.history_days, [(r.name, r.count, r.spike) for r in first.reasons]) == (0, [("候选人放弃", 3, False)])
    for n, back in enumerate((1, 2), start=10):
        await exit_at(client, clock, n, at(DAY - timedelta(days=back), 10), "系统故障")
    clock.set(at(DAY, 18))
    two_days = await build_summary(core, day=DAY)
    assert two_days.history_days == 2 and not any(r.spike for r in two_days.reasons)
    text = core.templates.render("notices/daily_summary.txt.j2", **two_days.context())
    assert "· 候选人放弃:3 场\n" in text and "⚠" not in text and "(日均" not in text
    assert "近7日只有 2 天有提前结束的面试,满 3 天后再与日均比较、标注异常偏高" in text

    await exit_at(client, clock, 20, at(DAY - timedelta(days=5), 10), "系统故障")
    clock.set(at(DAY, 18))
    judged = await build_summary(core, day=DAY)
    assert judged.history_days == 3
    assert {r.name: r.spike for r in judged.reasons} == {"候选人放弃": True, "系统故障": False}
    text = core.templates.render("notices/daily_summary.txt.j2", **judged.context())
    assert "今日提前结束 3 场(近7日日均 0.4 场)" in text
    assert "· 候选人放弃:3 场(日均 0,+3) ⚠ 异常偏高" in text and "只有" not in text
    assert "· 系统故障:0 场(日均 0.4,-0.4)\n" in text

    # The summary's 统计 link (tests/services/test_summary.py::test_chart_goes_to_the_robots_and_is_served)
    # opens those 7 days for a signed-in manager.
    await add_people(client, ("wecom", "boss", "陈经理", "manager", None))
    await signed_in(client, "boss")
    first_day = DAY - timedelta(days=6)
    page = await client.get(f"/console/stats?period=custom&from={first_day}&to={DAY}")
    html = await page.text()
    assert page.status == 200 and str(first_day) in html and "候选人放弃" in html


async def test_summary_goes_once_to_each_manager_without_contact_details(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    client = await make_client()
    core = core_of(client)
    core.staff_channels.add("wecom")
    await seed_week(client, clock)

    clock.set(at(DAY, 17, 59))
    assert await jobs.sweep_summary(core) == 0  # not yet its time
    clock.set(at(DAY, 18))
    assert await jobs.sweep_summary(core) == 2
    assert await jobs.sweep_summary(core) == 0
    again = await send_daily_summary(core, day=DAY)
    assert (again.sent, sorted(again.already), again.unreachable) == (
        [],
        ["dingtalk:mgr2", "wecom:mgr1"],
        ["dingtalk:mgr3"],
    )

    sent = sorted(await notices(core, kind="daily_summary"), key=lambda n: n.channel, reverse=True)
    assert [(n.channel, n.recipient, n.dedupe_key) for n in sent] == [
        ("wecom", "mgr1", f"summary:{DAY}:wecom:mgr1"),
        ("email", "wu@example.com", f"summary:{DAY}:dingtalk:mgr2"),
    ]
    body = sent[0].body
    assert body == sent[1].body
    assert f"{DAY} 面试退出日报" in body
    assert "今日提前结束 4 场(近7日日均 1.3 场)" in body
    assert "· 系统故障:3 场(日均 1,+2) ⚠ 异常偏高" in body
    assert "· 候选人放弃:1 场(日均 0.3,+0.7)\n" in body
    assert "只有" not in body and "网页后台统计" not in body  # a week of history; no BOT_PUBLIC_BASE_URL
    assert "待跟进待办 13 项" in body and "· 王小姐:12 项" in body and "· 李先生:1 项" in body
    assert "仍在进行超过 2 小时的面试 1 场" in body and "iv-stuck 赵六" in body and "iv-fresh" not in body
    assert "@example.com" not in body and "1390000" not in body and "13800001234" not in body

    async def mailed() -> bool:
        return f"【测试科技】{DAY} 面试退出日报" in subjects(smtp)

    await eventually(mailed)
    assert subjects(smtp).count(f"【测试科技】{DAY} 面试退出日报") == 1


async def test_chart_goes_to_the_robots_and_is_served(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client(
        wecom_robot_key="robot-key",
        wecom_api_base="http://127.0.0.1:9",  # nothing listens: the robot rows stay in the outbox
        dingtalk_robot_webhook="http://127.0.0.1:9/robot/send?access_token=t",
        public_base_url="https://bot.example.com/",
    )
    core = core_of(client)
    await exit_at(client, clock, 1, at(DAY, 10), "系统故障")
    clock.set(at(DAY, 18, 5))
    outcome = await send_daily_summary(core, day=DAY)
    assert sorted(outcome.sent) == ["robot:dingtalk_robot", "robot:wecom_robot"]

    rows = {(n.channel, n.payload.get("msgtype")): n for n in await notices(core, kind="daily_summary")}
    assert set(rows) == {("wecom_robot", "markdown"), ("wecom_robot", "image"), ("dingtalk_robot", "markdown")}
    png = base64.b64decode(rows["wecom_robot", "image"].payload["image_base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    markdown = rows["dingtalk_robot", "markdown"].body
    assert f"### {DAY} 面试退出日报" in markdown
    link = markdown.split("![近7日退出原因](", 1)[1].split(")", 1)[0]
    assert link.startswith("https://bot.example.com/charts/") and link.endswith(".png")
    first = DAY - timedelta(days=6)
    stats = f"https://bot.example.com/console/stats?period=custom&from={first}&to={DAY}"
    assert f"[网页后台统计]({stats})(需先登录)" in markdown
    # A first day: no history to compare with, so nothing is flagged and no average is shown.
    assert "- 系统故障:**1** 场\n" in markdown and "⚠" not in markdown and "(日均" not in markdown
    assert "近7日只有 0 天有提前结束的面试,满 3 天后再与日均比较、标注异常偏高" in markdown
    page = await client.get(stats.removeprefix("https://bot.example.com"), allow_redirects=False)
    assert (page.status, page.headers["Location"]) == (303, "/console/welcome")  # a console page: sign in first

    resp = await client.get(link.removeprefix("https://bot.example.com"))
    assert resp.status == 200 and resp.content_type == "image/png"
    assert (await resp.read()).startswith(b"\x89PNG")
    assert (await client.get("/charts/not-a-real-token-at-all.png")).status == 404
    assert (await client.get("/charts/x.png")).status == 404


def test_chart_renders_without_a_cjk_font() -> None:
    days = [DAY - timedelta(days=d) for d in range(6, -1, -1)]
    series = {"系统故障": [1, 0, 2, 0, 0, 1, 3], "候选人放弃": [0] * 7}
    png = render_exit_chart(days, series, codes={"系统故障": "system_failure"})
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert render_exit_chart(days, {"系统故障": [0] * 7}, codes={}).startswith(b"\x89PNG")


async def test_cli_summary_send(make_client: AppFactory, clock: FrozenClock, database_url: str) -> None:
    client = await make_client()
    await add_people(client, ("dingtalk", "mgr2", "吴经理", "manager", "wu@example.com"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SMTP_", "WECOM_", "DINGTALK_"))}
    env.update(NO_ENV_FILE)
    env["BOT_DATABASE_URL"] = database_url
    # Run without blocking this event loop: the app's own background work must be able to finish
    # a transaction it has begun, or the command would wait on SQLite's write lock.
    code, out, err = await run_cli(env, "summary", "send", "--date", DAY.isoformat())
    assert code == 0, err
    assert f"{DAY} 日报:已加入发件箱 1 份,此前已发送 0 份" in out
    _, out, _ = await run_cli(env, "summary", "send", "--date", DAY.isoformat())
    assert "已加入发件箱 0 份,此前已发送 1 份" in out
    assert [n.recipient for n in await notices(core_of(client), kind="daily_summary")] == ["wu@example.com"]
