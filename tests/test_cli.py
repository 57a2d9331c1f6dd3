"""The command line, run as a real subprocess against the test database."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from bot.clock import FrozenClock
from tests.conftest import CLOCK_START, AppFactory, admin_headers, started_interview


async def run_cli(database_url: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    env = {**os.environ, "BOT_DATABASE_URL": database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=45)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_people_add_list_and_report(clean_db: str) -> None:
    code, out, err = await run_cli(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "hr"
    )
    assert code == 0, err
    assert "已添加 wecom:hr01" in out
    code, out, _ = await run_cli(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "manager"
    )
    assert "已更新" in out
    code, out, _ = await run_cli(clean_db, "people", "list")
    assert "wecom:hr01\t王小姐\tmanager" in out
    code, _, err = await run_cli(
        clean_db, "people", "add", "--platform", "qq", "--user-id", "x", "--name", "y", "--role", "hr"
    )
    assert code == 2 and "invalid choice" in err

    first, last = CLOCK_START.date().replace(day=1).isoformat(), CLOCK_START.date().replace(day=28).isoformat()
    code, out, _ = await run_cli(clean_db, "report", "exits", "--from", first, "--to", last, "--format", "json")
    assert code == 0
    assert json.loads(out)["total"] == 0
    code, _, err = await run_cli(clean_db, "report", "exits", "--from", last, "--to", first)
    assert code == 2 and "结束日期不能早于开始日期" in err


async def test_console_chat_terminates_end_to_end(make_client: AppFactory, clock: FrozenClock, clean_db: str) -> None:
    client = await make_client()
    await started_interview(client, clock)
    code, _, err = await run_cli(
        clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王小姐", "--role", "hr"
    )
    assert code == 0, err
    code, out, err = await run_cli(
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


async def test_console_group_masks_contact_details(make_client: AppFactory, clock: FrozenClock, clean_db: str) -> None:
    client = await make_client()
    await started_interview(client, clock)
    await run_cli(clean_db, "people", "add", "--platform", "wecom", "--user-id", "hr01", "--name", "王", "--role", "hr")
    code, out, _ = await run_cli(clean_db, "chat", "--as", "wecom:hr01", "--group", stdin="查看 张三\n")
    assert code == 0
    assert "138****1234" in out and "13800001234" not in out
    code, _, err = await run_cli(clean_db, "chat", "--as", "hr01")
    assert code == 2 and "平台:用户ID" in err
