"""Logging in: the password grant (client credentials and refresh come with API clients)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth import passwords, tokens
from receivables.auth.principal import Principal
from receivables.auth.schemas import MeRead, TokenResponse
from receivables.config import Settings
from receivables.kit.clock import Clock
from receivables.kit.errors import Forbidden, NotAuthenticated, NotFound
from receivables.organizations import repository as organizations
from receivables.organizations.models import OrganizationStatus
from receivables.organizations.schemas import OrganizationRef


class InvalidCredentials(NotAuthenticated):
    code, title = "invalid_credentials", "Unknown user or wrong password"


class OrganizationSuspended(Forbidden):
    code, title = "organization_suspended", "The organization is suspended"


async def login_with_password(
    session: AsyncSession, *, email: str, password: str, settings: Settings, clock: Clock
) -> TokenResponse:
    user = await organizations.get_user_by_email(session, email)
    # Verify even when the user is unknown: the same work, the same answer, the same time.
    valid = await passwords.verify_password(password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials()
    found = await organizations.get_user_with_organization(session, user.id)
    assert found is not None
    _, organization = found
    if organization.status != OrganizationStatus.active:
        raise OrganizationSuspended()
    token = tokens.issue_access_token(
        secret=settings.jwt_secret_bytes,
        subject=str(user.id),
        organization_id=organization.id,
        role=organization.kind,
        now=clock.now(),
        lifetime_seconds=settings.access_token_seconds,
    )
    return TokenResponse(access_token=token, expires_in=settings.access_token_seconds)


async def me(session: AsyncSession, principal: Principal) -> MeRead:
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
