"""A small company the language corpus is judged against, built through signed platform events.

Every date is derived from the clock (CLOCK_START: Tuesday 2026-03-10 10:00 Asia/Shanghai).
``build_world`` posts events (scheduled, started, answer_saved, help_requested) and adds people;
one interview is terminated through the chat path so it has an exit record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from tests.chat import ChatUser, add_person
from tests.conftest import event, post_event

TZ = ZoneInfo("Asia/Shanghai")

# user_id -> (name, role); all on wecom.
PEOPLE: dict[str, tuple[str, str]] = {
    "hr01": ("王小姐", "hr"),
    "hr02": ("赵先生", "hr"),
    "boss": ("陈经理", "manager"),
    "admin01": ("管理员", "admin"),
}


@dataclass(frozen=True)
class Seat:
    """One interview of the world."""

    platform_id: str
    name: str
    position: str
    hr: str
    mobile: str
    state: str  # in_progress | scheduled | terminated
    answered: int = 0
    # Scheduled start: (days from today, hour, minute).
    when: tuple[int, int, int] = (0, 9, 30)


SEATS: tuple[Seat, ...] = (
    Seat("iv-liming", "李明", "Java后端工程师", "hr01", "13800000001", "in_progress", 3),
    Seat("iv-wangfang", "王芳", "产品经理", "hr01", "13800000002", "in_progress", 5),
    Seat("iv-gaofeng", "高峰", "测试工程师", "hr01", "13800000003", "in_progress", 2),
    Seat("iv-heting", "贺婷", "UI设计师", "hr01", "13800000004", "in_progress", 1),
    Seat("iv-ouyang", "欧阳明轩", "算法工程师", "hr01", "13800000005", "in_progress", 4),
    Seat("iv-zhangsan-pm", "张三", "产品经理", "hr01", "13800001111", "in_progress", 2),
    Seat("iv-zhangsan-qa", "张三", "测试工程师", "hr01", "13900002222", "in_progress", 1),
    Seat("iv-liuyang", "刘洋", "运营专员", "hr02", "13800000008", "in_progress", 2),
    Seat("iv-zhaomin", "赵敏", "销售代表", "hr01", "13800000009", "scheduled", when=(1, 14, 0)),
    Seat("iv-sunhao", "孙浩", "Java后端工程师", "hr01", "13800000010", "scheduled", when=(2, 10, 0)),
    Seat("iv-zhoujie", "周杰", "前端工程师", "hr01", "13800000011", "terminated", 2),
)

# The candidate help request (求助) left open: 刘洋 (hr02's) wants to stop, the network is bad.
HELP_REQUEST = ("iv-liuyang", "网络太卡了,想先退出")


@dataclass
class World:
    client: TestClient
    clock: FrozenClock
    seats: dict[str, Seat] = field(default_factory=dict)

    def at(self, days: int, hour: int, minute: int = 0) -> datetime:
        today = self.clock.now().astimezone(TZ).date()
        return datetime.combine(today + timedelta(days=days), time(hour, minute), TZ)


async def _post(client: TestClient, clock: FrozenClock, payload: dict[str, Any]) -> None:
    resp = await post_event(client, clock, payload)
    assert resp.status == 200, await resp.text()


def _event(world: World, seat: Seat, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = event(
        kind,
        seat.platform_id,
        name=seat.name,
        mobile=seat.mobile,
        email=f"{seat.platform_id}@example.com",
        hr=("wecom", seat.hr),
        occurred_at=world.clock.now(),
        data=data,
    )
    payload["interview"]["position"] = seat.position
    payload["interview"]["scheduled_at"] = world.at(*seat.when).isoformat()
    return payload


async def build_world(client: TestClient, clock: FrozenClock) -> World:
    app = client.server.app
    assert app is not None
    world = World(client, clock, {s.platform_id: s for s in SEATS})
    for user_id, (name, role) in PEOPLE.items():
        await add_person(app, user_id, name, role)
    for seat in SEATS:
        await _post(client, clock, _event(world, seat, "interview.scheduled"))
        if seat.state == "scheduled":
            continue
        await _post(client, clock, _event(world, seat, "interview.started"))
        for q in range(1, seat.answered + 1):
            await _post(
                client,
                clock,
                _event(world, seat, "interview.answer_saved", {"question_no": q, "media_url": f"oss://a/{q}.mp4"}),
            )
    # 周杰 was ended earlier today through chat, so there is an exit record (and a to-do).
    hr = ChatUser(app, "hr01", chat_id="world-setup")
    await hr.say("终止面试 周杰 网络卡顿")
    await hr.say("确认")
    platform_id, reason = HELP_REQUEST
    await _post(
        client,
        clock,
        _event(world, world.seats[platform_id], "interview.help_requested", {"reason": reason, "wants_exit": True}),
    )
    return world
