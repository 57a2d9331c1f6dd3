"""The termination procedure end to end through the admin API, with a fake platform and real SMTP."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime

from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from tests.conftest import AppFactory, admin_headers, eventually, started_interview
from tests.fakes.platform import FakePlatform
from tests.fakes.smtp import SmtpServer


async def terminate(client: TestClient, reason: str, operator: str = "admin", interview_id: str = "iv-1"):
    return await client.post(
        f"/api/interviews/{interview_id}/terminate",
        json={"reason": reason, "operator": operator},
        headers=admin_headers(),
    )


async def get(client: TestClient, interview_id: str = "iv-1") -> dict:
    resp = await client.get(f"/api/interviews/{interview_id}", headers=admin_headers())
    assert resp.status == 200
    return await resp.json()


async def test_happy_path_saves_then_terminates_records_and_emails(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform, smtp: SmtpServer
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    await started_interview(client, clock)

    resp = await terminate(client, "网络卡顿")  # a synonym of 系统故障
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["exit"]["reason"] == "系统故障"
    assert body["exit"]["operator"] == "admin"
    assert body["exit"]["source"] == "admin_api"

    # Save came first, then terminate, with the reason code and operator.
    assert fake_platform.actions() == ["save", "terminate"]
    assert fake_platform.calls[1][2] == {"reason_code": "system_failure", "reason": "系统故障", "operator": "admin"}
    assert fake_platform.rejected == 0

    detail = await get(client)
    assert detail["status"] == "terminated"
    assert detail["candidate"]["pipeline_status"] == "需要重新面试"
    assert detail["exit"]["progress_snapshot"]["saved_by"] == "platform"
    assert [a["question_no"] for a in detail["exit"]["progress_snapshot"]["answered"]] == [1, 2]
    assert detail["todos"][0]["title"] == "跟进候选人张三的面试"
    assert detail["todos"][0]["assignee"] == "wecom:hr01"
    assert detail["notices"][0]["channel"] == "email"
    assert detail["notices"][0]["recipient"] == "zhangsan@example.com"

    async def delivered() -> bool:
        return len(smtp.messages) == 1

    await eventually(delivered)
    mail = smtp.messages[0]
    assert mail["To"] == "zhangsan@example.com"
    assert "AI面试已终止" in mail["Subject"]
    # RFC 5322: a Date, the service's (test) clock at sending, in its time zone.
    assert parsedate_to_datetime(str(mail["Date"])) == clock.now()
    assert str(mail["Date"]).endswith("+0800")
    assert mail["Message-ID"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "由于系统或网络故障,您的AI面试已终止。" in text
    assert "您已完成的 2 道题作答都已妥善保存。" in text  # the platform saved them
    assert "重新安排面试" in text
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:600px" in html  # one column that narrows to a phone's width
    assert "<strong>由于系统或网络故障,您的AI面试已终止。</strong>" in html

    async def marked_sent() -> bool:
        return (await get(client))["notices"][0]["status"] == "sent"

    await eventually(marked_sent)


async def test_candidate_quit_without_a_platform_claims_nothing_saved(
    make_client: AppFactory, clock: FrozenClock, smtp: SmtpServer
) -> None:
    client = await make_client()  # no PLATFORM_API_BASE: the termination is recorded here only
    await started_interview(client, clock)
    resp = await terminate(client, "候选人放弃", operator="lihua")
    assert resp.status == 200
    detail = await get(client)
    assert detail["candidate"]["pipeline_status"] == "未完成"
    assert detail["exit"]["operator"] == "admin:lihua"
    assert detail["exit"]["progress_snapshot"]["saved_by"] == "bot"
    assert detail["exit"]["progress_snapshot"]["platform_called"] is False

    async def delivered() -> bool:
        return len(smtp.messages) == 1

    await eventually(delivered)
    mail = smtp.messages[0]
    assert parsedate_to_datetime(str(mail["Date"])) == clock.now()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    # Said to the candidate, about the candidate's own choice; no answers claimed kept.
    assert "您已主动结束本次AI面试。" in text
    assert "候选人" not in text
    assert "保存" not in text
    # No HR owner registered and no BOT_COMPANY_CONTACT: nobody to point at, so no 请联系HR.
    assert "联系HR" not in text and "感谢您的理解与配合。" in text
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "您已主动结束本次AI面试。" in html and "保存" not in html and "联系HR" not in html


async def test_save_failure_does_not_terminate(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform, smtp: SmtpServer
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    await started_interview(client, clock)
    fake_platform.save_status = 500

    resp = await terminate(client, "候选人放弃")
    assert resp.status == 502
    body = await resp.json()
    assert body["error"] == "save_failed"
    assert "保存作答进度失败" in body["message"]
    assert "terminate" not in fake_platform.actions()  # never asked to terminate
    assert fake_platform.actions().count("save") == 3  # retried, then gave up

    detail = await get(client)
    assert detail["status"] == "in_progress"
    assert detail["exit"] is None
    assert detail["todos"] == [] and detail["notices"] == []
    assert detail["candidate"]["pipeline_status"] == "面试中"

    # Once the platform recovers, the same request works (the claim was released).
    fake_platform.save_status = 200
    resp = await terminate(client, "候选人放弃")
    assert resp.status == 200


async def test_platform_terminate_failure_keeps_interview_open(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    await started_interview(client, clock)
    fake_platform.terminate_status = 400
    resp = await terminate(client, "流程调整")
    assert resp.status == 502
    assert (await resp.json())["error"] == "platform_terminate_failed"
    assert (await get(client))["status"] == "in_progress"


async def test_concurrent_termination_one_wins(
    make_client: AppFactory, clock: FrozenClock, fake_platform: FakePlatform
) -> None:
    assert fake_platform.server is not None
    client = await make_client(platform_api_base=str(fake_platform.server.make_url("")))
    await started_interview(client, clock)
    fake_platform.delay = 0.2  # widen the race window

    first, second = await asyncio.gather(terminate(client, "候选人放弃", "a"), terminate(client, "系统故障", "b"))
    statuses = sorted([first.status, second.status])
    assert statuses == [200, 409]
    loser = first if first.status == 409 else second
    assert (await loser.json())["error"] in {"termination_in_progress", "already_terminated"}
    assert fake_platform.actions() == ["save", "terminate"]  # the platform was called once

    detail = await get(client)
    assert len(detail["todos"]) == 1
    assert len(detail["notices"]) == 1

    # Later attempts are told it is already terminated, by whom.
    again = await terminate(client, "候选人放弃", "c")
    assert again.status == 409
    body = await again.json()
    assert body["error"] == "already_terminated"
    assert body["exit"]["operator"] in {"admin:a", "admin:b"}
    assert body["exit"]["operator"] in body["message"]


async def test_unknown_reason_and_interview(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await started_interview(client, clock)
    resp = await terminate(client, "心情不好")
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "unknown_reason"
    assert "候选人放弃" in body["choices"]
    assert (await get(client))["status"] == "in_progress"

    missing = await terminate(client, "候选人放弃", interview_id="nope")
    assert missing.status == 404


async def test_completed_interview_cannot_be_terminated(make_client: AppFactory, clock: FrozenClock) -> None:
    from tests.conftest import event, post_event

    client = await make_client()
    await started_interview(client, clock)
    await post_event(client, clock, event("interview.completed"))
    resp = await terminate(client, "候选人放弃")
    assert resp.status == 409
    assert (await resp.json())["error"] == "already_completed"


async def test_candidate_without_contact_gets_hr_todo(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    await started_interview(client, clock, email=None, mobile=None)
    resp = await terminate(client, "候选人放弃")
    assert resp.status == 200
    detail = await get(client)
    assert detail["notices"][0]["status"] == "dead"
    titles = sorted(t["title"] for t in detail["todos"])
    assert titles == ["联系候选人张三:通知未送达", "跟进候选人张三的面试"]
