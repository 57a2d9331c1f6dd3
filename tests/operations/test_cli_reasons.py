"""``python -m bot reasons …`` and ``python -m bot people import|edit|remove``, run as real
subprocesses against the test database while the service runs: what another process changes is
what the service's chat matches on the next message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import AuditEvent, ExitReason, Notice, NoticeStatus, Person
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, started_interview
from tests.serve import run_cli_on

FIXTURE = Path(__file__).parents[1] / "fixtures" / "people_import.csv"


@pytest.mark.timeout(180)  # five CLI processes, each importing the whole service
async def test_reasons_cli_changes_what_the_running_service_matches(
    make_client: AppFactory, clock: FrozenClock, clean_db: str
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    hr = ChatUser(app, "hr01")
    assert "无法识别原因「接了别家offer」" in await hr.says("终止面试 张三 接了别家offer")

    code, out, err = await run_cli_on(
        clean_db,
        "reasons",
        "add",
        "--name",
        "已接受其他offer",
        "--outcome",
        "未完成",
        "--synonyms",
        "接了别家offer,拿到offer",
    )
    assert code == 0, err
    assert "已添加原因「已接受其他offer」" in out
    [prompt] = await hr.say("终止面试 张三 接了别家offer")  # the service process sees it at once
    assert prompt.kind == "confirm" and "已接受其他offer" in prompt.text
    await hr.says("取消")

    code, out, _ = await run_cli_on(clean_db, "reasons", "list")
    lines = out.splitlines()
    assert lines[0].startswith("1. 候选人放弃  [candidate_quit]  未完成  启用  内置")
    assert "已接受其他offer" in lines[-2] and lines[-1].strip() == "同义词:接了别家offer、拿到offer"
    async with app[CORE].sessions() as session:
        [added] = (await session.exec(select(AuditEvent).where(AuditEvent.action == "reason.added"))).all()
    assert (added.actor, added.detail["source"], added.detail["after"]["name"]) == ("cli", "cli", "已接受其他offer")


async def test_reasons_cli_edit_synonyms_and_order(make_client: AppFactory, clock: FrozenClock, clean_db: str) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    hr = ChatUser(app, "hr01")
    code, out, err = await run_cli_on(
        clean_db, "reasons", "edit", "unfamiliar", "--synonyms", "不会操作、找不到按钮", "--move", "-1"
    )
    assert code == 0, err
    code, out, _ = await run_cli_on(clean_db, "reasons", "list")
    assert out.splitlines()[2].startswith("2. 操作不熟悉")
    [prompt] = await hr.say("终止面试 张三 找不到按钮")
    assert "操作不熟悉" in prompt.text
    await hr.says("取消")
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("reason.")))).all()
    assert [(a.action, a.actor, a.detail["source"]) for a in rows] == [
        ("reason.updated", "cli", "cli"),
        ("reason.reordered", "cli", "cli"),
    ]


async def test_reasons_cli_disables_refuses_and_enables(
    make_client: AppFactory, clock: FrozenClock, clean_db: str
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    await add_person(app, "hr01", "王小姐", "hr")
    hr = ChatUser(app, "hr01")
    assert "操作不熟悉" in (await hr.say("终止面试 张三 不会操作"))[0].text
    await hr.says("取消")

    code, out, err = await run_cli_on(clean_db, "reasons", "disable", "unfamiliar")
    assert code == 0 and "已停用原因「操作不熟悉」" in out
    assert "无法识别原因「不会操作」" in await hr.says("终止面试 张三 不会操作")
    code, out, err = await run_cli_on(clean_db, "reasons", "edit", "unfamiliar", "--enable")
    assert code == 0, err
    assert "操作不熟悉" in (await hr.say("终止面试 张三 不会操作"))[0].text

    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(AuditEvent).where(col(AuditEvent.action).startswith("reason.")))).all()
    assert [(a.action, a.actor, a.detail["source"]) for a in rows] == [
        ("reason.disabled", "cli", "cli"),
        ("reason.enabled", "cli", "cli"),
    ]
    body = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert body["status"] == "in_progress"  # nothing was confirmed


async def test_reasons_cli_refusals_change_nothing(make_client: AppFactory, clean_db: str) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    code, _, err = await run_cli_on(clean_db, "reasons", "delete", "unfamiliar")
    assert code == 1 and "系统内置原因,不能删除" in err
    code, _, err = await run_cli_on(
        clean_db, "reasons", "add", "--name", "网络差", "--outcome", "未完成", "--synonyms", "网络"
    )
    assert code == 1 and "「网络」已经是原因「系统故障」的名称或同义词" in err
    code, _, err = await run_cli_on(clean_db, "reasons", "disable", "other")
    assert code == 1 and "是系统自动终止时使用的原因,不能停用" in err
    async with app[CORE].sessions() as session:
        assert (await session.exec(select(AuditEvent))).all() == []
        assert len((await session.exec(select(ExitReason).where(col(ExitReason.active).is_(True)))).all()) == 6


async def test_people_import_shows_the_preview_and_applies_with_yes(
    make_client: AppFactory, clock: FrozenClock, clean_db: str
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")

    code, out, _ = await run_cli_on(clean_db, "people", "import", str(FIXTURE), stdin="n\n")
    assert code == 1 and "未导入" in out
    assert out.splitlines()[0].endswith("新增 3 人,修改 1 人,不变 0 人,错误 6 行")
    assert "第 2 行 [修改] wecom:hr01 王小姐 HR" in out and "mobile: - → 13800000001" in out
    assert "第 5 行 [错误,跳过] qq:x1 某人 HR" in out and "未知平台「qq」" in out
    assert "第 10 行 [错误,跳过]" in out and "这一行有 3 列,表头有 6 列" in out
    async with app[CORE].sessions() as session:
        assert len((await session.exec(select(Person))).all()) == 1  # answered no: nothing imported

    code, out, err = await run_cli_on(clean_db, "people", "import", str(FIXTURE), "--yes")
    assert code == 0, err
    assert "已导入:新增 3 人,修改 1 人,不变 0 人,跳过 6 行" in out
    mgr = ChatUser(app, "mgr01")
    assert "今天退出统计" in await mgr.says("统计")  # the imported manager uses chat right away


async def test_people_edit_and_remove_on_the_command_line(
    make_client: AppFactory, clock: FrozenClock, clean_db: str
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "mgr01", "陈经理", "manager")
    mgr = ChatUser(app, "mgr01")
    assert "今天退出统计" in await mgr.says("统计")

    code, out, err = await run_cli_on(
        clean_db, "people", "edit", "--platform", "wecom", "--user-id", "mgr01", "--role", "hr"
    )
    assert code == 0 and "role: manager → hr" in out, err
    assert "没有使用该命令的权限" in await mgr.says("统计")
    code, out, err = await run_cli_on(clean_db, "people", "remove", "--platform", "wecom", "--user-id", "mgr01")
    assert code == 0 and "已移除 wecom:mgr01 陈经理" in out, err
    code, _, err = await run_cli_on(clean_db, "people", "remove", "--platform", "wecom", "--user-id", "mgr01")
    assert code == 1 and "没有找到人员" in err
    code, _, err = await run_cli_on(clean_db, "people", "import", "/nonexistent/people.csv")
    assert code == 2 and "无法读取" in err


async def test_notice_problems_retry_and_system_on_the_command_line(
    make_client: AppFactory, clock: FrozenClock, clean_db: str
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    core = app[CORE]
    now = clock.now()
    async with core.sessions() as session:
        notice = Notice(
            kind="terminated",
            channel="email",
            recipient="c@example.com",
            body="x",
            status=NoticeStatus.dead.value,
            attempts=3,
            next_attempt_at=now,
            created_at=now,
            last_error="SMTP unavailable",
        )
        session.add(notice)
        await session.commit()
        await session.refresh(notice)
    # Mail is not configured for these commands: no retry is offered, and none is made.
    code, out, err = await run_cli_on(clean_db, "notice", "problems")
    assert code == 0, err
    assert f"#{notice.id} 面试终止通知 → 邮件 c@example.com,已尝试 3 次,最近错误:SMTP unavailable(此渠道" in out
    code, _, err = await run_cli_on(clean_db, "notice", "retry", str(notice.id))
    assert code == 1, err
    # With SMTP configured it can be retried.
    mail = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "2525", "SMTP_FROM": "hr-bot@example.com"}
    code, out, err = await run_cli_on(clean_db, "notice", "problems", extra=mail)
    assert code == 0, err
    assert f"#{notice.id} 面试终止通知 → 邮件 c@example.com,已尝试 3 次,最近错误:SMTP unavailable(可重试)" in out
    code, out, err = await run_cli_on(clean_db, "notice", "retry", str(notice.id), extra=mail)
    assert code == 0 and f"通知 #{notice.id} 已放回发件箱(已尝试 3 次)" in out, err
    code, _, err = await run_cli_on(clean_db, "notice", "retry", str(notice.id), extra=mail)
    assert code == 1 and "只有未送达的通知可以重试" in err
    async with core.sessions() as session:
        row = await session.get(Notice, notice.id, populate_existing=True)
        audit = (await session.exec(select(AuditEvent).where(AuditEvent.action == "notice.retried"))).one()
    assert row is not None and (row.status, row.attempts) == ("pending", 3)
    assert (audit.actor, audit.detail["source"]) == ("cli", "cli")

    code, out, err = await run_cli_on(clean_db, "system")
    assert code == 0, err
    assert "版本 0.1.0,数据库 " + ("postgresql" if clean_db.startswith("postgresql") else "sqlite") in out
    assert "✗ SMS notices(SMS_PROVIDER is not set)" in out
    assert "发件箱积压:邮件 1" in out
