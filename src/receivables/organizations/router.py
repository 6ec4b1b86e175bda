"""/organizations: onboarding by the operator; a visibility-scoped directory for others."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from receivables.auth import clients
from receivables.auth.dependencies import Actor, OperatorActor
from receivables.auth.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientRead,
    api_client_created,
)
from receivables.kit.deps import ClockDep, SessionDep
from receivables.kit.errors import Forbidden, IllegalTransition, NotFound, problem_responses
from receivables.kit.pagination import Page, PageParams, next_cursor
from receivables.organizations import service
from receivables.organizations.schemas import (
    OrganizationCreate,
    OrganizationRead,
    UserCreate,
    UserRead,
)

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationRead,
    responses=problem_responses(Forbidden, service.DuplicateCreditCode),
)
async def create_organization(
    body: OrganizationCreate, actor: OperatorActor, session: SessionDep, clock: ClockDep
):
    """Onboard an organization. Its credit code's check character is verified
    (GB 32100-2015); its kind is the role of all its users."""
    return await service.create(session, actor, body, clock=clock)


@router.get("", response_model=Page[OrganizationRead], responses=problem_responses())
async def list_organizations(
    actor: Actor,
    session: SessionDep,
    page: PageParams,
    kind: Annotated[Literal["sme", "core", "bank", "regulator", "operator"] | None, Query()] = None,
):
    """Operators and regulators see every organization; others see their own, their
    counterparties and the directory of core enterprises (`?kind=core`)."""
    rows = await service.list_page(session, actor, page, kind=kind)
    return Page(items=rows[: page.limit], next_cursor=next_cursor(rows, page.limit))


@router.get(
    "/{organization_id}", response_model=OrganizationRead, responses=problem_responses(NotFound)
)
async def get_organization(organization_id: uuid.UUID, actor: Actor, session: SessionDep):
    """One organization, if the caller may see it (else 404)."""
    return await service.get(session, actor, organization_id)


@router.post(
    "/{organization_id}/suspend",
    response_model=OrganizationRead,
    responses=problem_responses(Forbidden, NotFound, IllegalTransition),
)
async def suspend_organization(
    organization_id: uuid.UUID, actor: OperatorActor, session: SessionDep, clock: ClockDep
):
    """Suspend an organization: its tokens answer 401 from now on and its users'
    logins answer 403 `organization_suspended`."""
    return await service.suspend(session, actor, organization_id, clock=clock)


@router.post(
    "/{organization_id}/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=problem_responses(Forbidden, NotFound, service.DuplicateEmail),
)
async def create_user(
    organization_id: uuid.UUID,
    body: UserCreate,
    actor: OperatorActor,
    session: SessionDep,
    clock: ClockDep,
):
    """Create a user of the organization; it logs in with its email and password."""
    return await service.create_user(session, actor, organization_id, body, clock=clock)


@router.post(
    "/{organization_id}/api-clients",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiClientCreated,
    responses=problem_responses(Forbidden, NotFound),
)
async def create_api_client(
    organization_id: uuid.UUID,
    actor: Actor,
    session: SessionDep,
    clock: ClockDep,
    body: ApiClientCreate | None = None,
):
    """Create OAuth2 client credentials for the organization (the organization's own
    users, or the operator). The `client_secret` is shown in this answer only; the
    client gets tokens with `grant_type=client_credentials` at POST /auth/token."""
    client, secret = await clients.create(
        session, actor, organization_id, body or ApiClientCreate(), clock=clock
    )
    return api_client_created(client, secret)


@router.get(
    "/{organization_id}/api-clients",
    response_model=Page[ApiClientRead],
    responses=problem_responses(NotFound),
)
async def list_api_clients(
    organization_id: uuid.UUID, actor: Actor, session: SessionDep, page: PageParams
):
    """The organization's API clients, revoked ones included, oldest first; never their
    secrets. For the organization itself, the operator and the regulator."""
    rows = await clients.list_page(session, actor, organization_id, page)
    return Page(items=rows[: page.limit], next_cursor=next_cursor(rows, page.limit))


@router.delete(
    "/{organization_id}/api-clients/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(Forbidden, NotFound),
)
async def revoke_api_client(
    organization_id: uuid.UUID,
    client_id: uuid.UUID,
    actor: Actor,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Revoke an API client: it gets no new tokens and the tokens it holds answer 401
    from now on. Revoking a revoked client is a no-op."""
    await clients.revoke(session, actor, organization_id, client_id, clock=clock)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
