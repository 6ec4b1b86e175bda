"""All SQL about organizations and users."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions.models import Bid, Listing
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.deals.models import Deal
from receivables.kit.pagination import PageRequest, keyset_page
from receivables.organizations.models import Organization, User
from receivables.receivables.models import Receivable


async def get(session: AsyncSession, organization_id: uuid.UUID) -> Organization | None:
    return await session.get(Organization, organization_id)


async def get_many(
    session: AsyncSession, organization_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Organization]:
    """Several organizations in one query, by id; absent ids are simply missing."""
    stmt = select(Organization).where(Organization.id.in_(set(organization_ids)))
    return {organization.id: organization for organization in (await session.execute(stmt)).scalars()}


async def get_for_update(session: AsyncSession, organization_id: uuid.UUID) -> Organization | None:
    stmt = select(Organization).where(Organization.id == organization_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_by_credit_code(session: AsyncSession, credit_code: str) -> Organization | None:
    stmt = select(Organization).where(Organization.credit_code == credit_code)
    return (await session.execute(stmt)).scalar_one_or_none()


async def first_of_kind(session: AsyncSession, kind: str) -> Organization | None:
    stmt = select(Organization).where(Organization.kind == kind).order_by(Organization.created_at)
    return (await session.execute(stmt.limit(1))).scalar_one_or_none()


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(User.email == email.lower())
    return (await session.execute(stmt)).scalar_one_or_none()


class Standing(NamedTuple):
    """What every request re-checks of a token's holder: is it still active, and is its
    organization still the active one of the kind the token names. Plain columns, no ORM
    objects: this runs on every authenticated request."""

    active: bool
    organization_id: uuid.UUID
    organization_status: str
    organization_kind: str


def standing_of(holder_active, holder_organization_id) -> Select:
    """The Standing columns of a holder (a user or an API client) joined to its organization."""
    return select(holder_active, Organization.id, Organization.status, Organization.kind).join(
        Organization, Organization.id == holder_organization_id
    )


_USER_STANDING = standing_of(User.is_active, User.organization_id).where(User.id == bindparam("user_id"))
"""Built once: rebuilding it cost a third of what running it did, on every request."""


async def user_standing(session: AsyncSession, user_id: uuid.UUID) -> Standing | None:
    row = (await session.execute(_USER_STANDING, {"user_id": user_id})).first()
    return Standing(*row) if row else None


async def get_user_with_organization(
    session: AsyncSession, user_id: uuid.UUID
) -> tuple[User, Organization] | None:
    stmt = (
        select(User, Organization)
        .join(Organization, Organization.id == User.organization_id)
        .where(User.id == user_id)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


def _counterparty_ids(me: uuid.UUID) -> list[Select]:
    """Organizations `me` deals with: across receivables, deals and bids on its listings."""
    return [
        select(Receivable.seller_id).where(Receivable.debtor_id == me),
        select(Receivable.debtor_id).where(Receivable.seller_id == me),
        select(Deal.sme_id).where(or_(Deal.bank_id == me, Deal.debtor_id == me)),
        select(Deal.bank_id).where(or_(Deal.sme_id == me, Deal.debtor_id == me)),
        select(Deal.debtor_id).where(or_(Deal.sme_id == me, Deal.bank_id == me)),
        select(Bid.bank_id).join(Listing, Listing.id == Bid.listing_id).where(Listing.seller_id == me),
        select(Listing.seller_id).join(Bid, Bid.listing_id == Listing.id).where(Bid.bank_id == me),
    ]


def _visible(principal: Principal) -> Select:
    """Operators and regulators see all; others their own organization, their
    counterparties, and the directory of core enterprises (the debtors an SME names
    when it submits, and whose track record a bank prices)."""
    stmt = select(Organization)
    if principal.sees_everything:
        return stmt
    me = principal.organization_id
    assert me is not None
    conditions = [Organization.id == me, Organization.kind == Role.core]
    conditions += [Organization.id.in_(ids) for ids in _counterparty_ids(me)]
    return stmt.where(or_(*conditions))


async def get_visible(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> Organization | None:
    stmt = _visible(principal).where(Organization.id == organization_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_visible(
    session: AsyncSession, principal: Principal, page: PageRequest, *, kind: str | None = None
) -> list[Organization]:
    stmt = _visible(principal)
    if kind is not None:
        stmt = stmt.where(Organization.kind == kind)
    return list((await session.execute(keyset_page(stmt, Organization, page))).scalars())
