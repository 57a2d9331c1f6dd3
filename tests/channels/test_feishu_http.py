"""Feishu HTTP mode end to end: the real app, a real database, a fake Feishu on loopback; the
fake's encryption and signatures checked against lark-oapi's own decrypt and verify code."""

from __future__ import annotations

import json
from datetime import datetime
from datetime import time as clock_time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.channels.feishu.crypto import CryptoError, decrypt, signature, verify_signature
from bot.channels.feishu.parse import parse_event
from bot.clock import FrozenClock
from bot.keys import CORE
from bot.services.summary import send_daily_summary
from storage.models import IntakeItem, Notice, SharedToken
from tests.chat import add_person, prompt_id
from tests.conftest import CLOCK_START, SHANGHAI, AppFactory, admin_headers, eventually, started_interview
from tests.fakes.feishu_api import BOT_OPEN_ID, ENCRYPT_KEY, VERIFICATION_TOKEN, FakeFeishu, encrypt
from tests.fakes.smtp import SmtpServer
from tests.feishu import buttons, card_text, shown
from tests.interviews import interview_detail
from tests.rows import rows


@pytest.fixture
def fake(fake_feishu: FakeFeishu) -> FakeFeishu:
    return fake_feishu


async def hr_app(make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu, **extra: Any) -> TestClient:
    client = await make_client(**fake.settings(**extra))
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="feishu")
    await started_interview(client, clock, hr=("feishu", "hr01"))
    return client


async def test_fake_crypto_matches_lark_oapi_and_ours() -> None:
    # Imported in the event loop (see tests/fakes/feishu_api.new_frame).
    from lark_oapi.core.model import RawRequest
    from lark_oapi.core.utils.decryptor import AESCipher
    from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

    body = json.dumps({"schema": "2.0", "header": {"event_id": "e1"}, "event": {"x": "终止"}}, ensure_ascii=False)
    ciphertext = encrypt(body.encode())
    # lark-oapi decrypts what the fake encrypts, and so do we (through the SDK's AESCipher).
    assert AESCipher(ENCRYPT_KEY).decrypt_str(ciphertext) == body
    assert decrypt(ciphertext, ENCRYPT_KEY).decode() == body
    with pytest.raises(CryptoError):
        decrypt(encrypt(body.encode(), key="another key"), ENCRYPT_KEY)
    with pytest.raises(CryptoError):
        decrypt("not base64!", ENCRYPT_KEY)

    fake = FakeFeishu()
    raw, headers = fake.callback({"schema": "2.0"})
    # lark-oapi's own check accepts the fake's signature (it raises on a mismatch)...
    request = RawRequest()
    request.headers, request.body = headers, raw
    EventDispatcherHandler()._verify_sign(request, ENCRYPT_KEY)
    # ...and refuses a tampered body; ours agrees on both.
    assert (
        signature(headers["X-Lark-Request-Timestamp"], headers["X-Lark-Request-Nonce"], ENCRYPT_KEY, raw)
        == headers["X-Lark-Signature"]
    )
    verify_signature(headers, ENCRYPT_KEY, raw)
    # A signature made by our code over another body is accepted by lark-oapi too.
    other = RawRequest()
    other.body = b'{"encrypt": "x"}'
    other.headers = {**headers, "X-Lark-Signature": signature("1773108001", "n-2", ENCRYPT_KEY, other.body)}
    other.headers.update({"X-Lark-Request-Timestamp": "1773108001", "X-Lark-Request-Nonce": "n-2"})
    EventDispatcherHandler()._verify_sign(other, ENCRYPT_KEY)
    tampered = RawRequest()
    tampered.headers, tampered.body = headers, raw + b" "
    with pytest.raises(Exception, match="signature"):
        EventDispatcherHandler()._verify_sign(tampered, ENCRYPT_KEY)
    with pytest.raises(CryptoError):
        verify_signature(headers, ENCRYPT_KEY, raw + b" ")


def test_parse_a_group_message_and_a_card_click() -> None:
    fake = FakeFeishu()
    msg = parse_event(fake.message("终止面试 张三", group=True, sender="hr01"))
    assert msg.platform == "feishu" and msg.sender_id == "hr01" and msg.chat_type == "group"
    assert msg.chat_id == "oc_group0001"
    assert msg.reply_hint["open_id"] == "ou_hr01"
    assert msg.reply_hint["mentions"] == [["@_user_1", BOT_OPEN_ID, "面试退出助手"]]
    direct = parse_event(fake.message("帮助", sender="hr02"))
    assert direct.chat_type == "direct" and direct.chat_id == "hr02" and direct.text == "帮助"
    click = parse_event(
        fake.card_click(
            {"value": {"command": "确认", "chat_type": "group"}}, card_message={"message_id": "om_1", "chat_id": "oc_g"}
        )
    )
    assert click.text == "确认" and click.chat_type == "group" and click.msg_id.startswith("card-")


