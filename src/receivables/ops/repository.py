"""The SQL behind the business gauges on /metrics: a few indexed aggregates."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions.lifecycle import ListingStatus
from receivables.auctions.models import Listing
from receivables.deals.lifecycle import DealStatus
from receivables.deals.models import Deal


async def open_listings(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(Listing).where(Listing.status == ListingStatus.open)
    return (await session.execute(stmt)).scalar_one()


async def deals_by_status(session: AsyncSession) -> dict[str, int]:
    stmt = select(Deal.status, func.count()).group_by(Deal.status)
    return {status: count for status, count in (await session.execute(stmt)).all()}


async def overdue_minor_by_currency(session: AsyncSession) -> dict[str, int]:
    """Still owed on deals past their due date (overdue or defaulted)."""
    owed = func.sum(Deal.face_value_minor - Deal.repaid_minor)
    stmt = (
        select(Deal.currency, owed)
        .where(Deal.status.in_([DealStatus.overdue, DealStatus.defaulted]))
        .group_by(Deal.currency)
    )
    return {currency: int(amount or 0) for currency, amount in (await session.execute(stmt)).all()}
