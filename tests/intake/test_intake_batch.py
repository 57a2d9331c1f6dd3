"""A batch of callbacks stored together isolates its bad rows: when the group commit fails, the
callbacks are stored one by one, so only the ones the database refuses are not acknowledged."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlmodel import func, select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import IntakeItem
from tests.chat import add_person
from tests.conftest import AppFactory, eventually
from tests.fakes.wecom_api import FakeWeCom, WeComSide, text_xml, wecom_settings
from tests.faults import Faults

# At most 30 replies a minute go to one WeCom member (pacing): 30 callbacks from one HR.
CALLBACKS = 30
# The database refuses the stored message of every MsgId starting with this (a trigger).
POISON = 666


async def test_one_bad_callback_does_not_fail_its_batch(
    make_client: AppFactory,
    clock: FrozenClock,
    fake_wecom: FakeWeCom,
    faults: Faults,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await faults.install("intake_item", when=f"NEW.key LIKE 'msg:{POISON}%'")
    await faults.arm("intake_item")
    pg = app[CORE].settings.database_url.startswith("postgresql")
    side = WeComSide()
    ts = int(clock.now().timestamp())
    bad: set[int] = set()
    posts = []
    for n in range(CALLBACKS):
        if n % 10 == 3:
            posts.append(side.app_post(text_xml("hr01", "帮助", POISON * 1000 + n), timestamp=ts))
            bad.add(n)
        elif pg and n % 10 == 7:  # a MsgId longer than the dedupe column: PostgreSQL refuses it
            posts.append(side.app_post(text_xml("hr01", "帮助", int(str(n) + "9" * 398)), timestamp=ts))
            bad.add(n)
        else:
            posts.append(side.app_post(text_xml("hr01", "帮助", 9000 + n), timestamp=ts))
    caplog.set_level(logging.WARNING)
    responses = await asyncio.gather(*(client.post(path, data=body) for path, body in posts))
    statuses = [r.status for r in responses]
    assert [s for n, s in enumerate(statuses) if n not in bad] == [200] * (CALLBACKS - len(bad))
    assert all(s != 200 for n, s in enumerate(statuses) if n in bad), statuses
    assert "one by one" in caplog.text  # a batch failed and was stored again callback by callback
    good = CALLBACKS - len(bad)

    async with app[CORE].sessions() as session:
        stmt = select(func.count()).select_from(IntakeItem).where(IntakeItem.source == "wecom")
        stored = (await session.exec(stmt)).one()
    assert stored == good  # a refused callback leaves nothing stored: its redelivery is taken

    async def all_answered() -> bool:
        return len(fake_wecom.sent("message/send")) == good

    await eventually(all_answered, timeout=20)
    assert all("可用命令" in m["text"]["content"] for m in fake_wecom.sent("message/send"))

    # WeCom retries the refused ones; once the database takes them, they are processed too.
    await faults.disarm("intake_item")
    retry = [posts[n] for n in sorted(bad) if n % 10 == 3]
    again = await asyncio.gather(*(client.post(path, data=body) for path, body in retry))
    assert [r.status for r in again] == [200] * len(retry)

    async def retried_answered() -> bool:
        return len(fake_wecom.sent("message/send")) == good + len(retry)

    await eventually(retried_answered, timeout=20)
