"""飞书招聘 write-back end to end: the real app and database, an exit recorded through the admin API,
and a loopback fake of the Feishu open platform's hire-v1 endpoints, itself checked with lark-oapi's
hire v1 client (which sends the same bodies as ours)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.channels.feishu.api import FeishuApi
from bot.channels.feishu.hire import HireApi, HireSender
from bot.clock import FrozenClock
from bot.keys import CORE
from bot.outbox import SendError
from bot.services import ats
from storage.models import AtsAction, Notice, NoticeAttempt, ReasonCode
from tests.chat import add_person
from tests.conftest import AppFactory, admin_headers, event, eventually, post_event, started_interview
from tests.console import signed_in
from tests.fakes.feishu_api import APP_ID, APP_SECRET
from tests.fakes.feishu_hire import SCOPE_APPLICATION, FakeFeishuHire

APPLICATION = "6989202908470446380"
EXTERNAL_APPLICATION = "6960663240925956437"
GAVE_UP = "6891560630172518671"  # a child reason of the fake's 候选人未参加面试 (type 22)
STAGE = "6960663240925956573"
ATS = {"system": "feishu_hire", "application_id": APPLICATION, "external_application_id": EXTERNAL_APPLICATION}


@pytest.fixture
async def fake() -> AsyncIterator[FakeFeishuHire]:
    fake = FakeFeishuHire()
    await fake.start()
    fake.applications[APPLICATION] = {"stage_id": "6960663240925956500", "termination": None}
    fake.external_applications.add(EXTERNAL_APPLICATION)
    yield fake
    await fake.close()


def lark_client(fake: FakeFeishuHire) -> Any:
    import lark_oapi as lark

    return lark.Client.builder().app_id(APP_ID).app_secret(APP_SECRET).domain(fake.base).build()


async def test_fake_answers_lark_oapi_and_our_bodies_match_its(make_client: AppFactory, fake: FakeFeishuHire) -> None:
    """lark-oapi's hire v1 client (sync, in a thread: its token fetch blocks) lists, creates, moves
    and terminates against the fake; our HireApi sends the same bodies to the same paths."""
    from lark_oapi.api.hire.v1 import (
        CreateExternalInterviewRequest,
        ExternalInterview,
        ListTerminationReasonRequest,
        TerminateApplicationRequest,
        TerminateApplicationRequestBody,
        TransferStageApplicationRequest,
        TransferStageApplicationRequestBody,
    )

    client = lark_client(fake)
    v1 = client.hire.v1

    listed = await asyncio.to_thread(
        v1.termination_reason.list, ListTerminationReasonRequest.builder().page_size(100).build()
    )
    assert listed.success(), listed.msg
    assert [r.termination_type for r in listed.data.items] == [22, 1]  # the fake pages by 2
    assert listed.data.has_more and listed.data.page_token == "2"
    interview = (
        ExternalInterview.builder()
        .external_id("exit-iv-1-1")
        .external_application_id(EXTERNAL_APPLICATION)
        .participate_status(2)
        .begin_time(1773108000000)
        .end_time(1773108600000)
        .build()
    )
    created = await asyncio.to_thread(
        v1.external_interview.create, CreateExternalInterviewRequest.builder().request_body(interview).build()
    )
    assert created.success(), created.msg
    assert created.data.external_interview.participate_status == 2 and created.data.external_interview.id
    moved = await asyncio.to_thread(
        v1.application.transfer_stage,
        TransferStageApplicationRequest.builder()
        .application_id(APPLICATION)
        .request_body(TransferStageApplicationRequestBody.builder().stage_id(STAGE).build())
        .build(),
    )
    assert moved.success(), moved.msg
    terminated = await asyncio.to_thread(
        v1.application.terminate,
        TerminateApplicationRequest.builder()
        .application_id(APPLICATION)
        .request_body(
            TerminateApplicationRequestBody.builder()
            .termination_type(22)
            .termination_reason_list([GAVE_UP])
            .termination_reason_note("候选人放弃")
            .build()
        )
        .build(),
    )
    assert terminated.success(), terminated.msg
    assert fake.applications[APPLICATION] == {
        "stage_id": STAGE,
        "termination": {
            "termination_type": 22,
            "termination_reason_list": [GAVE_UP],
            "termination_reason_note": "候选人放弃",
        },
    }
    fake.denied.add(SCOPE_APPLICATION)
    denied = await asyncio.to_thread(v1.termination_reason.list, ListTerminationReasonRequest.builder().build())
    assert denied.code == 99991672 and SCOPE_APPLICATION in denied.msg
    fake.denied.clear()
    lark_calls = [c for c in fake.hire_calls if c[0] == "POST"]
    fake.hire_calls.clear()

    # Ours, over the same fake: same paths, same bodies.
    app = (await make_client()).server.app
    assert app is not None
    async with aiohttp.ClientSession() as http:
        hire = HireApi(our_api(app[CORE], http, fake))
        reasons = await hire.termination_reasons()
        await hire.create_external_interview(
            {
                "external_id": "exit-iv-1-1",
                "external_application_id": EXTERNAL_APPLICATION,
                "participate_status": 2,
                "begin_time": 1773108000000,
                "end_time": 1773108600000,
            }
        )
        await hire.transfer_stage(APPLICATION, STAGE)
        await hire.terminate(APPLICATION, 22, [GAVE_UP], "候选人放弃")
    assert [c for c in fake.hire_calls if c[0] == "POST"] == lark_calls
    # Every page read, children after their parent, the inactive one marked.
    assert [(r.id, r.termination_type, r.active) for r in reasons] == [
        ("6891560630172518670", 22, True),
        (GAVE_UP, 22, True),
        ("6891560630172518672", 1, True),
        ("6891560630172518673", 27, False),
    ]
    assert len(fake.external_interviews) == 1  # the same external_id: one interview


def our_api(core: Any, http: aiohttp.ClientSession, fake: FakeFeishuHire) -> FeishuApi:
    return FeishuApi(
        http, sessions=core.sessions, clock=core.clock, app_id=APP_ID, app_secret=APP_SECRET, base_url=fake.base
    )


# --- the app -------------------------------------------------------------------------------------


async def hire_app(make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire, **extra: Any) -> TestClient:
    client = await make_client(**fake.settings(feishu_hire_enabled=True, **extra))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="feishu")
    return client


async def linked_interview(
    client: TestClient, clock: FrozenClock, interview_id: str = "iv-1", *, start: bool = True
) -> None:
    """An interview whose platform event names the candidate's 飞书招聘 application."""
    payload = event("interview.scheduled", interview_id, hr=("feishu", "hr01"), occurred_at=clock.now())
    payload["interview"]["ats"] = ATS
    resp = await post_event(client, clock, payload)
    assert resp.status == 200, await resp.text()
    if start:
        await started_interview(client, clock, interview_id, hr=("feishu", "hr01"))


