"""Sealed auctions: open a listing, place/revise/withdraw bids, award, cancel.

Lock order, everywhere: listing → receivable → bids → deal → ledger accounts. The
listing row lock serializes every write on one auction, so bid counts, price-time
sequence numbers and the single winner stay consistent under parallel load.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions import repository
from receivables.auctions.lifecycle import (
    BID_TRANSITIONS,
    LISTING_TRANSITIONS,
    BidAction,
    BidStatus,
    ListingAction,
    ListingStatus,
)
from receivables.auctions.models import Bid, Listing
from receivables.auctions.schemas import BidCreate, BidRevise, ListingCreate
from receivables.auth.principal import SYSTEM, Principal
from receivables.auth.roles import Role
from receivables.config import Settings
from receivables.deals import service as deals
from receivables.deals.models import Deal
from receivables.events import service as audit
from receivables.kit import money
from receivables.kit.clock import Clock
from receivables.kit.db import flush_or_raise
from receivables.kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from receivables.kit.transitions import apply
from receivables.receivables import repository as receivables_repository
from receivables.receivables import service as receivables
from receivables.receivables.lifecycle import (
    RECEIVABLE_TRANSITIONS,
    ReceivableAction,
    ReceivableStatus,
)

LISTING_DURATION_MAX = dt.timedelta(days=90)
BIDS_PER_LISTING_MAX = 500
CLOSING_BATCH_SIZE_MAX = 50
"""Auctions one worker pass closes at most (each may open a deal); the rest wait."""


class AuctionClosed(Conflict):
    code, title = "auction_closed", "The auction is closed"


class BidExists(Conflict):
    code, title = "bid_exists", "Your bank already has an active bid here; revise it instead"


class BidAboveReserve(Unprocessable):
    code, title = "bid_above_reserve", "The rate exceeds the listing's max_discount_rate"


class InvalidClosingTime(Unprocessable):
    code, title = "invalid_closes_at", "closes_at must be in the future and before the due date"


class Unfinanceable(Unprocessable):
    code, title = "unfinanceable", "At the reserve rate the discount and fee would consume the advance"


class BidNotOnListing(Unprocessable):
    code, title = "bid_not_on_listing", "The bid does not belong to this listing"


class TooManyBids(Conflict):
    code, title = "too_many_bids", "This listing has reached its bid limit"


async def _audit_listing(session, actor, listing, *, clock, action, before, data=None) -> None:
    """A new listing reaches every bank; its outcome, the seller and the banks that bid."""
    # A listing opened in this very transaction has no bids yet: no query for them.
    bidders = [] if action == "opened" else await repository.bidder_ids(session, listing.id)
    await audit.record(
        session, actor, clock=clock, action=f"listing.{action}", object_type="listing",
        object_id=listing.id, from_state=before, to_state=listing.status, data=data,
        recipients=(listing.seller_id, *bidders),
        audience_kind=Role.bank if action == "opened" else None,
    )


async def _audit_bid(session, actor, bid, listing, *, clock, action, before, data=None) -> None:
    """Sealed: a bid's events reach its own bank and the seller, never a rival bank."""
    await audit.record(
        session, actor, clock=clock, action=f"bid.{action}", object_type="bid",
        object_id=bid.id, from_state=before, to_state=bid.status,
        data={"listing_id": str(bid.listing_id), **(data or {})},
        recipients=(bid.bank_id, listing.seller_id),
    )


def _require_financeable(receivable, max_rate_ppm: int, ratio_ppm: int, *, fee_rate_ppm: int, today) -> None:
    """Even the worst accepted bid, funded today, must leave the SME a positive advance;
    later value dates only shrink the discount, so this holds until maturity."""
    try:
        amounts = money.deal_amounts(
            face_value_minor=receivable.face_value_minor, advance_ratio_ppm=ratio_ppm,
            discount_rate_ppm=max_rate_ppm, fee_rate_ppm=fee_rate_ppm, value_date=today,
            due_date=receivable.due_date, day_count_basis=money.day_count_basis(receivable.currency),
        )
    except ValueError as exc:
        raise Unfinanceable(str(exc)) from None
    if amounts.advance_minor <= 0:
        raise Unfinanceable()


