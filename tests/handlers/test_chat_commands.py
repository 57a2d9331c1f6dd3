"""进行中, 查看, 统计, 待办/完成, 授权, 帮助 and group masking, through the real dispatcher."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from bot.chat.masking import mask_sensitive
from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import AuditEvent, Person
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, event, post_event, started_interview


async def setup(make_client: AppFactory, clock: FrozenClock) -> tuple[TestClient, web.Application]:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await started_interview(client, clock, "iv-1")
    await started_interview(client, clock, "iv-2", name="李四", hr=("wecom", "hr02"), email="li@example.com")
    for user_id, name, role in (("hr01", "王小姐", "hr"), ("hr02", "赵先生", "hr"), ("boss", "陈经理", "manager")):
        await add_person(app, user_id, name, role)
    await add_person(app, "root", "管理员甲", "admin")
    return client, app


async def test_in_progress_is_scoped_and_shows_minutes(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await setup(make_client, clock)
    clock.advance(minutes=12)
    mine = await ChatUser(app, "hr01").says("进行中")
    assert "张三" in mine and "李四" not in mine
    assert "已进行 12 分钟" in mine and "最近操作 12 分钟前" in mine and "已作答 2 题" in mine
    everything = await ChatUser(app, "boss").says("正在进行的面试")
    assert "张三" in everything and "李四" in everything


async def test_show_has_history_and_masks_in_groups(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "掉线"}, headers=admin_headers())
    assert resp.status == 200
    direct = await ChatUser(app, "hr01").says("查看 张三")
    assert "已终止" in direct and "需要重新面试" in direct
    assert "退出:系统故障,操作人 admin" in direct
    assert "13800001234" in direct and "zhangsan@example.com" in direct  # 1:1: details shown
    assert "开始面试" in direct and "终止面试" in direct

    group = await ChatUser(app, "hr01", chat_id="g1", chat_type="group").says("查看 张三")
    assert "13800001234" not in group and "138****1234" in group
    assert "zhangsan@example.com" not in group and "z***@example.com" in group

    assert "没有找到" in await ChatUser(app, "hr02").says("查看 张三")


def test_mask_sensitive_rules() -> None:
    text = "电话13812345678,邮箱 alice.w@corp.cn,链接 https://x.example.com/j/abc?t=1 编号 iv-20261125001"
    masked = mask_sensitive(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "a***@corp.cn" in masked
    assert "https://" not in masked
    assert "iv-20261125001" in masked  # ids are not phone numbers


async def test_stats_for_managers_only(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    for iv, reason in (("iv-1", "放弃"), ("iv-2", "摄像头故障")):
        await client.post(f"/api/interviews/{iv}/terminate", json={"reason": reason}, headers=admin_headers())
    text = await ChatUser(app, "boss").says("统计 本周")
    assert "共 2 场" in text and "候选人放弃:1" in text and "系统故障:1" in text
    assert "共 2 场" in await ChatUser(app, "boss").says("统计")
    assert "请选择统计范围" in await ChatUser(app, "boss").says("统计 去年")
    assert "没有使用该命令的权限" in await ChatUser(app, "hr01").says("统计 今天")


async def test_todos_list_and_finish_once(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    await client.post("/api/interviews/iv-1/terminate", json={"reason": "放弃"}, headers=admin_headers())
    hr = ChatUser(app, "hr01")
    listing = await hr.says("待办")
    assert "跟进候选人张三的面试" in listing
    todo_id = listing.split("#", 1)[1].split(" ", 1)[0]
    assert "没有你的未完成待办" in await ChatUser(app, "hr02").says(f"完成 {todo_id}")  # not theirs
    assert "已完成" in await hr.says(f"完成 #{todo_id}")
    assert "没有你的未完成待办" in await hr.says(f"完成 {todo_id}")
    assert "没有未完成的待办" in await hr.says("待办")
    assert "用法" in await hr.says("完成 abc")


async def test_todos_for_two_candidates_of_one_name_are_told_apart(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    for iv, position, at, mobile in (
        ("iv-1", "Java后端工程师", "2026-11-26T14:00:00+08:00", "13800001111"),
        ("iv-2", "产品经理", "2026-11-27T09:30:00+08:00", "13900002222"),
    ):
        payload = event("interview.started", iv, mobile=mobile, email=f"{iv}@example.com", occurred_at=clock.now())
        payload["interview"].update(position=position, scheduled_at=at)
        assert (await post_event(client, clock, payload)).status == 200
        resp = await client.post(f"/api/interviews/{iv}/terminate", json={"reason": "放弃"}, headers=admin_headers())
        assert resp.status == 200
    listing = (await ChatUser(app, "hr01").says("待办")).splitlines()
    todos = [line for line in listing if line.startswith("#")]
    assert [line.split(" ", 1)[1] for line in todos] == [
        "跟进候选人张三的面试(Java后端工程师 · 11-26 14:00)",
        "跟进候选人张三的面试(产品经理 · 11-27 09:30)",
    ]


async def test_grant_roles_from_chat(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await setup(make_client, clock)
    admin = ChatUser(app, "root")
    assert "已添加 钱七(hr03)" in await admin.says("授权 hr03 HR 钱七")
    assert "已将 钱七 设为 经理" in await admin.says("授权 钱七 经理")
    assert "不能修改自己的权限" in await admin.says("授权 root HR")
    assert "未知角色" in await admin.says("授权 钱七 老板")
    assert "没有使用该命令的权限" in await ChatUser(app, "boss").says("授权 hr01 管理员")
    async with app[CORE].sessions() as session:
        person = (await session.exec(select(Person).where(Person.user_id == "hr03"))).one()
        audit = (await session.exec(select(AuditEvent).where(AuditEvent.action.startswith("person.")))).all()  # type: ignore[attr-defined]
    assert person.role == "manager"
    assert [a.actor for a in audit] == ["wecom:root", "wecom:root"]
    assert "已撤销" in await admin.says("授权 钱七 取消")
    assert "你还没有登记,企业微信账号 hr03;请把它发给管理员" in await ChatUser(app, "hr03").says("进行中")


async def test_help_shows_only_allowed_commands(make_client: AppFactory, clock: FrozenClock) -> None:
    _, app = await setup(make_client, clock)
    hr_help = await ChatUser(app, "hr01").says("帮助")
    assert "终止面试" in hr_help and "待办" in hr_help
    assert "统计" not in hr_help and "授权" not in hr_help
    admin_help = await ChatUser(app, "root").says("帮助")
    assert "统计" in admin_help and "授权" in admin_help
    assert "你还没有登记,企业微信账号 stranger;请把它发给管理员" in await ChatUser(app, "stranger").says("帮助")


async def test_event_after_chat_prompt(make_client: AppFactory, clock: FrozenClock) -> None:
    """A prompt names the progress at the time it was asked; 确认 still terminates once."""
    client, app = await setup(make_client, clock)
    hr = ChatUser(app, "hr01")
    await hr.say("终止面试 张三 放弃")
    await post_event(client, clock, event("interview.answer_saved", data={"question_no": 3, "media_url": "oss://3"}))
    # No platform is connected in this test: the reply says the termination is recorded here only.
    reply = await hr.says("确认")
    assert "只在本系统记为已终止:未连接面试平台(未设置 PLATFORM_API_BASE),平台上的面试没有被终止" in reply
    assert "已保存作答" not in reply


async def test_manager_shares_an_interview_with_another_hr(make_client: AppFactory, clock: FrozenClock) -> None:
    client, app = await setup(make_client, clock)
    other = ChatUser(app, "hr02")
    assert "没有找到" in await other.says("查看 张三")
    assert "没有使用该命令的权限" in await ChatUser(app, "hr01").says("共享 张三 赵先生")

    boss = ChatUser(app, "boss")
    assert "找不到 HR「钱七」" in await boss.says("共享 张三 钱七")
    assert "已把 张三 的面试共享给 赵先生" in await boss.says("共享 张三 赵先生")
    assert "已经共享给 赵先生" in await boss.says("共享 张三 hr02")
    assert "王小姐 本来就负责" in await boss.says("共享 张三 王小姐")

    assert "张三" in await other.says("查看 张三")
    [prompt] = await other.say("终止面试 张三 放弃")
    assert prompt.kind == "confirm"
    assert "已终止 张三 的面试" in await other.says("确认")
    detail = await (await client.get("/api/interviews/iv-1", headers=admin_headers())).json()
    assert detail["exit"]["operator"] == "wecom:hr02"
    # Sharing one interview does not open the others.
    assert "李四" not in await ChatUser(app, "hr01").says("进行中")
