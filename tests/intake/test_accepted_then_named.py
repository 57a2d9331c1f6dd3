"""An accepted platform event is answered at once and applied a moment later: an HR's command that
names its interview in that moment waits for it and finds the interview, instead of being told there
is none. Nothing waits for an event held back for a retry, or when nothing is waiting."""

from __future__ import annotations

import asyncio
import time

from bot.clock import FrozenClock
from bot.keys import CORE, PLATFORM_INTAKE
from bot.services import events
from storage import repo
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, admin_headers, event, eventually, post_event
from tests.faults import Faults

NOT_FOUND = "没有找到"


async def test_a_command_naming_a_just_accepted_interview_waits_for_it_and_finds_it(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    app = client.app
    await add_person(app, "hr01", "王小姐", "hr")
    worker = app[PLATFORM_INTAKE].worker
    await worker.stop(5)  # as if busy with other interviews' events: what is stored waits
    resp = await post_event(client, clock, event("interview.started", hr=("wecom", "hr01")), settle=False)
    assert (resp.status, (await resp.json())["status"]) == (200, "accepted")

    hr = ChatUser(app, "hr01")
    asked = asyncio.create_task(hr.says("终止面试 张三 候选人放弃"))
    await asyncio.sleep(0.3)
    assert not asked.done()  # waiting for the accepted event, not answering "not found"
    worker.start()
    text = await asyncio.wait_for(asked, 5)
    assert NOT_FOUND not in text and "张三" in text and "确认" in text, text

    status = await hr.says("查看 张三")
    assert "张三" in status and NOT_FOUND not in status, status


async def test_the_admin_api_finds_a_just_accepted_interview_too(make_client: AppFactory, clock: FrozenClock) -> None:
    """A vendor's integration posts the event, then reads or ends the interview by its id at once."""
    client = await make_client()
    worker = client.app[PLATFORM_INTAKE].worker
    for platform_id, step in (("iv-1", "read"), ("iv-2", "timeline"), ("iv-3", "terminate")):
        await worker.stop(5)
        resp = await post_event(client, clock, event("interview.started", platform_id), settle=False)
        assert resp.status == 200
        if step != "terminate":
            path = f"/api/interviews/{platform_id}" + ("/timeline" if step == "timeline" else "")
            asked = asyncio.create_task(client.get(path, headers=admin_headers()))
        else:
            asked = asyncio.create_task(
                client.post(
                    f"/api/interviews/{platform_id}/terminate",
                    json={"reason": "candidate_quit"},
                    headers=admin_headers(),
                )
            )
        await asyncio.sleep(0.3)
        assert not asked.done()
        worker.start()
        answer = await asyncio.wait_for(asked, 5)
        assert answer.status == 200, (step, await answer.text())
    gone = await client.get("/api/interviews/iv-404", headers=admin_headers())
    assert gone.status == 404  # nothing waiting: at once, as before


async def test_with_nothing_waiting_an_unknown_name_is_answered_at_once(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    await add_person(client.app, "hr01", "王小姐", "hr")
    await post_event(client, clock, event("interview.started", hr=("wecom", "hr01")))
    hr = ChatUser(client.app, "hr01")
    started = time.monotonic()
    text = await hr.says("终止面试 李四 候选人放弃")
    assert NOT_FOUND in text and "李四" in text, text
    assert time.monotonic() - started < events.CATCH_UP_SECONDS / 2  # no wait for the catch-up


async def test_an_event_held_back_for_a_retry_is_not_waited_for(
    make_client: AppFactory, clock: FrozenClock, faults: Faults
) -> None:
    client = await make_client()
    await add_person(client.app, "hr01", "王小姐", "hr")
    # The database refuses to record applied events (a trigger): the event fails and waits for its retry.
    await faults.install("platform_event")
    await faults.arm("platform_event")
    resp = await post_event(client, clock, event("interview.started", hr=("wecom", "hr01")), settle=False)
    assert resp.status == 200

    async def tried() -> bool:
        async with client.app[CORE].sessions() as session:
            [item] = await repo.intake_items(session, source="platform")
        return item.attempts == 1 and item.status == "received"

    await eventually(tried)
    hr = ChatUser(client.app, "hr01")
    started = time.monotonic()
    text = await hr.says("终止面试 张三 候选人放弃")
    assert NOT_FOUND in text, text  # true: the interview is not known here yet
    assert time.monotonic() - started < events.CATCH_UP_SECONDS / 2
