"""API clients (OAuth2 client credentials): created by the organization itself or the
operator, listed without secrets, revoked at once.

The secret is `secrets.token_urlsafe(32)` behind a recognizable prefix (so secret
scanners can spot a leaked one), shown once and stored as an argon2id hash like a
password. Only users manage clients: a client token that could mint more clients would
let a leaked secret outlive its own revocation.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth import passwords, repository
from receivables.auth.models import ApiClient
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.auth.schemas import ApiClientCreate
from receivables.events import service as audit
from receivables.kit.clock import Clock
from receivables.kit.errors import Forbidden, NotFound
from receivables.kit.pagination import PageRequest
from receivables.organizations import repository as organizations
from receivables.organizations.models import Organization

SECRET_PREFIX = "rcs_"
SECRET_BYTES = 32


class ApiClientNotFound(NotFound):
    code, title = "not_found", "No such API client"


async def _organization(
    session: AsyncSession, actor: Principal, organization_id: uuid.UUID, *, write: bool
) -> Organization:
    """404 unless the caller may see the organization's clients (its own, or everyone's
    for the operator and the regulator); then 403 unless it may change them (its own,
    or any for the operator; never an API client)."""
    own = actor.organization_id == organization_id
    if not (own or actor.sees_everything):
        raise NotFound("no such organization")
    if write and not (own or actor.role == Role.operator):
        raise Forbidden("only the organization itself or the operator manages its API clients")
    if write and actor.is_api_client:
        raise Forbidden("API clients cannot manage API clients; a user must")
    organization = await organizations.get(session, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    return organization


async def create(
    session: AsyncSession,
    actor: Principal,
    organization_id: uuid.UUID,
    body: ApiClientCreate,
    *,
    clock: Clock,
) -> tuple[ApiClient, str]:
    """A new client and its secret (the only time the secret is known to anyone)."""
    organization = await _organization(session, actor, organization_id, write=True)
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    client = ApiClient(
        organization_id=organization.id,
        name=body.name,
        secret_hash=await passwords.hash_password(secret),
        created_at=clock.now(),
    )
    session.add(client)
    await session.flush()
    await audit.record(
        session, actor, clock=clock, action="api_client.created", object_type="api_client",
        object_id=client.id, to_state="active", data={"organization_id": str(organization.id)},
    )
    return client, secret


async def list_page(
    session: AsyncSession, actor: Principal, organization_id: uuid.UUID, page: PageRequest
) -> list[ApiClient]:
    organization = await _organization(session, actor, organization_id, write=False)
    return await repository.list_clients(session, organization.id, page)


async def revoke(
    session: AsyncSession,
    actor: Principal,
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    *,
    clock: Clock,
) -> None:
    """Revoke a client: no new tokens, and its current tokens answer 401 at once (every
    request re-checks the client). Revoking a revoked client changes nothing."""
    organization = await _organization(session, actor, organization_id, write=True)
    client = await repository.get_client_for_update(session, organization.id, client_id)
    if client is None:
        raise ApiClientNotFound()
    if client.revoked_at is not None:
        return
    client.revoked_at = clock.now()
    await audit.record(
        session, actor, clock=clock, action="api_client.revoked", object_type="api_client",
        object_id=client.id, from_state="active", to_state="revoked",
        data={"organization_id": str(organization.id)},
    )
    await session.flush()
