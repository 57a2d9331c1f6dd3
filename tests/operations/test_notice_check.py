"""`python -m bot notice test`: a test notice goes through the running service's outbox, its result is shown."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from storage.db import create_engine, session_maker
from storage.models import Notice
from tests.fakes.smtp import SmtpServer
from tests.sched import mail_text, subjects
from tests.serve import run_cli, running_service, service_env


async def notices(database_url: str) -> list[Notice]:
    engine = create_engine(database_url)
    async with session_maker(engine)() as session:
        rows = list((await session.exec(select(Notice))).all())
    await engine.dispose()
    return rows


async def test_test_email_is_sent_by_the_running_service(clean_db: str, smtp: SmtpServer, tmp_path: Path) -> None:
    env = service_env(clean_db, smtp, BOT_COMPANY_NAME="测试科技", BOT_OUTBOX_POLL_SECONDS="0.1")
    async with running_service(env, tmp_path) as service:
        code, out, err = await run_cli(env, "notice", "test", "--to-email", "admin@example.com", "--wait", "30")
    assert code == 0, out + err
    assert "/healthz" not in service.output()  # no access log unless BOT_ACCESS_LOG is on
    assert "已加入发件箱(邮件 → admin@example.com)" in out
    assert "已送达服务商:邮件 → admin@example.com。请到收件方确认已收到。" in out
    assert subjects(smtp) == ["【测试科技】测试通知"]
    assert smtp.messages[0]["To"] == "admin@example.com"
    assert "用来确认邮件渠道可以正常送达" in mail_text(smtp, 0)


async def test_without_the_service_the_notice_waits_and_says_so(clean_db: str, smtp: SmtpServer) -> None:
    env = service_env(clean_db, smtp)
    code, _, err = await run_cli(env, "notice", "test", "--to-email", "admin@example.com", "--wait", "0.2")
    assert code == 1
    assert "0.2 秒内没有发出(状态 pending,已尝试 0 次)" in err
    assert "请确认服务(python -m bot serve)正在运行并使用同一个数据库" in err
    [row] = await notices(clean_db)
    assert (row.kind, row.status, row.recipient) == ("admin_test", "pending", "admin@example.com")
    assert smtp.messages == []


async def test_a_channel_that_is_off_or_a_bad_address_is_refused_and_nothing_queued(
    clean_db: str, smtp: SmtpServer
) -> None:
    no_smtp = service_env(clean_db)
    code, _, err = await run_cli(no_smtp, "notice", "test", "--to-email", "admin@example.com")
    assert (code, err.strip().splitlines()[-1]) == (2, "没有发送:邮件渠道没有启用:请设置 SMTP_HOST 和 SMTP_FROM")
    code, _, err = await run_cli(no_smtp, "notice", "test", "--to-mobile", "13800001234")
    assert (code, err.strip().splitlines()[-1]) == (2, "没有发送:短信渠道没有启用:SMS_PROVIDER is not set")
    code, _, err = await run_cli(service_env(clean_db, smtp), "notice", "test", "--to-email", "not-an-address")
    assert (code, err.strip().splitlines()[-1]) == (2, "没有发送:「not-an-address」不是有效的邮箱地址")
    code, _, err = await run_cli(no_smtp, "notice", "test")
    assert code == 2 and "one of the arguments --to-email --to-mobile is required" in err
    assert await notices(clean_db) == []
