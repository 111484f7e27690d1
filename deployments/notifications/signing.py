"""Signatures of generic webhooks.

Every request carries ``X-Apollo-Timestamp`` (Unix seconds) and ``X-Apollo-Signature:
sha256=<hex>``, the HMAC-SHA256 with the subscription's secret of ``<timestamp>.<raw body>``.
A receiver recomputes it over the raw body, compares in constant time and refuses timestamps
older than a few minutes (replays). See the README, "Notifications".
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Apollo-Signature"
TIMESTAMP_HEADER = "X-Apollo-Timestamp"


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(*, secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret=secret, timestamp=timestamp, body=body), signature)