async def open_listing(
    session: AsyncSession, actor: Principal, body: ListingCreate, *, clock: Clock, fee_rate_ppm: int
) -> repository.ListingRow:
    found = await receivables_repository.lock_visible_with_debtor_name(session, actor, body.receivable_id)
    if found is None:
        raise NotFound("no such receivable")
    receivable, debtor_name = found
    if receivable.seller_id != actor.organization_id:
        raise Forbidden("only the seller may list a receivable")
    # The state answers first (409), the payload after (422), as everywhere else.
    apply(RECEIVABLE_TRANSITIONS, ReceivableStatus(receivable.status), ReceivableAction.list, actor.role)
    now = clock.now()
    if not now < body.closes_at <= now + LISTING_DURATION_MAX or body.closes_at.date() >= receivable.due_date:
        raise InvalidClosingTime()
    max_rate_ppm, ratio_ppm = money.parse_rate(body.max_discount_rate), money.parse_ratio(body.advance_ratio)
    _require_financeable(receivable, max_rate_ppm, ratio_ppm, fee_rate_ppm=fee_rate_ppm, today=clock.today())
    await receivables.transition(session, receivable, ReceivableAction.list, actor, clock=clock)
    listing = Listing(
        receivable_id=receivable.id,
        seller_id=receivable.seller_id,
        max_discount_rate_ppm=max_rate_ppm,
        advance_ratio_ppm=ratio_ppm,
        recourse=body.recourse,
        auto_award=body.auto_award,
        closes_at=body.closes_at,
        created_at=now,
        updated_at=now,
    )
    session.add(listing)
    await flush_or_raise(session, Conflict)
    await _audit_listing(session, actor, listing, clock=clock, action="opened", before=None)
    return listing, receivable, debtor_name


async def _open_listing_for_bids(
    session: AsyncSession, actor: Principal, listing_id: uuid.UUID, *, clock: Clock
) -> Listing:
    """Visibility (404) with the row lock, in one statement, then the auction's state
    and clock (409)."""
    listing = await repository.lock_visible_listing(session, actor, listing_id)
    if listing is None:
        raise NotFound("no such listing")
    _require_open(listing, clock)
    return listing


def _require_open(listing: Listing, clock: Clock) -> None:
    if listing.status != ListingStatus.open:
        raise AuctionClosed(f"the listing is {listing.status}")
    if clock.now() >= listing.closes_at:
        raise AuctionClosed(f"bidding closed at {listing.closes_at.isoformat()}")


def _checked_rate(listing: Listing, discount_rate: str) -> int:
    rate_ppm = money.parse_rate(discount_rate)
    if rate_ppm > listing.max_discount_rate_ppm:
        raise BidAboveReserve(
            f"{discount_rate} is above the reserve {money.format_rate(listing.max_discount_rate_ppm)}"
        )
    return rate_ppm


async def place_bid(
    session: AsyncSession, actor: Principal, listing_id: uuid.UUID, body: BidCreate, *, clock: Clock
) -> Bid:
    listing = await _open_listing_for_bids(session, actor, listing_id, clock=clock)
    rate_ppm = _checked_rate(listing, body.discount_rate)
    if listing.bid_count >= BIDS_PER_LISTING_MAX:
        if await repository.active_bid_of(session, listing.id, actor.organization_id) is not None:
            raise BidExists()
        raise TooManyBids()
    # Below the limit a second active bid of this bank is refused by the unique index
    # uq_bid_active_bank at the flush (BidExists, the same answer as a lookup first,
    # without its query on every bid).
    now = clock.now()
    listing.bid_sequence += 1
    listing.bid_count += 1
    listing.updated_at = now
    bid = Bid(
        id=uuid.uuid4(),  # as the default factory would, minus SQLModel's per-call introspection of it
        listing_id=listing.id, bank_id=actor.organization_id, discount_rate_ppm=rate_ppm,
        rate_sequence=listing.bid_sequence, rate_set_at=now, created_at=now, updated_at=now,
    )
    session.add(bid)
    await flush_or_raise(session, BidExists)
    await _audit_bid(session, actor, bid, listing, clock=clock, action="placed", before=None,
                     data={"discount_rate": body.discount_rate})
    return bid


async def _own_bid_on_open_listing(
    session: AsyncSession, actor: Principal, bid_id: uuid.UUID, *, clock: Clock
) -> tuple[Listing, Bid]:
    """The bank's own bid and its listing, locked (404 for any other bank's bid: a bank
    sees only its own), on an auction still open (409)."""
    found = await repository.lock_own_bid(session, bid_id, actor.organization_id)
    if found is None:
        raise NotFound("no such bid")
    listing, bid = found
    _require_open(listing, clock)
    return listing, bid


