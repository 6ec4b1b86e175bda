"""All SQL about listings and bids, every read scoped to what the caller may see."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.dml import UpdateBase

from receivables.auctions.lifecycle import BidStatus, ListingStatus
from receivables.auctions.models import Bid, Listing
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.kit.pagination import PageRequest, keyset_page
from receivables.organizations.models import Organization, OrganizationStatus
from receivables.receivables.models import Receivable

ListingRow = tuple[Listing, Receivable, str]
"""A listing with its receivable and the debtor's name: what a listing shows."""


def _listing_rows() -> Select:
    return (
        select(Listing, Receivable, Organization.name)
        .join(Receivable, Receivable.id == Listing.receivable_id)
        .join(Organization, Organization.id == Receivable.debtor_id)
    )


def _visible_listings(principal: Principal, stmt: Select) -> Select:
    """Sellers see their own; banks the open market and listings they bid on."""
    if principal.sees_everything:
        return stmt
    if principal.role == Role.sme:
        return stmt.where(Listing.seller_id == principal.organization_id)
    if principal.role == Role.bank:
        own_bid = exists().where(
            and_(Bid.listing_id == Listing.id, Bid.bank_id == principal.organization_id)
        )
        return stmt.where(or_(Listing.status == ListingStatus.open, own_bid))
    return stmt.where(False)


@functools.cache
def _visibility_probe(role: Role) -> Select:
    """`SELECT listing.id` of the listing `:listing_id` if a caller of `role` from
    organization `:organization_id` may see it: the rule of `_visible_listings` itself,
    built once per role with the caller and the listing as parameters (building the
    statement cost more CPU than running it, on every bid)."""
    caller = Principal(role=role, organization_id=bindparam("organization_id"))  # type: ignore[arg-type]
    return _visible_listings(caller, select(Listing.id)).where(Listing.id == bindparam("listing_id"))


async def listing_visible(session: AsyncSession, principal: Principal, listing_id: uuid.UUID) -> bool:
    """Whether `principal` may see the listing, without loading it (the bid paths lock
    and read it next)."""
    params = {"listing_id": listing_id, "organization_id": principal.organization_id}
    return (await session.execute(_visibility_probe(principal.role), params)).first() is not None


async def get_visible_listing(
    session: AsyncSession, principal: Principal, listing_id: uuid.UUID
) -> ListingRow | None:
    stmt = _visible_listings(principal, _listing_rows()).where(Listing.id == listing_id)
    row = (await session.execute(stmt)).first()
    return (row[0], row[1], row[2]) if row else None


async def list_visible_listings(
    session: AsyncSession, principal: Principal, page: PageRequest, *, status: str | None
) -> list[ListingRow]:
    stmt = _visible_listings(principal, _listing_rows())
    if status is not None:
        stmt = stmt.where(Listing.status == status)
    rows = (await session.execute(keyset_page(stmt, Listing, page))).all()
    return [(r[0], r[1], r[2]) for r in rows]


@functools.cache
def _visible_lock(role: Role) -> Select:
    """The listing's row lock, restricted by `_visible_listings`'s rule for `role`,
    built once per role with the caller and the listing as parameters (as
    `_visibility_probe`). FOR UPDATE OF listing: the rule's subquery on bids locks
    nothing."""
    caller = Principal(role=role, organization_id=bindparam("organization_id"))  # type: ignore[arg-type]
    return (
        _visible_listings(caller, select(Listing))
        .where(Listing.id == bindparam("listing_id"))
        .with_for_update(of=Listing)
        .execution_options(populate_existing=True)
    )


async def lock_visible_listing(
    session: AsyncSession, principal: Principal, listing_id: uuid.UUID
) -> Listing | None:
    """The listing, locked, if `principal` may see it (None: answer 404): the visibility
    check and the lock in one statement, on every bid and award."""
    params = {"listing_id": listing_id, "organization_id": principal.organization_id}
    return (await session.execute(_visible_lock(principal.role), params)).scalar_one_or_none()


_LOCK_BID = (
    select(Bid).where(Bid.id == bindparam("bid_id")).with_for_update().execution_options(populate_existing=True)
)


async def lock_bid(session: AsyncSession, bid_id: uuid.UUID) -> Bid | None:
    return (await session.execute(_LOCK_BID, {"bid_id": bid_id})).scalar_one_or_none()


_LOCK_OWN_BID = (
    select(Listing, Bid)
    .join(Bid, Bid.listing_id == Listing.id)
    .where(Bid.id == bindparam("bid_id"), Bid.bank_id == bindparam("bank_id"))
    .with_for_update(of=(Listing, Bid))
    .execution_options(populate_existing=True)
)


async def lock_own_bid(
    session: AsyncSession, bid_id: uuid.UUID, bank_id: uuid.UUID
) -> tuple[Listing, Bid] | None:
    """A bank's own bid and its listing, both locked, in one statement (None: not this
    bank's bid, answer 404). PostgreSQL locks `FOR UPDATE OF` rows in the order the
    clause names them, whatever the join order: the listing first, then the bid, the
    lock order every auction write keeps (tests/concurrency/test_lock_order.py pins it).
    Both are locked, so a wait for a concurrent change returns both rows as it left them."""
    params = {"bid_id": bid_id, "bank_id": bank_id}
    row = (await session.execute(_LOCK_OWN_BID, params)).first()
    return (row[0], row[1]) if row else None


