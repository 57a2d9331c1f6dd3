"""Probe: send a fixed list of bad inputs to every public endpoint and count the 5xx answers.

    python bench/bad_inputs.py [--url postgresql+asyncpg://postgres@127.0.0.1:5432/DB]

The real app runs in this process on 127.0.0.1 (SQLite in a temp dir by default; a PostgreSQL
URL is wiped and migrated first). Each input is sent as raw HTTP/1.1 bytes over a socket, so
headers may hold any byte (0xFF, non-ASCII). With credentials the bodies are signed or encrypted
the way the platform, WeCom and DingTalk do. Prints one line per input and the totals.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

Raw = tuple[str, str, list[tuple[bytes, bytes]], bytes]  # method, path, headers, body

PLATFORM_SECRET = "probe-platform-secret"
ADMIN_TOKEN = "probe-admin-token"


def _signed(body: bytes, ts: int) -> list[tuple[bytes, bytes]]:
    mac = hmac.new(PLATFORM_SECRET.encode(), str(ts).encode() + b"." + body, hashlib.sha256).hexdigest()
    return [(b"X-Bot-Timestamp", str(ts).encode()), (b"X-Bot-Signature", mac.encode())]


def _event(now: datetime, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": f"probe-{time.monotonic_ns()}",
        "type": "interview.scheduled",
        "occurred_at": now.isoformat(),
        "interview": {
            "id": "iv-probe",
            "position": "Java后端工程师",
            "candidate": {"name": "张三", "mobile": "13800001234", "email": "z@example.com"},
            "hr": {"platform": "wecom", "user_id": "hr01"},
        },
        "data": {},
    }
    for path, value in changes.items():
        node = body
        *parents, leaf = path.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return body


def build_inputs(now: datetime) -> list[tuple[str, Raw]]:
    from tests.fakes.dingtalk_api import APP_SECRET, SAMPLES, reference_sign
    from tests.fakes.wecom_api import BOT_AES_KEY, BOT_TOKEN, WeComSide, aibot_text, text_xml

    ts = int(now.timestamp())
    ms = int(now.timestamp() * 1000)
    auth = [(b"Authorization", f"Bearer {ADMIN_TOKEN}".encode())]
    json_ct = [(b"Content-Type", b"application/json")]
    deep_json = b"[" * 50_000 + b"]" * 50_000
    deep_obj = b'{"a":' * 20_000 + b"1" + b"}" * 20_000
    deep_xml = "<a>" * 20_000 + "</a>" * 20_000
    side = WeComSide()
    bot_side = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    out: list[tuple[str, Raw]] = []

    def add(name: str, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
        out.append((name, (method, path, headers, body)))

    def event(name: str, payload: Any) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        add(name, "POST", "/api/platform/events", _signed(body, ts) + json_ct, body)

    def ding(name: str, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        stamp = str(ms - len(out))  # a fresh pair per request
        hdrs = headers or [(b"timestamp", stamp.encode()), (b"sign", reference_sign(APP_SECRET, stamp).encode())]
        add(name, "POST", "/dingtalk/callback", hdrs + json_ct, body)

    def ding_msg(**changes: Any) -> dict[str, Any]:
        body = dict(SAMPLES["http_callback_body"], msgId=f"probe-{len(out)}", createAt=ms)
        body["sessionWebhookExpiredTime"] = ms + 3_600_000
        body.update(changes)
        return body

    def wecom_app(name: str, xml: str) -> None:
        path, body = side.app_post(xml, timestamp=ts)
        add(name, "POST", path, [], body)

    def wecom_bot(name: str, payload: Any) -> None:
        path, body = bot_side.bot_post(payload, timestamp=ts)
        add(name, "POST", path, json_ct, body)

    def wecom_bot_plain(name: str, plaintext: str) -> None:
        from wechatpy.enterprise.crypto import PrpCrypto

        from bot.channels.wecom.crypto import signature

        nonce = bot_side.nonce()
        enc = PrpCrypto(bot_side.crypto.key).encrypt(plaintext, "").decode()
        query = f"msg_signature={signature(bot_side.token, str(ts), nonce, enc)}&timestamp={ts}&nonce={nonce}"
        add(name, "POST", f"/wecom/bot/callback?{query}", json_ct, json.dumps({"encrypt": enc}).encode())

    # --- without credentials -------------------------------------------------------------
    q = f"msg_signature=x&timestamp={ts}&nonce=1"
    add("wecom bot: deep JSON array, unsigned", "POST", f"/wecom/bot/callback?{q}", json_ct, deep_json)
    add("wecom bot: deep JSON object, unsigned", "POST", f"/wecom/bot/callback?{q}", json_ct, deep_obj)
    add("wecom bot: random bytes", "POST", f"/wecom/bot/callback?{q}", [], b"\xff\xfe\x00garbage")
    add("wecom app: deep XML, unsigned", "POST", f"/wecom/callback?{q}", [], deep_xml.encode())
    add("wecom app: random bytes", "POST", f"/wecom/callback?{q}", [], b"\xff\x00<xml")
    add("wecom app: query %FF", "POST", "/wecom/callback?msg_signature=%FF&timestamp=%FF&nonce=%FF", [], b"<xml/>")
    add(
        "wecom app GET: %FF/%00 params",
        "GET",
        "/wecom/callback?msg_signature=%FF&timestamp=%00&nonce=%FF&echostr=%FF",
        [],
    )
    add(
        "wecom bot GET: %FF params",
        "GET",
        "/wecom/bot/callback?msg_signature=%FF&timestamp=1&nonce=%FF&echostr=%FF",
        [],
    )
    add(
        "wecom app GET: huge nonce",
        "GET",
        f"/wecom/callback?msg_signature=a&timestamp=1&nonce={'9' * 6000}&echostr=a",
        [],
    )
    body = json.dumps(ding_msg()).encode()
    add(
        "dingtalk: sign 0xFF",
        "POST",
        "/dingtalk/callback",
        [(b"timestamp", str(ms).encode()), (b"sign", b"\xff\xfe"), *json_ct],
        body,
    )
    add(
        "dingtalk: sign non-ASCII",
        "POST",
        "/dingtalk/callback",
        [(b"timestamp", str(ms).encode()), (b"sign", "签名".encode()), *json_ct],
        body,
    )
    add(
        "dingtalk: timestamp 0xFF",
        "POST",
        "/dingtalk/callback",
        [(b"timestamp", b"\xff1"), (b"sign", b"x"), *json_ct],
        body,
    )
    add(
        "dingtalk: timestamp 5000 digits",
        "POST",
        "/dingtalk/callback",
        [(b"timestamp", b"9" * 5000), (b"sign", b"x"), *json_ct],
        body,
    )
    add(
        "dingtalk: deep JSON, unsigned",
        "POST",
        "/dingtalk/callback",
        [(b"timestamp", b"1"), (b"sign", b"x"), *json_ct],
        deep_json,
    )
    pbody = json.dumps(_event(now)).encode()
    add(
        "platform: X-Bot-Signature non-ASCII",
        "POST",
        "/api/platform/events",
        [(b"X-Bot-Timestamp", str(ts).encode()), (b"X-Bot-Signature", "签名".encode()), *json_ct],
        pbody,
    )
    add(
        "platform: X-Bot-Signature 0xFF",
        "POST",
        "/api/platform/events",
        [(b"X-Bot-Timestamp", str(ts).encode()), (b"X-Bot-Signature", b"\xff" * 64), *json_ct],
        pbody,
    )
    add(
        "platform: X-Bot-Timestamp 0xFF",
        "POST",
        "/api/platform/events",
        [(b"X-Bot-Timestamp", b"\xff"), (b"X-Bot-Signature", b"ab"), *json_ct],
        pbody,
    )
    add("platform: deep JSON, unsigned", "POST", "/api/platform/events", json_ct, deep_json)
    add("admin: Authorization 0xFF", "GET", "/api/interviews", [(b"Authorization", b"Bearer \xff\xfe")])
    add("admin: Authorization non-ASCII", "GET", "/api/interviews", [(b"Authorization", "Bearer 令牌".encode())])
    add("admin: Authorization scheme 0xFF", "GET", "/api/notices", [(b"Authorization", b"\xff\xff token")])
    add("admin: terminate deep JSON, no token", "POST", "/api/interviews/iv-1/terminate", json_ct, deep_json)
    add("healthz: 0xFF header", "GET", "/healthz", [(b"X-Anything", b"\xff" * 100)])
    add("charts: %00 token", "GET", "/charts/%00aaaaaaaaaaaaaaaaaaaa.png", [])
    add("charts: %FF token", "GET", "/charts/%FFaaaaaaaaaaaaaaaaaaa.png", [])
    add("charts: long token", "GET", "/charts/" + "a" * 5000 + ".png", [])

    # --- with credentials: an interview to aim at first ------------------------------------
    for kind in ("interview.scheduled", "interview.started"):
        event(f"platform: valid {kind}", _event(now, type=kind))

    # --- admin API with the token ----------------------------------------------------------
    add("admin: interview id with NUL", "GET", "/api/interviews/a%00b", auth)
    add("admin: interview id 5000 chars", "GET", "/api/interviews/" + "x" * 5000, auth)
    add("admin: interview id %FF", "GET", "/api/interviews/%FF", auth)
    add("admin: status NUL", "GET", "/api/interviews?status=%00", auth)
    add("admin: notices kind NUL", "GET", "/api/notices?kind=a%00", auth)
    add("admin: notices kind 5000 chars", "GET", "/api/notices?kind=" + "k" * 5000, auth)
    add("admin: report from 0001-01-01", "GET", "/api/reports/exits?from=0001-01-01&to=0001-01-02", auth)
    add("admin: report to 9999-12-31", "GET", "/api/reports/exits?from=9999-12-30&to=9999-12-31", auth)
    add("admin: report from %FF", "GET", "/api/reports/exits?from=%FF&to=2026-01-01", auth)
    add("admin: terminate deep JSON", "POST", "/api/interviews/iv-probe/terminate", auth + json_ct, deep_json)
    add("admin: terminate deep object", "POST", "/api/interviews/iv-probe/terminate", auth + json_ct, deep_obj)
    for field in ("operator", "detail", "reason"):
        payload = {"reason": "候选人放弃", "operator": "probe", "detail": ""}
        payload[field] = payload[field] + "\u0000x"
        add(
            f"admin: terminate {field} with NUL",
            "POST",
            "/api/interviews/iv-probe/terminate",
            auth + json_ct,
            json.dumps(payload).encode(),
        )
    add("admin: terminate NaN", "POST", "/api/interviews/iv-probe/terminate", auth + json_ct, b'{"reason": NaN}')
    add(
        "admin: terminate lone surrogate",
        "POST",
        "/api/interviews/iv-probe/terminate",
        auth + json_ct,
        b'{"reason": "\\ud800"}',
    )
    add(
        "admin: terminate id with NUL",
        "POST",
        "/api/interviews/a%00/terminate",
        auth + json_ct,
        '{"reason": "候选人放弃"}'.encode(),
    )

    # --- platform events, signed -----------------------------------------------------------
    event("platform: deep JSON, signed", deep_json)
    event("platform: deep object, signed", deep_obj)
    event("platform: deep data field", _event(now, data=json.loads("[" * 900 + "]" * 900)))
    event("platform: occurred_at 0001", _event(now, occurred_at="0001-01-01T00:00:00+08:00"))
    event("platform: occurred_at 9999 -08:00", _event(now, occurred_at="9999-12-31T23:59:59-08:00"))
    event("platform: occurred_at 9999 UTC", _event(now, occurred_at="9999-12-31T23:00:00+00:00"))
    event(
        "platform: started at 9999 UTC", _event(now, type="interview.started", occurred_at="9999-12-31T23:00:00+00:00")
    )
    event("platform: scheduled_at 0001", _event(now, interview__scheduled_at="0001-01-01T00:00:00+08:00"))
    event("platform: scheduled_at 9999", _event(now, interview__scheduled_at="9999-12-31T23:59:59-08:00"))
    event("platform: candidate name NUL", _event(now, interview__candidate__name="张\u0000三"))
    event("platform: position NUL", _event(now, interview__position="Java\u0000"))
    event("platform: interview id NUL", _event(now, interview__id="iv\u0000"))
    event("platform: event_id NUL", _event(now, event_id="ev\u0000"))
    event("platform: hr user_id NUL", _event(now, interview__hr={"platform": "wecom", "user_id": "hr\u0000"}))
    event("platform: help reason NUL", _event(now, type="interview.help_requested", data={"reason": "a\u0000"}))
    event("platform: data key NUL", _event(now, data={"k\u0000": 1}))
    event("platform: data NaN", json.dumps(_event(now, data={"x": float("nan")})).encode())
    surrogate = json.dumps(_event(now), ensure_ascii=False).replace("张三", "\\ud800")
    event("platform: lone surrogate name", surrogate.encode())
    event("platform: question_no 10**40", _event(now, type="interview.answer_saved", data={"question_no": 10**40}))
    event("platform: body is a list", [1, 2])

    # --- DingTalk, signed ------------------------------------------------------------------
    ding("dingtalk: deep JSON, signed", deep_json)
    ding("dingtalk: deep object, signed", deep_obj)
    ding("dingtalk: deep field", ding_msg(extra=json.loads("[" * 900 + "]" * 900)))
    for value in ("abc", [], {"a": 1}, "9" * 5000, 1e300, True):
        ding(f"dingtalk: sessionWebhookExpiredTime={str(value)[:12]!r}", ding_msg(sessionWebhookExpiredTime=value))
    ding("dingtalk: msgId 400 chars", ding_msg(msgId="m" * 400))
    ding("dingtalk: msgId not a string", ding_msg(msgId=["x"]))
    ding("dingtalk: text NUL", ding_msg(text={"content": "终止面试 张\u0000三"}))
    ding("dingtalk: senderStaffId 1000 chars", ding_msg(senderStaffId="s" * 1000))
    ding("dingtalk: senderStaffId NUL", ding_msg(senderStaffId="hr\u0000"))
    ding("dingtalk: conversationId 1000 chars", ding_msg(conversationId="c" * 1000))
    ding("dingtalk: conversationType object", ding_msg(conversationType={"a": 1}))
    ding("dingtalk: text not an object", ding_msg(text="hello"))
    ding("dingtalk: NaN", json.dumps(ding_msg(createAt=float("nan"))).encode())
    ding("dingtalk: body is a list", [1])

    # --- WeCom, encrypted ------------------------------------------------------------------
    deep_content = text_xml("hr01", "x", 12340).replace(
        "<Content><![CDATA[x]]></Content>", f"<Content>{deep_xml}</Content>"
    )
    wecom_app("wecom app: 20000-deep XML in Content", deep_content)
    wecom_app("wecom app: MsgId 400 digits", text_xml("hr01", "帮助", int("9" * 400)))
    wecom_app("wecom app: FromUserName 1000 chars", text_xml("u" * 1000, "帮助", 12345))
    wecom_app("wecom app: &#0; in content", text_xml("hr01", "a&#0;b", 12346).replace("<![CDATA[a&#0;b]]>", "a&#0;b"))
    wecom_app("wecom app: not XML", "not xml at all")
    wecom_app("wecom app: CreateTime huge", text_xml("hr01", "帮助", 12347, create_time=int("9" * 30)))
    wecom_bot(
        "wecom bot: deep field",
        aibot_text("hr01", "帮助", msgid="b1", response_url="http://127.0.0.1:9/r")
        | {"x": json.loads("[" * 900 + "]" * 900)},
    )
    wecom_bot(
        "wecom bot: msgid 400 chars", aibot_text("hr01", "帮助", msgid="b" * 400, response_url="http://127.0.0.1:9/r")
    )
    wecom_bot("wecom bot: text NUL", aibot_text("hr01", "帮\u0000助", msgid="b2", response_url="http://127.0.0.1:9/r"))
    wecom_bot(
        "wecom bot: userid 1000 chars", aibot_text("u" * 1000, "帮助", msgid="b3", response_url="http://127.0.0.1:9/r")
    )
    wecom_bot(
        "wecom bot: chatid 1000 chars",
        aibot_text("hr01", "帮助", msgid="b4", response_url="http://127.0.0.1:9/r", chatid="c" * 1000),
    )
    wecom_bot_plain("wecom bot: deep decrypted JSON", "[" * 50_000 + "]" * 50_000)
    wecom_bot_plain("wecom bot: decrypted NaN", '{"msgid": "b5", "x": NaN}')
    return out


async def run(url: str | None, show: Callable[[str], None] = print) -> tuple[int, int]:
    from aiohttp.test_utils import TestServer

    from bench.common import fresh_database
    from bot.app import create_app
    from bot.channels.registry import AppSettings as Settings
    from bot.clock import FrozenClock
    from tests.fakes.dingtalk_api import APP_KEY, APP_SECRET
    from tests.fakes.wecom_api import AES_KEY, AGENT_ID, BOT_AES_KEY, BOT_TOKEN, CORP_ID, SECRET, TOKEN
    from tests.rawhttp import send_raw

    tmp = tempfile.TemporaryDirectory()
    database_url = url or f"sqlite+aiosqlite:///{tmp.name}/probe.db"
    await fresh_database(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        platform_webhook_secret=PLATFORM_SECRET,
        sweep_interval_seconds=3600,
        wecom_corp_id=CORP_ID,
        wecom_agent_id=AGENT_ID,
        wecom_secret=SECRET,
        wecom_token=TOKEN,
        wecom_aes_key=AES_KEY,
        wecom_bot_token=BOT_TOKEN,
        wecom_bot_aes_key=BOT_AES_KEY,
        wecom_api_base="http://127.0.0.1:9",
        dingtalk_app_key=APP_KEY,
        dingtalk_app_secret=APP_SECRET,
        dingtalk_api_base="http://127.0.0.1:9",
        dingtalk_oapi_base="http://127.0.0.1:9",
    )
    server = TestServer(create_app(settings, clock=FrozenClock(now)), host="127.0.0.1")
    await server.start_server()
    tried = errors = 0
    try:
        assert server.port is not None
        for name, (method, path, headers, body) in build_inputs(now):
            status, _ = await send_raw(server.port, method, quote(path, safe="/?&=%:"), headers, body)
            tried += 1
            errors += status >= 500 or status == 0
            show(f"{status:>3}  {name}")
    finally:
        await server.close()
        tmp.cleanup()
    return tried, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="database URL (default: SQLite in a temp dir); a PostgreSQL one is wiped")
    args = parser.parse_args()
    tried, errors = asyncio.run(run(args.url))
    print(f"bad inputs tried: {tried}, 5xx seen: {errors}")


if __name__ == "__main__":
    main()
