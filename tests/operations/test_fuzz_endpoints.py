"""Fuzz every public endpoint (hypothesis): random bytes, JSON and XML shapes (deep ones too) and
random headers (non-ASCII, 0xFF, huge), unsigned and signed. Never a 5xx; a refused request
changes no row of any table.

Requests are raw HTTP/1.1 bytes (tests/rawhttp.py) so any header byte gets through. One app per
test, reused by its examples (as in test_dispatch_properties.py); the FrozenClock keeps the outbox's
retries from running between examples.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.clock import FrozenClock
from tests.chat import add_person
from tests.conftest import ADMIN_TOKEN, AppFactory, sign, started_interview
from tests.fakes.dingtalk_api import APP_SECRET, FakeDingTalk, ms, reference_sign
from tests.fakes.wecom_api import BOT_AES_KEY, BOT_TOKEN, FakeWeCom, WeComSide, wecom_settings
from tests.rawhttp import raw_request, row_counts

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))

ENDPOINTS = [
    ("POST", "/api/platform/events"),
    ("GET", "/api/interviews"),
    ("GET", "/api/interviews/{x}"),
    ("POST", "/api/interviews/{x}/terminate"),
    ("GET", "/api/reports/exits?from={x}&to={x}"),
    ("GET", "/api/notices?status={x}&kind={x}"),
    ("GET", "/wecom/callback?msg_signature={x}&timestamp={x}&nonce={x}&echostr={x}"),
    ("POST", "/wecom/callback?msg_signature={x}&timestamp={x}&nonce={x}"),
    ("GET", "/wecom/bot/callback?msg_signature={x}&timestamp={x}&nonce={x}&echostr={x}"),
    ("POST", "/wecom/bot/callback?msg_signature={x}&timestamp={x}&nonce={x}"),
    ("POST", "/dingtalk/callback"),
    ("GET", "/healthz"),
    ("GET", "/charts/{x}.png"),
]
HEADER_NAMES = [
    b"Authorization",
    b"X-Bot-Signature",
    b"X-Bot-Timestamp",
    b"sign",
    b"timestamp",
    b"Content-Type",
    b"X-Y",
]

# Header bytes: anything but CR/LF (which would end the header), sometimes huge.
header_value = st.one_of(
    st.sampled_from([b"{now}", b"{now_ms}"]),  # fresh timestamps, filled in by the test
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from([b"Bearer " + ADMIN_TOKEN.encode(), b"Bearer \xff", b"application/json", b"1700000000000"]),
    st.integers(8_000, 20_000).map(lambda n: b"a" * n),
)
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=4)
path_part = st.one_of(st.binary(max_size=30), st.sampled_from([b"iv-1", b"2026-01-01", b"0001-01-01", b"\x00"])).map(
    lambda b: quote_from_bytes(b, safe="")
)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)
deep = st.tuples(st.integers(1, 30_000), st.sampled_from(["[]", "{}"])).map(
    lambda p: ('{"a":' * p[0] + "1" + "}" * p[0]) if p[1] == "{}" else "[" * p[0] + "]" * p[0]
)
TAGS = ["xml", "MsgType", "Content", "MsgId", "FromUserName", "CreateTime", "Event", "EventKey", "Encrypt", "a"]
xml_tree = st.recursive(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=15).map(
        lambda t: t.replace("&", "&amp;").replace("<", "&lt;")
    ),
    lambda inner: st.tuples(st.sampled_from(TAGS), st.lists(inner, max_size=3)).map(
        lambda p: f"<{p[0]}>{''.join(p[1])}</{p[0]}>"
    ),
    max_leaves=12,
)
deep_xml = st.integers(1, 30_000).map(lambda n: "<a>" * n + "</a>" * n)
body = st.one_of(
    st.binary(max_size=300),
    json_value.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    deep.map(str.encode),
    xml_tree.map(str.encode),
    deep_xml.map(str.encode),
)


@pytest.fixture
async def fake_ding() -> AsyncIterator[FakeDingTalk]:
    fake = FakeDingTalk()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def fuzz_client(
    make_client: AppFactory, clock: FrozenClock, fake_wecom: FakeWeCom, fake_ding: FakeDingTalk
) -> TestClient:
    client = await make_client(**wecom_settings(fake_wecom), **fake_ding.settings())
    assert client.server.app is not None
    await add_person(client.server.app, "hr01", "王小姐", "hr")
    await add_person(client.server.app, "hr01", "王小姐", "hr", platform="dingtalk")
    await started_interview(client, clock)
    return client


ACCEPTED: set[int] = set()  # ids of the apps whose last request was accepted (background work may follow)


async def settled(client: TestClient) -> dict[str, int]:
    """Row counts once background work of an earlier accepted request has stopped adding rows."""
    assert client.server.app is not None
    counts = await row_counts(client.server.app)
    if id(client) not in ACCEPTED:
        return counts
    ACCEPTED.discard(id(client))
    for _ in range(40):
        await asyncio.sleep(0.02)
        again = await row_counts(client.server.app)
        if again == counts:
            return counts
        counts = again
    return counts


async def check(client: TestClient, method: str, path: str, hdrs: Any, payload: bytes) -> int:
    before = await settled(client)
    status, answer = await raw_request(client, method, path, hdrs, payload)
    assert 0 < status < 500, (method, path, hdrs, payload[:200], status, answer[:300])
    if status >= 400:
        assert client.server.app is not None
        assert await row_counts(client.server.app) == before, (path, status, answer[:300])
    else:
        ACCEPTED.add(id(client))
    return status


@FUZZ
# The probe's findings, always tried first (each was a 500).
@example(ENDPOINTS[9], "1", [], b"[" * 50_000 + b"]" * 50_000)
@example(ENDPOINTS[10], "", [(b"timestamp", b"{now_ms}"), (b"sign", b"\xff")], b"{}")
@example(ENDPOINTS[0], "", [(b"X-Bot-Timestamp", b"{now}"), (b"X-Bot-Signature", "签名".encode())], b"{}")
@example(ENDPOINTS[1], "", [(b"Authorization", b"Bearer \xff\xfe")], b"")
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    part=path_part,
    hdrs=headers,
    payload=body,
)
async def test_unsigned_random_requests(
    fuzz_client: TestClient, clock: FrozenClock, endpoint: tuple[str, str], part: str, hdrs: Any, payload: bytes
) -> None:
    method, template = endpoint
    stamps = {b"{now}": str(int(clock.now().timestamp())).encode(), b"{now_ms}": str(ms(clock)).encode()}
    hdrs = [(name, stamps.get(value, value)) for name, value in hdrs]
    await check(fuzz_client, method, template.replace("{x}", part), hdrs, payload if method == "POST" else b"")


# Shapes close to what each sender posts, so the signed examples reach the parsers and validators.
event_like = st.fixed_dictionaries(
    {
        "event_id": st.text(max_size=10),
        "type": st.sampled_from(["interview.scheduled", "interview.started", "interview.activity", "x"]),
        "occurred_at": st.one_of(
            st.sampled_from(["2026-11-25T14:03:00+08:00", "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"]),
            st.text(max_size=25),
        ),
        "interview": st.fixed_dictionaries(
            {"id": st.text(max_size=8), "candidate": st.fixed_dictionaries({"name": st.text(max_size=8)})},
            optional={"scheduled_at": json_value, "position": json_value, "hr": json_value},
        ),
    },
    optional={"data": json_value},
)
ding_like = st.fixed_dictionaries(
    {
        "senderStaffId": st.one_of(st.sampled_from(["hr01", "stranger"]), json_value),
        "robotCode": st.just("dingappkey123"),
    },
    optional={
        "msgId": json_value,
        "msgtype": st.sampled_from(["text", "richText", "picture"]),
        "text": json_value,
        "conversationType": json_value,
        "conversationId": json_value,
        "sessionWebhookExpiredTime": json_value,
        "content": json_value,
    },
)
aibot_like = st.fixed_dictionaries(
    {"from": st.one_of(st.just({"userid": "hr01"}), json_value), "msgtype": st.sampled_from(["text", "mixed", "x"])},
    optional={
        "msgid": json_value,
        "text": json_value,
        "mixed": json_value,
        "chattype": json_value,
        "chatid": json_value,
    },
)


def encoded(shape: Any) -> bytes:
    return json.dumps(shape, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
# A finding, always tried first: an empty MsgType was a 500 (wechatpy's None.lower()).
@example(target="wecom_app", shape=None, raw=None, xml="<xml><MsgType></MsgType></xml>")
@given(
    target=st.sampled_from(["platform", "dingtalk", "wecom_app", "wecom_bot"]),
    shape=st.one_of(event_like, ding_like, aibot_like, json_value),
    raw=st.one_of(st.none(), body),
    xml=st.one_of(xml_tree, deep_xml),
)
async def test_signed_random_payloads(
    fuzz_client: TestClient, clock: FrozenClock, target: str, shape: Any, raw: bytes | None, xml: str
) -> None:
    payload = raw if raw is not None else encoded(shape)
    ts = int(clock.now().timestamp())
    if target == "platform":
        hdrs = [(k.encode(), v.encode()) for k, v in sign(payload, ts).items()]
        await check(fuzz_client, "POST", "/api/platform/events", hdrs, payload)
    elif target == "dingtalk":
        stamp = str(ms(clock) - int.from_bytes(payload[:2] or b"\0", "big"))
        hdrs = [(b"timestamp", stamp.encode()), (b"sign", reference_sign(APP_SECRET, stamp).encode())]
        await check(fuzz_client, "POST", "/dingtalk/callback", hdrs, payload)
    elif target == "wecom_app":
        path, envelope = WeComSide().app_post(xml, timestamp=ts)
        await check(fuzz_client, "POST", path, [], envelope)
    else:
        bot = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
        message = shape if isinstance(shape, dict) else {"value": shape}
        path, envelope = bot.bot_post(message, timestamp=ts)
        await check(fuzz_client, "POST", path, [(b"Content-Type", b"application/json")], envelope)
