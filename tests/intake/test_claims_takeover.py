"""A restarted instance takes over what its earlier boot left at once; rows of another instance
only once its replica lease has expired (it may be alive until then). A candidate notice cut off mid-send
moves on to the next channel of its plan, and the HR owner is told in chat."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select

from bot.channels.wecom import WECOM
from bot.channels.wecom.crypto import CallbackCrypto
from bot.channels.wecom.parse import parse_app_xml
from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services.claims import CLAIM_FOR
from storage import repo
from storage.models import IntakeItem, Notice, NoticeAttempt
from tests.chat import add_person
from tests.conftest import AppFactory, eventually, replica_alive, started_interview
from tests.fakes.sms_providers import FakeSmsProviders, sms_settings
from tests.fakes.smtp import SmtpServer
from tests.fakes.wecom_api import AES_KEY, CORP_ID, TOKEN, FakeWeCom, WeComSide, text_xml, wecom_settings
from tests.interviews import terminate
from tests.notices import attempts, wait_status


async def test_a_restart_takes_over_its_own_rows_at_once_and_leaves_other_replicas_rows(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    chat = app[WECOM].chat
    assert chat is not None
    await chat.intake.worker.stop(5)
    # Taken in and acked, claimed for processing, then the process "dies" before finishing it.
    path, body = WeComSide().app_post(text_xml("hr01", "帮助", 8181), timestamp=int(clock.now().timestamp()))
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    envelope = parse_app_xml(
        CallbackCrypto(TOKEN, AES_KEY, CORP_ID).decrypt_xml(
            body, query["msg_signature"], query["timestamp"], query["nonce"]
        )
    )
    assert envelope is not None
    assert await chat.receive(envelope, source="app")
    now = clock.now()
    async with app[CORE].sessions() as session:
        [held] = await repo.claim_intake_and_commit(
            session, source="wecom", worker=app[CORE].worker_id, now=now, until=now + CLAIM_FOR, limit=10
        )
        assert held.status == "processing"
    async with app[CORE].sessions() as session:
        # Another replica, alive or not, is sending a reply under its lock.
        other = Notice(
            kind="reply",
            channel="wecom",
            recipient="hr01",
            body="另一个副本的回复",
            payload={"audience": "staff"},
            destination="wecom:user:hr01",
            status="sending",
            locked_until=now + timedelta(seconds=120),
            claimed_by="other-replica:8080/0f0f",
            next_attempt_at=now,
            created_at=now,
        )
        session.add(other)
        await session.commit()
    # ... and alive: its replica lease runs another minute.
    await replica_alive(app[CORE].sessions, "other-replica:8080/0f0f", now=now, until=now + timedelta(seconds=60))
    first_boot = app[CORE].worker_id
    await client.close()

    # The same instance starts again (same clock: no claim or lock has run out).
    client2 = await make_client(**wecom_settings(fake_wecom))
    app2 = client2.server.app
    assert app2 is not None
    assert app2[CORE].instance == app[CORE].instance and app2[CORE].worker_id != first_boot

    async def answered() -> bool:
        return len(fake_wecom.sent("message/send")) == 1

    await eventually(answered)
    assert "可用命令" in fake_wecom.sent("message/send")[0]["text"]["content"]
    async with app2[CORE].sessions() as session:
        taken = await session.get(IntakeItem, held.id)
        left = await session.get(Notice, other.id)
    assert taken is not None and taken.status == "done" and taken.claimed_by == app2[CORE].worker_id
    assert left is not None and left.status == "sending" and left.claimed_by == "other-replica:8080/0f0f"

    # The other replica stopped renewing its lease: its row is taken over once the lease has expired,
    # long before its own lock would (120 s).
    clock.advance(seconds=61)
    app2[CORE].wake_outbox()

    async def other_done() -> bool:
        async with app2[CORE].sessions() as session:
            row = await session.get(Notice, other.id)
        return row is not None and row.status == "sent"

    await eventually(other_done)
    assert fake_wecom.sent("message/send")[1]["text"]["content"] == "另一个副本的回复"


async def test_candidate_notice_cut_off_moves_on_and_the_hr_is_told_in_chat(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, sms_fake: FakeSmsProviders, smtp: SmtpServer
) -> None:
    settings = {**wecom_settings(fake_wecom), **sms_settings(sms_fake, "aliyun")}
    client = await make_client(**settings)
    await started_interview(client, clock)
    app = await terminate(client)
    sent = await wait_status(app, "sent")
    assert sent.channel == "sms" and len(sms_fake.sent) == 1

    # What a crash between the provider's answer and our commit leaves: the SMS attempt 'started',
    # the notice 'sending' under a lock that has not expired.
    async with app[CORE].sessions() as session:
        await session.exec(
            update(NoticeAttempt)
            .where(col(NoticeAttempt.notice_id) == sent.id)
            .values(result="started", provider_id=None, finished_at=None)
        )
        await session.exec(
            update(Notice)
            .where(col(Notice.id) == sent.id)
            .values(status="sending", provider_id=None, sent_at=None, locked_until=clock.now() + timedelta(minutes=2))
        )
        await session.commit()
    await client.close()

    client2 = await make_client(**settings)  # restarted at once: its own row is taken over
    app2 = client2.server.app
    assert app2 is not None
    notice = await wait_status(app2, "sent")
    assert len(sms_fake.sent) == 1  # never a second SMS
    assert notice.channel == "email" and len(smtp.messages) == 1
    assert [(a.channel, a.result) for a in await attempts(app2) if a.notice_id == sent.id] == [
        ("sms", "unknown"),
        ("email", "sent"),
    ]

    async def hr_told() -> bool:
        return any("发送时服务中断" in m.get("text", {}).get("content", "") for m in fake_wecom.sent("message/send"))

    await eventually(hr_told)
    [told] = [m for m in fake_wecom.sent("message/send") if "发送时服务中断" in m.get("text", {}).get("content", "")]
    assert told["touser"] == "hr01"
    text = told["text"]["content"]
    assert "候选人张三" in text and "短信" in text and "已改用邮件发送" in text

    async def recorded() -> bool:
        async with app2[CORE].sessions() as session:
            rows = (await session.exec(select(Notice).where(Notice.kind == "notice_cut_off"))).all()
        return [r.status for r in rows] == ["sent"]

    await eventually(recorded)
