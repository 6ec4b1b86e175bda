"""A typed Python client for the receivables marketplace API (built on httpx).

    from receivables.client import Client, ApiError, verify_signature

    bank = Client.with_client_credentials(url, client_id, client_secret)
    for listing in bank.iter_listings(status="open"):
        bank.place_bid(listing["id"], discount_rate="0.0450")

Every POST carries an `Idempotency-Key` (a new UUID per call, the same one on the
client's own retries; pass `idempotency_key=` to control it across restarts). Tokens
are renewed before they expire and once after a 401 (refresh token, else the stored
credentials). Errors raise `ApiError` with the API's stable `code`. See
docs/integration.md.
"""

from __future__ import annotations

from receivables.client import types
from receivables.client.api import Client
from receivables.client.errors import ApiError
from receivables.webhooks.signing import TOLERANCE_SECONDS_DEFAULT
from receivables.webhooks.signing import verify as _verify


def verify_signature(
    secret: str | bytes,
    header: str,
    body: str | bytes,
    tolerance_seconds: int = TOLERANCE_SECONDS_DEFAULT,
    now: float | None = None,
) -> bool:
    """Whether a webhook delivery is genuine: `header` is its `X-Signature`
    (`t=<unix>,v1=<hex>`), `body` the raw request body exactly as received (before any
    JSON parsing), `secret` the webhook's secret. False when the signature does not
    match or `t` is more than `tolerance_seconds` from `now` (default: this machine's
    clock), which stops replays of old deliveries."""
    return _verify(secret, header, body, tolerance_seconds=tolerance_seconds, now=now)


__all__ = ["ApiError", "Client", "types", "verify_signature"]
