"""Listing and bid bodies. Rates are annual decimal strings; money two-place strings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from receivables.auctions.models import Bid, Listing
from receivables.kit import money
from receivables.receivables.models import Receivable

RATE_CHARS_MAX = 12
RATE_EXAMPLE = "0.0450"


def _rate(value: str) -> str:
    rate_ppm = money.parse_rate(value)
    if rate_ppm == 0:
        raise ValueError("a discount rate must be greater than zero")
    return value


class ListingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receivable_id: uuid.UUID
    max_discount_rate: Annotated[str, Field(max_length=RATE_CHARS_MAX, examples=[RATE_EXAMPLE])]
    """Reserve: the highest annual discount rate the seller accepts."""
    closes_at: AwareDatetime
    advance_ratio: Annotated[str, Field(max_length=RATE_CHARS_MAX)] = "1.00"
    recourse: bool = False
    auto_award: bool = True

    _rate_checked = field_validator("max_discount_rate")(_rate)

    @field_validator("closes_at")
    @classmethod
    def _in_utc(cls, value: dt.datetime) -> dt.datetime:
        """One instant, one answer: dates compare in UTC, and answers are RFC 3339 UTC."""
        return value.astimezone(dt.UTC)

    @field_validator("advance_ratio")
    @classmethod
    def _ratio(cls, value: str) -> str:
        money.parse_ratio(value)
        return value


class ListingRead(BaseModel):
    id: uuid.UUID
    receivable_id: uuid.UUID
    seller_id: uuid.UUID
    debtor_id: uuid.UUID
    debtor_name: str
    status: str
    face_value: str
    currency: str
    due_date: dt.date
    max_discount_rate: str
    advance_ratio: str
    recourse: bool
    auto_award: bool
    closes_at: dt.datetime
    bid_count: int | None
    """Active bids; shown to the seller, operators and regulators only (sealed auction)."""
    awarded_bid_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


def listing_read(
    listing: Listing, receivable: Receivable, debtor_name: str, *, show_bids: bool
) -> ListingRead:
    return ListingRead(
        id=listing.id,
        receivable_id=listing.receivable_id,
        seller_id=listing.seller_id,
        debtor_id=receivable.debtor_id,
        debtor_name=debtor_name,
        status=listing.status,
        face_value=money.format_amount(receivable.face_value_minor),
        currency=receivable.currency,
        due_date=receivable.due_date,
        max_discount_rate=money.format_rate(listing.max_discount_rate_ppm),
        advance_ratio=money.format_rate(listing.advance_ratio_ppm),
        recourse=listing.recourse,
        auto_award=listing.auto_award,
        closes_at=listing.closes_at,
        bid_count=listing.bid_count if show_bids else None,
        awarded_bid_id=listing.awarded_bid_id if show_bids else None,
        created_at=listing.created_at,
        updated_at=listing.updated_at,
    )


class BidCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    discount_rate: Annotated[str, Field(max_length=RATE_CHARS_MAX, examples=[RATE_EXAMPLE])]
    """Annual discount rate asked; at most the listing's max_discount_rate."""

    _rate_checked = field_validator("discount_rate")(_rate)


class BidRevise(BidCreate):
    pass


class BidRead(BaseModel):
    id: uuid.UUID
    listing_id: uuid.UUID
    bank_id: uuid.UUID
    discount_rate: str
    status: str
    rate_set_at: dt.datetime
    """When the current rate was set: ties at auto-award go to the earliest."""
    created_at: dt.datetime
    updated_at: dt.datetime


def bid_read(bid: Bid) -> BidRead:
    return BidRead(
        id=bid.id,
        listing_id=bid.listing_id,
        bank_id=bid.bank_id,
        discount_rate=money.format_rate(bid.discount_rate_ppm),
        status=bid.status,
        rate_set_at=bid.rate_set_at,
        created_at=bid.created_at,
        updated_at=bid.updated_at,
    )


class AwardCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bid_id: uuid.UUID