async def test_url_verification_plain_and_encrypted(make_client: AppFactory, fake: FakeFeishu) -> None:
    challenge = {"challenge": "ajls384kdjx98XX", "token": VERIFICATION_TOKEN, "type": "url_verification"}
    encrypted = await make_client(**fake.settings())
    resp = await fake.post(encrypted, challenge)
    assert resp.status == 200 and await resp.json() == {"challenge": "ajls384kdjx98XX"}
    # Feishu does not sign the challenge: unsigned but encrypted is fine, a wrong token is not.
    raw = json.dumps({"encrypt": encrypt(json.dumps(challenge).encode())})
    assert (await encrypted.post("/feishu/callback", data=raw)).status == 200
    wrong = json.dumps({"encrypt": encrypt(json.dumps({**challenge, "token": "nope"}).encode())})
    assert (await encrypted.post("/feishu/callback", data=wrong)).status == 401
    # With an Encrypt Key set a plaintext body is refused.
    assert (await fake.post(encrypted, challenge, encrypted=False)).status == 401
    await encrypted.close()

    plain = await make_client(**fake.settings(feishu_encrypt_key=None))
    resp = await fake.post(plain, challenge, encrypted=False)
    assert resp.status == 200 and await resp.json() == {"challenge": "ajls384kdjx98XX"}


async def test_terminate_in_a_p2p_chat_with_a_card_click(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu, smtp: SmtpServer
) -> None:
    client = await hr_app(make_client, clock, fake)
    ask = fake.message("终止面试 张三 候选人放弃")
    resp = await fake.post(client, ask)
    assert resp.status == 200

    await shown(fake, 1)
    prompt = fake.messages[0]
    assert prompt["via"] == "reply" and prompt["reply_to"] == ask["event"]["message"]["message_id"]
    assert "张三" in card_text(prompt) and "候选人放弃" in card_text(prompt)
    labels = [(b["text"]["content"], b["value"]["command"]) for b in buttons(prompt)]
    tied = await prompt_id(client.server.app)
    assert labels == [("确认终止", f"确认 #{tied}"), ("取消", f"取消 #{tied}")]
    assert (await interview_detail(client))["status"] == "in_progress"

    # Clicking 确认终止: Feishu sends card.action.trigger to the same URL.
    click = fake.card_click(buttons(prompt)[0], card_message={"message_id": prompt["message_id"]})
    resp = await fake.post(client, click)
    assert resp.status == 200 and await resp.json() == {}

    async def terminated() -> bool:
        return (await interview_detail(client))["status"] == "terminated"

    await eventually(terminated)
    detail = await interview_detail(client)
    assert detail["exit"]["operator"] == "feishu:hr01"
    assert detail["exit"]["reason"] == "候选人放弃" and detail["exit"]["source"] == "chat"
    await shown(fake, 2)
    done = fake.messages[1]
    assert done["via"] == "reply" and done["reply_to"] == prompt["message_id"]
    assert "已终止 张三 的面试" in done["content"]["text"]

    async def mailed() -> bool:
        return len(smtp.messages) == 1

    await eventually(mailed)  # the candidate notice
    assert [n["channel"] for n in (await interview_detail(client))["notices"] if n["kind"] == "terminated"] == ["email"]
    [token] = await rows(client.server.app, SharedToken)
    assert token.key == "feishu:cli_a1b2c3d4e5f6" and fake.token_fetches == 1


