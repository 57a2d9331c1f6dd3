"""A claim lives as long as its replica: the takeover rule (``storage.repo.claimer_gone``) on the
database this run uses (SQLite by default, PostgreSQL with BOT_TEST_DATABASE_URL).

Every serving process holds a lease ``replica:<boot>`` (``bot.services.leases.heartbeat``). Rows it
claims are its own while that lease is renewed; once it has expired or been given up, another
process takes them by a compare-and-set on the old claim, one winner per row. The two-process
kill -9 case is tests/e2e/test_two_process_replica_death.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.channels.wecom import WECOM
from bot.channels.wecom.parse import parse_app_xml
from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services.context import Core
from bot.services.leases import heartbeat
from bot.templating import Templates
from storage import repo
from storage.db import SessionMaker, create_engine, session_maker
from storage.models import IntakeItem, Lease, Notice
from tests.chat import add_person
from tests.conftest import AppFactory, eventually, make_settings, replica_alive
from tests.fakes.wecom_api import FakeWeCom, text_xml, wecom_settings

LOCK = timedelta(seconds=120)  # the outbox's own lock (bot.outbox.LOCK_SECONDS)
A, B, C = "replica-a:8080/aaaa", "replica-b:8080/bbbb", "replica-c:8080/cccc"


@pytest.fixture
async def sessions(clean_db: str) -> AsyncIterator[SessionMaker]:
    engine = create_engine(clean_db)
    yield session_maker(engine)
    await engine.dispose()


async def add_rows(sessions: SessionMaker, now: datetime, *rows: tuple[str, str | None, str]) -> list[int]:
    """Outbox rows (status, claimed_by, kind) as a process leaves them: 'sending' under the outbox's
    lock, or 'pending' and due in a minute."""
    notices = [
        Notice(
            kind=kind,
            channel="wecom",
            recipient="hr01",
            body="你好",
            destination="wecom:user:hr01",
            status=status,
            claimed_by=claimed_by,
            locked_until=now + LOCK if status == "sending" else None,
            next_attempt_at=now + timedelta(seconds=60) if status == "pending" else now,
            created_at=now,
        )
        for status, claimed_by, kind in rows
    ]
    async with sessions() as session:
        session.add_all(notices)
        await session.commit()
        return [n.id for n in notices if n.id is not None]


async def gone(sessions: SessionMaker, now: datetime, me: str | None) -> list[int]:
    """Ids of the rows whose claimer ``me`` would judge gone."""
    async with sessions() as session:
        rule = repo.claimer_gone(col(Notice.claimed_by), now=now, me=me)
        stmt = select(Notice.id).where(rule).order_by(col(Notice.id))
        return [i for i in (await session.exec(stmt)).all() if i is not None]


async def claim(sessions: SessionMaker, ids: list[int], now: datetime, worker: str) -> list[int]:
    """The rows of ``ids`` the outbox of ``worker`` wins, one compare-and-set each."""
    won = []
    for notice_id in ids:
        async with sessions() as session:
            lock = now + LOCK
            if await repo.claim_notice_and_commit(
                session, notice_id=notice_id, now=now, lock_until=lock, worker=worker
            ):
                won.append(notice_id)
    return won


async def test_a_claim_is_taken_over_only_once_its_replicas_lease_has_expired(
    sessions: SessionMaker, clock: FrozenClock
) -> None:
    now = clock.now()
    await replica_alive(sessions, A, now=now, until=now + timedelta(seconds=5))
    await replica_alive(sessions, B, now=now, until=now + timedelta(hours=1))
    ids = await add_rows(sessions, now, ("sending", A, "reply"), ("sending", A, "notice"), ("sending", B, "reply"))
    sending_a, notice_a, sending_b = ids

    # A renews its lease: nothing of its is due for anyone else, though its locks have not expired.
    assert await gone(sessions, now, me=C) == []
    async with sessions() as session:
        assert await repo.due_notice_ids(session, now=now, channels=["wecom"], limit=10, worker=C) == []
    assert await claim(sessions, ids, now, C) == []

    # A stopped renewing: five seconds on, its sending rows are C's to take, B's (alive) are not;
    # their locks have not run out.
    later = now + timedelta(seconds=6)
    assert await gone(sessions, later, me=C) == [sending_a, notice_a]
    async with sessions() as session:
        due = await repo.due_notice_ids(session, now=later, channels=["wecom"], limit=10, worker=C)
    assert sorted(due) == [sending_a, notice_a]
    assert await claim(sessions, ids, later, C) == [sending_a, notice_a]
    async with sessions() as session:
        rows = {n.id: n for n in (await session.exec(select(Notice))).all()}
    assert rows[sending_a].claimed_by == C and rows[notice_a].claimed_by == C
    assert rows[notice_a].status == "sending" and rows[sending_b].claimed_by == B

    # C has no lease in this test, so now its claims look gone to B: B takes them from C (the
    # compare-and-set is on C's claim), never from A again.
    assert await claim(sessions, [sending_a], later, B) == [sending_a]
    assert await claim(sessions, [sending_a], later, C) == []  # B is alive: its claim holds


async def test_only_one_of_two_replicas_wins_a_dead_replicas_row(sessions: SessionMaker, clock: FrozenClock) -> None:
    now = clock.now()
    ids = await add_rows(sessions, now, *[("sending", A, "reply")] * 40)
    later = now + timedelta(seconds=1)  # A never had a lease: its claims are gone
    await replica_alive(sessions, B, now=now, until=later + timedelta(hours=1))
    await replica_alive(sessions, C, now=now, until=later + timedelta(hours=1))
    won_b, won_c = await asyncio.gather(claim(sessions, ids, later, B), claim(sessions, ids, later, C))
    assert sorted(won_b + won_c) == ids and not set(won_b) & set(won_c)
    async with sessions() as session:
        owners = {n.id: n.claimed_by for n in (await session.exec(select(Notice))).all()}
    assert all(owners[i] == B for i in won_b) and all(owners[i] == C for i in won_c)


async def test_run_tokens_belong_to_their_process_and_ids_are_compared_whole(
    sessions: SessionMaker, clock: FrozenClock
) -> None:
    now = clock.now()
    await replica_alive(sessions, "host:1/12", now=now, until=now + timedelta(minutes=1))
    await replica_alive(sessions, "host:1/7", now=now, until=now + timedelta(minutes=1))
    claims = ["host:1/12#00ff", "host:1/12", "host:1/1#00ff", "host:1/1", "host:1/123", "host:1/7%#1", None]
    ids = await add_rows(sessions, now, *[("sending", c, "reply") for c in claims])
    # Alive: host:1/12 itself and its runs. Gone: host:1/1 and host:1/123 (only prefixes of a live
    # id), a token whose process part is not a live id, and nothing is judged for an unclaimed row.
    assert await gone(sessions, now, me=None) == [ids[2], ids[3], ids[4], ids[5]]


async def test_a_process_never_judges_its_own_claims_by_its_lease(sessions: SessionMaker, clock: FrozenClock) -> None:
    now = clock.now()
    ids = await add_rows(sessions, now, ("sending", A, "reply"), ("pending", f"{A}#beef", "termination"))
    later = now + timedelta(seconds=30)  # A has no lease at all: to anyone else both are gone
    assert await gone(sessions, later, me=B) == ids
    assert await gone(sessions, later, me=A) == []  # its own: it knows its runs, its lock decides
    assert await claim(sessions, ids, later, A) == []


async def test_the_heartbeat_holds_the_replica_lease_and_a_clean_stop_frees_its_claims_at_once(
    sessions: SessionMaker, clean_db: str, clock: FrozenClock
) -> None:
    settings = make_settings(clean_db, lease_seconds=3)
    a = Core(settings=settings, sessions=sessions, clock=clock, templates=Templates(), instance="replica-a:8080")
    beat = heartbeat(a)
    assert await beat.hold_first()
    beat.start()
    now = clock.now()
    [row] = await add_rows(sessions, now, ("sending", a.worker_id, "reply"))
    async with sessions() as session:
        lease = await repo.get_lease(session, name=beat.name)
    assert lease is not None and lease.holder == a.worker_id and lease.expires_at == now + timedelta(seconds=3)
    assert await claim(sessions, [row], now, B) == []

    clock.advance(seconds=2)  # renewed every second (a third of BOT_LEASE_SECONDS)
    for _ in range(200):
        async with sessions() as session:
            lease = await repo.get_lease(session, name=beat.name)
        if lease is not None and lease.expires_at == clock.now() + timedelta(seconds=3):
            break
        await asyncio.sleep(0.02)
    assert lease is not None and lease.expires_at == clock.now() + timedelta(seconds=3)
    assert await claim(sessions, [row], clock.now() + timedelta(seconds=2), B) == []

    await beat.stop()
    assert await claim(sessions, [row], clock.now(), B) == [row]


async def test_a_serving_app_holds_its_replica_lease_until_it_stops(
    make_client: AppFactory, sessions: SessionMaker, clock: FrozenClock
) -> None:
    now = clock.now()
    await replica_alive(sessions, "old-host:8080/dead", now=now - timedelta(hours=2), until=now - timedelta(hours=1))
    await replica_alive(sessions, B, now=now, until=now + timedelta(hours=1))
    client = await make_client()
    assert client.server.app is not None
    core = client.server.app[CORE]
    async with core.sessions() as session:
        leases = (await session.exec(select(Lease).where(col(Lease.name).startswith(repo.REPLICA_LEASE)))).all()
    # The expired lease of a boot long gone is pruned at start-up; a live replica's stays.
    assert sorted(lease.holder for lease in leases) == sorted([core.worker_id, B])
    await client.close()
    async with sessions() as session:
        left = (await session.exec(select(Lease).where(col(Lease.name).startswith(repo.REPLICA_LEASE)))).all()
    assert [lease.holder for lease in left] == [B]


async def test_a_dead_replicas_chat_messages_are_claimed_by_the_intake_of_their_source(
    sessions: SessionMaker, clock: FrozenClock
) -> None:
    """Chat messages are intake items like platform events: the one claim statement takes a dead
    replica's items of its source (whatever their claim says), never a live one's, never another
    source's, and not one waiting for its retry."""
    now = clock.now()
    await replica_alive(sessions, B, now=now, until=now + timedelta(hours=1))
    far = now + timedelta(minutes=2)
    items = [
        ("wecom", "m1", "hr01", A, far, "processing"),  # being processed when A died
        ("wecom", "m2", "hr02", B, far, "processing"),  # being processed by B, alive
        ("wecom", "m3", "hr03", A, None, "done"),  # done
        ("feishu", "m4", "hr04", A, far, "processing"),  # another source's
        ("wecom", "m5", "hr05", None, far, "received"),  # tried and failed once: waits for its retry
        ("wecom", "m6", "hr06", None, None, "received"),  # stored, never claimed
    ]
    async with sessions() as session:
        for source, key, sender, *_ in items:
            await repo.insert_intake_items(
                session, source=source, items=[{"key": key, "order_key": sender, "payload": {}}], now=now
            )
        await session.commit()
        stored = {i.key: i for s in ("wecom", "feishu") for i in await repo.intake_items(session, source=s)}
        for _, key, _, claimer, until, status in items:
            row = await session.get(IntakeItem, stored[key].id)
            assert row is not None
            row.claimed_by, row.claimed_until, row.status = claimer, until, status
        await session.commit()
    async with sessions() as session:
        taken = await repo.claim_intake_and_commit(session, source="wecom", worker=C, now=now, until=far, limit=10)
    assert [item.key for item in taken] == ["m1", "m6"]
    assert all(item.claimed_by == C and item.status == "processing" for item in taken)


