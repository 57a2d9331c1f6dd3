"""The hops of one WeCom command, traced on the real app (not counted by hand): every function of ours
entered from the callback's arrival until the reply reaches WeCom, the files they are in, the asyncio
tasks they ran in, and the calls between the channel's code and the intake's (the hand-offs).

Run with ``-s`` to see the counts; docs/ARCHITECTURE.md gives them before and after issue 23."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bot.clock import FrozenClock
from tests.chat import add_person
from tests.conftest import AppFactory, eventually, started_interview
from tests.fakes.wecom_api import FakeWeCom, WeComSide, text_xml, wecom_settings

ROOT = Path(__file__).resolve().parents[2]
OURS = tuple(str(ROOT / part) + "/" for part in ("bot", "handlers", "storage"))
CHANNEL = str(ROOT / "bot" / "channels" / "wecom") + "/"
INTAKE = tuple(str(ROOT / "bot" / name) for name in ("intake.py", "intake_worker.py"))


def _side(filename: str) -> str | None:
    if filename.startswith(CHANNEL):
        return "channel"
    if filename.startswith(INTAKE):
        return "intake"
    return None


@dataclass
class Trace:
    functions: set[tuple[str, str]] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    handoffs: set[tuple[str, str]] = field(default_factory=set)

    def enter(self, frame: FrameType) -> None:
        code = frame.f_code
        if not code.co_filename.startswith(OURS):
            return
        name = code.co_qualname
        if "<" in name:  # comprehensions, lambdas, generator expressions: part of their function
            return
        self.functions.add((code.co_filename, name))
        task = asyncio.current_task()
        self.tasks.add(task.get_name().split(":")[0].rstrip("-0123456789") if task else "callback")
        caller = frame.f_back
        while caller is not None and not caller.f_code.co_filename.startswith(OURS):
            if caller.f_code.co_filename.endswith(("asyncio/events.py", "asyncio/tasks.py")):
                return  # started by the event loop: a task's first step, not a call
            caller = caller.f_back
        if caller is None:
            return
        sides = (_side(caller.f_code.co_filename), _side(code.co_filename))
        if None not in sides and sides[0] != sides[1]:
            self.handoffs.add((caller.f_code.co_qualname, name))

    @property
    def files(self) -> set[str]:
        return {path for path, _ in self.functions}


@contextmanager
def tracing() -> Iterator[Trace]:
    trace = Trace()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            trace.enter(frame)

    sys.setprofile(profile)
    try:
        yield trace
    finally:
        sys.setprofile(None)


async def test_one_wecom_command_from_callback_to_reply(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    await started_interview(client, clock)
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    side = WeComSide()

    async def say(msg_id: int) -> None:
        before = len(fake_wecom.sent("message/send"))
        path, body = side.app_post(text_xml("hr01", "进行中", msg_id), timestamp=int(clock.now().timestamp()))
        assert (await client.post(path, data=body)).status == 200

        async def replied() -> bool:
            return len(fake_wecom.sent("message/send")) > before

        await eventually(replied)

    await say(1)  # warm: first-use work (tokens, caches, imports) is not the path
    clock.advance(seconds=5)
    with tracing() as trace:
        await say(2)
    sys.stderr.write(
        f"\none WeCom command: {len(trace.functions)} functions of ours in {len(trace.files)} files, "
        f"{len(trace.tasks)} asyncio tasks {sorted(trace.tasks)}, {len(trace.handoffs)} channel-intake hand-offs "
        f"{sorted(trace.handoffs)}\n"
    )
    # The channel gives the message to the intake, and the intake asks it for the stored message and
    # for the reply rows: nothing else crosses (before issue 23: six hand-offs).
    assert len(trace.handoffs) <= 3, sorted(trace.handoffs)
    assert trace.functions
