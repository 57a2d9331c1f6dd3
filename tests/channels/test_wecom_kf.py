"""微信客服 (kf): kf_msg_or_event → sync_msg from the stored cursor → link by mobile → answers and
candidate notices through send_msg within 48 h / 5 replies, falling back to SMS/email beyond."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import col, select

from bot.channels.wecom import WECOM
from bot.clock import FrozenClock
from bot.delivery import SendProblem, problem_of
from bot.keys import CORE, OUTBOX
from bot.services import candidate_chat
from storage.models import AuditEvent, Candidate, IntakeItem, KfConversation, KfCursor, Notice, NoticeAttempt, Todo
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.smtp import SmtpServer
from tests.fakes.wecom_api import FakeWeCom, WeComSide, kf_event_xml, wecom_settings
from tests.faults import Faults

KF = "wkTESTKF"
USER = "wmCANDIDATE1"


async def kf_client(make_client: AppFactory, clock: FrozenClock, fake: FakeWeCom) -> tuple[TestClient, web.Application]:
    client = await make_client(**wecom_settings(fake, wecom_kf_enabled=True))
    app = client.server.app
    assert app is not None
    await started_interview(client, clock)
    return client, app


async def customer_writes(client: TestClient, clock: FrozenClock, fake: FakeWeCom, *texts: str) -> None:
    for text in texts:
        fake.kf_customer_says(USER, text, KF)
    path, body = WeComSide().app_post(kf_event_xml("ENC_TOKEN_1", KF), timestamp=int(clock.now().timestamp()))
    resp = await client.post(path, data=body)
    assert resp.status == 200 and await resp.read() == b""


async def inbound_rows(app: web.Application) -> list[IntakeItem]:
    """The stored customer messages (the intake's items), oldest first."""
    async with app[CORE].sessions() as session:
        stmt = select(IntakeItem).where(IntakeItem.source == "wecom_kf").order_by(col(IntakeItem.id))
        return list((await session.exec(stmt)).all())


def replies(fake: FakeWeCom) -> list[str]:
    return [str(m["text"]["content"]) for m in fake.sent("kf/send_msg")]


async def wait_replies(fake: FakeWeCom, n: int) -> list[str]:
    async def arrived() -> bool:
        return len(fake.sent("kf/send_msg")) >= n

    await eventually(arrived)
    return replies(fake)


async def test_candidate_links_by_mobile_and_asks_for_help(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await kf_client(make_client, clock, fake_wecom)
    await customer_writes(client, clock, fake_wecom, "你好,我想问一下面试")
    [ask] = await wait_replies(fake_wecom, 1)
    assert "手机号" in ask
    sync = fake_wecom.sent("kf/sync_msg")[0]
    assert sync["token"] == "ENC_TOKEN_1" and sync["open_kfid"] == KF and "cursor" not in sync

    await customer_writes(client, clock, fake_wecom, "13900009999")  # not a candidate's number
    assert "没有找到" in (await wait_replies(fake_wecom, 2))[1]
    await customer_writes(client, clock, fake_wecom, "我的手机号是13800001234")
    linked = (await wait_replies(fake_wecom, 3))[2]
    assert "张三您好" in linked and "Java后端工程师" in linked and "进行中" in linked
    # The persisted cursor: each sync starts where the last one ended.
    assert [s.get("cursor") for s in fake_wecom.sent("kf/sync_msg")] == [None, "c1", "c2"]
    async with app[CORE].sessions() as session:
        candidate = (await session.exec(select(Candidate))).one()
        assert candidate.kf_contact == USER
        assert (await session.get(KfCursor, KF)) is not None

    await customer_writes(client, clock, fake_wecom, "求助:摄像头打不开")
    assert "已收到您的求助" in (await wait_replies(fake_wecom, 4))[3]
    async with app[CORE].sessions() as session:
        todos = (await session.exec(select(Todo))).all()
    assert any("摄像头打不开" in t.title for t in todos)
    sends = fake_wecom.sent("kf/send_msg")
    assert all(m["touser"] == USER and m["open_kfid"] == KF for m in sends)


async def test_help_reply_says_who_was_reached(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """No HR owner: the managers are told, and the candidate is told so; with no manager either,
    the candidate is not told that anybody was."""
    client = await make_client(**wecom_settings(fake_wecom, wecom_kf_enabled=True))
    app = client.server.app
    assert app is not None
    await started_interview(client, clock, hr=None)
    await customer_writes(client, clock, fake_wecom, "13800001234", "求助:摄像头打不开")
    nobody = (await wait_replies(fake_wecom, 2))[1]
    assert "没有可以联系的负责人" in nobody and "已通知" not in nobody
    async with app[CORE].sessions() as session:
        audited = (await session.exec(select(AuditEvent).where(AuditEvent.action == "help.unassigned"))).all()
    assert len(audited) == 1

    await add_person(app, "boss", "陈经理", "manager")
    await customer_writes(client, clock, fake_wecom, "求助:麦克风没有声音")
    told = (await wait_replies(fake_wecom, 3))[2]
    assert "已通知招聘负责人" in told and "HR" not in told
    async with app[CORE].sessions() as session:
        prompts = (await session.exec(select(Notice).where(Notice.kind == "help_requested"))).all()
    assert [n.recipient for n in prompts] == ["boss"] and "麦克风没有声音" in prompts[0].body


async def test_redelivered_event_and_paged_sync_handle_each_message_once(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    fake_wecom.kf_page = 1  # has_more on every page: the bot must keep pulling
    client, _ = await kf_client(make_client, clock, fake_wecom)
    await customer_writes(client, clock, fake_wecom, "在吗", "13800001234")
    await wait_replies(fake_wecom, 2)
    await customer_writes(client, clock, fake_wecom)  # WeCom repeats the event; nothing new

    async def synced_three_times() -> bool:
        return len(fake_wecom.sent("kf/sync_msg")) >= 3

    await eventually(synced_three_times)
    assert [s.get("cursor") for s in fake_wecom.sent("kf/sync_msg")] == [None, "c1", "c2"]
    assert len(replies(fake_wecom)) == 2


async def test_notices_go_by_kf_first_then_fall_back_after_five_replies(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, smtp: SmtpServer
) -> None:
    client, app = await kf_client(make_client, clock, fake_wecom)
    await customer_writes(client, clock, fake_wecom, "13800001234")
    await wait_replies(fake_wecom, 1)

    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200
    texts = await wait_replies(fake_wecom, 2)
    assert "结束本次AI面试" in texts[1] and smtp.messages == []

    async def terminated_notice() -> dict:
        detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
        [shown] = [n for n in detail["notices"] if n["kind"] == "terminated"]
        return shown

    async def recorded() -> bool:  # WeCom has the message; the outbox commits the result just after
        return [a["result"] for a in (await terminated_notice())["attempts"]] != ["started"]

    await eventually(recorded)
    shown = await terminated_notice()
    assert [(a["channel"], a["result"]) for a in shown["attempts"]] == [("kf", "sent")]
    assert shown["attempts"][0]["provider_id"] == f"notice-{shown['id']}-kf"

    # Use up the window's five answers, then a notice must go by email instead.
    async with app[CORE].sessions() as session:
        conv = (await session.exec(select(KfConversation))).one()
        conv.replies_in_window = 5
        await session.commit()
    await started_interview(client, clock, "iv-2")
    resp = await client.post("/api/interviews/iv-2/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200

    async def emailed() -> bool:
        async with app[CORE].sessions() as session:
            rows = (await session.exec(select(Notice).where(Notice.kind == "terminated"))).all()
        return len(smtp.messages) == 1 and all(n.status == "sent" for n in rows)

    app[OUTBOX].wake()
    await eventually(emailed)
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(NoticeAttempt).order_by(col(NoticeAttempt.id)))).all()
        second = (await session.exec(select(Notice).where(Notice.kind == "terminated").order_by(col(Notice.id)))).all()
    tail: list[Any] = [(a.channel, a.result) for a in rows if a.notice_id == second[1].id]
    assert tail == [("kf", "rejected"), ("email", "sent")]
    refused = next(a.error for a in rows if a.result == "rejected")
    assert problem_of(refused) == SendProblem.reply_quota, refused
    # An admin reading 查看 sees the cause in Chinese, not the operator's English detail.
    await add_person(app, "root", "管理员甲", "admin")
    shown = await ChatUser(app, "root").says("查看 iv-2")
    assert "失败,此渠道放弃 本轮已回复5条,需等候选人再次发消息" in shown and "WeCom kf" not in shown


async def test_kf_answers_stop_48_hours_after_the_last_message(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, smtp: SmtpServer
) -> None:
    client, _ = await kf_client(make_client, clock, fake_wecom)
    await customer_writes(client, clock, fake_wecom, "13800001234")
    await wait_replies(fake_wecom, 1)
    clock.advance(hours=49)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "候选人放弃"}, headers=admin_headers())
    assert resp.status == 200

    async def emailed() -> bool:
        return len(smtp.messages) == 1

    await eventually(emailed)
    assert len(replies(fake_wecom)) == 1


async def test_failed_sync_resumes_from_the_stored_cursor(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await kf_client(make_client, clock, fake_wecom)
    fake_wecom.fail_next("kf/sync_msg", 500)  # WeCom is down for the first pull
    await customer_writes(client, clock, fake_wecom, "你好")

    async def tried() -> bool:
        return len(fake_wecom.sent("kf/sync_msg")) == 1

    await eventually(tried)
    async with app[CORE].sessions() as session:
        assert await session.get(KfCursor, KF) is None  # nothing was taken in
    await customer_writes(client, clock, fake_wecom, "13800001234")
    texts = await wait_replies(fake_wecom, 2)
    assert "手机号" in texts[0] and "张三您好" in texts[1]
    assert [s.get("cursor") for s in fake_wecom.sent("kf/sync_msg")] == [None, None]


async def test_kf_event_is_acked_and_ignored_when_kf_is_off(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    await customer_writes(client, clock, fake_wecom, "13800001234")
    assert fake_wecom.sent("kf/sync_msg") == []
    app = client.server.app
    assert app is not None
    assert "kf" not in app[OUTBOX].senders


async def todos_and_prompts(app: web.Application) -> tuple[list[Todo], list[Notice]]:
    async with app[CORE].sessions() as session:
        todos = list((await session.exec(select(Todo))).all())
        prompts = list((await session.exec(select(Notice).where(Notice.kind == "help_requested"))).all())
    return todos, prompts


async def test_help_request_reaches_the_hr_owner_and_a_negation_opens_nothing(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await kf_client(make_client, clock, fake_wecom)
    await customer_writes(client, clock, fake_wecom, "13800001234", "不需要求助", "我可以退出吗?")
    texts = await wait_replies(fake_wecom, 3)
    # A negation and a question are answered with the interview's state; nothing is opened.
    assert all("AI面试状态:进行中" in t and "已收到" not in t for t in texts[1:]), texts
    assert await todos_and_prompts(app) == ([], [])

    await customer_writes(client, clock, fake_wecom, "我要求助 网络断了")
    assert "已收到您的求助,已通知负责HR" in (await wait_replies(fake_wecom, 4))[3]
    todos, prompts = await todos_and_prompts(app)
    assert [(t.assignee, t.title) for t in todos] == [("wecom:hr01", "候选人张三请求协助:网络断了")]
    assert [p.recipient for p in prompts] == ["hr01"] and "网络断了" in prompts[0].body

    # The same message processed again (its reply was lost to a crash) opens nothing new.
    async with app[CORE].sessions() as session:
        candidate = (await session.exec(select(Candidate))).one()
    assert candidate.id is not None
    key = f"kf:{fake_wecom.kf_messages[-1]['msgid']}"
    again = await candidate_chat.ask_for_help(
        app[CORE], candidate_id=candidate.id, key=key, reason="网络断了", wants_exit=False
    )
    assert again == "hr" and [len(x) for x in await todos_and_prompts(app)] == [1, 1]

    await customer_writes(client, clock, fake_wecom, "我不想面了")
    assert "已收到您的求助" in (await wait_replies(fake_wecom, 5))[4]
    todos, _ = await todos_and_prompts(app)
    assert todos[-1].title.startswith("候选人张三希望结束面试")


async def test_a_kf_message_is_stored_before_processing_and_a_failed_try_is_processed_again_once(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, faults: Faults
) -> None:
    client, app = await kf_client(make_client, clock, fake_wecom)
    await customer_writes(client, clock, fake_wecom, "13800001234")
    await wait_replies(fake_wecom, 1)
    # Opening the help request fails (the database refuses the HR's to-do) on the first try.
    await faults.install("todo")
    await faults.arm("todo")
    await customer_writes(client, clock, fake_wecom, "求助:摄像头打不开")

    async def failed_once() -> bool:
        rows = await inbound_rows(app)
        return len(rows) == 2 and rows[1].attempts == 1 and rows[1].status == "received"

    await eventually(failed_once, what="the help message failed once and waits for its retry")
    stored = await inbound_rows(app)
    assert stored[1].payload["msg"]["text"] == "求助:摄像头打不开" and stored[1].order_key == USER
    assert len(replies(fake_wecom)) == 1 and await todos_and_prompts(app) == ([], [])

    await faults.disarm("todo")
    clock.advance(minutes=10)  # past the retry's backoff
    assert "已收到您的求助,已通知负责HR" in (await wait_replies(fake_wecom, 2))[1]

    async def done() -> bool:
        return [r.status for r in await inbound_rows(app)] == ["done", "done"]

    await eventually(done)
    todos, prompts = await todos_and_prompts(app)
    assert len(todos) == 1 and len(prompts) == 1
    assert [r.attempts for r in await inbound_rows(app)] == [1, 2]
    assert len(replies(fake_wecom)) == 2


async def test_a_kf_message_stored_when_the_process_dies_is_processed_once_after_the_restart(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client, app = await kf_client(make_client, clock, fake_wecom)
    kf = app[WECOM].kf
    assert kf is not None
    kf.intake.worker.stopping()  # the process "dies" after storing, before processing
    fake_wecom.kf_customer_says(USER, "13800001234", KF)
    assert await kf.sync("ENC_TOKEN_1", KF) == 1
    [row] = await inbound_rows(app)
    assert row.status == "received" and row.attempts == 0 and replies(fake_wecom) == []
    await client.close()

    client2 = await make_client(**wecom_settings(fake_wecom, wecom_kf_enabled=True))
    app2 = client2.server.app
    assert app2 is not None
    assert "张三您好" in (await wait_replies(fake_wecom, 1))[0]
    # WeCom sends the event again and the sync is repeated from the start: nothing new.
    kf2 = app2[WECOM].kf
    assert kf2 is not None
    async with app2[CORE].sessions() as session:
        cursor = await session.get(KfCursor, KF)
        assert cursor is not None
        await session.delete(cursor)
        await session.commit()
    assert await kf2.sync("ENC_TOKEN_1", KF) == 0

    async def settled() -> bool:
        return [r.status for r in await inbound_rows(app2)] == ["done"]

    await eventually(settled)
    assert len(replies(fake_wecom)) == 1
    async with app2[CORE].sessions() as session:
        assert (await session.exec(select(Candidate))).one().kf_contact == USER


async def test_only_a_newer_customer_message_opens_the_reply_window_again(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    assert client.server.app is not None
    core = client.server.app[CORE]
    first = clock.now()
    await candidate_chat.customer_wrote(core, contact="wm-x", account="wk-1", sent_at=first)
    for _ in range(3):
        await candidate_chat.count_reply(core, contact="wm-x")
    # The same message processed again (a retry), or an older one processed late: the count stays.
    await candidate_chat.customer_wrote(core, contact="wm-x", account="wk-1", sent_at=first)
    await candidate_chat.customer_wrote(core, contact="wm-x", account="wk-1", sent_at=first - timedelta(minutes=5))
    window = await candidate_chat.reply_window(core, contact="wm-x")
    assert window is not None and (window.last_customer_msg_at, window.replies_in_window) == (first, 3)
    clock.advance(seconds=60)
    await candidate_chat.customer_wrote(core, contact="wm-x", account="wk-1", sent_at=clock.now())
    window = await candidate_chat.reply_window(core, contact="wm-x")
    assert window is not None and (window.last_customer_msg_at, window.replies_in_window) == (clock.now(), 0)