async def test_a_message_a_dead_replica_was_processing_is_answered_without_waiting_for_its_claim(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    core = app[CORE]
    await add_person(app, "hr01", "王小姐", "hr")
    chat = app[WECOM].chat
    assert chat is not None
    await chat.intake.worker.stop(5)
    # What a replica that died while processing leaves: the message stored and claimed by it for
    # two minutes (CLAIM_FOR). The test clock never moves here.
    envelope = parse_app_xml(text_xml("hr01", "帮助", 4242))
    assert envelope is not None
    assert await chat.receive(envelope, source="app")
    async with core.sessions() as session:
        [held] = await repo.claim_intake_and_commit(
            session, source="wecom", worker=A, now=clock.now(), until=clock.now() + LOCK, limit=10
        )
    chat.intake.worker.start()  # this replica's worker, on its next claim (no replica lease for A: gone)

    async def answered() -> bool:
        return len(fake_wecom.delivered) == 1

    await eventually(answered)
    assert "可用命令" in fake_wecom.delivered[0]["text"]["content"]
    async with core.sessions() as session:
        row = await session.get(IntakeItem, held.id)
    assert row is not None and row.status == "done" and row.claimed_by == core.worker_id and row.attempts == 2


async def test_platform_events_a_dead_replica_claimed_are_taken_once_its_lease_expires(
    sessions: SessionMaker, clock: FrozenClock
) -> None:
    """The intake of platform events (``intake_item``) follows the same rule: an item under a claim
    that has not run out is taken from a replica whose lease expired, never from a live one, and
    the next item of the same interview waits until then and goes to the same worker (order per
    interview)."""
    now = clock.now()
    await replica_alive(sessions, A, now=now, until=now + timedelta(seconds=5))
    await replica_alive(sessions, C, now=now, until=now + timedelta(hours=1))
    items = [{"key": f"e{i}", "order_key": "iv-1", "payload": {}} for i in range(2)]
    async with sessions() as session:
        await repo.insert_intake_items(session, source="platform", items=items, now=now)
        await session.commit()
    async with sessions() as session:  # A claims the first item for two minutes
        [first] = await repo.claim_intake_and_commit(
            session, source="platform", worker=A, now=now, until=now + timedelta(minutes=2), limit=1
        )
    assert first.key == "e0"

    async def claim_items(at: datetime) -> list[str]:
        async with sessions() as session:
            taken = await repo.claim_intake_and_commit(
                session, source="platform", worker=C, now=at, until=at + timedelta(minutes=2), limit=10
            )
        return [item.key for item in taken]

    assert await claim_items(now + timedelta(seconds=1)) == []  # A is alive: e0 is its, e1 waits behind it
    # A's lease ran out: e0 is C's, and e1 with it, in order, for the same worker.
    assert await claim_items(now + timedelta(seconds=6)) == ["e0", "e1"]
    async with sessions() as session:
        [e0, e1] = await repo.intake_items(session, source="platform")
    assert (e0.claimed_by, e0.attempts, e1.claimed_by, e1.attempts) == (C, 2, C, 1)
