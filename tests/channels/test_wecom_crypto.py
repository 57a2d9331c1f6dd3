"""Conformance of the WeCom callback crypto with Tencent's official sample vectors and wechatpy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.channels.wecom.crypto import (
    CallbackCrypto,
    ConfigError,
    DecryptError,
    MalformedError,
    SignatureError,
    signature,
)
from bot.channels.wecom.parse import command_from_key, parse_aibot_json, parse_app_xml
from tests.fakes.wecom_api import BOT_AES_KEY, BOT_TOKEN, WeComSide, aibot_text, card_click_xml, text_xml

VECTORS = json.loads((Path(__file__).parents[1] / "fixtures" / "wecom_vectors.json").read_text())
OFFICIAL = VECTORS["official_sample"]
WECHATPY = VECTORS["wechatpy_check_signature"]


def official() -> CallbackCrypto:
    return CallbackCrypto(OFFICIAL["token"], OFFICIAL["encoding_aes_key"], OFFICIAL["corp_id"])


def test_official_url_verification() -> None:
    v = OFFICIAL["verify_url"]
    assert official().verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"]) == v["plaintext"]


def test_official_url_verification_survives_plus_decoded_to_space() -> None:
    v = OFFICIAL["verify_url"]
    mangled = v["echostr"].replace("+", " ")
    assert "+" in v["echostr"]
    assert official().verify_url(v["msg_signature"], v["timestamp"], v["nonce"], mangled) == v["plaintext"]


def test_official_message_decrypts() -> None:
    m = OFFICIAL["message"]
    plain = official().decrypt_xml(m["body"].encode(), m["msg_signature"], m["timestamp"], m["nonce"])
    assert plain == m["plaintext"]
    parsed = parse_app_xml(plain)
    assert parsed is not None
    assert parsed.msg.sender_id == "ChenJiaShun"
    assert parsed.msg.text == "你好"
    assert parsed.dedupe_key == "msg:1456453720"
    assert parsed.msg.chat_type == "direct"


def test_wechatpy_vector_and_its_wrong_nonce() -> None:
    v = WECHATPY
    crypto = CallbackCrypto(v["token"], v["encoding_aes_key"], v["corp_id"])
    assert crypto.verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"]) == v["plaintext"]
    with pytest.raises(SignatureError):
        crypto.verify_url(v["msg_signature"], v["timestamp"], v["wrong_nonce_must_fail"], v["echostr"])


def test_tampered_official_message_fails_signature() -> None:
    m = OFFICIAL["message"]
    for sig, ts, nonce in [
        ("0" * 40, m["timestamp"], m["nonce"]),
        (m["msg_signature"], str(int(m["timestamp"]) + 1), m["nonce"]),
        (m["msg_signature"], m["timestamp"], m["nonce"] + "1"),
    ]:
        with pytest.raises(SignatureError):
            official().decrypt_xml(m["body"].encode(), sig, ts, nonce)


def test_round_trip_through_wechatpy_as_the_client() -> None:
    side = WeComSide()
    path, body = side.app_post(text_xml("hr01", "终止面试 张三 候选人放弃", 42), timestamp=1700000000)
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
    plain = official().decrypt_xml(body, query["msg_signature"], query["timestamp"], query["nonce"])
    parsed = parse_app_xml(plain)
    assert parsed is not None and parsed.msg.text == "终止面试 张三 候选人放弃"

    # Our own encryption is readable by wechatpy too.
    envelope = official().encrypt_xml("<xml><Content>hi</Content></xml>", "123", "1700000000")
    assert side.crypto.decrypt_message(envelope, *_sig_of(envelope), "1700000000", "123").endswith("</xml>")


def _sig_of(envelope: str) -> tuple[str]:
    return (envelope.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0],)


def test_wrong_key_is_a_decrypt_error_not_a_crash() -> None:
    # Same token (signature fine), another AES key: wechatpy raises struct.error & co.
    side = WeComSide(aes_key=BOT_AES_KEY)
    path, body = side.app_post(text_xml("hr01", "hi", 1), timestamp=1700000000)
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
    with pytest.raises(DecryptError):
        official().decrypt_xml(body, query["msg_signature"], query["timestamp"], query["nonce"])


def test_malformed_envelopes() -> None:
    crypto = official()
    for body in (b"not xml", b"<xml><ToUserName>x</ToUserName></xml>", b"<xml><Encrypt></Encrypt></xml>"):
        with pytest.raises(MalformedError):
            crypto.decrypt_xml(body, "a", "1", "2")
    with pytest.raises(MalformedError):
        crypto.decrypt_json(b"{", "a", "1", "2")
    with pytest.raises(MalformedError):
        crypto.decrypt_json(b'{"encrypt": 1}', "a", "1", "2")


def test_bad_keys_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        CallbackCrypto("t", "short", "corp")
    with pytest.raises(ConfigError):
        CallbackCrypto("t", "!" * 43, "corp")
    with pytest.raises(ConfigError):
        CallbackCrypto("", OFFICIAL["encoding_aes_key"], "corp")


def test_aibot_json_envelope_round_trip() -> None:
    bot = CallbackCrypto(BOT_TOKEN, BOT_AES_KEY, "")
    side = WeComSide(token=BOT_TOKEN, aes_key=BOT_AES_KEY, corp_id="")
    payload = aibot_text("hr01", "@面试助手 帮助", msgid="m1", response_url="https://x/y", chatid="chat-1")
    path, body = side.bot_post(payload, timestamp=1700000000)
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
    data = bot.decrypt_json(body, query["msg_signature"], query["timestamp"], query["nonce"])
    parsed = parse_aibot_json(data)
    assert parsed is not None
    assert parsed.msg.chat_type == "group" and parsed.msg.chat_id == "chat-1"
    assert parsed.msg.reply_hint == {"response_url": "https://x/y"}
    assert parsed.dedupe_key == "aibot:m1"

    reply = bot.encrypt_json({"msgtype": "text", "text": {"content": "好"}}, "99", "1700000000")
    assert reply["msgsignature"] == signature(BOT_TOKEN, "1700000000", "99", reply["encrypt"])
    assert json.loads(bot.decrypt(reply["encrypt"], reply["msgsignature"], "1700000000", "99"))["text"] == {
        "content": "好"
    }


def test_card_click_becomes_the_button_command() -> None:
    parsed = parse_app_xml(
        card_click_xml("hr01", task_id="t-1", event_key="cmd:%E7%A1%AE%E8%AE%A4", response_code="rc")
    )
    assert parsed is not None
    assert parsed.msg.text == "确认"
    assert parsed.card["response_code"] == "rc"
    assert parsed.dedupe_key.startswith("card:")
    assert command_from_key("other:1") is None
    assert parse_app_xml(card_click_xml("hr01", task_id="t", event_key="foreign", response_code="rc")) is None
