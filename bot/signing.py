"""HMAC signatures for the platform contract: hex HMAC-SHA256(secret, ts + "." + body)."""

from __future__ import annotations

import hashlib
import hmac

from bot.bounded import ascii_equal


def platform_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def verify_platform_signature(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, *, now: float, max_skew: int
) -> str | None:
    """None when valid, else a short reason (never which part of the MAC was wrong)."""
    if not timestamp or not signature:
        return "missing signature headers"
    try:
        ts = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(now - ts) > max_skew:
        return "stale timestamp"
    expected = platform_signature(secret, timestamp, body)
    if not ascii_equal(expected, signature.strip().lower()):
        return "bad signature"
    return None
