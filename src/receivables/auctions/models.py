"""Listings and sealed bids."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import text
from sqlmodel import Field, SQLModel

from receivables.auctions.lifecycle import BidStatus, ListingStatus
from receivables.kit.models import id_field, instant_field, partial_unique_index


class Listing(SQLModel, table=True):
    __table_args__ = (
        partial_unique_index(
            "uq_listing_open_receivable", "receivable_id", where=text("status = 'open'")
        ),
    )

    id: uuid.UUID = id_field()
    receivable_id: uuid.UUID = Field(foreign_key="receivable.id", index=True)
    seller_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    status: str = Field(max_length=16, default=ListingStatus.open, index=True)
    max_discount_rate_ppm: int
    """Reserve: no bid may ask a higher annual rate."""
    advance_ratio_ppm: int
    """Share of the face value financed (1.00 → 1_000_000)."""
    recourse: bool = False
    auto_award: bool = True
    closes_at: dt.datetime = instant_field(index=True)
    bid_count: int = 0
    """Active bids now: the only figure about bids anyone but the seller may see."""
    bid_sequence: int = 0
    """Bumped under the listing's row lock at every placement or revision; a bid's copy of
    it orders equal rates by time even when many bids share a clock instant."""
    awarded_bid_id: uuid.UUID | None = None
    created_at: dt.datetime = instant_field(index=True)
    updated_at: dt.datetime = instant_field()


class Bid(SQLModel, table=True):
    __table_args__ = (
        partial_unique_index(
            "uq_bid_active_bank", "listing_id", "bank_id", where=text("status = 'active'")
        ),
        partial_unique_index("uq_bid_won_listing", "listing_id", where=text("status = 'won'")),
    )

    id: uuid.UUID = id_field()
    listing_id: uuid.UUID = Field(foreign_key="listing.id", index=True)
    bank_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    discount_rate_ppm: int
    status: str = Field(max_length=16, default=BidStatus.active)
    rate_sequence: int
    """The listing's bid_sequence when this rate was set: price-time priority."""
    rate_set_at: dt.datetime = instant_field()
    created_at: dt.datetime = instant_field(index=True)
    updated_at: dt.datetime = instant_field()
