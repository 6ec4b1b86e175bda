"""All SQL about deals, scoped to the parties of each deal."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import Principal
from receivables.deals.models import Deal
from receivables.kit.pagination import PageRequest
from receivables.ledger.models import Account, AccountKind

DealRow = tuple[Deal, int]
"""A deal and its escrow balance in minor units (0 when no money has moved yet)."""


def _rows() -> Select:
    escrow_balance = (Account.credits_posted_minor - Account.debits_posted_minor).label("escrow")
    return select(Deal, escrow_balance).outerjoin(
        Account, and_(Account.deal_id == Deal.id, Account.kind == AccountKind.escrow)
    )


def _visible(principal: Principal, stmt: Select) -> Select:
    if principal.sees_everything:
        return stmt
    me = principal.organization_id
    return stmt.where(or_(Deal.sme_id == me, Deal.bank_id == me, Deal.debtor_id == me))


def _row(row) -> DealRow:
    return row[0], int(row[1] or 0)


async def get_visible(session: AsyncSession, principal: Principal, deal_id: uuid.UUID) -> DealRow | None:
    row = (await session.execute(_visible(principal, _rows()).where(Deal.id == deal_id))).first()
    return _row(row) if row else None


async def list_visible(
    session: AsyncSession, principal: Principal, page: PageRequest, *, status: str | None
) -> list[DealRow]:
    stmt = _visible(principal, _rows())
    if status is not None:
        stmt = stmt.where(Deal.status == status)
    if page.after is not None:
        stmt = stmt.where(
            or_(
                Deal.created_at > page.after.created_at,
                and_(Deal.created_at == page.after.created_at, Deal.id > page.after.id),
            )
        )
    stmt = stmt.order_by(Deal.created_at, Deal.id).limit(page.limit + 1)
    return [_row(r) for r in (await session.execute(stmt)).all()]


async def lock(session: AsyncSession, deal_id: uuid.UUID) -> Deal | None:
    stmt = (
        select(Deal).where(Deal.id == deal_id).with_for_update().execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
