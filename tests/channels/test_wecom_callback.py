"""The WeCom callback endpoints on the real app: verification, refusals, dedupe, refusal of strangers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func
from sqlmodel import select

from bot.clock import FrozenClock
from bot.keys import CORE
from storage.models import AuditEvent, IntakeItem, Notice
from tests.chat import add_person
from tests.conftest import AppFactory, eventually
from tests.fakes.wecom_api import FakeWeCom, WeComSide, text_xml, wecom_settings

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "wecom_vectors.json").read_text())


async def count(client: TestClient, model: Any) -> int:
    assert client.server.app is not None
    async with client.server.app[CORE].sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def stored(client: TestClient) -> list[IntakeItem]:
    """The WeCom messages stored by the intake."""
    assert client.server.app is not None
    async with client.server.app[CORE].sessions() as session:
        return list((await session.exec(select(IntakeItem).where(IntakeItem.source == "wecom"))).all())


async def post_text(client: TestClient, clock: FrozenClock, user: str, text: str, msg_id: int) -> Any:
    path, body = WeComSide().app_post(text_xml(user, text, msg_id), timestamp=int(clock.now().timestamp()))
    return await client.post(path, data=body)


async def test_get_url_verification_with_the_official_vector(make_client: AppFactory, fake_wecom: FakeWeCom) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    v = VECTORS["official_sample"]["verify_url"]
    resp = await client.get(
        "/wecom/callback", params={k: v[k] for k in ("msg_signature", "timestamp", "nonce", "echostr")}
    )
    assert resp.status == 200
    assert await resp.read() == v["plaintext"].encode()  # as-is: no quotes, BOM or newline

    bad = dict(v, nonce="1")
    resp = await client.get(
        "/wecom/callback", params={k: bad[k] for k in ("msg_signature", "timestamp", "nonce", "echostr")}
    )
    assert resp.status == 401


async def test_bad_signature_is_refused_and_changes_nothing(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    path, body = WeComSide().app_post(text_xml("hr01", "帮助", 7), timestamp=int(clock.now().timestamp()))
    tampered = path.replace("msg_signature=", "msg_signature=0")
    resp = await client.post(tampered, data=body)
    assert resp.status == 401
    resp = await client.post("/wecom/callback", data=body)  # no query at all
    assert resp.status == 401
    # Right signature but signed by someone with another token.
    path, body = WeComSide(token="not-our-token").app_post(text_xml("hr01", "帮助", 8), int(clock.now().timestamp()))
    assert (await client.post(path, data=body)).status == 401
    # A correctly signed but old request is a replay.
    path, body = WeComSide().app_post(text_xml("hr01", "帮助", 9), timestamp=int(clock.now().timestamp()) - 3 * 86400)
    assert (await client.post(path, data=body)).status == 401
    assert await count(client, IntakeItem) == 0
    assert await count(client, Notice) == 0
    assert fake_wecom.calls == []


async def test_malformed_and_oversized_bodies(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom), max_body_bytes=4096)
    path, _ = WeComSide().app_post(text_xml("hr01", "帮助", 1), timestamp=int(clock.now().timestamp()))
    assert (await client.post(path, data=b"<xml><Encrypt>")).status == 400
    assert (await client.post(path, data=b"<xml><Nothing/></xml>")).status == 400
    assert (await client.post(path, data=b"x" * 5000)).status == 413
    bot_path = path.replace("/wecom/callback", "/wecom/bot/callback")
    assert (await client.post(bot_path, data=b"{not json")).status == 400
    assert await count(client, IntakeItem) == 0


async def test_unconfigured_channel_answers_503(make_client: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING")
    client = await make_client()
    resp = await client.post("/wecom/callback?msg_signature=a&timestamp=1&nonce=2", data=b"<xml/>")
    assert resp.status == 503
    assert "WECOM_CORP_ID" in await resp.text()
    assert (await client.get("/wecom/bot/callback")).status == 503
    assert any("WeCom app" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


async def test_redelivered_message_is_processed_once(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    side = WeComSide()
    ts = int(clock.now().timestamp())
    first = side.app_post(text_xml("hr01", "帮助", 555), timestamp=ts)
    again = side.app_post(text_xml("hr01", "帮助", 555), timestamp=ts + 5)  # WeCom's retry: new nonce, same MsgId
    for path, body in (first, again, first):
        resp = await client.post(path, data=body)
        assert resp.status == 200
        assert await resp.read() == b""

    async def replied() -> bool:
        return len(fake_wecom.sent("message/send")) >= 1

    await eventually(replied)

    # Give stray duplicates a chance to show up, then check there were none.
    async def processed() -> bool:
        items = await stored(client)
        return len(items) == 1 and items[0].status == "done"

    await eventually(processed)
    [sent] = fake_wecom.sent("message/send")
    assert sent["touser"] == "hr01"
    assert "可用命令" in sent["text"]["content"]


async def test_message_processed_again_after_its_replies_were_queued_answers_once(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """A crash after the replies were queued but before the stored message was marked done: the
    retry finds its replies already queued (the intake's conflict), finishes the item, sends none twice."""
    from bot.channels.wecom import WECOM

    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    assert (await post_text(client, clock, "hr01", "帮助", 777)).status == 200

    async def item() -> IntakeItem:
        [found] = await stored(client)
        return found

    async def done() -> bool:
        return (await item()).status == "done" and len(fake_wecom.sent("message/send")) == 1

    await eventually(done)
    # The state a crash before the done mark leaves, once taken over: due again, its replies already queued.
    async with app[CORE].sessions() as session:
        row = await session.get(IntakeItem, (await item()).id)
        assert row is not None
        row.status, row.claimed_until, row.claimed_by, row.done_at = "received", None, None, None
        await session.commit()
    chat = app[WECOM].chat
    assert chat is not None
    chat.intake.worker.wake()
    await eventually(done)
    assert (await item()).attempts == 2
    async with app[CORE].sessions() as session:
        assert len((await session.exec(select(Notice).where(Notice.kind == "reply"))).all()) == 1
    assert "可用命令" in fake_wecom.sent("message/send")[0]["text"]["content"]


async def test_unregistered_user_is_refused(make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom) -> None:
    client = await make_client(**wecom_settings(fake_wecom))
    resp = await post_text(client, clock, "stranger", "终止面试 张三 候选人放弃", 9001)
    assert resp.status == 200

    async def replied() -> bool:
        return len(fake_wecom.sent("message/send")) == 1

    await eventually(replied)
    [sent] = fake_wecom.sent("message/send")
    assert sent["touser"] == "stranger"
    assert sent["msgtype"] == "text"
    assert "你还没有登记,企业微信账号 stranger;请把它发给管理员" in sent["text"]["content"]
    assert client.server.app is not None
    async with client.server.app[CORE].sessions() as session:
        refused = (await session.exec(select(AuditEvent).where(AuditEvent.action == "command.refused"))).one()
    assert refused.actor == "wecom:stranger"


async def test_message_stored_but_not_processed_is_processed_by_a_worker_that_did_not_store_it(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    """A crash between the ack and the processing loses nothing: the stored item is picked up by a
    worker started later (as after a restart), with no wake-up from the callback."""
    from bot.channels.wecom import WECOM
    from bot.channels.wecom.crypto import CallbackCrypto
    from bot.channels.wecom.parse import parse_app_xml
    from tests.fakes.wecom_api import AES_KEY, CORP_ID, TOKEN

    client = await make_client(**wecom_settings(fake_wecom))
    app = client.server.app
    assert app is not None
    await add_person(app, "hr01", "王小姐", "hr")
    chat = app[WECOM].chat
    assert chat is not None
    await chat.intake.worker.stop(5)  # nothing is processed here: as if the process died after the ack
    path, body = WeComSide().app_post(text_xml("hr01", "帮助", 4242), timestamp=int(clock.now().timestamp()))
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    plain = CallbackCrypto(TOKEN, AES_KEY, CORP_ID).decrypt_xml(
        body, query["msg_signature"], query["timestamp"], query["nonce"]
    )
    envelope = parse_app_xml(plain)
    assert envelope is not None
    assert await chat.receive(envelope, source="app")
    # The redelivery WeCom would send is still recognised.
    assert (await client.post(path, data=body)).status == 200
    assert [i.status for i in await stored(client)] == ["received"]
    assert fake_wecom.sent("message/send") == []
    chat.intake.worker.start()  # the next worker (a restart, or the sweep of another replica)

    async def replied() -> bool:
        return len(fake_wecom.sent("message/send")) == 1

    await eventually(replied)
    assert "可用命令" in fake_wecom.sent("message/send")[0]["text"]["content"]


async def test_a_burst_with_duplicates_is_stored_and_answered_once_each(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom
) -> None:
    import asyncio

    client = await make_client(**wecom_settings(fake_wecom))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    side = WeComSide()
    ts = int(clock.now().timestamp())
    posts = [side.app_post(text_xml("hr01", "帮助", 7000 + n % 20), timestamp=ts) for n in range(40)]
    responses = await asyncio.gather(*(client.post(path, data=body) for path, body in posts))
    assert [r.status for r in responses] == [200] * 40
    assert len(await stored(client)) == 20

    async def all_answered() -> bool:
        return len(fake_wecom.sent("message/send")) == 20

    await eventually(all_answered)
    assert len(await stored(client)) == 20
