"""重新安排: times as people mean them, the time stated in full, 确认 before the candidate is told,
reopening ended interviews, refusals, and answering a 求助."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from bot.keys import CORE
from storage import repo
from tests.chat import ChatUser, add_person
from tests.conftest import SHANGHAI, AppFactory, admin_headers, event, post_event, started_interview
from tests.interviews import interview_detail
from tests.times import WEEKDAYS, in_full, local_at, tomorrow_at


async def setup(make_client: AppFactory, clock: FrozenClock) -> tuple[TestClient, web.Application]:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    return client, app


def rescheduled_notices(body: dict) -> list[dict]:
    return [n for n in body["notices"] if n["kind"] == "rescheduled"]


async def scheduled(client: TestClient, clock: FrozenClock) -> None:
    resp = await post_event(client, clock, event("interview.scheduled", occurred_at=clock.now()))
    assert resp.status == 200


async def test_reschedule_scheduled_interview_with_chinese_time(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(local_at(clock, 6, 10, 9, 15))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    before = (await interview_detail(client))["scheduled_at"]
    hr = ChatUser(app, "hr01")
    expected = tomorrow_at(clock, 14)
    replies = await hr.say("重新安排 张三 明天下午2点")
    assert len(replies) == 1 and replies[0].kind == "confirm"
    prompt = replies[0].text
    assert f"新的时间:{in_full(expected)}" in prompt and "张三" in prompt and "确认后将通知候选人" in prompt
    assert [label for label, _ in replies[0].buttons] == ["确认改期", "取消"]
    body = await interview_detail(client)  # nothing changes before 确认
    assert body["scheduled_at"] == before and rescheduled_notices(body) == []

    reply = await hr.says("确认")
    assert in_full(expected) in reply and "已将 张三 的面试" in reply
    body = await interview_detail(client)
    assert datetime.fromisoformat(body["scheduled_at"]) == expected
    assert body["status"] == "scheduled"
    rescheduled = rescheduled_notices(body)
    assert len(rescheduled) == 1 and expected.strftime("%Y-%m-%d %H:%M") in rescheduled[0]["body"]


async def test_unreadable_time_and_refusals(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await started_interview(client, clock)
    hr = ChatUser(app, "hr01")
    assert "没有看懂时间「随便什么时候」" in await hr.says("重新安排 张三 随便什么时候")
    assert "用法" in await hr.says("重新安排")
    # In progress: moving it means ending it first, so the bot offers both (asking the reason first).
    offer = await hr.says("重新安排 张三 明天下午2点")
    assert "正在进行中" in offer and "1. 候选人放弃" in offer and "没有找到" not in offer
    assert (await interview_detail(client))["status"] == "in_progress"


async def test_a_passed_month_and_day_means_next_year(make_client: AppFactory, clock: FrozenClock) -> None:
    """1月5日 typed on 1 December is next January, not a date in the past."""
    clock.set(local_at(clock, 12, 1, 14, 35))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    hr = ChatUser(app, "hr01")
    expected = local_at(clock, 1, 5, 10, year_offset=1)
    prompt = await hr.says("重新安排 张三 1月5日 10:00")
    assert f"新的时间:{in_full(expected)}" in prompt
    assert in_full(expected) in await hr.says("确认")
    assert datetime.fromisoformat((await interview_detail(client))["scheduled_at"]) == expected
    # A month and day still ahead this year stays in this year.
    prompt = await hr.says("重新安排 张三 12月3日 10:00")
    assert f"新的时间:{in_full(local_at(clock, 12, 3, 10))}" in prompt


async def test_a_bare_hour_is_in_the_afternoon(make_client: AppFactory, clock: FrozenClock) -> None:
    """3点 typed at 14:35 is 15:00, not 03:00 (refused as past); 上午/凌晨 keep the morning."""
    clock.set(local_at(clock, 12, 1, 14, 35))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    hr = ChatUser(app, "hr01")
    prompt = await hr.says("重新安排 张三 3点")
    assert f"新的时间:{in_full(local_at(clock, 12, 1, 15))}" in prompt
    assert "已取消" in await hr.says("取消")
    prompt = await hr.says("重新安排 张三 明天上午9点")
    assert f"新的时间:{in_full(tomorrow_at(clock, 9))}" in prompt
    assert "已经过去了" in await hr.says("重新安排 张三 凌晨3点")  # said plainly, and refused


async def test_a_day_without_an_hour_asks_only_for_the_hour(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(local_at(clock, 3, 2, 10, 0))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    hr = ChatUser(app, "hr01")
    tomorrow = tomorrow_at(clock, 0)
    day = f"{tomorrow:%Y-%m-%d} 周{WEEKDAYS[tomorrow.weekday()]}"
    question = await hr.says("重新安排 张三 明天")
    assert f"请补充 {day} 的具体时间" in question
    assert "没有看懂时间「随便」" in await hr.says("随便")  # the question stays open
    prompt = await hr.says("下午3点")
    assert f"新的时间:{in_full(tomorrow_at(clock, 15))}" in prompt
    assert in_full(tomorrow_at(clock, 15)) in await hr.says("确认")
    assert datetime.fromisoformat((await interview_detail(client))["scheduled_at"]) == tomorrow_at(clock, 15)

    # "16:30" answers just as well, for the day asked about.
    assert "请补充" in await hr.says("改期 张三 后天")
    prompt = await hr.says("16:30")
    assert f"新的时间:{in_full(tomorrow_at(clock, 16, 30) + timedelta(days=1))}" in prompt
    assert "已取消,面试时间不变" in await hr.says("取消")
    assert datetime.fromisoformat((await interview_detail(client))["scheduled_at"]) == tomorrow_at(clock, 15)


async def test_confirm_is_the_askers_and_expires(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await add_person(app, "hr02", "赵先生", "hr")
    await scheduled(client, clock)
    before = (await interview_detail(client))["scheduled_at"]
    hr = ChatUser(app, "hr01")
    assert "请确认重新安排" in await hr.says("重新安排 张三 明天下午2点")
    assert "没有等待你确认的操作" in await ChatUser(app, "hr02").says("确认")  # only the asker
    clock.advance(seconds=301)  # BOT_CONFIRM_TTL_SECONDS
    assert "没有等待你确认的操作" in await hr.says("确认")
    body = await interview_detail(client)
    assert body["scheduled_at"] == before and rescheduled_notices(body) == []
    # Cancelled: nothing changes and nobody is told.
    assert "请确认重新安排" in await hr.says("重新安排 张三 明天下午2点")
    assert await hr.says("取消") == "已取消,面试时间不变,没有通知候选人。"
    assert "没有等待你确认的操作" in await hr.says("确认")
    body = await interview_detail(client)
    assert body["scheduled_at"] == before and rescheduled_notices(body) == []


async def test_reschedule_reopens_terminated_interview(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(local_at(clock, 11, 20, 9, 0))
    client, app = await setup(make_client, clock)
    await started_interview(client, clock)
    await client.post("/api/interviews/iv-1/terminate", json={"reason": "掉线"}, headers=admin_headers())
    hr = ChatUser(app, "hr01")
    later = clock.now().astimezone(SHANGHAI).date() + timedelta(days=18)  # a month/day still ahead this year
    assert "请确认重新安排" in await hr.says(f"改期 张三 {later.month}月{later.day}日 14:00")
    reply = await hr.says("确认")
    assert "重新开放面试" in reply
    body = await interview_detail(client)
    assert body["status"] == "scheduled"
    assert body["candidate"]["pipeline_status"] == "待面试"
    assert (
        datetime.fromisoformat(body["scheduled_at"]).astimezone(SHANGHAI).strftime("%m-%d %H:%M")
        == f"{later:%m-%d} 14:00"
    )


async def help_requested(client: TestClient, clock: FrozenClock) -> None:
    await started_interview(client, clock)
    payload = event(
        "interview.help_requested", data={"reason": "摄像头故障", "wants_exit": True}, occurred_at=clock.now()
    )
    assert (await post_event(client, clock, payload)).status == 200


async def test_reschedule_answers_help_request(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await help_requested(client, clock)
    hr = ChatUser(app, "hr01")
    assert "请回复新的面试时间" in await hr.says("重新安排")
    prompt = await hr.says("重新安排 明天上午10:30")
    # The interview runs: one prompt names both steps (end it, with the candidate's reason; book it again).
    assert f"重新安排到:{in_full(tomorrow_at(clock, 10, 30))}" in prompt
    assert "终止当前面试" in prompt and "系统故障" in prompt
    assert "未连接面试平台(未设置 PLATFORM_API_BASE),确认后只在本系统记为终止" in prompt
    assert (await interview_detail(client))["status"] == "in_progress"  # nothing happens before 确认
    reply = await hr.says("确认")
    assert in_full(tomorrow_at(clock, 10, 30)) in reply
    body = await interview_detail(client)
    assert body["status"] == "scheduled"
    kinds = [n["kind"] for n in body["notices"]]
    assert "terminated" in kinds and "rescheduled" in kinds
    assert "没有等待你处理的候选人求助" in await hr.says("确认终止")


async def test_help_request_reschedule_asks_the_hour_and_can_be_cancelled(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    await help_requested(client, clock)
    hr = ChatUser(app, "hr01")
    assert "请补充" in await hr.says("重新安排 明天")
    assert "终止当前面试" in await hr.says("15:00")
    assert "已取消" in await hr.says("取消")
    body = await interview_detail(client)
    assert body["status"] == "in_progress" and rescheduled_notices(body) == []
    # The 求助 is still open: the HR can still answer it.
    assert "协助其继续面试" in await hr.says("协助继续")


async def test_help_reschedule_ends_with_the_fallback_reason_found_by_code_after_a_rename(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client, app = await setup(make_client, clock)
    async with app[CORE].sessions() as session:
        reason = next(r for r in await repo.list_reasons(session) if r.code == "process_change")
        reason.name, reason.synonyms = "面试流程调整", []
        await session.commit()
    await started_interview(client, clock)
    payload = event(
        "interview.help_requested", data={"reason": "家里有事", "wants_exit": True}, occurred_at=clock.now()
    )
    assert (await post_event(client, clock, payload)).status == 200
    hr = ChatUser(app, "hr01")
    prompt = await hr.says("重新安排 明天上午10:30")
    assert "终止当前面试" in prompt and "面试流程调整" in prompt and "确认后只在本系统记为终止" in prompt
    assert in_full(tomorrow_at(clock, 10, 30)) in await hr.says("确认")
    body = await interview_detail(client)
    assert body["status"] == "scheduled"
    assert (body["exit"]["reason_code"], body["exit"]["reason"]) == ("process_change", "面试流程调整")


def day_words(day: date) -> str:
    """How a reply states a day: 2027-01-05 周二."""
    return f"{day:%Y-%m-%d} 周{WEEKDAYS[day.weekday()]}"


async def test_a_day_and_its_part_ask_the_hour_read_in_that_part(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(local_at(clock, 3, 2, 10, 0))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    hr = ChatUser(app, "hr01")
    tomorrow = tomorrow_at(clock, 0).date()
    question = await hr.says("重新安排 张三 明天下午")
    assert f"请补充 {day_words(tomorrow)} 下午 的具体时间" in question
    assert "没有看懂时间「随便」" in await hr.says("随便")  # the question stays open
    prompt = await hr.says("3点")  # in the afternoon asked about: 15:00
    assert f"新的时间:{in_full(tomorrow_at(clock, 15))}" in prompt
    assert in_full(tomorrow_at(clock, 15)) in await hr.says("确认")
    assert datetime.fromisoformat((await interview_detail(client))["scheduled_at"]) == tomorrow_at(clock, 15)

    # 上午 keeps 10点 in the morning; 晚上 moves 8点 (08:00 alone) to 20:00.
    assert f"请补充 {day_words(tomorrow)} 上午 的具体时间" in await hr.says("改期 张三 明天上午")
    assert f"新的时间:{in_full(tomorrow_at(clock, 10))}" in await hr.says("10点")
    assert "已取消" in await hr.says("取消")
    assert f"请补充 {day_words(tomorrow)} 晚上 的具体时间" in await hr.says("改期 张三 明天晚上")
    assert f"新的时间:{in_full(tomorrow_at(clock, 20))}" in await hr.says("8点")
    assert "已取消" in await hr.says("取消")


async def test_a_week_without_a_day_asks_the_day(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(local_at(clock, 3, 3, 10, 0))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    hr = ChatUser(app, "hr01")
    today = clock.now().astimezone(SHANGHAI).date()
    monday = today + timedelta(days=7 - today.weekday())
    question = await hr.says("重新安排 张三 下周吧")
    assert f"{day_words(monday)} – {day_words(monday + timedelta(days=6))}" in question and "哪一天" in question
    assert "没有看懂时间「再说」" in await hr.says("再说")  # the question stays open
    # A weekday alone is in the week asked about; an hour is still asked for when missing.
    tuesday = monday + timedelta(days=1)
    assert f"请补充 {day_words(tuesday)} 下午 的具体时间" in await hr.says("周二下午")
    expected = datetime.combine(tuesday, time(15, 30), SHANGHAI)
    assert f"新的时间:{in_full(expected)}" in await hr.says("3点半")
    assert in_full(expected) in await hr.says("确认")
    assert datetime.fromisoformat((await interview_detail(client))["scheduled_at"]) == expected


async def test_a_past_time_is_refused_as_past(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(local_at(clock, 3, 3, 10, 0))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    before = (await interview_detail(client))["scheduled_at"]
    hr = ChatUser(app, "hr01")
    yesterday_3pm = tomorrow_at(clock, 15) - timedelta(days=2)
    assert (await hr.says("重新安排 张三 昨天下午3点")).startswith(f"不能改到过去的时间:{in_full(yesterday_3pm)}")
    assert (await hr.says("重新安排 张三 前天")).startswith("不能改到过去的时间")
    assert (await hr.says("重新安排 张三 今天上午9点")).startswith("不能改到过去的时间")
    assert (await hr.says("重新安排 张三 上周")).startswith("不能改到过去的时间")
    assert "没有等待你确认的操作" in await hr.says("确认")
    assert (await interview_detail(client))["scheduled_at"] == before


async def test_a_time_from_now(make_client: AppFactory, clock: FrozenClock) -> None:
    clock.set(local_at(clock, 3, 3, 10, 0))
    client, app = await setup(make_client, clock)
    await scheduled(client, clock)
    hr = ChatUser(app, "hr01")
    prompt = await hr.says("重新安排 张三 两小时后")
    assert f"新的时间:{in_full(clock.now() + timedelta(hours=2))}" in prompt
