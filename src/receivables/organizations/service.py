"""Onboarding: organizations and their users (operator only; the first operator from the CLI)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth import passwords
from receivables.auth.principal import SYSTEM, Principal
from receivables.auth.roles import Role
from receivables.events import service as audit
from receivables.kit.clock import Clock
from receivables.kit.db import flush_or_raise
from receivables.kit.errors import Conflict, IllegalTransition, NotFound
from receivables.kit.pagination import PageRequest
from receivables.organizations import repository
from receivables.organizations.credit_code import make_credit_code
from receivables.organizations.models import (
    Organization,
    OrganizationSize,
    OrganizationStatus,
    Sector,
    User,
)
from receivables.organizations.schemas import OrganizationCreate, UserCreate


class DuplicateCreditCode(Conflict):
    code, title = "duplicate_credit_code", "An organization with this credit code exists"


class DuplicateEmail(Conflict):
    code, title = "duplicate_email", "A user with this email exists"


def _default_size(kind: str) -> OrganizationSize:
    return OrganizationSize.small if kind == Role.sme else OrganizationSize.large


async def create(
    session: AsyncSession, actor: Principal, body: OrganizationCreate, *, clock: Clock
) -> Organization:
    if await repository.get_by_credit_code(session, body.credit_code) is not None:
        raise DuplicateCreditCode()
    organization = Organization(
        name=body.name,
        kind=body.kind,
        credit_code=body.credit_code,
        size=body.size or _default_size(body.kind),
        sector=body.sector,
        created_at=clock.now(),
    )
    session.add(organization)
    await flush_or_raise(session, DuplicateCreditCode)
    await audit.record(
        session, actor, clock=clock, action="organization.created", object_type="organization",
        object_id=organization.id, to_state=organization.status, data={"kind": organization.kind},
    )
    return organization


async def get(session: AsyncSession, actor: Principal, organization_id: uuid.UUID) -> Organization:
    organization = await repository.get_visible(session, actor, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    return organization


async def list_page(
    session: AsyncSession, actor: Principal, page: PageRequest, *, kind: str | None
) -> list[Organization]:
    return await repository.list_visible(session, actor, page, kind=kind)


async def suspend(
    session: AsyncSession, actor: Principal, organization_id: uuid.UUID, *, clock: Clock
) -> Organization:
    organization = await repository.get_for_update(session, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    if organization.status != OrganizationStatus.active:
        raise IllegalTransition(f"cannot suspend while {organization.status}")
    if organization.id == actor.organization_id:
        raise Conflict("an operator cannot suspend its own organization")
    organization.status = OrganizationStatus.suspended
    await audit.record(
        session, actor, clock=clock, action="organization.suspended", object_type="organization",
        object_id=organization.id, from_state=OrganizationStatus.active,
        to_state=OrganizationStatus.suspended,
    )
    return organization


async def create_user(
    session: AsyncSession, actor: Principal, organization_id: uuid.UUID, body: UserCreate, *, clock: Clock
) -> User:
    organization = await repository.get(session, organization_id)
    if organization is None:
        raise NotFound("no such organization")
    if await repository.get_user_by_email(session, body.email) is not None:
        raise DuplicateEmail()
    user = User(
        organization_id=organization.id,
        email=body.email.lower(),
        password_hash=await passwords.hash_password(body.password),
        created_at=clock.now(),
    )
    session.add(user)
    await flush_or_raise(session, DuplicateEmail)
    await audit.record(
        session, actor, clock=clock, action="user.created", object_type="user", object_id=user.id,
        data={"organization_id": str(organization.id)},
    )
    return user


OPERATOR_ORGANIZATION_NAME = "Platform operator"
OPERATOR_CREDIT_CODE = make_credit_code("91110000MA0000000")
"""A placeholder code for the platform's own organization, created once from the CLI."""


async def bootstrap_operator(
    session: AsyncSession, *, email: str, password: str, clock: Clock
) -> tuple[User, bool]:
    """Create the operator organization (once) and an operator user; the same email
    again is a no-op. Returns the user and whether it was created now."""
    existing = await repository.get_user_by_email(session, email)
    if existing is not None:
        found = await repository.get_user_with_organization(session, existing.id)
        if found is None or found[1].kind != Role.operator:
            raise DuplicateEmail("this email belongs to a user who is not an operator")
        return existing, False
    organization = await repository.first_of_kind(session, Role.operator)
    if organization is None:
        organization = Organization(
            name=OPERATOR_ORGANIZATION_NAME, kind=Role.operator, credit_code=OPERATOR_CREDIT_CODE,
            size=OrganizationSize.large, sector=Sector.private, created_at=clock.now(),
        )
        session.add(organization)
        await session.flush()
    user = User(
        organization_id=organization.id, email=email.lower(),
        password_hash=await passwords.hash_password(password), created_at=clock.now(),
    )
    session.add(user)
    await flush_or_raise(session, DuplicateEmail)
    await audit.record(
        session, SYSTEM, clock=clock, action="user.created", object_type="user", object_id=user.id,
        data={"organization_id": str(organization.id), "via": "cli"},
    )
    return user, True
