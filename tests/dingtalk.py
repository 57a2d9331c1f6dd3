"""A DingTalk HR ready to chat: the app configured against the fake DingTalk, hr01 registered there and
iv-1 started with hr01 as its HR."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FrozenClock
from tests.chat import add_person
from tests.conftest import AppFactory, started_interview
from tests.fakes.dingtalk_api import FakeDingTalk


async def hr_app(make_client: AppFactory, clock: FrozenClock, fake: FakeDingTalk, **extra: Any) -> TestClient:
    client = await make_client(**fake.settings(**extra))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock, hr=("dingtalk", "hr01"))
    return client
