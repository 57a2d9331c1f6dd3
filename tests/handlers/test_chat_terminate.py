"""终止面试 → confirmation → 确认 / 取消, through the real dispatcher and services."""

from __future__ import annotations

from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import AuditEvent, PendingAction
from tests.chat import ChatUser, add_person, staffed_interview
from tests.conftest import AppFactory, admin_headers, event, post_event, started_interview
from tests.interviews import status_of


async def test_terminate_confirm_flow(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("终止面试 张三 候选人放弃")
    assert prompt.kind == "confirm"
    assert "张三" in prompt.text and "Java后端工程师" in prompt.text and "已作答 2 题" in prompt.text
    assert "候选人放弃" in prompt.text
    async with app[CORE].sessions() as session:
        [asked] = (await session.exec(select(PendingAction).where(PendingAction.action == "terminate"))).all()
    # The buttons name this prompt, so a press answers it and no other.
    assert prompt.buttons == (("确认终止", f"确认 #{asked.id}"), ("取消", f"取消 #{asked.id}"))
    assert await status_of(app) == "in_progress"  # nothing happens before 确认

    reply = await hr.says("确认")
    assert "已终止 张三 的面试" in reply
    assert "未完成" in reply
    assert await status_of(app) == "terminated"
    async with app[CORE].sessions() as session:
        audit = (await session.exec(select(AuditEvent).where(AuditEvent.action == "interview.terminated"))).one()
    assert audit.actor == "wecom:hr01"
    assert audit.detail["source"] == "chat"

    # The prompt can be confirmed once only.
    assert "没有等待你确认的操作" in await hr.says("确认")


async def test_noise_synonyms_and_fullwidth_are_understood(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01", chat_id="group-1", chat_type="group")
    [prompt] = await hr.say("@面试助手 结束面试\u3000张三 不想面了!")
    assert prompt.kind == "confirm"
    assert "候选人放弃" in prompt.text


async def test_cancel_and_only_requester_can_confirm(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01", chat_id="group-1", chat_type="group")
    boss = ChatUser(app, "boss", chat_id="group-1", chat_type="group")
    await hr.say("终止面试 张三 网络卡顿")
    assert "没有等待你确认的操作" in await boss.says("确认")
    assert await status_of(app) == "in_progress"
    assert "已取消" in await hr.says("取消")
    assert "没有等待你确认的操作" in await hr.says("确认")
    assert await status_of(app) == "in_progress"


async def test_prompt_expires(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01")
    await hr.say("终止面试 张三 候选人放弃")
    clock.advance(seconds=301)
    assert "没有等待你确认的操作" in await hr.says("确认")
    assert await status_of(app) == "in_progress"


async def test_hr_sees_only_own_interviews_manager_sees_all(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    other = ChatUser(app, "hr02")
    assert "没有找到" in await other.says("终止面试 张三 候选人放弃")
    boss = ChatUser(app, "boss")
    [prompt] = await boss.say("终止面试 张三 候选人放弃")
    assert prompt.kind == "confirm"


async def test_unknown_people_are_refused_and_audited(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    stranger = ChatUser(app, "nobody")
    assert "你还没有登记,企业微信账号 nobody;请把它发给管理员" in await stranger.says("终止面试 张三 候选人放弃")
    async with app[CORE].sessions() as session:
        refused = (await session.exec(select(AuditEvent).where(AuditEvent.action == "command.refused"))).all()
        pending = (await session.exec(select(PendingAction))).all()
    assert [r.actor for r in refused] == ["wecom:nobody"]
    assert pending == []


async def test_a_misspelt_command_word_is_read_by_sound_and_still_asks(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01")
    # 终址 sounds like 终止: understood, and (no reason given) the reasons are listed; nothing is done.
    assert "1. 候选人放弃" in await hr.says("终址面试 张三")
    assert await status_of(app) == "in_progress"


async def test_unknown_command_gets_closest_hint(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01")
    reply = await hr.says("进形中的")
    assert "没有看懂" in reply and "进行中" in reply and "帮助" in reply


async def test_missing_or_unknown_reason_lists_choices(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    hr = ChatUser(app, "hr01")
    listed = await hr.says("终止面试 张三")
    assert "1. 候选人放弃" in listed and "2. 系统故障" in listed
    [prompt] = await hr.say("2")
    assert prompt.kind == "confirm" and "系统故障" in prompt.text
    await hr.says("取消")
    assert "无法识别原因「心情不好」" in await hr.says("终止面试 张三 心情不好")
    [prompt] = await hr.say("不会操作")  # answered with a phrase instead of a number
    assert "操作不熟悉" in prompt.text
    assert await status_of(app) == "in_progress"


async def test_two_candidates_with_one_name_are_listed_not_guessed(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock, "iv-1", mobile="13800001111", email="a@example.com")
    await post_event(client, clock, event("interview.started", "iv-2", mobile="13900002222", email="b@example.com"))
    hr = ChatUser(app, "hr01")
    reply = await hr.says("终止面试 张三 候选人放弃")
    assert "有 2 场" in reply
    assert "iv-1" in reply and "iv-2" in reply
    assert "尾号1111" in reply and "尾号2222" in reply
    assert "13800001111" not in reply
    # Nothing can be confirmed yet: the bot asked, it did not guess.
    assert "没有等待你确认的操作" in await hr.says("确认")
    assert "请回复 1 到 2" in await hr.says("7")
    [prompt] = await hr.say("2")
    assert prompt.kind == "confirm"
    await hr.says("确认")
    assert await status_of(app, "iv-2") == "terminated"
    assert await status_of(app, "iv-1") == "in_progress"
    # Picking by interview id works directly.
    [prompt] = await hr.say("终止面试 iv-1 候选人放弃")
    assert prompt.kind == "confirm"


async def test_help_lists_only_allowed_commands(make_client: AppFactory, clock: FrozenClock) -> None:
    app = await staffed_interview(make_client, clock)
    text = await ChatUser(app, "hr01").says("帮助")
    assert "终止面试" in text and "例:" in text


async def test_words_typed_survive_the_numbered_pick(make_client: AppFactory, clock: FrozenClock, smtp: object) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock, name="钱有事")
    hr = ChatUser(app, "hr01")
    listed = await hr.says("终止面试 钱有事 他说家里有急事来不了")
    assert "无法识别原因「他说家里有急事来不了」" in listed
    assert "6. 其他" in listed  # the default for exits no reason fits
    [prompt] = await hr.say("6")
    assert prompt.kind == "confirm"
    assert "原因:其他(候选人将转为「需要重新面试」)" in prompt.text
    assert "说明:他说家里有急事来不了" in prompt.text
    assert "已终止 钱有事 的面试" in await hr.says("确认")

    body = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert body["exit"]["reason"] == "其他"
    assert body["exit"]["reason_code"] == "other"
    assert body["exit"]["detail"] == "他说家里有急事来不了"
    assert body["candidate"]["pipeline_status"] == "需要重新面试"
    shown = await hr.says("查看 钱有事")
    assert "退出:其他" in shown and "说明:他说家里有急事来不了" in shown
    # HR's words stay with HR: the candidate's notice gives no reason label "其他" and none of the words.
    [notice] = [n for n in body["notices"] if n["kind"] == "terminated"]
    assert "的AI面试已终止。" in notice["body"]
    assert "急事" not in notice["body"] and "其他" not in notice["body"]


async def test_a_named_reason_keeps_the_words_and_a_bare_pick_keeps_none(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock)
    await started_interview(client, clock, "iv-2", name="李四", mobile="13900002222", email="lisi@example.com")
    hr = ChatUser(app, "hr01")
    [prompt] = await hr.say("终止面试 张三 候选人说网络卡顿听不清题目")
    assert "原因:系统故障" in prompt.text and "说明:候选人说网络卡顿听不清题目" in prompt.text
    await hr.says("确认")
    await hr.says("终止面试 李四")
    [prompt] = await hr.say("1")
    assert "原因:候选人放弃" in prompt.text and "说明" not in prompt.text
    await hr.says("确认")
    first = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    second = await (await client.get("/api/interviews/iv-2", headers=admin_headers())).json()
    assert first["exit"]["detail"] == "候选人说网络卡顿听不清题目"
    assert (second["exit"]["reason"], second["exit"]["detail"]) == ("候选人放弃", "")  # "1" is not a reason's words
