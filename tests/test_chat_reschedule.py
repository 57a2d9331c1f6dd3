"""重新安排: everyday Chinese times, reopening ended interviews, refusals, and answering a 求助."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, event, post_event, started_interview

TZ = ZoneInfo("Asia/Shanghai")


async def setup(make_client: AppFactory, clock: FrozenClock) -> tuple[TestClient, web.Application]:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    return client, app


async def detail(client: TestClient, interview_id: str = "iv-1") -> dict:
    return await (await client.get(f"/api/interviews/{interview_id}", headers=admin_headers())).json()


def tomorrow_at(clock: FrozenClock, hour: int, minute: int = 0) -> datetime:
    today = clock.now().astimezone(TZ).date()
    return datetime.combine(today + timedelta(days=1), time(hour, minute), TZ)


async def test_reschedule_scheduled_interview_with_chinese_time(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await post_event(client, clock, event("interview.scheduled", occurred_at=clock.now()))
    hr = ChatUser(app, "hr01")
    reply = await hr.says("重新安排 张三 明天下午2点")
    expected = tomorrow_at(clock, 14)
    assert expected.strftime("%Y-%m-%d %H:%M") in reply
    body = await detail(client)
    assert datetime.fromisoformat(body["scheduled_at"]) == expected
    assert body["status"] == "scheduled"
    rescheduled = [n for n in body["notices"] if n["kind"] == "rescheduled"]
    assert len(rescheduled) == 1 and expected.strftime("%Y-%m-%d %H:%M") in rescheduled[0]["body"]


async def test_unreadable_time_and_refusals(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock)
    hr = ChatUser(app, "hr01")
    assert "没有看懂时间「随便什么时候」" in await hr.says("重新安排 张三 随便什么时候")
    assert "没有看懂时间「明天」" in await hr.says("重新安排 张三 明天")  # a day without a time
    assert "用法" in await hr.says("重新安排")
    # In progress: not found among reschedulable interviews.
    assert "没有找到" in await hr.says("重新安排 张三 明天下午2点")
    assert (await detail(client))["status"] == "in_progress"


async def test_reschedule_reopens_terminated_interview(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock)
    await client.post("/api/interviews/iv-1/terminate", json={"reason": "掉线"}, headers=admin_headers())
    hr = ChatUser(app, "hr01")
    later = clock.now().astimezone(TZ).date() + timedelta(days=18)  # a month/day still ahead this year
    reply = await hr.says(f"改期 张三 {later.month}月{later.day}日 14:00")
    assert "重新开放面试" in reply
    body = await detail(client)
    assert body["status"] == "scheduled"
    assert body["candidate"]["pipeline_status"] == "待面试"
    assert datetime.fromisoformat(body["scheduled_at"]).astimezone(TZ).strftime("%m-%d %H:%M") == f"{later:%m-%d} 14:00"


async def test_reschedule_answers_help_request(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock)
    payload = event(
        "interview.help_requested", data={"reason": "摄像头故障", "wants_exit": True}, occurred_at=clock.now()
    )
    await post_event(client, clock, payload)
    hr = ChatUser(app, "hr01")
    assert "请回复新的面试时间" in await hr.says("重新安排")
    reply = await hr.says("重新安排 明天上午10:30")
    assert tomorrow_at(clock, 10, 30).strftime("%Y-%m-%d %H:%M") in reply
    body = await detail(client)
    assert body["status"] == "scheduled"
    kinds = [n["kind"] for n in body["notices"]]
    assert "terminated" in kinds and "rescheduled" in kinds
    assert "没有等待你处理的候选人求助" in await hr.says("确认终止")
