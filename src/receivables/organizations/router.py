"""/organizations: onboarding by the operator; a visibility-scoped directory for others."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from receivables.auth.dependencies import Actor, OperatorActor
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
