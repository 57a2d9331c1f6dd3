"""Candidate notices by SMS through the real Aliyun and Tencent SDKs against a loopback fake that
checks their signatures; throttling, fallback to email, dead letters and idempotency on restart."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.clock import FrozenClock
from bot.keys import CORE, OUTBOX
from storage.models import AuditEvent, Notice, NoticeAttempt, Todo
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.sms_providers import SIGN_NAME, TEMPLATES, FakeSmsProviders, sms_settings
from tests.fakes.smtp import SmtpServer, free_port
from tests.interviews import terminate
from tests.notices import attempts, the_notice, wait_status


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_terminated_notice_goes_by_sms_first(
    make_client: AppFactory, clock: FrozenClock, sms_fake: FakeSmsProviders, smtp: SmtpServer, provider: str
) -> None:
    client = await make_client(**sms_settings(sms_fake, provider))
    await started_interview(client, clock)
    app = await terminate(client)
    notice = await wait_status(app, "sent")

    assert sms_fake.bad_signatures == []
    assert len(sms_fake.sent) == 1
    sms = sms_fake.sent[0]
    assert sms.template == "SMS_TERM" and sms.sign_name == SIGN_NAME
    assert sms.idem_key == f"notice-{notice.id}-sms"
    if provider == "aliyun":
        assert sms.phone == "13800001234"
        assert sms.params == {"candidate_name": "张三", "reason": "候选人放弃", "company": "测试科技"}
    else:
        assert sms.phone == "+8613800001234"
        assert sms.params == ["张三", "候选人放弃", "测试科技"]
    assert notice.channel == "sms" and notice.provider_id == sms.provider_id
    assert smtp.messages == []  # email is the fallback, not a second copy

    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    [shown] = [n for n in detail["notices"] if n["kind"] == "terminated"]
    assert [(a["channel"], a["result"], a["provider_id"]) for a in shown["attempts"]] == [
        ("sms", "sent", sms.provider_id)
    ]


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
async def test_provider_throttling_is_retried_not_dropped(
    make_client: AppFactory, clock: FrozenClock, sms_fake: FakeSmsProviders, provider: str
) -> None:
    sms_fake.answer_next("throttle")
    client = await make_client(**sms_settings(sms_fake, provider))
    await started_interview(client, clock)
    app = await terminate(client)

    async def throttled() -> bool:
        return (await the_notice(app)).attempts == 1

    await eventually(throttled)
    notice = await the_notice(app)
    assert notice.status == "pending" and notice.channel == "sms"
    assert "throttled" in (notice.last_error or "")
    assert (notice.next_attempt_at - clock.now()).total_seconds() == pytest.approx(60, abs=1)

    clock.advance(seconds=61)
    app[OUTBOX].wake()
    notice = await wait_status(app, "sent")
    assert notice.channel == "sms" and len(sms_fake.sent) == 1
    assert [a.result for a in await attempts(app)] == ["failed", "sent"]
    assert sms_fake.bad_signatures == []


async def test_rejected_sms_falls_back_to_email(
    make_client: AppFactory, clock: FrozenClock, sms_fake: FakeSmsProviders, smtp: SmtpServer
) -> None:
    sms_fake.answer_next("reject")
    client = await make_client(**sms_settings(sms_fake, "tencent"))
    await started_interview(client, clock)
    app = await terminate(client)
    notice = await wait_status(app, "sent")

    assert notice.channel == "email" and notice.recipient == "zhangsan@example.com"
    assert len(smtp.messages) == 1 and sms_fake.sent == []
    rows = await attempts(app)
    assert [(a.channel, a.result) for a in rows] == [("sms", "rejected"), ("email", "sent")]
    assert "IncorrectPhoneNumber" in (rows[0].error or "")
    async with app[CORE].sessions() as session:
        fallbacks = (await session.exec(select(AuditEvent).where(AuditEvent.action == "notice.fallback"))).all()
    assert [e.detail["to"] for e in fallbacks] == ["email"]

    # 查看 张三 lists each attempt on its own line.
    await add_person(app, "hr01", "王HR", "hr")
    text = await ChatUser(app, "hr01").says("查看 张三")
    assert "通知:面试终止通知 · 邮件 · 已送出" in text
    assert any(" 短信 失败,此渠道放弃" in line for line in text.splitlines())
    assert any(" 邮件 已送出" in line for line in text.splitlines())


async def test_every_channel_failing_goes_dead_with_hr_todo(
    make_client: AppFactory, clock: FrozenClock, sms_fake: FakeSmsProviders
) -> None:
    sms_fake.answer_next("reject")
    client = await make_client(smtp_port=free_port(), **sms_settings(sms_fake, "aliyun"))  # SMTP is down
    await started_interview(client, clock)
    app = await terminate(client)
    for n in (1, 2, 3):

        async def tried(n: int = n) -> bool:
            notice = await the_notice(app)
            return notice.channel == "email" and (notice.attempts >= n or notice.status == "dead")

        await eventually(tried)
        clock.advance(hours=2)
        app[OUTBOX].wake()
    notice = await wait_status(app, "dead")
    assert notice.channel == "email"
    assert [(a.channel, a.result) for a in await attempts(app)] == [
        ("sms", "rejected"),
        ("email", "failed"),
        ("email", "failed"),
        ("email", "rejected"),
    ]
    async with app[CORE].sessions() as session:
        todos = (await session.exec(select(Todo))).all()
    assert "联系候选人张三:通知未送达" in [t.title for t in todos]


async def test_crash_after_send_does_not_resend_on_that_channel(
    make_client: AppFactory, clock: FrozenClock, sms_fake: FakeSmsProviders, smtp: SmtpServer
) -> None:
    client = await make_client(**sms_settings(sms_fake, "aliyun"))
    await started_interview(client, clock)
    app = await terminate(client)
    sent = await wait_status(app, "sent")
    assert len(sms_fake.sent) == 1

    # Put back exactly what a crash between the provider's answer and our commit leaves behind:
    # the attempt committed as 'started', the notice still 'sending' under a lock (not yet expired,
    # so this process leaves it alone until it stops).
    async with app[CORE].sessions() as session:
        await session.exec(update(NoticeAttempt).values(result="started", provider_id=None, finished_at=None))
        await session.exec(
            update(Notice)
            .where(col(Notice.id) == sent.id)
            .values(status="sending", provider_id=None, sent_at=None, locked_until=clock.now())
        )
        await session.commit()
    await client.close()

    clock.advance(minutes=5)  # the crashed process's lock has expired
    client2 = await make_client(**sms_settings(sms_fake, "aliyun"))
    app2 = client2.server.app
    assert app2 is not None
    notice = await wait_status(app2, "sent")
    assert len(sms_fake.sent) == 1  # never a second SMS of the same notice
    assert notice.channel == "email" and len(smtp.messages) == 1
    assert [(a.channel, a.result) for a in await attempts(app2)] == [("sms", "unknown"), ("email", "sent")]


async def test_unmapped_notice_kind_disables_sms_loudly(
    make_client: AppFactory,
    clock: FrozenClock,
    sms_fake: FakeSmsProviders,
    smtp: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    partial = {k: v for k, v in TEMPLATES.items() if k != "idle_warning"}
    caplog.set_level(logging.WARNING)
    client = await make_client(**sms_settings(sms_fake, "aliyun", sms_templates=json.dumps(partial)))
    assert any("SMS" in r.message and "idle_warning" in r.message for r in caplog.records if r.levelname == "WARNING")
    await started_interview(client, clock)
    app = await terminate(client)
    notice = await wait_status(app, "sent")
    assert notice.channel == "email" and notice.payload["plan"] == [["email", "zhangsan@example.com"]]
    assert sms_fake.requests == 0


async def test_malformed_sms_templates_do_not_stop_the_service(
    make_client: AppFactory, sms_fake: FakeSmsProviders, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = await make_client(**sms_settings(sms_fake, "tencent", sms_templates="{not json"))
    assert (await client.get("/healthz")).status == 200
    assert any("SMS_TEMPLATES is not valid" in r.message for r in caplog.records)
    assert "sms" not in client.server.app[OUTBOX].senders


async def test_notice_queued_for_sms_moves_on_when_sms_is_switched_off(
    make_client: AppFactory, clock: FrozenClock, sms_fake: FakeSmsProviders, smtp: SmtpServer
) -> None:
    # Queued for SMS while SMS was on; the provider was unreachable before the service stopped.
    down = sms_settings(sms_fake, "aliyun", sms_endpoint=f"http://127.0.0.1:{free_port()}", outbox_max_attempts=8)
    client = await make_client(**down)
    await started_interview(client, clock)
    app = await terminate(client)

    async def failed_once() -> bool:
        return (await the_notice(app)).attempts == 1

    await eventually(failed_once)
    assert (await the_notice(app)).channel == "sms"
    await client.close()

    clock.advance(hours=2)
    client2 = await make_client()  # restarted without SMS settings: no SMS sender here
    app2 = client2.server.app
    assert app2 is not None
    notice = await wait_status(app2, "sent")
    assert notice.channel == "email" and len(smtp.messages) == 1 and sms_fake.requests == 0
    assert [(a.channel, a.result) for a in await attempts(app2)] == [("sms", "failed"), ("email", "sent")]
    async with app2[CORE].sessions() as session:
        fallbacks = (await session.exec(select(AuditEvent).where(AuditEvent.action == "notice.fallback"))).all()
    assert [e.detail["error"] for e in fallbacks] == ["sms: channel not enabled"]
