"""What the fake Feishu was sent: waiting for messages, reading a card's buttons and text."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import eventually
from tests.fakes.feishu_api import FakeFeishu


async def shown(fake: FakeFeishu, n: int) -> None:
    """Until the fake has been sent at least ``n`` messages."""

    async def check() -> bool:
        return len(fake.messages) >= n

    await eventually(check)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    assert message["msg_type"] == "interactive"
    [action] = [e for e in message["content"]["elements"] if e["tag"] == "action"]
    return action["actions"]


def card_text(message: dict[str, Any]) -> str:
    return json.dumps(message["content"], ensure_ascii=False)
