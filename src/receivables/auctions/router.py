"""/listings and /bids: the sealed auction over HTTP."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from receivables.auctions import service
from receivables.auctions.schemas import (
    AwardCreate,
    BidCreate,
    BidRead,
    BidRevise,
    ListingCreate,
    ListingRead,
    bid_read,
    listing_read,
)
from receivables.auth.dependencies import BankActor, SmeActor, require_roles
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.deals.schemas import DealRead, deal_read
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import Forbidden, IllegalTransition, NotFound, problem_responses
from receivables.kit.pagination import Page, PageParams, next_cursor

router = APIRouter(tags=["auctions"])

MarketActor = Annotated[
    Principal, Depends(require_roles(Role.sme, Role.bank, Role.operator, Role.regulator))
]
"""Everyone but the debtor: a core enterprise never sees listings or bid rates."""

ListingStatusFilter = Literal["open", "awarded", "cancelled", "expired"]


@router.post(
    "/listings",
    status_code=status.HTTP_201_CREATED,
    response_model=ListingRead,
    responses=problem_responses(
        Forbidden, NotFound, IllegalTransition, service.InvalidClosingTime, service.Unfinanceable
    ),
)
async def create_listing(
    body: ListingCreate, actor: SmeActor, session: SessionDep, clock: ClockDep, settings: SettingsDep
):
    """Open a sealed auction for a confirmed receivable the caller sold."""
    row = await service.open_listing(
        session, actor, body, clock=clock, fee_rate_ppm=settings.platform_fee_rate_ppm
    )
    return listing_read(*row, show_bids=True)


@router.get("/listings", response_model=Page[ListingRead], responses=problem_responses(Forbidden))
async def list_listings(
    actor: MarketActor,
    session: SessionDep,
    page: PageParams,
    status_filter: Annotated[ListingStatusFilter | None, Query(alias="status")] = None,
):
    """Banks: the open market (`?status=open`) and listings they bid on; SMEs: their own;
    operators and regulators: all. Oldest first."""
    rows = await service.list_listings(session, actor, page, status=status_filter)
    items = [listing_read(*row, show_bids=service.shows_bids(actor, row[0])) for row in rows[: page.limit]]
    return Page(items=items, next_cursor=next_cursor([r[0] for r in rows], page.limit))


@router.get("/listings/{listing_id}", response_model=ListingRead, responses=problem_responses(Forbidden, NotFound))
async def get_listing(listing_id: uuid.UUID, actor: MarketActor, session: SessionDep):
    """One listing; `bid_count` only for its seller, operators and regulators."""
    row = await service.get_listing(session, actor, listing_id)
    return listing_read(*row, show_bids=service.shows_bids(actor, row[0]))


@router.post(
    "/listings/{listing_id}/cancel",
    response_model=ListingRead,
    responses=problem_responses(Forbidden, NotFound, IllegalTransition, service.AuctionClosed),
)
async def cancel_listing(listing_id: uuid.UUID, actor: SmeActor, session: SessionDep, clock: ClockDep):
    """Withdraw an open listing before its `closes_at`: every bid loses, the receivable is
    confirmed again. From `closes_at` on, the auction's outcome is the close's (the best
    bid under `auto_award`, else expiry): 409 `auction_closed`."""
    await service.cancel_listing(session, actor, listing_id, clock=clock)
    return listing_read(*await service.get_listing(session, actor, listing_id), show_bids=True)


@router.post(
    "/listings/{listing_id}/bids",
    status_code=status.HTTP_201_CREATED,
    response_model=BidRead,
    responses=problem_responses(
        Forbidden, NotFound, service.AuctionClosed, service.BidExists, service.BidAboveReserve
    ),
)
async def place_bid(
    listing_id: uuid.UUID, body: BidCreate, actor: BankActor, session: SessionDep, clock: ClockDep
):
    """Place this bank's sealed bid: an annual discount rate at most the reserve. One
    active bid per bank per listing; change it with PATCH /bids/{id}."""
    return bid_read(await service.place_bid(session, actor, listing_id, body, clock=clock))


@router.get(
    "/listings/{listing_id}/bids", response_model=Page[BidRead], responses=problem_responses(Forbidden, NotFound)
)
async def list_bids(listing_id: uuid.UUID, actor: MarketActor, session: SessionDep, page: PageParams):
    """The seller sees every bid on its listing; a bank only its own."""
    bids = await service.list_bids(session, actor, listing_id, page)
    return Page(items=[bid_read(b) for b in bids[: page.limit]], next_cursor=next_cursor(bids, page.limit))


@router.get("/bids/{bid_id}", response_model=BidRead, responses=problem_responses(Forbidden, NotFound))
async def get_bid(bid_id: uuid.UUID, actor: MarketActor, session: SessionDep):
    """A bid, to the bank that placed it and the listing's seller."""
    return bid_read(await service.get_bid(session, actor, bid_id))


@router.patch(
    "/bids/{bid_id}",
    response_model=BidRead,
    responses=problem_responses(
        Forbidden, NotFound, IllegalTransition, service.AuctionClosed, service.BidAboveReserve
    ),
)
async def revise_bid(bid_id: uuid.UUID, body: BidRevise, actor: BankActor, session: SessionDep, clock: ClockDep):
    """Change this bank's rate while the auction is open; the bid's time for tie-breaks
    becomes the revision's (price-time priority)."""
    return bid_read(await service.revise_bid(session, actor, bid_id, body, clock=clock))


@router.post(
    "/bids/{bid_id}/withdraw",
    response_model=BidRead,
    responses=problem_responses(Forbidden, NotFound, IllegalTransition, service.AuctionClosed),
)
async def withdraw_bid(bid_id: uuid.UUID, actor: BankActor, session: SessionDep, clock: ClockDep):
    """Withdraw this bank's active bid while the auction is open."""
    return bid_read(await service.withdraw_bid(session, actor, bid_id, clock=clock))


@router.post(
    "/listings/{listing_id}/award",
    status_code=status.HTTP_201_CREATED,
    response_model=DealRead,
    responses=problem_responses(
        Forbidden, NotFound, IllegalTransition, service.AuctionClosed, service.BidNotOnListing
    ),
)
async def award_listing(
    listing_id: uuid.UUID,
    body: AwardCreate,
    actor: SmeActor,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
):
    """The seller picks a bid before `closes_at`: it wins, the others lose, and a deal
    is created awaiting the bank's funding."""
    deal = await service.award(session, actor, listing_id, body.bid_id, clock=clock, settings=settings)
    return deal_read(deal, today=clock.today())