async def terminate(client: TestClient, reason: str, interview_id: str = "iv-1") -> None:
    resp = await client.post(
        f"/api/interviews/{interview_id}/terminate", json={"reason": reason}, headers=admin_headers()
    )
    assert resp.status == 200, await resp.text()


async def rows(client: TestClient, kind: str) -> list[Notice]:
    from sqlmodel import select

    assert client.server.app is not None
    async with client.server.app[CORE].sessions() as session:
        return list((await session.exec(select(Notice).where(Notice.kind == kind).order_by(Notice.id))).all())


async def test_exit_is_recorded_and_the_application_terminated_as_mapped(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire
) -> None:
    client = await hire_app(make_client, clock, fake)
    assert client.server.app is not None
    core = client.server.app[CORE]
    await ats.set_mapping(
        core,
        system="feishu_hire",
        reason_code=ReasonCode.candidate_quit,
        action=AtsAction.terminate,
        operator="cli",
        termination_type=22,
        termination_reason_ids=(GAVE_UP,),
    )
    await linked_interview(client, clock)
    await terminate(client, "候选人放弃")

    async def done() -> bool:
        return [n.status for n in await rows(client, "ats_exit")] == ["sent", "sent"]

    await eventually(done)
    [created] = fake.external_interviews
    assert created["external_application_id"] == EXTERNAL_APPLICATION
    assert created["participate_status"] == 2  # started and answered: 参与
    assert created["external_id"] == "exit-iv-1-1"
    assert created["end_time"] == int(clock.now().timestamp() * 1000) >= created["begin_time"]
    assert fake.applications[APPLICATION]["termination"] == {
        "termination_type": 22,
        "termination_reason_list": [GAVE_UP],
        "termination_reason_note": "候选人放弃",
    }
    assert fake.applications[APPLICATION]["stage_id"] == "6960663240925956500"  # not moved
    sent = await rows(client, "ats_exit")
    assert [n.payload["call"] for n in sent] == ["interview", "terminate"]


async def test_no_show_moves_the_application_to_the_mapped_stage(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire
) -> None:
    client = await hire_app(make_client, clock, fake)
    assert client.server.app is not None
    await ats.set_mapping(
        client.server.app[CORE],
        system="feishu_hire",
        reason_code=ReasonCode.candidate_quit,
        action=AtsAction.transfer,
        operator="cli",
        stage_id=STAGE,
    )
    await linked_interview(client, clock, start=False)  # never started
    await terminate(client, "候选人放弃")

    async def done() -> bool:
        return bool(fake.external_interviews) and fake.applications[APPLICATION]["stage_id"] == STAGE

    await eventually(done)
    assert fake.external_interviews[0]["participate_status"] == 3  # 爽约
    assert fake.applications[APPLICATION]["termination"] is None


