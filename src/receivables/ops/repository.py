"""The SQL behind the business gauges on /metrics: a few indexed aggregates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions import repository as auctions
from receivables.auctions.lifecycle import ListingStatus
from receivables.auctions.models import Listing
from receivables.deals import repository as deals
from receivables.deals.lifecycle import DealStatus
from receivables.deals.models import Deal
from receivables.receivables import repository as receivables
from receivables.receivables.models import Receivable


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


async def due_deadlines(
    session: AsyncSession, *, now: dt.datetime, today: dt.date, grace_days: int
) -> dict[str, int]:
    """The worker's own backlog: objects whose deadline has come and that a pass would
    move now, by job name (`worker.jobs.JOBS`), with the very conditions the jobs' claim
    queries take, counted in one statement."""

    def part(job: str, model, conditions):
        return select(literal(job).label("job"), func.count().label("due")).select_from(
            model
        ).where(*conditions)

    stmt = union_all(
        part("receivables_expired", Receivable, receivables.lapsed(now)),
        part("auctions_closed", Listing, auctions.closing(now)),
        part("deals_cancelled", Deal, deals.unfunded(now)),
        part("deals_overdue", Deal, deals.overdue(today)),
        part("deals_defaulted", Deal, deals.defaulting(today, grace_days)),
    )
    return {job: int(due) for job, due in (await session.execute(stmt)).all()}
