"""The worker's jobs: each deadline of DESIGN.md "Time and deadlines" as one function
that claims a bounded batch of due rows and moves each through the same service code a
manual action uses, with the platform (`SYSTEM`) as the actor.

A job runs inside one transaction the runner opens and commits: the batch is applied
completely or, on any error, not at all (and is due again at the next pass). Claims use
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers split the due rows between
them; on SQLite every transaction starts with `BEGIN IMMEDIATE`, one writer at a time.

Order matters within a pass: overdue runs before defaulted, so a deal whose grace period
passed while nobody ran the worker goes disbursed → overdue → defaulted in one pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions import service as auctions
from receivables.config import Settings
from receivables.deals import service as deals
from receivables.kit.clock import Clock
from receivables.receivables import service as receivables
from receivables.stats import serious as stats_serious
from receivables.stats import service as stats
from receivables.stats import summaries as stats_summaries
from receivables.webhooks import delivery as webhook_delivery

JobFunction = Callable[[AsyncSession, Clock, Settings], Awaitable[int]]


@dataclass(frozen=True)
class Job:
    name: str
    """The key in `{processed: {...}}`: what one unit of the count is."""
    run: JobFunction
    """Process at most `batch_size_max` due objects in the given session; return how many."""
    batch_size_max: int
    """A batch smaller than this means nothing of the kind was left to claim."""


async def _expire_receivables(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    return await receivables.expire_lapsed(session, clock=clock)


async def _close_auctions(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    return await auctions.close_due(session, clock=clock, settings=settings)


async def _cancel_unfunded_deals(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    return await deals.cancel_unfunded(session, clock=clock)


async def _mark_overdue_deals(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    return await deals.mark_overdue(session, clock=clock)


async def _mark_defaulted_deals(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    return await deals.mark_defaulted(session, clock=clock, grace_days=settings.grace_days)


async def _refresh_serious_arrears(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    return await stats.refresh_serious_arrears(session, clock=clock, settings=settings)


async def _refresh_stats(session: AsyncSession, clock: Clock, settings: Settings) -> int:
    return await stats.refresh_summaries(session, clock=clock, settings=settings)


JOBS: tuple[Job, ...] = (
    Job("receivables_expired", _expire_receivables, receivables.LAPSED_BATCH_SIZE_MAX),
    Job("auctions_closed", _close_auctions, auctions.CLOSING_BATCH_SIZE_MAX),
    Job("deals_cancelled", _cancel_unfunded_deals, deals.DEADLINE_BATCH_SIZE_MAX),
    Job("deals_overdue", _mark_overdue_deals, deals.DEADLINE_BATCH_SIZE_MAX),
    Job("deals_defaulted", _mark_defaulted_deals, deals.DEADLINE_BATCH_SIZE_MAX),
    Job("webhook_endpoints_fed", webhook_delivery.queue_deliveries, 1),
    Job("webhook_attempts", webhook_delivery.deliver_due, webhook_delivery.DELIVERY_BATCH_SIZE_MAX),
    Job("serious_arrears_changed", _refresh_serious_arrears, stats_serious.REFRESH_BATCH_SIZE_MAX),
    Job("stats_summaries_refreshed", _refresh_stats, stats_summaries.REFRESH_BATCH_SIZE_MAX),
)
"""Every due-job kind, in the order one pass runs them."""

JOB_NAMES: tuple[str, ...] = tuple(job.name for job in JOBS)
