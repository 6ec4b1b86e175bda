"""All SQL about deals, scoped to the parties of each deal."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.deals.lifecycle import DealStatus
from receivables.deals.models import Deal
from receivables.kit.pagination import PageRequest, keyset_page
from receivables.ledger.models import Account, AccountKind
from receivables.receivables.models import Receivable

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
    return [_row(r) for r in (await session.execute(keyset_page(stmt, Deal, page))).all()]


LockedDeal = tuple[Deal, int, Receivable]
"""A deal and its receivable, both locked, and the deal's escrow balance in minor units."""


@functools.cache
def _visible_lock(role: Role) -> Select:
    """`lock_visible`'s statement, built once per role with the caller and the deal as
    parameters (as auctions' `_visible_lock`): it runs on every fund and repay. FOR
    UPDATE OF deal, receivable: rows are locked in that order, the documented lock order
    (deals/service.py); the escrow account is left to the ledger, which sorts its own."""
    caller = Principal(role=role, organization_id=bindparam("organization_id"))  # type: ignore[arg-type]
    return (
        _visible(caller, _rows())
        .add_columns(Receivable)
        .join(Receivable, Receivable.id == Deal.receivable_id)
        .where(Deal.id == bindparam("deal_id"))
        .with_for_update(of=[Deal, Receivable])
        .execution_options(populate_existing=True)
    )


async def lock_visible(session: AsyncSession, principal: Principal, deal_id: uuid.UUID) -> LockedDeal | None:
    """The deal, locked with its receivable, and its escrow balance, if the principal may
    see it: visibility is a condition on the deal's own row, so one statement checks it
    and takes both locks (a funding or a repayment moves both)."""
    params = {"deal_id": deal_id, "organization_id": principal.organization_id}
    row = (await session.execute(_visible_lock(principal.role), params)).first()
    return (row[0], int(row[1] or 0), row[2]) if row else None


def _claim(*conditions, order_by) -> Select:
    """Due deals, oldest deadline first, locked; on PostgreSQL rows another worker (or a
    request) holds are skipped, so several workers never move the same deal twice."""
    return (
        select(Deal)
        .where(*conditions)
        .order_by(*order_by, Deal.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


# What each deadline job claims, and the worker's backlog gauge counts (ops/repository.py).


def unfunded(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """Deals still awaiting funding at their funding deadline."""
    return (Deal.status == DealStatus.awaiting_funding, Deal.funding_deadline_at <= now)


def overdue(today: dt.date) -> tuple[ColumnElement[bool], ...]:
    """Disbursed deals whose due date has passed (today is later) with money still owed."""
    return (
        Deal.status == DealStatus.disbursed, Deal.due_date < today,
        Deal.repaid_minor < Deal.face_value_minor,
    )


def defaulting(today: dt.date, grace_days: int) -> tuple[ColumnElement[bool], ...]:
    """Overdue deals still owing once `grace_days` have passed after the due date in full
    (today is later than due date + grace)."""
    last_due_date = today - dt.timedelta(days=grace_days + 1)
    return (
        Deal.status == DealStatus.overdue, Deal.due_date <= last_due_date,
        Deal.repaid_minor < Deal.face_value_minor,
    )


async def claim_unfunded(
    session: AsyncSession, *, now: dt.datetime, batch_size_max: int
) -> list[Deal]:
    stmt = _claim(*unfunded(now), order_by=(Deal.funding_deadline_at,))
    return list((await session.execute(stmt.limit(batch_size_max))).scalars())


async def claim_overdue(
    session: AsyncSession, *, today: dt.date, batch_size_max: int
) -> list[Deal]:
    stmt = _claim(*overdue(today), order_by=(Deal.due_date,))
    return list((await session.execute(stmt.limit(batch_size_max))).scalars())


async def claim_defaulting(
    session: AsyncSession, *, today: dt.date, grace_days: int, batch_size_max: int
) -> list[Deal]:
    stmt = _claim(*defaulting(today, grace_days), order_by=(Deal.due_date,))
    return list((await session.execute(stmt.limit(batch_size_max))).scalars())


async def missed_fundings(session: AsyncSession, bank_id: uuid.UUID) -> int:
    """Deals the bank won but never funded: `cancelled` is reached only through a missed
    funding deadline, so each cancelled deal of the bank is one miss (its profile)."""
    stmt = select(func.count()).select_from(Deal).where(
        Deal.bank_id == bank_id, Deal.status == DealStatus.cancelled
    )
    return int((await session.execute(stmt)).scalar_one())
