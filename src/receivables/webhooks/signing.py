"""Webhook signatures: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`.

Pure and standard-library only: the delivery worker signs with it and the Python client
(`receivables.client.verify_signature`) verifies with it, so the two cannot drift. The
timestamp is inside the signed text, so a captured delivery cannot be replayed later
than the receiver's tolerance; receivers also de-duplicate on `X-Event-Id`.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Signature"
EVENT_ID_HEADER = "X-Event-Id"
SCHEME = "v1"
TOLERANCE_SECONDS_DEFAULT = 300
HEADER_CHARS_MAX = 1024
"""A longer header is not one we sent: refused before parsing."""


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def compute(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with the endpoint's secret."""
    message = str(timestamp).encode() + b"." + _as_bytes(body)
    return hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()


def header(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The `X-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},{SCHEME}={compute(secret, timestamp, body)}"


def parse(value: str) -> tuple[int, list[str]] | None:
    """(timestamp, [v1 signatures]) from a header, or None if it is malformed. Several
    `v1=` entries are allowed (a receiver rotating secrets may see two)."""
    if not value or len(value) > HEADER_CHARS_MAX:
        return None
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            if not item.isdigit() or timestamp is not None:
                return None
            timestamp = int(item)
        elif key == SCHEME:
            signatures.append(item)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    secret: str | bytes,
    header_value: str,
    body: str | bytes,
    *,
    tolerance_seconds: int = TOLERANCE_SECONDS_DEFAULT,
    now: float | None = None,
) -> bool:
    """True when one `v1` signature matches `body` under `secret` and `t` is within
    `tolerance_seconds` of `now` (default: this machine's clock). Constant-time compare."""
    parsed = parse(header_value)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = compute(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
