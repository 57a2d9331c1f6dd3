"""The console's services (退出原因, 人员, 统计, 通知, 系统) on the real app and database, with what chat
then does with their changes."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.channels import registry
from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services import console_admin, people, people_import, reasons, sharing, stats, termination, timeouts
from bot.services.context import Core
from storage.models import AuditEvent, ExitReason, IntakeItem, Notice, NoticeStatus, Person
from templates.labels import LABELS
from tests.chat import ChatUser, add_person
from tests.conftest import (
    CLOCK_START,
    SHANGHAI,
    AppFactory,
    admin_headers,
    event,
    make_settings,
    post_event,
    started_interview,
)
from tests.notices import dead_notice

FIXTURES = Path(__file__).parents[1] / "fixtures"


async def app_of(make_client: AppFactory, clock: FrozenClock) -> tuple[TestClient, web.Application]:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "root", "管理员", "admin")
    await add_person(app, "hr01", "王小姐", "hr")
    await add_person(app, "boss", "陈经理", "manager")
    return client, app


async def audits(core: Core, prefix: str) -> list[AuditEvent]:
    async with core.sessions() as session:
        stmt = select(AuditEvent).where(col(AuditEvent.action).startswith(prefix)).order_by(col(AuditEvent.id))
        return list((await session.exec(stmt)).all())


# --- 退出原因 -----------------------------------------------------------------------------------


async def test_a_new_reason_and_its_synonym_are_what_chat_matches_next(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await app_of(make_client, clock)
    core = app[CORE]
    await started_interview(client, clock)
    hr = ChatUser(app, "hr01")
    assert "无法识别原因「拿到别家offer」" in await hr.says("终止面试 张三 拿到别家offer")

    added = await reasons.add(
        core,
        name="已接受其他offer",
        outcome="未完成",
        synonyms=["拿到别家offer", " 接了offer "],
        actor="wecom:root",
        source="console",
    )
    assert added.code.startswith("custom_") and added.synonyms == ["拿到别家offer", "接了offer"]
    assert [r.reason.code for r in await reasons.list_all(core)][-1] == added.code  # after the others

    [prompt] = await hr.say("终止面试 张三 拿到别家offer")
    assert prompt.kind == "confirm" and "已接受其他offer" in prompt.text
    assert "已终止 张三 的面试" in await hr.says("确认")
    body = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert (body["exit"]["reason_code"], body["exit"]["reason"]) == (added.code, "已接受其他offer")
    assert body["candidate"]["pipeline_status"] == "未完成"

    [audit] = await audits(core, "reason.")
    assert (audit.action, audit.actor, audit.detail["source"]) == ("reason.added", "wecom:root", "console")
    assert audit.detail["after"]["synonyms"] == ["拿到别家offer", "接了offer"]


async def test_a_candidates_help_words_match_an_edited_synonym(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await app_of(make_client, clock)
    core = app[CORE]
    core.staff_channels.add("wecom")
    await started_interview(client, clock)
    await reasons.edit(core, code="unfamiliar", synonyms=["不会操作", "找不到按钮"], actor="cli", source="cli")
    payload = event(
        "interview.help_requested", data={"reason": "找不到按钮", "wants_exit": True}, occurred_at=clock.now()
    )
    assert (await post_event(client, clock, payload)).status == 200
    async with core.sessions() as session:
        prompt = (await session.exec(select(Notice).where(Notice.kind == "help_requested"))).one()
    assert "找不到按钮" in prompt.body
    assert "已按候选人请求终止 张三 的面试,原因:操作不熟悉" in await ChatUser(app, "hr01").says("确认终止")


async def test_reason_edits_are_checked_audited_and_seen_by_chat(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await app_of(make_client, clock)
    core = app[CORE]
    await started_interview(client, clock)
    hr = ChatUser(app, "hr01")

    with pytest.raises(reasons.ReasonConflict, match="「网络」已经是原因「系统故障」的名称或同义词"):
        await reasons.add(core, name="网络不好", outcome="未完成", synonyms=["网络"], actor="cli", source="cli")
    with pytest.raises(reasons.ReasonConflict, match="已有名为「系统故障」的原因"):
        await reasons.edit(core, code="unfamiliar", name="系统故障", actor="cli", source="cli")
    with pytest.raises(reasons.ReasonError, match="结果「已完成」不可用"):
        await reasons.add(core, name="新原因", outcome="已完成", actor="cli", source="cli")
    with pytest.raises(reasons.ReasonError, match="原因名称不能为空"):
        await reasons.add(core, name="  ", outcome="未完成", actor="cli", source="cli")
    with pytest.raises(reasons.ReasonNotFound):
        await reasons.edit(core, code="nope", name="x", actor="cli", source="cli")
    assert await audits(core, "reason.") == []  # refusals change nothing

    renamed = await reasons.edit(
        core, code="candidate_quit", name="候选人主动放弃", outcome="需要重新面试", actor="cli", source="cli"
    )
    assert (renamed.name, renamed.outcome) == ("候选人主动放弃", "需要重新面试")
    [prompt] = await hr.say("终止面试 张三 候选人主动放弃")
    assert "候选人主动放弃" in prompt.text
    await hr.says("取消")

    await reasons.edit(core, code="system_failure", active=False, actor="wecom:root", source="console")
    assert "无法识别原因「网络卡顿」" in await hr.says("终止面试 张三 网络卡顿")
    listed = await hr.says("终止面试 张三")
    assert "系统故障" not in listed and "候选人主动放弃" in listed
    await hr.says("取消")

    moved = await reasons.move(core, code="other", offset=-10, actor="cli", source="cli")
    assert moved[0].code == "other"
    listed = await hr.says("终止面试 张三")
    assert listed.splitlines()[1] == "1. 其他"
    await hr.says("取消")
    with pytest.raises(reasons.ReasonError, match="排序必须恰好包含每个原因一次"):
        await reasons.reorder(core, codes=["other"], actor="cli", source="cli")

    actions = [(a.action, a.detail["source"]) for a in await audits(core, "reason.")]
    assert actions == [("reason.updated", "cli"), ("reason.disabled", "console"), ("reason.reordered", "cli")]
    unchanged = await reasons.edit(core, code="other", name="其他", actor="cli", source="cli")
    assert unchanged.name == "其他" and len(await audits(core, "reason.")) == 3  # no change, no audit


async def test_delete_only_what_nothing_refers_to(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await app_of(make_client, clock)
    core = app[CORE]
    await started_interview(client, clock)
    with pytest.raises(reasons.ReasonConflict, match="系统内置原因,不能删除"):
        await reasons.delete(core, code="other", actor="cli", source="cli")
    used = await reasons.add(core, name="已接受其他offer", outcome="未完成", actor="cli", source="cli")
    spare = await reasons.add(core, name="临时原因", outcome="未完成", code="temp_reason", actor="cli", source="cli")
    with pytest.raises(reasons.ReasonConflict, match="原因代码「temp_reason」已存在"):
        await reasons.add(core, name="另一个", outcome="未完成", code="temp_reason", actor="cli", source="cli")
    await termination.terminate(
        core, platform_id="iv-1", reason_text="已接受其他offer", operator="wecom:hr01", source="chat"
    )
    await reasons.edit(core, code=used.code, active=False, actor="cli", source="cli")
    with pytest.raises(reasons.ReasonConflict, match="已被 1 条退出记录引用"):
        await reasons.delete(core, code=used.code, actor="cli", source="cli")
    with pytest.raises(reasons.ReasonConflict, match="仍在启用中,请先停用再删除"):
        await reasons.delete(core, code=spare.code, actor="cli", source="cli")
    await reasons.edit(core, code=spare.code, active=False, actor="cli", source="cli")
    await reasons.delete(core, code=spare.code, actor="wecom:root", source="console")
    rows = {r.reason.code: r for r in await reasons.list_all(core)}
    assert spare.code not in rows and rows[used.code].references == 1 and rows["other"].builtin
    assert not rows[used.code].deletable
    assert (await audits(core, "reason.deleted"))[0].detail["before"]["name"] == "临时原因"


async def test_reasons_the_service_terminates_with_stay_enabled(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await app_of(make_client, clock)
    core = app[CORE]
    for code in ("idle_timeout", "other"):
        with pytest.raises(reasons.ReasonConflict, match="是系统自动终止时使用的原因,不能停用"):
            await reasons.edit(core, code=code, active=False, actor="cli", source="cli")
    rows = {r.reason.code: r for r in await reasons.list_all(core)}
    assert (rows["other"].can_disable, rows["candidate_quit"].can_disable) == (False, True)
    # Renamed, the idle timeout still terminates with it.
    await reasons.edit(core, code="idle_timeout", name="长时间无操作", actor="cli", source="cli")
    await started_interview(client, clock)
    clock.advance(seconds=core.settings.idle_timeout_seconds + 60)
    await timeouts.sweep_idle(core)
    body = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert (body["status"], body["exit"]["reason"], body["exit"]["source"]) == ("terminated", "长时间无操作", "timeout")


async def test_the_last_enabled_reason_stays(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await app_of(make_client, clock)
    core = app[CORE]
    async with core.sessions() as session:  # as in a database where 其他 and 超时未操作 were retired by hand
        for row in (await session.exec(select(ExitReason))).all():
            row.active = row.code == "candidate_quit"
            session.add(row)
        await session.commit()
    with pytest.raises(reasons.ReasonError, match="至少要保留一个启用的原因"):
        await reasons.edit(core, code="candidate_quit", active=False, actor="cli", source="cli")


# --- 人员 ---------------------------------------------------------------------------------------


async def test_people_edit_contact_and_role_and_remove(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await app_of(make_client, clock)
    core = app[CORE]
    saved = await people.update(
        core,
        platform="wecom",
        user_id="hr01",
        mobile="13800000001",
        email="wang@example.com",
        role="manager",
        actor="wecom:root",
        source="console",
    )
    assert saved.changes == {
        "role": ["hr", "manager"],
        "mobile": [None, "13800000001"],
        "email": [None, "wang@example.com"],
    }
    cleared = await people.update(
        core, platform="wecom", user_id="hr01", email="", actor="wecom:root", source="console"
    )
    assert cleared.person.email is None and cleared.person.mobile == "13800000001"
    with pytest.raises(people.PeopleError, match="邮箱「wang-at-example」格式不对"):
        await people.update(core, platform="wecom", user_id="hr01", email="wang-at-example", actor="cli", source="cli")
    with pytest.raises(people.PeopleError, match="不能修改自己的权限"):
        await people.update(core, platform="wecom", user_id="root", role="hr", actor="wecom:root", source="console")
    with pytest.raises(people.PersonNotFound):
        await people.update(core, platform="wecom", user_id="ghost", role="hr", actor="cli", source="cli")
    with pytest.raises(people.PeopleError, match="未知平台「qq」"):
        await people.register(
            core,
            platform="qq",
            user_id="x",
            role="hr",
            name="某人",
            actor="cli",
            source="cli",
            platforms=registry.names(),
        )
    # The changed role is what chat checks from the next message on.
    assert "今天退出统计" in await ChatUser(app, "hr01").says("统计")
    assert people.scope_key(saved.person) is None
    assert await people.revoke(core, platform="wecom", user_id="hr01", actor="wecom:root", source="console")
    assert "你还没有登记" in await ChatUser(app, "hr01").says("进行中")
    changes = [(a.action, a.detail["source"]) for a in await audits(core, "person.")]
    assert changes == [("person.updated", "console"), ("person.updated", "console"), ("person.revoked", "console")]


async def test_csv_import_previews_then_applies_exactly_that(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await app_of(make_client, clock)
    core = app[CORE]
    data = (FIXTURES / "people_import.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    before = {p.key for p in await people.list_all(core)}

    shown = await people_import.preview(core, data, platforms=registry.names(), actor="cli")
    by_row = {r.row: r for r in shown.rows}
    assert {r.row: r.action.value for r in shown.rows} == {
        2: "change",
        3: "add",
        4: "add",
        5: "error",
        6: "error",
        7: "error",
        8: "error",
        9: "error",
        10: "error",
        11: "add",
    }
    assert by_row[2].changes == {"mobile": [None, "13800000001"], "email": [None, "wang@example.com"]}
    assert (by_row[3].role, by_row[4].role) == ("hr", "manager")  # HR, 经理 as people write them
    assert "未知平台「qq」" in by_row[5].errors[0]
    assert "新成员 hr03 需要姓名" in by_row[6].errors[0]
    assert "未知角色「boss」" in by_row[7].errors[0]
    assert len(by_row[8].errors) == 2 and "手机号「12ab」格式不对" in by_row[8].errors[0]
    assert "与第 2 行是同一个人" in by_row[9].errors[0]
    assert "这一行有 3 列,表头有 6 列" in by_row[10].errors[0]
    assert {p.key for p in await people.list_all(core)} == before  # a preview changes nothing

    result = await people_import.apply(
        core, data, platforms=registry.names(), fingerprint=shown.fingerprint, actor="wecom:root", source="console"
    )
    assert (result.added, result.changed, result.unchanged, result.skipped) == (3, 1, 0, 6)
    stored = {p.key: p for p in await people.list_all(core)}
    assert set(stored) == before | {"wecom:hr02", "wecom:mgr01", "dingtalk:dt01"}
    assert (stored["wecom:hr01"].mobile, stored["wecom:hr01"].role) == ("13800000001", "hr")
    assert stored["dingtalk:dt01"].email == "wu@example.com"
    assert len(await audits(core, "person.")) == 4

    again = await people_import.preview(core, data, platforms=registry.names(), actor="cli")
    assert again.counts == {"add": 0, "change": 0, "unchanged": 4, "error": 6}


async def test_csv_import_refuses_a_plan_that_changed_since_the_preview(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    _, app = await app_of(make_client, clock)
    core = app[CORE]
    data = "platform,user_id,name,role\nwecom,hr02,赵先生,hr\n".encode()  # no BOM, no contact columns
    shown = await people_import.preview(core, data, platforms=registry.names(), actor="cli")
    assert [r.action.value for r in shown.rows] == ["add"]
    await people.register(core, platform="wecom", user_id="hr02", role="manager", name="赵先生", actor="cli")
    with pytest.raises(people_import.ImportRefused, match="预览之后人员名单或文件已有变化"):
        await people_import.apply(
            core, data, platforms=registry.names(), fingerprint=shown.fingerprint, actor="cli", source="cli"
        )
    assert (await people.get(core, platform="wecom", user_id="hr02")).role == "manager"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "文件是空的"),
        ("平台,用户\nwecom,hr01\n".encode(), "表头缺少列:platform,user_id,role"),
        ("platform,user_id,name,role\nwecom,hr01,王,hr\n".encode("gbk"), "不是 UTF-8 编码"),
        (b"x" * (people_import.MAX_BYTES + 1), "文件太大"),
    ],
)
async def test_csv_files_that_cannot_be_read(
    make_client: AppFactory, clock: FrozenClock, data: bytes, message: str
) -> None:
    _, app = await app_of(make_client, clock)
    with pytest.raises(people_import.ImportRefused, match=message):
        await people_import.preview(app[CORE], data, platforms=registry.names(), actor="cli")


# --- 统计 ---------------------------------------------------------------------------------------


async def exits_over_days(client: TestClient, app: web.Application, clock: FrozenClock) -> None:
    """Five exits: iv-1..iv-3 of hr01 (iv-3 two days ago), iv-4 of hr02 shared with hr01, iv-5 of hr02."""
    core = app[CORE]
    await add_person(app, "hr02", "赵先生", "hr")
    plan = [
        ("iv-3", "hr01", "系统故障", 2, "=1+1"),
        ("iv-1", "hr01", "候选人放弃", 0, "候选人说家里有事"),
        ("iv-2", "hr01", "系统故障", 0, ""),
        ("iv-4", "hr02", "操作不熟悉", 0, ""),
        ("iv-5", "hr02", "候选人放弃", 0, ""),
    ]
    start = clock.now()
    for platform_id, hr, reason, days_ago, detail in plan:
        clock.set(start - timedelta(days=days_ago))
        await started_interview(client, clock, platform_id, hr=("wecom", hr))
        await termination.terminate(
            core, platform_id=platform_id, reason_text=reason, operator=f"wecom:{hr}", source="chat", detail=detail
        )
    clock.set(start)
    await sharing.share(
        core, platform="wecom", platform_id="iv-4", colleague="hr01", actor="wecom:boss", sharer="wecom:boss"
    )


async def test_stats_by_reason_owner_and_position_in_scope(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await app_of(make_client, clock)
    core = app[CORE]
    await exits_over_days(client, app, clock)
    today = CLOCK_START.astimezone(SHANGHAI).date()
    assert stats.period_range(core, "today") == (today, today)
    assert stats.period_range(core, "week") == (today - timedelta(days=today.weekday()), today)
    assert stats.period_range(core, "month") == (today.replace(day=1), today)
    with pytest.raises(stats.StatsError, match="结束日期不能早于开始日期"):
        stats.period_range(core, "custom", start=today, end=today - timedelta(days=1))
    with pytest.raises(stats.StatsError, match="最多 366 天"):
        stats.period_range(core, "custom", start=today - timedelta(days=400), end=today)

    everyone = await stats.exit_stats(core, start=today, end=today, hr_key=None)
    assert everyone.total == 4
    counts = {c.name: c.count for c in everyone.by_reason}
    assert (counts["候选人放弃"], counts["系统故障"], counts["操作不熟悉"], counts["其他"]) == (2, 1, 1, 0)
    assert [(c.name, c.count) for c in everyone.by_owner] == [("王小姐", 2), ("赵先生", 2)]
    assert [(c.name, c.count) for c in everyone.by_position] == [("Java后端工程师", 4)]

    hr01 = await people.get(core, platform="wecom", user_id="hr01")
    assert hr01 is not None and people.scope_key(hr01) == "wecom:hr01"
    mine = await stats.exit_stats(core, start=today - timedelta(days=6), end=today, hr_key=people.scope_key(hr01))
    assert mine.total == 4  # own three (one two days ago) and the shared one, not hr02's other
    assert {c.name: c.count for c in mine.by_reason}["系统故障"] == 2
    assert mine.chart_days[-1] == today and len(mine.chart_days) == 7
    assert mine.chart_series["系统故障"] == [0, 0, 0, 0, 1, 0, 1]
    png = await stats.chart_png(core, mine)
    assert png.startswith(b"\x89PNG")


async def test_csv_export_one_row_per_exit_with_bom(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await app_of(make_client, clock)
    core = app[CORE]
    await exits_over_days(client, app, clock)
    await reasons.edit(core, code="system_failure", outcome="未完成", actor="cli", source="cli")  # after the exits
    today = CLOCK_START.astimezone(SHANGHAI).date()
    data = await stats.exits_csv(core, start=today - timedelta(days=6), end=today, hr_key="wecom:hr01")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["时间", "候选人", "岗位", "原因", "结果", "操作人", "来源", "备注"]
    assert len(rows) == 5
    first = rows[1]
    local = (CLOCK_START - timedelta(days=2)).astimezone(SHANGHAI)
    assert first[0] == local.strftime("%Y-%m-%d %H:%M")
    # The outcome the exit set (需要重新面试), not the reason's outcome now; a formula is text.
    assert first[1:] == [
        "张三",
        "Java后端工程师",
        "系统故障",
        "需要重新面试",
        "王小姐(wecom:hr01)",
        "聊天命令",
        "'=1+1",
    ]
    assert [r[5] for r in rows[1:]].count("赵先生(wecom:hr02)") == 1  # the shared interview only
    everything = await stats.exits_csv(core, start=today, end=today, hr_key=None)
    assert len(everything.decode("utf-8-sig").strip().splitlines()) == 5


# --- 通知 and 系统 ------------------------------------------------------------------------------


async def test_retry_a_dead_notice_keeps_its_attempts(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await app_of(make_client, clock)
    core = app[CORE]
    dead = await dead_notice(core)
    unknown = await dead_notice(core, result="unknown")
    listed = await console_admin.problem_notices(core)
    assert [v.notice.id for v in listed["dead"]] == [unknown.id, dead.id]
    assert [a.error for a in listed["dead"][1].attempts] == ["SMTP 550"]
    assert (listed["dead"][1].retryable, listed["dead"][0].retryable) == (True, False)

    assert dead.id is not None and unknown.id is not None
    retried = await console_admin.retry_notice(core, notice_id=dead.id, actor="wecom:root", source="console")
    assert (retried.status, retried.attempts) == ("pending", 3)
    # The retried notice is the outbox worker's now (it may already be sending it), so a notice that
    # waits for a later attempt shows the refusal of anything not dead.
    waiting = await dead_notice(core, status=NoticeStatus.pending.value, due_in=timedelta(hours=1))
    assert waiting.id is not None
    with pytest.raises(console_admin.NoticeRetryError, match="当前状态为「等待发送」,只有未送达的通知可以重试"):
        await console_admin.retry_notice(core, notice_id=waiting.id, actor="wecom:root", source="console")
    with pytest.raises(console_admin.NoticeRetryError, match="可能已经送达"):
        await console_admin.retry_notice(core, notice_id=unknown.id, actor="wecom:root", source="console")
    with pytest.raises(console_admin.NoticeRetryError) as missing:
        await console_admin.retry_notice(core, notice_id=999999, actor="wecom:root", source="console")
    assert missing.value.http_status == 404
    [audit] = await audits(core, "notice.retried")
    assert (audit.actor, audit.detail["source"], audit.detail["attempts"]) == ("wecom:root", "console", 3)
    problems = await console_admin.problem_notices(core)
    assert waiting.id in [v.notice.id for v in problems["pending"]]
    assert dead.id not in [v.notice.id for v in problems["dead"]]


async def test_system_snapshot(make_client: AppFactory, clock: FrozenClock, database_url: str) -> None:
    _, app = await app_of(make_client, clock)
    core = app[CORE]
    await dead_notice(core)
    now = clock.now()
    async with core.sessions() as session:  # on channels with no sender here, so the outbox leaves them be
        for channel, status in (("sms", "pending"), ("sms", "pending"), ("kf", "sending"), ("sms", "sent")):
            session.add(
                Notice(
                    kind="terminated",
                    channel=channel,
                    recipient="13800001234",
                    body="x",
                    status=status,
                    next_attempt_at=now,
                    locked_until=now + timedelta(minutes=5),
                    created_at=now,
                )
            )
        await session.commit()
    features = registry.feature_status(core.settings)
    snap = await console_admin.system_snapshot(core, features=features)
    assert [(f.name, f.why_not) for f in snap.features] == features
    assert any(not f.enabled for f in snap.features)  # tests configure no WeCom app
    expected = {"kf": 1, "sms": 2}
    assert snap.outbox_backlog == expected
    assert snap.intake_backlog == 0
    assert [a.error for a in snap.last_errors] == ["SMTP 550"]
    assert snap.intake_errors == []
    now = clock.now()
    async with core.sessions() as session:  # of a chat source no worker runs here (no WeCom configured)
        for n, (source, status, error) in enumerate(
            (
                ("wecom", "received", "KeyError: x"),  # waiting for its retry
                ("wecom", "failed", "RuntimeError: boom"),  # given up on
                ("wecom", "done", None),
                ("platform", "failed", "ValueError: not an event"),  # not a chat message
            )
        ):
            session.add(
                IntakeItem(
                    source=source,
                    key=f"m{n}",
                    order_key="hr01",
                    payload={},
                    status=status,
                    received_at=now,
                    claimed_until=now + timedelta(hours=1) if status == "received" else None,
                    attempts=1,
                    last_error=error,
                )
            )
        await session.commit()
    snap = await console_admin.system_snapshot(core, features=features)
    assert snap.intake_backlog == 1  # the one waiting for its retry; a failed item is no backlog
    assert [n.last_error for n in snap.intake_errors] == ["RuntimeError: boom", "KeyError: x"]
    assert snap.outbox_backlog == expected
    assert [item.key for item in await console_admin.failed_messages(core)] == ["m1"]  # the 通知 page's
    assert snap.database == ("postgresql" if database_url.startswith("postgresql") else "sqlite")
    assert snap.version == "0.1.0"


async def test_people_added_by_the_service_can_use_chat(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await app_of(make_client, clock)
    await started_interview(client, clock)
    stranger = ChatUser(app, "hr09")
    assert "你还没有登记" in await stranger.says("进行中")
    await people.register(
        app[CORE],
        platform="wecom",
        user_id="hr09",
        role="manager",
        name="新同事",
        actor="wecom:root",
        source="console",
        platforms=registry.names(),
    )
    assert "张三" in await stranger.says("进行中")
    async with app[CORE].sessions() as session:
        person = (await session.exec(select(Person).where(Person.user_id == "hr09"))).one()
    assert person.name == "新同事"


async def test_two_admins_adding_the_same_reason_at_once_get_one(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await app_of(make_client, clock)
    core = app[CORE]
    results = await asyncio.gather(
        *(
            reasons.add(core, name="已接受其他offer", outcome="未完成", actor=f"wecom:admin{n}", source="console")
            for n in range(2)
        ),
        return_exceptions=True,
    )
    added = [r for r in results if isinstance(r, ExitReason)]
    refused = [r for r in results if isinstance(r, reasons.ReasonConflict)]
    assert (len(added), len(refused)) == (1, 1), results
    assert "已有名为「已接受其他offer」的原因" in refused[0].message
    assert [r.reason.name for r in await reasons.list_all(core)].count("已接受其他offer") == 1
    assert len(await audits(core, "reason.added")) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"wecom_kf_enabled": True, "dingtalk_mode": "stream", "feishu_mode": "ws", "sms_provider": "aliyun"},
        {"sms_provider": "aliyun", "sms_access_key_id": "k", "sms_access_key_secret": "s", "sms_sign_name": "n"},
    ],
)
def test_every_feature_on_the_system_page_reads_in_chinese(clean_db: str, overrides: dict[str, object]) -> None:
    """The 系统 page names each feature of the start-up summary and why it is off in Chinese; only
    the settings' own names (as typed in .env) stay as they are."""
    settings = make_settings(clean_db, **overrides)
    snapshot = [console_admin.Feature(name, why is None, why) for name, why in registry.feature_status(settings)]
    assert snapshot and any(not f.enabled for f in snapshot)
    for feature in snapshot:
        assert feature.title != feature.name and not re.search(r"[a-z]{3,}", feature.title), feature
        if feature.why_not:
            shown = re.sub(r"\b[A-Z][A-Z0-9_]{2,}\b", "", feature.why_shown)
            assert re.search(r"[\u4e00-\u9fff]", shown) and not re.search(r"[A-Za-z]{3,}", shown), feature
            assert feature.why_shown != LABELS["feature_why"]["other"], feature  # every known reason is read
