"""A claim lives as long as its replica: the takeover rule (``storage.repo.claimer_gone``) on the
database this run uses (SQLite by default, PostgreSQL with BOT_TEST_DATABASE_URL).

Every serving process holds a lease ``replica:<boot>`` (``bot.services.leases.heartbeat``). Rows it
claims are its own while that lease is renewed; once it has expired or been given up, another
process takes them by a compare-and-set on the old claim, one winner per row. The two-process
kill -9 case is tests/test_two_process_replica_death.py.
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
from storage.models import Lease, Notice
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
    """Rows (status, claimed_by, kind) as a process leaves them: 'sending' under the outbox's lock, or an
    inbound message 'pending' in its taker's grace period (due in a minute, never tried)."""
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
    async with sessions() as session:
        lock = now + LOCK
        rows = await repo.claim_notices_and_commit(session, notice_ids=ids, now=now, lock_until=lock, worker=worker)
        return [r.id for r in rows if r.id is not None]


async def test_a_claim_is_taken_over_only_once_its_replicas_lease_has_expired(
    sessions: SessionMaker, clock: FrozenClock
) -> None:
    now = clock.now()
    await replica_alive(sessions, A, now=now, until=now + timedelta(seconds=5))
    await replica_alive(sessions, B, now=now, until=now + timedelta(hours=1))
    ids = await add_rows(sessions, now, ("sending", A, "reply"), ("pending", A, "inbound"), ("sending", B, "reply"))
    sending_a, inbound_a, sending_b = ids

    # A renews its lease: nothing of its is due for anyone else, though not its lock nor grace expired.
    assert await gone(sessions, now, me=C) == []
    async with sessions() as session:
        assert await repo.due_notice_ids(session, now=now, channels=["wecom"], limit=10, worker=C) == []
    assert await claim(sessions, ids, now, C) == []

    # A stopped renewing: five seconds on, its sending row and the message it held are C's to take,
    # B's (alive) are not; their locks and the grace period have not run out.
    later = now + timedelta(seconds=6)
    assert await gone(sessions, later, me=C) == [sending_a, inbound_a]
    async with sessions() as session:
        due = await repo.due_notice_ids(session, now=later, channels=["wecom"], limit=10, worker=C)
    assert sorted(due) == [sending_a, inbound_a]
    assert await claim(sessions, ids, later, C) == [sending_a, inbound_a]
    async with sessions() as session:
        rows = {n.id: n for n in (await session.exec(select(Notice))).all()}
    assert rows[sending_a].claimed_by == C and rows[inbound_a].claimed_by == C
    assert rows[inbound_a].status == "sending" and rows[sending_b].claimed_by == B

    # C has no lease in this test, so now its claims look gone to B: B takes them from C (the
    # compare-and-set is on C's claim), never from A again.
    assert await claim(sessions, [sending_a], later, B) == [sending_a]
    assert await claim(sessions, [sending_a], later, C) == []  # B is alive: its claim holds


async def test_only_one_of_two_replicas_wins_a_dead_replicas_row(sessions: SessionMaker, clock: FrozenClock) -> None:
    now = clock.now()
    ids = await add_rows(sessions, now, *[("sending", A, "reply")] * 20, *[("pending", A, "inbound")] * 20)
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


async def test_a_dead_replicas_inbound_messages_are_found_for_the_intake_of_their_platform(
    sessions: SessionMaker, clock: FrozenClock
) -> None:
    now = clock.now()
    await replica_alive(sessions, B, now=now, until=now + timedelta(hours=1))
    ids = await add_rows(
        sessions,
        now,
        ("pending", A, "inbound"),  # held in its grace period by dead A
        ("sending", A, "inbound"),  # being processed when A died
        ("pending", B, "inbound"),  # held by B, alive
        ("sent", A, "inbound"),  # done
        ("pending", A, "inbound"),  # another platform's
        ("sending", A, "reply"),  # a reply: the outbox's, not the intake's
        ("pending", A, "inbound"),  # tried and failed once: waits for its retry
    )
    async with sessions() as session:
        rows = (await session.exec(select(Notice).order_by(col(Notice.id)))).all()
        for row, key in zip(
            rows, ["wecom:1", "wecom:2", "wecom:3", "wecom:4", "feishu:5", "wecom:6", "wecom:7"], strict=True
        ):
            row.dedupe_key = f"inbound:{key}"
        rows[-1].attempts = 1
        await session.commit()
        found = await repo.orphaned_inbound_ids(session, key_prefix="inbound:wecom:", now=now, worker=C, limit=10)
    assert found == ids[:2]
    async with sessions() as session:
        assert await repo.orphaned_inbound_ids(session, key_prefix="inbound:wecom:", now=now, worker=A, limit=10) == []


async def test_a_message_a_dead_replica_held_is_answered_without_waiting_for_its_grace_period(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    core = app[CORE]
    await add_person(app, "hr01", "王小姐", "hr")
    inbox = app[WECOM].inbox
    assert inbox is not None
    # What a replica that died right after the ack leaves: the message stored, claimed by it, held
    # for its own worker for INBOUND_GRACE (60 s). The test clock never moves here.
    inbound = parse_app_xml(text_xml("hr01", "帮助", 4242))
    assert inbound is not None
    row_id = await inbox.accept(inbound, source="app")  # stored and acked, never handed to this worker
    assert row_id is not None
    async with core.sessions() as session:
        row = await session.get(Notice, row_id)
        assert row is not None and row.status == "pending" and row.next_attempt_at > clock.now()
        row.claimed_by = A  # no replica lease: that process is gone
        await session.commit()

    async def answered() -> bool:
        return len(fake_wecom.delivered) == 1

    await eventually(answered)
    assert "可用命令" in fake_wecom.delivered[0]["text"]["content"]
    async with core.sessions() as session:
        row = await session.get(Notice, row_id)
    assert row is not None and row.status == "sent" and row.claimed_by == core.worker_id and row.attempts == 1


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