async def test_card_click_after_the_prompt_expired_says_so_and_changes_nothing(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await hr_app(make_client, clock, fake)
    assert (await fake.post(client, fake.message("终止面试 张三 候选人放弃"))).status == 200
    await shown(fake, 1)
    prompt = fake.messages[0]
    clock.advance(seconds=301)  # past BOT_CONFIRM_TTL (300 s)
    click = fake.card_click(buttons(prompt)[0], card_message={"message_id": prompt["message_id"]})
    assert (await fake.post(client, click)).status == 200
    await shown(fake, 2)
    assert fake.messages[1]["content"]["text"] == "这个确认已过期(超过5分钟),没有执行。如需继续,请重新发起。"
    detail = await interview_detail(client)
    assert detail["status"] == "in_progress" and detail["exit"] is None


async def test_group_acts_only_when_mentioned_and_masks(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    assert (
        await fake.post(client, fake.message("终止面试 张三 候选人放弃", group=True, mention_bot=False))
    ).status == 200

    async def processed() -> bool:
        return [j.status for j in await rows(app, IntakeItem, source="feishu")] == ["done"]

    await eventually(processed)
    assert fake.messages == []  # not @-mentioned: ignored

    look = fake.message("查看 张三", group=True)
    assert (await fake.post(client, look)).status == 200
    await shown(fake, 1)
    assert fake.messages[0]["reply_to"] == look["event"]["message"]["message_id"]
    shown_text = card_text(fake.messages[0])
    assert "张三" in shown_text and "138****1234" in shown_text and "13800001234" not in shown_text  # masked

    ask = fake.message("终止面试 张三 候选人放弃", group=True)
    assert (await fake.post(client, ask)).status == 200
    await shown(fake, 2)
    prompt = fake.messages[1]
    assert prompt["reply_to"] == ask["event"]["message"]["message_id"]
    assert buttons(prompt)[0]["value"] == {"command": f"确认 #{await prompt_id(app)}", "chat_type": "group"}

    # A typed 确认 (with the @-mention) works as well as the button.
    assert (await fake.post(client, fake.message("确认", group=True))).status == 200

    async def terminated() -> bool:
        return (await interview_detail(client))["status"] == "terminated"

    await eventually(terminated)
    await shown(fake, 3)
    assert "已终止 张三 的面试" in fake.messages[2]["content"]["text"]
    assert fake.bot_info_calls == 1  # the bot's open_id is asked once


async def test_redelivery_is_processed_once(make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    body = fake.message("帮助", event_id="ev-redelivered", message_id="om_redelivered")
    for _ in range(3):  # Feishu pushes an event again when it thinks the answer was lost
        assert (await fake.post(client, body)).status == 200
    # The same message under a new event id is also the same message.
    again = fake.message("帮助", message_id="om_redelivered")
    assert (await fake.post(client, again)).status == 200

    [job] = await rows(app, IntakeItem, source="feishu")

    async def processed() -> bool:
        [row] = await rows(app, IntakeItem, id=job.id)
        return row.status == "done" and len(fake.messages) == 1

    await eventually(processed)
    assert len(await rows(app, Notice, kind="reply")) == 1


async def test_bad_signature_or_token_is_refused_and_nothing_stored(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    body = fake.message("终止面试 张三 候选人放弃")

    raw, headers = fake.callback(body)
    tampered = {**headers, "X-Lark-Signature": "0" * 64}
    assert (await client.post("/feishu/callback", data=raw, headers=tampered)).status == 401
    unsigned = {k: v for k, v in headers.items() if not k.startswith("X-Lark")}
    assert (await client.post("/feishu/callback", data=raw, headers=unsigned)).status == 401
    wrong_key = await fake.post(client, body, key="not the encrypt key")
    assert wrong_key.status == 401  # signed with another key
    wrong_token = fake.message("帮助")
    wrong_token["header"]["token"] = "not-ours"
    assert (await fake.post(client, wrong_token)).status == 401
    other_app = fake.message("帮助")
    other_app["header"]["app_id"] = "cli_someone_else"
    assert (await fake.post(client, other_app)).status == 401
    assert (await client.post("/feishu/callback", data=b"[1, 2")).status == 400
    no_id = fake.message("帮助")
    del no_id["event"]["message"]["message_id"]
    assert (await fake.post(client, no_id)).status == 400
    # Well-formed but not for us: acknowledged (so Feishu does not push it again), not stored.
    from_app = fake.message("帮助")
    from_app["event"]["sender"]["sender_type"] = "app"
    assert (await fake.post(client, from_app)).status == 200
    bot_added = {"schema": "2.0", "header": fake.header("im.chat.member.bot.added_v1"), "event": {"chat_id": "oc_1"}}
    assert (await fake.post(client, bot_added)).status == 200

    assert await rows(app, IntakeItem, source="feishu") == []


async def test_expired_token_is_fetched_again_once_and_rate_limits_retried(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await hr_app(make_client, clock, fake)
    app = client.server.app
    assert (await fake.post(client, fake.message("帮助"))).status == 200
    await shown(fake, 1)
    assert fake.token_fetches == 1

    fake.expire_tokens()  # the cached token is no longer valid: 99991663, one new token
    fake.failures.append((429, 99991400, {"x-ogw-ratelimit-reset": "2"}))  # then a rate limit
    assert (await fake.post(client, fake.message("帮助"))).status == 200

    async def deferred() -> bool:
        replies = sorted(await rows(app, Notice, kind="reply"), key=lambda r: r.id)
        return len(replies) == 2 and replies[1].status == "pending" and replies[1].attempts == 1

    await eventually(deferred)
    assert fake.token_fetches == 2 and fake.failed_calls == 1
    [reply] = [r for r in await rows(app, Notice, kind="reply") if r.status == "pending"]
    assert "99991400" in (reply.last_error or "")
    clock.advance(seconds=3)
    await shown(fake, 2)  # retried, not dropped
    assert fake.token_fetches == 2
    [token] = await rows(app, SharedToken)
    assert token.value == "t-2"


async def test_unregistered_sender_is_told_their_id(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await hr_app(make_client, clock, fake)
    assert (await fake.post(client, fake.message("终止面试 张三 候选人放弃", sender="stranger"))).status == 200
    await shown(fake, 1)
    assert "你还没有登记,飞书 user_id(或 open_id) stranger" in fake.messages[0]["content"]["text"]
    assert (await interview_detail(client))["status"] == "in_progress"


async def test_person_registered_by_open_id_is_recognised(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await make_client(**fake.settings())
    app = client.server.app
    await add_person(app, "ou_hr09", "赵女士", "hr", platform="feishu")
    await started_interview(client, clock, hr=("feishu", "ou_hr09"))
    assert (await fake.post(client, fake.message("终止面试 张三 候选人放弃", sender="hr09"))).status == 200
    await shown(fake, 1)
    assert buttons(fake.messages[0])  # a confirmation card, not "你还没有登记"
    click = fake.card_click(
        buttons(fake.messages[0])[0], sender="hr09", card_message={"message_id": fake.messages[0]["message_id"]}
    )
    assert (await fake.post(client, click)).status == 200

    async def terminated() -> bool:
        return (await interview_detail(client))["status"] == "terminated"

    await eventually(terminated)
    assert (await interview_detail(client))["exit"]["operator"] == "feishu:ou_hr09"


async def test_withdrawn_message_is_answered_in_the_chat(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await hr_app(make_client, clock, fake)
    body = fake.message("帮助", message_id="om_withdrawn")
    fake.gone_messages.add("om_withdrawn")
    assert (await fake.post(client, body)).status == 200
    await shown(fake, 1)
    assert fake.messages[0]["via"] == "create"
    assert fake.messages[0]["receive_id_type"] == "chat_id" and fake.messages[0]["receive_id"] == "oc_p2p_hr01"


async def test_callback_route_needs_feishu_configured(make_client: AppFactory, fake: FakeFeishu) -> None:
    client = await make_client()
    assert (await client.post("/feishu/callback", data=b"{}")).status == 404
    await client.close()
    ws_mode = await make_client(**fake.settings(feishu_mode="ws"))
    assert (await ws_mode.post("/feishu/callback", data=b"{}")).status == 404


async def test_staff_notices_go_by_open_id_or_user_id(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await make_client(**fake.settings())
    app = client.server.app
    await add_person(app, "ou_hr09", "赵女士", "hr", platform="feishu")
    await add_person(app, "hr01", "王小姐", "hr", platform="feishu")
    for n, hr in ((1, "ou_hr09"), (2, "hr01")):
        await started_interview(client, clock, f"iv-{n}", hr=("feishu", hr), name=f"候选人{n}")
        resp = await client.post(
            f"/api/interviews/iv-{n}/terminate", json={"reason": "系统故障"}, headers=admin_headers()
        )
        assert resp.status == 200, await resp.text()
    await shown(fake, 2)
    sent = sorted((m["receive_id_type"], m["receive_id"], m["msg_type"]) for m in fake.messages)
    assert sent == [("open_id", "ou_hr09", "text"), ("user_id", "hr01", "text")]
    assert all(m["via"] == "create" and m["uuid"] for m in fake.messages)


async def test_daily_summary_goes_to_the_group_with_its_chart(
    make_client: AppFactory, clock: FrozenClock, fake: FakeFeishu
) -> None:
    client = await make_client(**fake.settings(feishu_summary_chat_id="oc_summary"))
    core = client.server.app[CORE]
    day = CLOCK_START.astimezone(SHANGHAI).date()
    await started_interview(client, clock)
    resp = await client.post("/api/interviews/iv-1/terminate", json={"reason": "系统故障"}, headers=admin_headers())
    assert resp.status == 200
    clock.set(datetime.combine(day, clock_time(18, 5), SHANGHAI))
    outcome = await send_daily_summary(core, day=day)
    assert outcome.sent == ["robot:feishu_group"]
    await shown(fake, 2)
    by_type = {m["msg_type"]: m for m in fake.messages}
    assert set(by_type) == {"interactive", "image"}
    assert all(m["receive_id_type"] == "chat_id" and m["receive_id"] == "oc_summary" for m in fake.messages)
    assert "面试退出日报" in card_text(by_type["interactive"])
    assert by_type["image"]["content"] == {"image_key": "img_v2_1"}
    assert fake.images[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert "/charts/" not in card_text(by_type["interactive"])  # the chart goes as an image, not a link