async def revise_bid(
    session: AsyncSession, actor: Principal, bid_id: uuid.UUID, body: BidRevise, *, clock: Clock
) -> Bid:
    listing, bid = await _own_bid_on_open_listing(session, actor, bid_id, clock=clock)
    apply(BID_TRANSITIONS, BidStatus(bid.status), BidAction.revise, actor.role)
    before_rate = money.format_rate(bid.discount_rate_ppm)
    bid.discount_rate_ppm = _checked_rate(listing, body.discount_rate)
    now = clock.now()
    listing.bid_sequence += 1
    listing.updated_at = now
    bid.rate_sequence = listing.bid_sequence
    bid.rate_set_at = bid.updated_at = now
    await _audit_bid(session, actor, bid, listing, clock=clock, action="revised", before=bid.status,
                     data={"from_rate": before_rate, "to_rate": body.discount_rate})
    # Stored now, with the audit row in the same round trip on PostgreSQL: from here the
    # listing's lock is held only until the COMMIT, and a hot auction's revisions queue
    # on it one after another (docs/performance.md).
    writes, params = repository.revision_writes(listing, bid)
    repository.mark_revision_stored(listing, bid)  # before any flush: these writes store them
    if not await audit.write_pending_beside(session, writes, params):
        await repository.write(session, writes, params)
    return bid


async def withdraw_bid(
    session: AsyncSession, actor: Principal, bid_id: uuid.UUID, *, clock: Clock
) -> Bid:
    listing, bid = await _own_bid_on_open_listing(session, actor, bid_id, clock=clock)
    before = bid.status
    bid.status = apply(BID_TRANSITIONS, BidStatus(before), BidAction.withdraw, actor.role)
    now = clock.now()
    bid.updated_at = listing.updated_at = now
    listing.bid_count -= 1
    await _audit_bid(session, actor, bid, listing, clock=clock, action="withdrawn", before=before)
    return bid


async def _close_losers(session, actor, listing: Listing, *, clock, winner_id=None) -> None:
    """Every other active bid loses when the auction ends, whatever the way."""
    for bid in await repository.active_bids(session, listing.id, except_id=winner_id):
        before = bid.status
        bid.status = apply(BID_TRANSITIONS, BidStatus(before), BidAction.lose, actor.role)
        bid.updated_at = clock.now()
        await _audit_bid(session, actor, bid, listing, clock=clock, action="lost", before=before)
    listing.bid_count = 0


async def _owned_listing(session: AsyncSession, actor: Principal, listing_id: uuid.UUID) -> Listing:
    listing = await repository.lock_visible_listing(session, actor, listing_id)
    if listing is None:
        raise NotFound("no such listing")
    return listing


async def award(
    session: AsyncSession, actor: Principal, listing_id: uuid.UUID, bid_id: uuid.UUID,
    *, clock: Clock, settings: Settings,
) -> Deal:
    listing = await _owned_listing(session, actor, listing_id)
    apply(LISTING_TRANSITIONS, ListingStatus(listing.status), ListingAction.award, actor.role)
    if clock.now() >= listing.closes_at:
        raise AuctionClosed(f"awards closed at {listing.closes_at.isoformat()}")
    bid = await repository.lock_bid(session, bid_id)
    if bid is None or bid.listing_id != listing.id:
        raise BidNotOnListing()
    return await award_bid(session, actor, listing, bid, clock=clock, settings=settings)


async def award_bid(
    session: AsyncSession, actor: Principal, listing: Listing, bid: Bid,
    *, clock: Clock, settings: Settings,
) -> Deal:
    """The award itself, shared by the seller's choice and the automatic close: the bid
    wins, the rest lose, the receivable is awarded and a deal awaits funding."""
    receivable = await receivables_repository.get_for_update(session, listing.receivable_id)
    assert receivable is not None
    before_bid = bid.status
    bid.status = apply(BID_TRANSITIONS, BidStatus(before_bid), BidAction.win, actor.role)
    before_listing = listing.status
    listing.status = apply(
        LISTING_TRANSITIONS, ListingStatus(before_listing), ListingAction.award, actor.role
    )
    now = clock.now()
    bid.updated_at = listing.updated_at = now
    listing.awarded_bid_id = bid.id
    # `_close_losers` re-reads the active bids afresh (populate_existing) all but the
    # winner, whose unflushed `won` it would otherwise overwrite with the row's `active`;
    # the winner, the losers and the listing are then written in one flush.
    await _close_losers(session, actor, listing, clock=clock, winner_id=bid.id)
    await receivables.transition(session, receivable, ReceivableAction.award, actor, clock=clock)
    await _audit_bid(session, actor, bid, listing, clock=clock, action="won", before=before_bid)
    await _audit_listing(session, actor, listing, clock=clock, action="awarded",
                         before=before_listing, data={"bid_id": str(bid.id)})
    return await deals.open_from_award(
        session, actor, listing=listing, bid=bid, receivable=receivable, clock=clock,
        settings=settings,
    )