async def test_unmapped_reason_only_records_the_interview_and_unlinked_interviews_send_nothing(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire
) -> None:
    client = await hire_app(make_client, clock, fake)
    await linked_interview(client, clock)
    await started_interview(client, clock, "iv-2", hr=("feishu", "hr01"))  # no ats link
    await terminate(client, "系统故障")
    await terminate(client, "系统故障", "iv-2")

    async def done() -> bool:
        return bool(fake.external_interviews)

    await eventually(done)

    async def settled() -> bool:  # the exits' rows were all queued by the terminations above
        return all(n.status not in ("pending", "sending") for n in await rows(client, "ats_exit"))

    await eventually(settled, what="an ats_exit row is still to be sent")
    assert [c[1] for c in fake.hire_calls] == ["/open-apis/hire/v1/external_interviews"]
    assert fake.applications[APPLICATION] == {"stage_id": "6960663240925956500", "termination": None}
    assert len(await rows(client, "ats_exit")) == 1


async def test_rate_limit_is_retried_after_feishus_reset(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire
) -> None:
    client = await hire_app(make_client, clock, fake)
    await linked_interview(client, clock)
    fake.hire_failures.append((429, 99991400, {"x-ogw-ratelimit-reset": "2"}))
    await terminate(client, "系统故障")

    async def failed_once() -> bool:  # answered by the fake and recorded on the row
        return fake.failed_calls == 1 and [n.attempts for n in await rows(client, "ats_exit")] == [1]

    await eventually(failed_once)
    await asyncio.sleep(0.2)
    assert fake.external_interviews == []  # waits for the reset, on the test clock
    clock.advance(seconds=3)

    async def delivered() -> bool:
        return [n.status for n in await rows(client, "ats_exit")] == ["sent"]

    await eventually(delivered)
    assert len(fake.external_interviews) == 1
    [row] = await rows(client, "ats_exit")
    assert client.server.app is not None
    async with client.server.app[CORE].sessions() as session:
        from sqlmodel import select

        attempts = (await session.exec(select(NoticeAttempt).where(NoticeAttempt.notice_id == row.id))).all()
    assert [a.result for a in attempts] == ["failed", "sent"]


async def test_missing_permission_is_told_to_hr_and_on_the_notices_page_in_chinese(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire
) -> None:
    client = await hire_app(make_client, clock, fake)
    assert client.server.app is not None
    await add_person(client.server.app, "root", "管理员甲", "admin", platform="feishu")
    await ats.set_mapping(
        client.server.app[CORE],
        system="feishu_hire",
        reason_code=ReasonCode.candidate_quit,
        action=AtsAction.terminate,
        operator="cli",
        termination_type=22,
    )
    fake.denied.add(SCOPE_APPLICATION)
    await linked_interview(client, clock)
    await terminate(client, "候选人放弃")

    async def told() -> bool:
        return any("飞书招聘未能更新" in str(m["content"]) for m in fake.messages)

    await eventually(told)
    [message] = [m for m in fake.messages if "飞书招聘未能更新" in str(m["content"])]
    assert message["receive_id"] == "hr01"
    text = str(message["content"])
    assert "张三" in text and "终止投递" in text and "应用缺少所需权限" in text
    assert len(fake.external_interviews) == 1  # the interview itself was recorded
    assert fake.applications[APPLICATION]["termination"] is None
    [interview_row, terminate_row] = await rows(client, "ats_exit")
    assert (interview_row.status, terminate_row.status) == ("sent", "dead")

    await signed_in(client, "root", "feishu")
    page = await (await client.get("/console/notices")).text()
    assert f"notice-{terminate_row.id}" in page
    section = page.split(f'id="notice-{terminate_row.id}"', 1)[1].split("</tr>", 1)[0]
    assert "飞书招聘" in section and "应用缺少所需权限" in section and "重试" in section

    # Granted, then 重试 on the page: the application is terminated.
    fake.denied.clear()
    resp = await client.post(f"/console/notices/{terminate_row.id}/retry", data={"csrf": await _csrf(client)})
    assert resp.status in (200, 303)

    async def terminated() -> bool:
        return fake.applications[APPLICATION]["termination"] is not None

    await eventually(terminated)


async def _csrf(client: TestClient) -> str:
    from tests.console import hidden_fields

    return hidden_fields(await (await client.get("/console/notices")).text())["csrf"]


