"""All SQL about receivables.

Every read a caller makes goes through `_visible(principal)`: the seller, the debtor,
operators and regulators; a bank that bid on a listing of the receivable or financed
it. A receivable outside that set does not exist for the caller (404).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ColumnElement, Select, bindparam, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions.models import Bid, Listing
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.deals.models import Deal
from receivables.kit.pagination import PageRequest, keyset_page
from receivables.organizations.models import Organization
from receivables.receivables.lifecycle import ReceivableStatus
from receivables.receivables.models import Receivable


def _visible(principal: Principal) -> Select[tuple[Receivable]]:
    stmt = select(Receivable)
    if principal.sees_everything:
        return stmt
    me = principal.organization_id
    if me is None:
        return stmt.where(false())
    if principal.role == Role.bank:
        bid_on = select(Listing.receivable_id).join(Bid, Bid.listing_id == Listing.id)
        financed = select(Deal.receivable_id).where(Deal.bank_id == me)
        return stmt.where(
            or_(Receivable.id.in_(bid_on.where(Bid.bank_id == me)), Receivable.id.in_(financed))
        )
    return stmt.where(or_(Receivable.seller_id == me, Receivable.debtor_id == me))


async def get_visible(
    session: AsyncSession, principal: Principal, receivable_id: uuid.UUID, *, lock: bool = False
) -> Receivable | None:
    """The receivable if `principal` may see it. With `lock`, the row is read afresh
    under SELECT ... FOR UPDATE (writers on SQLite are serialized by BEGIN IMMEDIATE)."""
    stmt = _visible(principal).where(Receivable.id == receivable_id)
    if lock:
        stmt = stmt.with_for_update(of=Receivable).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_visible_with_debtor_name(
    session: AsyncSession, principal: Principal, receivable_id: uuid.UUID
) -> tuple[Receivable, str] | None:
    """`get_visible(lock=True)` plus the debtor's name, which a new listing's answer
    shows: one statement where a re-read of the listing would be another."""
    stmt = (
        _visible(principal)
        .add_columns(Organization.name)
        .join(Organization, Organization.id == Receivable.debtor_id)
        .where(Receivable.id == receivable_id)
        .with_for_update(of=Receivable)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row else None


_LOCK = (
    select(Receivable)
    .where(Receivable.id == bindparam("receivable_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def get_for_update(session: AsyncSession, receivable_id: uuid.UUID) -> Receivable | None:
    """The receivable, locked for the rest of the transaction and read afresh (a stale
    copy in the session's identity map is overwritten)."""
    return (await session.execute(_LOCK, {"receivable_id": receivable_id})).scalar_one_or_none()


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    page: PageRequest,
    *,
    status: ReceivableStatus | None = None,
) -> list[Receivable]:
    """One page in creation order, plus one row to tell whether another page follows."""
    stmt = _visible(principal)
    if status is not None:
        stmt = stmt.where(Receivable.status == status)
    return list((await session.execute(keyset_page(stmt, Receivable, page))).scalars())


async def active_fingerprint_taken(
    session: AsyncSession, fingerprint: str, *, other_than: uuid.UUID | None = None
) -> bool:
    """Whether a receivable other than `other_than` holds `fingerprint` in the registry."""
    stmt = select(Receivable.id).where(Receivable.active_fingerprint == fingerprint)
    if other_than is not None:
        stmt = stmt.where(Receivable.id != other_than)
    return (await session.execute(stmt.limit(1))).first() is not None


def lapsed(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """Submitted receivables whose confirmation window has passed: what `claim_lapsed`
    takes and the worker's backlog gauge counts (ops/repository.py)."""
    return (
        Receivable.status == ReceivableStatus.submitted,
        Receivable.confirmation_deadline_at <= now,
    )


async def claim_lapsed(
    session: AsyncSession, *, now: dt.datetime, batch_size_max: int
) -> list[Receivable]:
    """Submitted receivables whose confirmation window has passed, locked. On PostgreSQL
    rows another worker already holds are skipped, so several workers never expire the
    same receivable twice."""
    stmt = (
        select(Receivable)
        .where(*lapsed(now))
        .order_by(Receivable.confirmation_deadline_at, Receivable.id)
        .limit(batch_size_max)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())
