"""Who is calling, and role gates as types: `BankActor`, `SmeActor`, ...

Every request re-reads the caller (a user or an API client) joined with its organization
in one indexed query, so a suspended organization's, a deactivated user's or a revoked
client's tokens answer 401 at once instead of living until they expire.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth import repository, tokens
from receivables.auth.principal import Principal, parse_subject
from receivables.auth.roles import Role
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import Forbidden, NotAuthenticated
from receivables.organizations import repository as organizations
from receivables.organizations.models import OrganizationStatus
from receivables.organizations.repository import Standing

bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/token")

CHALLENGE = {"WWW-Authenticate": "Bearer"}


class DurableRefusal(Exception):
    """Mixin for errors whose writes must survive the refusal: a failed login's throttle
    counter, a refresh-token family revoked on reuse. Any other error answer rolls the
    request's transaction back (kit/transaction.py); `AuthSessionDep` commits what was
    written before one of these was raised, then lets it answer."""


async def get_auth_session(session: SessionDep) -> AsyncIterator[AsyncSession]:
    """The request's own session (one transaction, one connection: on SQLite a second
    session would wait for the only connection), which commits on a DurableRefusal. The
    request transaction's rollback that follows the 4xx then finds nothing to undo."""
    try:
        yield session
    except DurableRefusal:
        await session.commit()
        raise


AuthSessionDep = Annotated[AsyncSession, Depends(get_auth_session, scope="function")]


def _unauthenticated(detail: str) -> NotAuthenticated:
    return NotAuthenticated(detail, headers=CHALLENGE)


def _standing_ok(standing: Standing | None, claims: tokens.AccessClaims) -> bool:
    return (
        standing is not None
        and standing.active
        and standing.organization_status == OrganizationStatus.active
        and standing.organization_id == claims.organization_id
        and standing.organization_kind == claims.role
    )


async def _principal_for_client(
    session: AsyncSession, claims: tokens.AccessClaims, client_id: uuid.UUID
) -> Principal:
    if not _standing_ok(await repository.client_standing(session, client_id), claims):
        raise _unauthenticated("the token's client or organization is no longer active")
    return Principal(role=Role(claims.role), organization_id=claims.organization_id, client_id=client_id)


async def _principal_for_user(
    session: AsyncSession, claims: tokens.AccessClaims, user_id: uuid.UUID
) -> Principal:
    if not _standing_ok(await organizations.user_standing(session, user_id), claims):
        raise _unauthenticated("the token's user or organization is no longer active")
    return Principal(role=Role(claims.role), organization_id=claims.organization_id, user_id=user_id)


async def get_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthenticated("a bearer token is required")
    try:
        claims = tokens.decode_access_token(
            credentials.credentials, secret=settings.jwt_secret_bytes, now=clock.now()
        )
        kind, subject_id = parse_subject(claims.subject)
    except (tokens.InvalidToken, ValueError):
        raise _unauthenticated("the token is invalid or expired") from None
    if kind == "client":
        return await _principal_for_client(session, claims, subject_id)
    return await _principal_for_user(session, claims, subject_id)


def require_roles(*roles: Role):
    allowed = frozenset(roles)

    async def gate(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in allowed:
            raise Forbidden(f"this action is for: {', '.join(sorted(allowed))}")
        return principal

    return gate


Actor = Annotated[Principal, Depends(get_principal)]
SmeActor = Annotated[Principal, Depends(require_roles(Role.sme))]
CoreActor = Annotated[Principal, Depends(require_roles(Role.core))]
BankActor = Annotated[Principal, Depends(require_roles(Role.bank))]
OperatorActor = Annotated[Principal, Depends(require_roles(Role.operator))]
SupervisorActor = Annotated[Principal, Depends(require_roles(Role.operator, Role.regulator))]
"""Operators and regulators: the read-everything roles."""