async def test_sender_refuses_a_row_without_its_fields(make_client: AppFactory, fake: FakeFeishuHire) -> None:
    app = (await make_client()).server.app
    assert app is not None
    async with aiohttp.ClientSession() as http:
        sender = HireSender(HireApi(our_api(app[CORE], http, fake)))
        with pytest.raises(SendError) as caught:
            await sender.send(
                Notice(kind="ats_exit", channel="feishu_hire", recipient="x", body="", payload={"call": "terminate"})
            )
        assert caught.value.permanent
    assert fake.hire_calls == []


@pytest.mark.timeout(180)  # four CLI processes, each importing the whole service
async def test_cli_lists_their_reasons_and_sets_the_mapping(
    make_client: AppFactory, clock: FrozenClock, clean_db: str, fake: FakeFeishuHire
) -> None:
    from tests.serve import run_cli_on

    env = {
        "FEISHU_APP_ID": APP_ID,
        "FEISHU_APP_SECRET": APP_SECRET,
        "FEISHU_API_BASE": fake.base,
        "FEISHU_HIRE_ENABLED": "true",
        "BOT_ENV_FILE": "",
    }
    code, _, err = await run_cli_on(clean_db, "ats", "map", "candidate_quit", "--terminate", "5", extra=env)
    assert code == 1 and "终止类型「5」无效" in err
    code, _, err = await run_cli_on(clean_db, "ats", "map", "no_such_reason", "--stage", STAGE, extra=env)
    assert code == 1 and "没有代码为「no_such_reason」的退出原因" in err
    code, out, err = await run_cli_on(
        clean_db, "ats", "map", "candidate_quit", "--terminate", "22", "--reason", GAVE_UP, extra=env
    )
    assert code == 0, err
    code, out, err = await run_cli_on(clean_db, "ats", "reasons", extra=env)
    assert code == 0, err
    assert f"{GAVE_UP}\t类型 22\t候选人中途放弃" in out
    assert "6891560630172518673\t类型 27\t其他\t(已停用)" in out
    assert f"candidate_quit\t候选人放弃\tterminate 22\t{GAVE_UP}" in out
    assert "system_failure\t系统故障\trecord" in out

    # The service applies what the other process stored.
    client = await hire_app(make_client, clock, fake)
    await linked_interview(client, clock)
    await terminate(client, "候选人放弃")

    async def terminated() -> bool:
        return fake.applications[APPLICATION]["termination"] is not None

    await eventually(terminated)
    assert fake.applications[APPLICATION]["termination"]["termination_reason_list"] == [GAVE_UP]

    fake.denied.add(SCOPE_APPLICATION)
    code, _, err = await run_cli_on(clean_db, "ats", "reasons", extra=env)
    assert code == 1 and "无法读取飞书招聘的终止原因:应用缺少所需权限" in err


async def test_a_malformed_ats_link_is_refused_and_changes_nothing(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire
) -> None:
    client = await hire_app(make_client, clock, fake)
    for bad in (
        {"system": "Feishu Hire!", "application_id": APPLICATION},
        {"system": "feishu_hire", "application_id": ""},
        {"system": "feishu_hire", "application_id": "x" * 65},
        {"application_id": APPLICATION},
    ):
        payload = event("interview.scheduled", "iv-9", hr=("feishu", "hr01"), occurred_at=clock.now())
        payload["interview"]["ats"] = bad
        resp = await post_event(client, clock, payload)
        assert resp.status == 422, bad
        assert "ats" in await resp.text()
    assert client.server.app is not None
    async with client.server.app[CORE].sessions() as session:
        from storage import repo

        assert await repo.get_interview(session, platform_id="iv-9") is None


async def test_an_idle_timeout_exit_is_written_back_too(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishuHire
) -> None:
    from bot import jobs

    client = await hire_app(make_client, clock, fake, idle_timeout_seconds=600)
    assert client.server.app is not None
    await ats.set_mapping(
        client.server.app[CORE],
        system="feishu_hire",
        reason_code=ReasonCode.idle_timeout,
        action=AtsAction.transfer,
        operator="cli",
        stage_id=STAGE,
    )
    await linked_interview(client, clock)
    clock.advance(seconds=601)
    assert await jobs.sweep_idle(client.server.app[CORE]) == 1

    async def done() -> bool:
        return [n.status for n in await rows(client, "ats_exit")] == ["sent", "sent"]

    await eventually(done)
    [created] = fake.external_interviews
    assert created["participate_status"] == 2  # it had started: 参与, not 爽约
    assert fake.applications[APPLICATION]["stage_id"] == STAGE
