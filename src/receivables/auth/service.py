"""Logging in: the password grant, client credentials, and refresh-token rotation.

Refresh tokens are opaque 256-bit random strings (`secrets.token_urlsafe(32)`), stored
as SHA-256 digests: with that much entropy a fast hash cannot be brute-forced and the
lookup stays one index probe. Each is single use; refreshing marks it used and issues
the next token of its family. A used token presented again means two parties hold it
(one of them a thief), so the whole family is revoked and both answer 401 (RFC 9700
§4.14.2, refresh token rotation). Refusals that must leave a trace (a failed login's
counter, a revoked family) are `DurableRefusal`s: the auth session commits them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth import passwords, repository, tokens
from receivables.auth.dependencies import DurableRefusal
from receivables.auth.models import RefreshToken
from receivables.auth.principal import Principal, client_subject, user_subject
from receivables.auth.schemas import MeRead, TokenResponse
from receivables.auth.throttle import Throttle, account_key, client_key
from receivables.config import Settings
from receivables.kit.clock import Clock
from receivables.kit.errors import Forbidden, NotAuthenticated, NotFound
from receivables.organizations import repository as organizations
from receivables.organizations.models import Organization, OrganizationStatus
from receivables.organizations.schemas import OrganizationRef

REFRESH_TOKEN_BYTES = 32


class InvalidCredentials(DurableRefusal, NotAuthenticated):
    code, title = "invalid_credentials", "Unknown user or wrong password"


class InvalidClient(DurableRefusal, NotAuthenticated):
    code, title = "invalid_client", "Unknown or revoked client, or wrong secret"


class InvalidRefreshToken(NotAuthenticated):
    code, title = "invalid_refresh_token", "The refresh token is unknown, used, revoked or expired"


class RefreshTokenReused(DurableRefusal, InvalidRefreshToken):
    """Same answer as any invalid refresh token; the family's revocation is kept."""


class OrganizationSuspended(Forbidden):
    code, title = "organization_suspended", "The organization is suspended"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _access_token(
    settings: Settings, organization: Organization, *, subject: str, now: dt.datetime
) -> str:
    return tokens.issue_access_token(
        secret=settings.jwt_secret_bytes,
        subject=subject,
        organization_id=organization.id,
        role=organization.kind,
        now=now,
        lifetime_seconds=settings.access_token_seconds,
    )


async def _new_refresh_token(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    settings: Settings,
    now: dt.datetime,
) -> str:
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    session.add(
        RefreshToken(
            token_hash=_digest(token),
            family_id=family_id,
            user_id=user_id,
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=settings.refresh_token_seconds),
        )
    )
    await session.flush()
    return token


async def login_with_password(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    address: str,
    settings: Settings,
    clock: Clock,
) -> TokenResponse:
    now = clock.now()
    throttle = Throttle.for_attempt(settings, account=account_key(email), address=address)
    failing_keys = await throttle.check(session, now=now)
    user = await organizations.get_user_by_email(session, email)
    # Verify even when the user is unknown: the same work, the same answer, the same time.
    valid = await passwords.verify_password(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        await throttle.record_failure(session, now=now)
        raise InvalidCredentials()
    found = await organizations.get_user_with_organization(session, user.id)
    assert found is not None
    _, organization = found
    if organization.status != OrganizationStatus.active:
        raise OrganizationSuspended()
    if throttle.account.key in failing_keys:
        await throttle.forgive_account(session)
    refresh_token = await _new_refresh_token(
        session, user_id=user.id, family_id=uuid.uuid4(), settings=settings, now=now
    )
    return TokenResponse(
        access_token=_access_token(settings, organization, subject=user_subject(user.id), now=now),
        expires_in=settings.access_token_seconds,
        refresh_token=refresh_token,
    )


async def login_with_client_credentials(
    session: AsyncSession,
    *,
    client_id: str,
    client_secret: str,
    address: str,
    settings: Settings,
    clock: Clock,
) -> TokenResponse:
    """OAuth2 client credentials: an access token whose `sub` names the client."""
    now = clock.now()
    throttle = Throttle.for_attempt(settings, account=client_key(client_id), address=address)
    failing_keys = await throttle.check(session, now=now)
    try:
        parsed = uuid.UUID(client_id)
    except ValueError:
        parsed = None
    found = await repository.get_client_with_organization(session, parsed) if parsed else None
    client = found[0] if found is not None and found[0].revoked_at is None else None
    # As for users: an unknown or revoked client costs one full argon2 verify too.
    valid = await passwords.verify_password(client_secret, client.secret_hash if client else None)
    if client is None or not valid:
        await throttle.record_failure(session, now=now)
        raise InvalidClient()
    assert found is not None
    organization = found[1]
    if organization.status != OrganizationStatus.active:
        raise OrganizationSuspended()
    if throttle.account.key in failing_keys:
        await throttle.forgive_account(session)
    return TokenResponse(
        access_token=_access_token(
            settings, organization, subject=client_subject(client.id), now=now
        ),
        expires_in=settings.access_token_seconds,
    )


async def refresh(
    session: AsyncSession, *, refresh_token: str, settings: Settings, clock: Clock
) -> TokenResponse:
    """Exchange a refresh token, once, for a new access token and refresh token."""
    now = clock.now()
    row = await repository.get_refresh_token_for_update(session, _digest(refresh_token))
    if row is None:
        raise InvalidRefreshToken()
    if row.used_at is not None:
        await repository.revoke_refresh_family(session, row.family_id, now=now)
        raise RefreshTokenReused()
    if row.revoked_at is not None or now >= row.expires_at:
        raise InvalidRefreshToken()
    found = await organizations.get_user_with_organization(session, row.user_id)
    if found is None:
        raise InvalidRefreshToken()
    user, organization = found
    if not user.is_active or organization.status != OrganizationStatus.active:
        raise InvalidRefreshToken("the token's user or organization is not active")
    row.used_at = now
    next_token = await _new_refresh_token(
        session, user_id=user.id, family_id=row.family_id, settings=settings, now=now
    )
    return TokenResponse(
        access_token=_access_token(settings, organization, subject=user_subject(user.id), now=now),
        expires_in=settings.access_token_seconds,
        refresh_token=next_token,
    )


async def me(session: AsyncSession, principal: Principal) -> MeRead:
    if principal.client_id is not None:
        found_client = await repository.get_client_with_organization(session, principal.client_id)
        if found_client is None:
            raise NotFound("no such API client")
        client, organization = found_client
        return MeRead(
            user_id=None,
            client_id=client.id,
            email=None,
            organization=OrganizationRef.model_validate(organization),
            role=organization.kind,
        )
    if principal.user_id is None:
        raise NotFound("no user behind this token")
    found = await organizations.get_user_with_organization(session, principal.user_id)
    if found is None:
        raise NotFound("no such user")
    user, organization = found
    return MeRead(
        user_id=user.id,
        email=user.email,
        organization=OrganizationRef.model_validate(organization),
        role=organization.kind,
    )