_LISTING_REVISED = (
    update(Listing)
    .where(Listing.id == bindparam("revised_listing_id"))
    .values(bid_sequence=bindparam("new_bid_sequence"), updated_at=bindparam("revised_at"))
    .execution_options(synchronize_session=False)
)
_BID_REVISED = (
    update(Bid)
    .where(Bid.id == bindparam("revised_bid_id"))
    .values(
        discount_rate_ppm=bindparam("new_rate_ppm"), rate_sequence=bindparam("new_bid_sequence"),
        rate_set_at=bindparam("revised_at"), updated_at=bindparam("revised_at"),
    )
    .execution_options(synchronize_session=False)  # the service already set the objects
)
_REVISION_WRITES = (_LISTING_REVISED, _BID_REVISED)
_REVISED_COLUMNS = {
    Listing: ("bid_sequence", "updated_at"),
    Bid: ("discount_rate_ppm", "rate_sequence", "rate_set_at", "updated_at"),
}


def revision_writes(listing: Listing, bid: Bid) -> tuple[tuple[UpdateBase, ...], dict[str, Any]]:
    """The UPDATEs that store a revision the service applied to `listing` and `bid`
    (both locked), with their parameters: for `events.service.write_pending_beside`,
    which sends them with the audit row, or for `write`."""
    params = {
        "revised_listing_id": listing.id, "revised_bid_id": bid.id,
        "new_bid_sequence": listing.bid_sequence, "new_rate_ppm": bid.discount_rate_ppm,
        "revised_at": bid.updated_at,
    }
    return _REVISION_WRITES, params


async def write(session: AsyncSession, writes: tuple[UpdateBase, ...], params: dict[str, Any]) -> None:
    for statement in writes:
        await session.execute(statement, params)


def mark_revision_stored(listing: Listing, bid: Bid) -> None:
    """The objects are to hold what `revision_writes` stores: no flush writes them."""
    for row in (listing, bid):
        for name in _REVISED_COLUMNS[type(row)]:
            set_committed_value(row, name, getattr(row, name))


async def active_bid_of(session: AsyncSession, listing_id: uuid.UUID, bank_id: uuid.UUID) -> Bid | None:
    stmt = select(Bid).where(
        Bid.listing_id == listing_id, Bid.bank_id == bank_id, Bid.status == BidStatus.active
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_bids(
    session: AsyncSession, listing_id: uuid.UUID, *, except_id: uuid.UUID | None = None
) -> list[Bid]:
    """Active bids in price-time priority: lowest rate first, then earliest rate; all but
    `except_id` (an award's winner, changed in the session and not yet written: read
    afresh, it would lose that change)."""
    stmt = (
        select(Bid)
        .where(Bid.listing_id == listing_id, Bid.status == BidStatus.active)
        .where(Bid.id != except_id if except_id is not None else true())
        .order_by(Bid.discount_rate_ppm, Bid.rate_sequence)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def mark_bids(
    session: AsyncSession, bid_ids: list[uuid.UUID], *, status: str, now
) -> None:
    if bid_ids:
        await session.execute(
            update(Bid)
            .where(Bid.id.in_(bid_ids), Bid.status == BidStatus.active)
            .values(status=status, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )


def _visible_bids(principal: Principal) -> Select:
    """A bank sees only its own bids; the seller every bid on its listings."""
    stmt = select(Bid).join(Listing, Listing.id == Bid.listing_id)
    if principal.sees_everything:
        return stmt
    if principal.role == Role.bank:
        return stmt.where(Bid.bank_id == principal.organization_id)
    if principal.role == Role.sme:
        return stmt.where(Listing.seller_id == principal.organization_id)
    return stmt.where(False)


async def get_visible_bid(session: AsyncSession, principal: Principal, bid_id: uuid.UUID) -> Bid | None:
    stmt = _visible_bids(principal).where(Bid.id == bid_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_visible_bids(
    session: AsyncSession, principal: Principal, listing_id: uuid.UUID, page: PageRequest
) -> list[Bid]:
    stmt = _visible_bids(principal).where(Bid.listing_id == listing_id)
    return list((await session.execute(keyset_page(stmt, Bid, page))).scalars())


async def bidder_ids(session: AsyncSession, listing_id: uuid.UUID) -> list[uuid.UUID]:
    stmt = select(Bid.bank_id).where(Bid.listing_id == listing_id).distinct()
    return list((await session.execute(stmt)).scalars())


def closing(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """Open listings whose `closes_at` has come: what `claim_closing` takes and the
    worker's backlog gauge counts (ops/repository.py)."""
    return (Listing.status == ListingStatus.open, Listing.closes_at <= now)


async def claim_closing(
    session: AsyncSession, *, now: dt.datetime, batch_size_max: int
) -> list[Listing]:
    """Open listings whose `closes_at` has come, oldest deadline first, locked. On
    PostgreSQL rows another worker (or a request) holds are skipped, so several workers
    never close the same auction twice; a skipped row is due again at the next pass."""
    stmt = (
        select(Listing)
        .where(*closing(now))
        .order_by(Listing.closes_at, Listing.id)
        .limit(batch_size_max)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars())


async def best_active_bid(session: AsyncSession, listing: Listing) -> Bid | None:
    """The bid an automatic award picks, locked: active, within the reserve and from a
    bank still active on the platform; the lowest rate, ties to the earliest current
    rate (`rate_sequence`: price-time priority). None when no bid qualifies."""
    stmt = (
        select(Bid)
        .join(Organization, Organization.id == Bid.bank_id)
        .where(
            Bid.listing_id == listing.id,
            Bid.status == BidStatus.active,
            Bid.discount_rate_ppm <= listing.max_discount_rate_ppm,
            Organization.status == OrganizationStatus.active,
        )
        .order_by(Bid.discount_rate_ppm, Bid.rate_sequence, Bid.id)
        .limit(1)
        .with_for_update(of=Bid)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
