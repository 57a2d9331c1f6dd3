"""The command line, run as a real subprocess against the test database."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path

from sqlmodel import select

from bot import cli, jobs
from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import TerminationJob
from tests.conftest import (
    CLOCK_START,
    PLATFORM_SECRET,
    SHANGHAI,
    AppFactory,
    admin_headers,
    eventually,
    started_interview,
)
from tests.fakes.platform import FakePlatform
from tests.serve import run_cli_on

CJK = re.compile(r"[\u4e00-\u9fff]")


async def test_people_add_list_and_report(clean_db: str) -> None:
    code, out, err = await run_cli_on(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "hr"
    )
    assert code == 0, err
    assert "已添加 wecom:hr01" in out
    code, out, _ = await run_cli_on(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "manager"
    )
    assert "已更新" in out
    code, out, _ = await run_cli_on(clean_db, "people", "list")
    assert "wecom:hr01\t王小姐\tmanager" in out
    code, _, err = await run_cli_on(
        clean_db, "people", "add", "--platform", "qq", "--user-id", "x", "--name", "y", "--role", "hr"
    )
    assert code == 2 and "invalid choice" in err

    first, last = CLOCK_START.date().replace(day=1).isoformat(), CLOCK_START.date().replace(day=28).isoformat()
    code, out, _ = await run_cli_on(clean_db, "report", "exits", "--from", first, "--to", last, "--format", "json")
    assert code == 0
    assert json.loads(out)["total"] == 0
    code, _, err = await run_cli_on(clean_db, "report", "exits", "--from", last, "--to", first)
    assert code == 2 and "结束日期不能早于开始日期" in err


async def test_console_chat_terminates_end_to_end(make_client: AppFactory, clock: FrozenClock, clean_db: str) -> None:
    client = await make_client()
    await started_interview(client, clock)
    code, _, err = await run_cli_on(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "hr"
    )
    assert code == 0, err
    code, out, err = await run_cli_on(
        clean_db, "chat", "--as", "wecom:hr01", stdin="终止面试 张三 候选人放弃\n确认\n进行中\n"
    )
    assert code == 0, err
    assert "【确认终止面试】" in out and "[确认终止] 输入「确认 #1」" in out
    assert "已终止 张三 的面试" in out
    assert "当前没有进行中的面试" in out
    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert detail["status"] == "terminated"
    assert detail["exit"]["operator"] == "wecom:hr01"
    assert detail["exit"]["source"] == "chat"


async def test_a_replicas_sweep_leaves_the_consoles_running_termination_alone(
    make_client: AppFactory, clock: FrozenClock, clean_db: str, fake_platform: FakePlatform
) -> None:
    """``python -m bot chat`` claims the termination job it runs; a serving replica's sweep (on the
    same host and port) must see a live process there, not an earlier boot of its own or a dead one."""
    assert fake_platform.server is not None
    base = str(fake_platform.server.make_url(""))
    client = await make_client(platform_api_base=base)
    assert client.server.app is not None
    core = client.server.app[CORE]
    await started_interview(client, clock)
    code, _, err = await run_cli_on(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "hr"
    )
    assert code == 0, err
    fake_platform.delay = 2.0  # the console waits this long for the platform's save
    console = asyncio.create_task(
        run_cli_on(
            clean_db,
            "chat",
            "--as",
            "wecom:hr01",
            stdin="终止面试 张三 候选人放弃\n确认\n",
            extra={"PLATFORM_API_BASE": base, "PLATFORM_WEBHOOK_SECRET": PLATFORM_SECRET, "BOT_PORT": "8080"},
        )
    )

    async def job_open() -> bool:
        async with core.sessions() as session:
            return bool((await session.exec(select(TerminationJob))).all())

    await eventually(job_open, timeout=30)
    assert await jobs.sweep_terminations(core) == 0  # its process is alive and working on it
    code, out, err = await console
    assert code == 0, err
    assert "已终止 张三 的面试" in out and "正在终止" not in out
    assert fake_platform.actions() == ["save", "terminate"]  # once each, by the console


async def test_console_group_masks_contact_details(make_client: AppFactory, clock: FrozenClock, clean_db: str) -> None:
    client = await make_client()
    await started_interview(client, clock)
    await run_cli_on(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王", "--role", "hr"
    )
    code, out, _ = await run_cli_on(clean_db, "chat", "--as", "wecom:hr01", "--group", stdin="查看 张三\n")
    assert code == 0
    assert "138****1234" in out and "13800001234" not in out
    code, _, err = await run_cli_on(clean_db, "chat", "--as", "hr01")
    assert code == 2 and "平台:用户ID" in err


async def test_commands_say_nothing_of_migrations_but_migrate_does(clean_db: str) -> None:
    code, out, err = await run_cli_on(clean_db, "people", "list")
    assert code == 0 and "还没有人员" in out
    assert "alembic" not in err and "schema is up to date" not in err, err
    code, _, err = await run_cli_on(clean_db, "migrate")
    assert code == 0 and "INFO storage.db: database schema is up to date" in err


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every runnable command of the parser and its parser, e.g. "people add", "report exits"."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(subcommands(child, f"{prefix}{name} ") or {f"{prefix}{name}": child})
    return found


async def test_help_is_chinese_and_the_readme_lists_every_command(clean_db: str) -> None:
    commands = subcommands(cli._parser())
    assert {"serve", "reasons add", "people edit", "people remove", "people import", "system"} <= set(commands)
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert [c for c in commands if f"python -m bot {c}" not in readme] == []
    undescribed = [
        f"{name} {action.dest}"
        for name, parser in commands.items()
        for action in parser._actions
        if not CJK.search(action.help or "")
    ]
    assert undescribed == []  # every option and argument of every command, -h too

    code, out, _ = await run_cli_on(clean_db, "--help")
    assert code == 0 and out.startswith("用法:python -m bot")
    assert "显示本帮助并退出" in out and "show this help" not in out and "options:" not in out
    assert all(f"    {name.split()[0]}" in out for name in commands), out
    code, out, _ = await run_cli_on(clean_db, "people", "add", "-h")
    assert code == 0 and "--name NAME           姓名" in out and "选项:" in out


async def test_report_exits_defaults_to_this_month_and_its_csv_has_no_total(
    make_client: AppFactory, clock: FrozenClock, clean_db: str
) -> None:
    client = await make_client()
    today = CLOCK_START.astimezone(SHANGHAI).date()
    for n, back in enumerate((0, today.day)):  # one exit this month, one on the last day of last month
        clock.set(CLOCK_START - timedelta(days=back))
        await started_interview(client, clock, f"iv-{n}")
        resp = await client.post(
            f"/api/interviews/iv-{n}/terminate", json={"reason": "候选人放弃"}, headers=admin_headers()
        )
        assert resp.status == 200, await resp.text()

    code, out, err = await run_cli_on(clean_db, "report", "exits", "--to", today.isoformat(), "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["reason", "count"] and "total" not in out and "合计" not in out
    counts = {name: int(count) for name, count in rows[1:]}
    assert counts["候选人放弃"] == 1 and sum(counts.values()) == 1  # a sum over the column is the total

    code, out, _ = await run_cli_on(clean_db, "report", "exits", "--to", today.isoformat(), "--format", "json")
    shown = json.loads(out)
    assert (shown["from"], shown["to"], shown["total"]) == (today.replace(day=1).isoformat(), today.isoformat(), 1)
    code, out, _ = await run_cli_on(clean_db, "report", "exits", "--format", "json")  # the real today: its month
    start, end = (date.fromisoformat(json.loads(out)[k]) for k in ("from", "to"))
    assert code == 0 and start.day == 1 and (start.year, start.month) == (end.year, end.month)
    code, out, _ = await run_cli_on(clean_db, "report", "exits", "--to", today.isoformat())
    assert "合计" in out  # the table keeps its total line
