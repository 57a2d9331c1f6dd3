"""Feishu event subscription security: the signature headers and the Encrypt Key.

With an Encrypt Key set, Feishu sends ``{"encrypt": base64(iv + AES-256-CBC(json))}`` with the
key sha256(Encrypt Key), PKCS#7 padding, and signs every callback except url_verification with
``X-Lark-Signature = hex(sha256(X-Lark-Request-Timestamp + X-Lark-Request-Nonce + key + body))``
over the raw body bytes. The signature is compared in constant time on bytes; decryption (with
``cryptography``, strict about length and padding like the SDK's ``AESCipher``) is checked against
lark-oapi's own code in the tests. The SDK is not imported at run time: importing any part of it
loads all of it, blocking the event loop for seconds — longer than Feishu waits for an answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16

TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"
SIGNATURE_HEADER = "X-Lark-Signature"
# Feishu's ciphertexts are a few kilobytes; base64 of the largest body we accept (bot.bounded).
MAX_CIPHERTEXT = 1_500_000


class CryptoError(ValueError):
    """A callback that is not Feishu's: bad signature, token or ciphertext."""


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def verify_signature(headers: Mapping[str, str], encrypt_key: str, body: bytes) -> None:
    timestamp = headers.get(TIMESTAMP_HEADER)
    nonce = headers.get(NONCE_HEADER)
    given = headers.get(SIGNATURE_HEADER)
    if not timestamp or not nonce or not given:
        raise CryptoError("missing signature headers")
    expected = signature(timestamp, nonce, encrypt_key, body)
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        raise CryptoError("bad signature")


def decrypt(encrypted: Any, encrypt_key: str) -> bytes:
    """The plaintext JSON bytes of an ``encrypt`` field: base64(iv + AES-256-CBC(PKCS#7(json)))."""
    if not isinstance(encrypted, str) or not encrypted or len(encrypted) > MAX_CIPHERTEXT:
        raise CryptoError("encrypt is not a ciphertext")
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("encrypt is not base64") from exc
    if len(raw) < 2 * BLOCK or len(raw) % BLOCK:
        raise CryptoError("invalid ciphertext length")
    key = hashlib.sha256(encrypt_key.encode()).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:BLOCK])).decryptor()
    padded = decryptor.update(raw[BLOCK:]) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise CryptoError("invalid padding (wrong Encrypt Key?)")
    return padded[:-pad]


def token_matches(given: Any, expected: str) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(given.encode(), expected.encode())
