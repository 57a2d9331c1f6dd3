"""WeCom callback crypto: a thin wrapper over wechatpy's ``WeChatCrypto``.

wechatpy does the AES-256-CBC work. This module adds what the wrapper needs to be safe to
put behind a public URL:

- the signature is checked first, in constant time (wechatpy compares with ``!=``);
- every way decryption can fail (wrong key, truncated or tampered ciphertext, a foreign
  receiveid: wechatpy raises ``struct.error``, ``UnicodeDecodeError``, ``binascii.Error`` or
  its own exceptions) becomes one of three clear errors, so the webhook can answer 4xx;
- the AI bot (智能机器人) uses the same scheme with receiveid ``""`` and JSON envelopes,
  which wechatpy does not emit, so ``encrypt_json`` builds them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict  # type: ignore[import-untyped]
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from bot.bounded import BadInput, ascii_equal, check_xml, load_json

log = logging.getLogger(__name__)

# WeCom message XML is a few levels deep (<xml><SendLocationInfo><Location_X>…); allow some room.
MESSAGE_DEPTH = 8


class CallbackError(Exception):
    """A callback that must be refused. ``status`` is the HTTP status to answer with."""

    status = 400


class SignatureError(CallbackError):
    status = 401


class MalformedError(CallbackError):
    status = 400


class DecryptError(CallbackError):
    """The signature matched but the payload does not decrypt: usually a wrong EncodingAESKey."""

    status = 400


class ConfigError(ValueError):
    """The token or EncodingAESKey in the settings cannot work."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """WeCom msg_signature: sha1 over the sorted, concatenated strings (hex)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()  # noqa: S324


class CallbackCrypto:
    """Verify, decrypt and encrypt callbacks for one receiver (CorpID, or "" for the AI bot)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token:
            raise ConfigError("token is empty")
        if len(encoding_aes_key) != 43:
            raise ConfigError("EncodingAESKey must be 43 characters")
        try:
            self._crypto = WeChatCrypto(token, encoding_aes_key, receive_id)
        except Exception as exc:  # binascii.Error, AssertionError from wechatpy
            raise ConfigError(f"EncodingAESKey is not valid: {type(exc).__name__}") from exc
        self.token = token
        self.receive_id = receive_id

    def _check(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not ascii_equal(expected, msg_signature):
            raise SignatureError("invalid msg_signature")

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET URL verification: the plaintext of ``echostr``, to be sent back as-is."""
        # Base64 never holds a space: a '+' that reached us unencoded was decoded to ' '.
        echostr = echostr.replace(" ", "+")
        self._check(msg_signature, timestamp, nonce, echostr)
        try:
            plain = self._crypto.check_signature(msg_signature, timestamp, nonce, echostr)
        except Exception as exc:
            raise DecryptError(f"echostr does not decrypt: {type(exc).__name__}") from exc
        return str(plain)

    def decrypt(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The plaintext (XML for the app, JSON for the AI bot) of a verified ``Encrypt`` value."""
        if not encrypted:
            raise MalformedError("missing Encrypt")
        self._check(msg_signature, timestamp, nonce, encrypted)
        try:
            plain = self._crypto.decrypt_message({"Encrypt": encrypted}, msg_signature, timestamp, nonce)
        except Exception as exc:
            raise DecryptError(f"message does not decrypt: {type(exc).__name__}") from exc
        return str(plain)

    def decrypt_xml(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        """Self-built app POST: ``<xml><Encrypt>…</Encrypt>…</xml>`` → plaintext XML (depth-checked)."""
        plain = self.decrypt(outer_xml_encrypt(body), msg_signature, timestamp, nonce)
        try:
            check_xml(plain, max_depth=MESSAGE_DEPTH)
        except BadInput as exc:
            raise MalformedError(f"decrypted XML refused: {exc}") from exc
        return plain

    def decrypt_json(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> dict[str, Any]:
        """AI bot POST: ``{"encrypt": "…"}`` → the decrypted JSON object."""
        try:
            envelope = load_json(body, max_depth=2)  # {"encrypt": "..."}: parsed before the signature check
        except BadInput as exc:
            raise MalformedError(f"body is not a JSON envelope: {exc}") from exc
        if not isinstance(envelope, dict) or not isinstance(envelope.get("encrypt"), str):
            raise MalformedError("missing encrypt")
        plain = self.decrypt(envelope["encrypt"], msg_signature, timestamp, nonce)
        try:
            data = load_json(plain)
        except BadInput as exc:
            raise MalformedError(f"decrypted payload is not acceptable JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedError("decrypted payload is not an object")
        return data

    def encrypt_xml(self, plaintext: str, nonce: str, timestamp: str | None = None) -> str:
        """An encrypted XML envelope (passive replies; tests use it to play WeCom)."""
        return str(self._crypto.encrypt_message(plaintext, nonce, timestamp))

    def encrypt_json(self, payload: Mapping[str, Any], nonce: str, timestamp: str | None = None) -> dict[str, Any]:
        """The AI bot's JSON envelope: ``{"encrypt", "msgsignature", "timestamp", "nonce"}``."""
        ts = timestamp or str(int(time.time()))
        text = json.dumps(payload, ensure_ascii=False)
        encrypted = PrpCrypto(self._crypto.key).encrypt(text, self.receive_id)
        enc = encrypted.decode() if isinstance(encrypted, bytes) else str(encrypted)
        return {
            "encrypt": enc,
            "msgsignature": signature(self.token, ts, nonce, enc),
            "timestamp": int(ts),
            "nonce": nonce,
        }


def outer_xml_encrypt(body: bytes) -> str:
    """The ``Encrypt`` value of a callback envelope; malformed XML raises ``MalformedError``."""
    try:
        check_xml(body, max_depth=2)  # <xml><Encrypt/>…</xml>: parsed before the signature check
        doc = xmltodict.parse(body, disable_entities=True)
    except (ExpatError, ValueError) as exc:  # BadInput is a ValueError
        raise MalformedError("body is not well-formed XML") from exc
    xml = doc.get("xml") if isinstance(doc, dict) else None
    encrypted = xml.get("Encrypt") if isinstance(xml, dict) else None
    if not isinstance(encrypted, str) or not encrypted:
        raise MalformedError("missing <Encrypt>")
    return encrypted
