"""DingTalk signatures: base64(HMAC-SHA256(secret, timestamp + "\\n" + secret)).

The same MAC signs inbound robot callbacks (``timestamp`` and ``sign`` headers, key = the
app secret) and outbound custom-robot posts (``timestamp`` and ``sign`` query parameters,
key = the robot's "SEC..." secret). DingTalk rejects timestamps more than one hour off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from bot.bounded import ascii_equal

MAX_SKEW_MS = 3600 * 1000


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """The raw base64 sign (not URL-quoted; an HTTP client's ``params`` quotes it once)."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_callback(
    secret: str, timestamp: str | None, sign: str | None, *, now_ms: int, max_skew_ms: int = MAX_SKEW_MS
) -> str | None:
    """None when the callback headers are genuine and within ``max_skew_ms`` of now, else a short reason."""
    if not timestamp or not sign:
        return "missing timestamp or sign header"
    try:
        ts = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(now_ms - ts) > max_skew_ms:
        return "stale timestamp"
    if not ascii_equal(dingtalk_sign(secret, timestamp), sign.strip()):
        return "bad sign"
    return None
