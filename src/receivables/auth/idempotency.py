"""The app-wide gate that claims a POST's Idempotency-Key for the caller's organization
(see kit/idempotency.py for the guarantees)."""

from __future__ import annotations

import datetime as dt

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials

from receivables.auth.dependencies import get_principal
from receivables.kit import idempotency
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep


async def idempotency_gate(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> None:
    """Anonymous calls (logging in) have no organization to scope a key to: ignored. The
    header is read directly, not through the bearer scheme, so that public operations
    are not documented as needing a token."""
    if request.method != "POST" or idempotency.HEADER not in request.headers:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not token:
        return
    credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
    principal = await get_principal(credentials, session, settings, clock)
    assert principal.organization_id is not None
    await idempotency.claim_key(
        request, session, organization_id=principal.organization_id, now=clock.now(),
        ttl=dt.timedelta(hours=settings.idempotency_ttl_hours),
    )
