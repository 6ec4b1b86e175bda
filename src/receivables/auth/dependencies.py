"""Who is calling, and role gates as types: `BankActor`, `SmeActor`, ...

Every request re-reads the user and its organization (one indexed join), so a suspended
organization's tokens answer 401 at once instead of living until they expire.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from receivables.auth import tokens
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import Forbidden, NotAuthenticated
from receivables.organizations import repository as organizations
from receivables.organizations.models import OrganizationStatus

bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/token")

CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("a bearer token is required", headers=CHALLENGE)
    try:
        claims = tokens.decode_access_token(
            credentials.credentials, secret=settings.jwt_secret_bytes, now=clock.now()
        )
        user_id = uuid.UUID(claims.subject)
    except (tokens.InvalidToken, ValueError):
        raise NotAuthenticated("the token is invalid or expired", headers=CHALLENGE) from None
    found = await organizations.get_user_with_organization(session, user_id)
    if found is None:
        raise NotAuthenticated("the token's user no longer exists", headers=CHALLENGE)
    user, organization = found
    if (
        not user.is_active
        or organization.status != OrganizationStatus.active
        or organization.id != claims.organization_id
        or organization.kind != claims.role
    ):
        raise NotAuthenticated("the token's user or organization is not active", headers=CHALLENGE)
    return Principal(role=Role(claims.role), organization_id=organization.id, user_id=user.id)


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
