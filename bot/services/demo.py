"""Demo data for a first try without an interview platform (``python -m bot demo``).

The sample interviews are platform events, posted to the running service's signed events API by
the command line exactly as a platform would post them; here is only what they say and how
they go again. Everything demo is marked: interview ids (and so event ids) start with ``demo-``,
candidates have no mobile and an ``@example.com`` address, so nothing real is matched or touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.services.context import Core
from storage import repo

PREFIX = "demo-"
MAILBOX = "example.com"


@dataclass(frozen=True)
class Sample:
    """One demo interview: who, for what, and how far it got."""

    platform_id: str
    name: str
    position: str
    email: str
    state: str  # "in_progress" | "scheduled"
    answered: int = 0
    help_reason: str | None = None  # a candidate's 求助 (asks for help, does not ask to stop)


SAMPLES = (
    Sample(f"{PREFIX}1001", "林小雨", "产品经理", f"demo.linxiaoyu@{MAILBOX}", "in_progress", answered=2),
    Sample(
        f"{PREFIX}1002",
        "陈浩",
        "Java后端工程师",
        f"demo.chenhao@{MAILBOX}",
        "in_progress",
        answered=1,
        help_reason="摄像头打不开,想换个时间再面",
    ),
    Sample(f"{PREFIX}1003", "王磊", "前端工程师", f"demo.wanglei@{MAILBOX}", "in_progress", answered=3),
    Sample(f"{PREFIX}1004", "周婷", "测试工程师", f"demo.zhouting@{MAILBOX}", "scheduled"),
)


def is_demo(platform_id: str) -> bool:
    return platform_id.startswith(PREFIX)


def _event(
    interview: dict[str, Any], kind: str, at: datetime, data: dict[str, Any] | None = None, key: str = ""
) -> dict[str, Any]:
    return {
        "event_id": f"{interview['id']}:{kind}{key}",
        "type": kind,
        "occurred_at": at.isoformat(),
        "interview": interview,
        "data": data or {},
    }


def events(now: datetime, tz: ZoneInfo, hr: tuple[str, str] | None) -> list[dict[str, Any]]:
    """The platform events that make ``SAMPLES``, in order, none after ``now``. Their ids are
    fixed, so posting them again is answered "duplicate" and changes nothing."""
    out: list[dict[str, Any]] = []
    tomorrow = datetime.combine((now.astimezone(tz) + timedelta(days=1)).date(), time(15, 0), tzinfo=tz)
    for n, s in enumerate(SAMPLES):
        began = now - timedelta(minutes=20 + 3 * n)
        interview = {
            "id": s.platform_id,
            "position": s.position,
            "scheduled_at": (tomorrow if s.state == "scheduled" else began).isoformat(),
            "join_url": f"https://interview.{MAILBOX}/j/{s.platform_id}",
            "candidate": {"name": s.name, "mobile": None, "email": s.email},
            "hr": {"platform": hr[0], "user_id": hr[1]} if hr else None,
        }
        out.append(_event(interview, "interview.scheduled", began - timedelta(days=1)))
        if s.state != "in_progress":
            continue
        out.append(_event(interview, "interview.started", began))
        for q in range(1, s.answered + 1):
            at = began + timedelta(minutes=4 * q)
            out.append(_event(interview, "interview.answer_saved", at, {"question_no": q}, f":{q}"))
        out.append(_event(interview, "interview.activity", now - timedelta(seconds=5)))
        if s.help_reason:
            data = {"reason": s.help_reason, "wants_exit": False}
            out.append(_event(interview, "interview.help_requested", now - timedelta(seconds=2), data))
    return out


async def remove(core: Core) -> dict[str, int]:
    """Delete the demo interviews and everything that belongs to them (nothing else)."""
    async with core.sessions() as session:
        return await repo.purge_interviews_and_commit(session, platform_id_prefix=PREFIX)
