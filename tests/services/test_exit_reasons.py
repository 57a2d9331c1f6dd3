"""Default exit reasons: seeded at start-up into new and existing databases, never over admins' edits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlmodel import col, delete, select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.db import alembic_config, create_engine, migrate, session_maker
from storage.models import ExitReason
from tests.chat import ChatUser, add_person
from tests.conftest import AppFactory, started_interview


async def test_start_up_adds_missing_defaults_and_keeps_admin_edits(
    make_client: AppFactory, clock: FrozenClock
) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(ExitReason).order_by(col(ExitReason.sort_order)))).all()
        assert [r.code for r in rows][-1] == "other"
        # A database from before 其他 existed, where an admin renamed a reason, trimmed its
        # synonyms, retired another and added one of their own.
        await session.exec(delete(ExitReason).where(col(ExitReason.code) == "other"))
        quit_ = next(r for r in rows if r.code == "candidate_quit")
        quit_.name, quit_.synonyms = "候选人主动放弃", ["放弃"]
        next(r for r in rows if r.code == "process_change").active = False
        session.add(ExitReason(code="offer_elsewhere", name="已接受其他offer", outcome="未完成", sort_order=9))
        await session.commit()
    await client.close()

    client = await make_client()  # the next start-up seeds what is missing
    app = client.server.app
    assert app is not None
    async with app[CORE].sessions() as session:
        rows = (await session.exec(select(ExitReason).order_by(col(ExitReason.sort_order), col(ExitReason.id)))).all()
    by_code = {r.code: r for r in rows}
    assert (by_code["candidate_quit"].name, by_code["candidate_quit"].synonyms) == ("候选人主动放弃", ["放弃"])
    assert by_code["process_change"].active is False
    assert by_code["other"].outcome == "需要重新面试"
    assert [r.code for r in rows][-2:] == ["offer_elsewhere", "other"]  # added after the admin's own
    assert len(rows) == 7  # nothing else came back or doubled

    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock)
    listed = await ChatUser(app, "hr01").says("终止面试 张三")
    assert listed.splitlines()[1:] == [
        "1. 候选人主动放弃",
        "2. 系统故障",
        "3. 操作不熟悉",
        "4. 超时未操作",
        "5. 已接受其他offer",
        "6. 其他",
    ]


async def test_words_naming_two_reasons_equally_are_not_guessed(make_client: AppFactory, clock: FrozenClock) -> None:
    client = await make_client()
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    await started_interview(client, clock)
    hr = ChatUser(app, "hr01")
    assert "无法识别原因「网络卡顿,不想面了」" in await hr.says("终止面试 张三 网络卡顿,不想面了")
    await hr.says("取消")
    [prompt] = await hr.say("终止面试 张三 摄像头打不开")
    assert "原因:系统故障" in prompt.text


def test_upgrade_gives_an_existing_database_the_device_synonyms(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    command.upgrade(alembic_config(url), "0005")  # a database from before migration 0010

    async def seed_old() -> None:  # the reasons as an older release seeded them, then edited by an admin
        engine = create_engine(url)
        async with session_maker(engine)() as session:
            session.add(
                ExitReason(code="system_failure", name="系统故障", outcome="需要重新面试", synonyms=["掉线", "卡了"])
            )
            session.add(ExitReason(code="candidate_quit", name="候选人放弃", outcome="未完成", synonyms=["放弃"]))
            await session.commit()
        await engine.dispose()

    async def read() -> dict[str, list[str]]:
        engine = create_engine(url)
        async with session_maker(engine)() as session:
            rows = (await session.exec(select(ExitReason))).all()
        await engine.dispose()
        return {r.code: list(r.synonyms) for r in rows}

    asyncio.run(seed_old())
    migrate(url)
    synonyms = asyncio.run(read())
    assert synonyms["system_failure"][:2] == ["掉线", "卡了"]  # the admin's words stay, first
    assert "摄像头" in synonyms["system_failure"] and "麦克风" in synonyms["system_failure"]
    assert synonyms["candidate_quit"] == ["放弃"]  # other reasons untouched