async def cancel_listing(
    session: AsyncSession, actor: Principal, listing_id: uuid.UUID, *, clock: Clock
) -> Listing:
    listing = await _owned_listing(session, actor, listing_id)
    before = listing.status
    target = apply(LISTING_TRANSITIONS, ListingStatus(before), ListingAction.cancel, actor.role)
    if clock.now() >= listing.closes_at:
        # Its outcome is fixed at closes_at (the best bid under auto_award, else expiry);
        # a seller who has seen the bids may not walk away before the worker applies it.
        closed_at = listing.closes_at.isoformat()
        raise AuctionClosed(f"the auction closed at {closed_at}; the platform awards or expires it")
    listing.status, listing.updated_at = target, clock.now()
    await _close_losers(session, actor, listing, clock=clock)
    receivable = await receivables_repository.get_for_update(session, listing.receivable_id)
    assert receivable is not None
    await receivables.transition(session, receivable, ReceivableAction.delist, actor, clock=clock)
    await _audit_listing(session, actor, listing, clock=clock, action="cancelled", before=before)
    return listing


# ------------------------------------------------------------------ deadlines


async def close_listing(
    session: AsyncSession, listing: Listing, *, clock: Clock, settings: Settings
) -> Deal | None:
    """The automatic close at `closes_at` (the caller holds the listing's row lock and
    checked it is due): with `auto_award`, the best valid bid wins through the same
    `award_bid` the seller's award uses; otherwise, or without a valid bid, the listing
    expires, every active bid is lost and the receivable is `confirmed` again."""
    if listing.auto_award:
        best = await repository.best_active_bid(session, listing)
        if best is not None:
            return await award_bid(session, SYSTEM, listing, best, clock=clock, settings=settings)
    before = listing.status
    listing.status = apply(
        LISTING_TRANSITIONS, ListingStatus(before), ListingAction.expire, SYSTEM.role
    )
    listing.updated_at = clock.now()
    receivable = await receivables_repository.get_for_update(session, listing.receivable_id)
    assert receivable is not None
    await _close_losers(session, SYSTEM, listing, clock=clock)
    await receivables.transition(session, receivable, ReceivableAction.delist, SYSTEM, clock=clock)
    await _audit_listing(session, SYSTEM, listing, clock=clock, action="expired", before=before,
                         data={"closes_at": listing.closes_at.isoformat()})
    return None


async def close_due(
    session: AsyncSession, *, clock: Clock, settings: Settings,
    batch_size_max: int = CLOSING_BATCH_SIZE_MAX,
) -> int:
    """Close open auctions whose `closes_at` has come; for the worker. Returns how many
    were closed (awarded or expired)."""
    due = await repository.claim_closing(session, now=clock.now(), batch_size_max=batch_size_max)
    for listing in due:
        await close_listing(session, listing, clock=clock, settings=settings)
    return len(due)


async def get_listing(session: AsyncSession, actor: Principal, listing_id: uuid.UUID):
    row = await repository.get_visible_listing(session, actor, listing_id)
    if row is None:
        raise NotFound("no such listing")
    return row


async def list_listings(session, actor: Principal, page, *, status: str | None):
    return await repository.list_visible_listings(session, actor, page, status=status)


async def get_bid(session: AsyncSession, actor: Principal, bid_id: uuid.UUID) -> Bid:
    bid = await repository.get_visible_bid(session, actor, bid_id)
    if bid is None:
        raise NotFound("no such bid")
    return bid


async def list_bids(session: AsyncSession, actor: Principal, listing_id: uuid.UUID, page) -> list[Bid]:
    if not await repository.listing_visible(session, actor, listing_id):
        raise NotFound("no such listing")
    return await repository.list_visible_bids(session, actor, listing_id, page)


def shows_bids(actor: Principal, listing: Listing) -> bool:
    """Sealed: only the seller and the supervisors learn how many bids there are."""
    return actor.sees_everything or listing.seller_id == actor.organization_id
