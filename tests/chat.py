"""A text 'channel' for handler tests (errbot's text backend habit): say something, read replies."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from aiohttp import web

from bot.chat.messages import ChatType, IncomingMessage, Reply
from bot.clock import FrozenClock
from bot.keys import CORE, DISPATCHER
from storage.models import Person
from tests.conftest import AppFactory, started_interview

_ids = itertools.count(1)


async def add_person(app: web.Application, user_id: str, name: str, role: str, platform: str = "wecom") -> None:
    core = app[CORE]
    async with core.sessions() as session:
        session.add(
            Person(platform=platform, user_id=user_id, name=name, role=role, mobile=None, created_at=core.clock.now())
        )
        await session.commit()


async def staffed_interview(make_client: AppFactory, clock: FrozenClock) -> web.Application:
    """An app with iv-1 started and hr01 王小姐, hr02 赵先生 (HR) and boss 陈经理 (manager) registered."""
    client = await make_client()
    await started_interview(client, clock)
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await add_person(app, "hr02", "赵先生", "hr")
    await add_person(app, "boss", "陈经理", "manager")
    return app


@dataclass
class ChatUser:
    app: web.Application
    user_id: str
    platform: str = "wecom"
    chat_id: str | None = None
    chat_type: ChatType = "direct"
    history: list[Reply] = field(default_factory=list)

    async def say(self, text: str) -> list[Reply]:
        msg = IncomingMessage(
            platform=self.platform,
            sender_id=self.user_id,
            chat_id=self.chat_id or self.user_id,
            chat_type=self.chat_type,
            text=text,
            msg_id=f"m{next(_ids)}",
        )
        replies = await self.app[DISPATCHER].handle(msg)
        self.history.extend(replies)
        return replies

    async def says(self, text: str) -> str:
        """The single reply's text."""
        replies = await self.say(text)
        assert len(replies) == 1, replies
        return replies[0].text


async def prompt_id(app: web.Application, action: str = "terminate") -> int:
    """The id of the newest prompt of this kind (what its buttons name: 确认 #<id>)."""
    from sqlmodel import col, select

    from storage.models import PendingAction

    async with app[CORE].sessions() as session:
        stmt = select(PendingAction).where(PendingAction.action == action).order_by(col(PendingAction.id).desc())
        row = (await session.exec(stmt)).first()
    assert row is not None and row.id is not None
    return row.id
