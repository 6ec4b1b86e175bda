"""Keeping the summary tables (stats/models.py) current with the base tables.

The audit trail is the change log: every state change of a receivable or a deal
writes an audit row in its own transaction, sealed at commit with a `chain_index` in
commit order. A refresh reads the audit rows after its watermark, works out which
summary rows the changed objects belong to (a receivable: its currency and submission
day, and its debtor; a deal: its funding day and month, its debtor, and the day it
fell or would fall overdue) and recomputes exactly those rows from the base tables.
Recomputing (never adding deltas) makes a refresh idempotent: a row recomputed twice
is the same row.

The first refresh on a database (no watermark yet) builds every summary row from the
base tables: one pass per table, seconds at a million receivables; the worker does it
(`refresh_summaries`), or the first statistics request.

Refreshes are serialized: a transaction-scoped advisory lock on PostgreSQL (a waiting
refresh then finds the work done), the database write lock on SQLite.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.deals.models import Deal
from receivables.events.models import AuditChainHead, AuditRecord
from receivables.kit.clock import Clock
from receivables.receivables.models import Receivable
from receivables.stats import queries
from receivables.stats.figures import month_key, month_start, next_month_start
from receivables.stats.models import (
    StatsDealDay,
    StatsDebtor,
    StatsRateMonth,
    StatsReceivableDay,
    StatsSectorDay,
    StatsWatermark,
)
from receivables.stats.queries import midnight

REFRESH_BATCH_SIZE_MAX = 5_000
"""Audit rows one refresh reads at most; the rest wait for the next refresh."""
SUMMARY_LOCK_KEY = 0x5EA1_0A55_0002
"""PostgreSQL advisory-lock key serializing summary refreshes."""

SUMMARY_TABLES = (StatsReceivableDay, StatsDealDay, StatsRateMonth, StatsDebtor, StatsSectorDay)
ONE_DAY = dt.timedelta(days=1)


@dataclass
class Dirty:
    """Summary rows to recompute, by key."""

    receivable_days: set[tuple[str, dt.date]] = field(default_factory=set)
    deal_days: set[tuple[str, dt.date]] = field(default_factory=set)
    rate_months: set[tuple[str, str]] = field(default_factory=set)
    debtors: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    due_dates: set[tuple[str, dt.date]] = field(default_factory=set)
    """Deals due on this date fall overdue the next day (StatsSectorDay.day)."""


async def _head_index(session: AsyncSession) -> int:
    stmt = select(AuditChainHead.last_index).where(AuditChainHead.id == 1)
    return int((await session.execute(stmt)).scalar_one_or_none() or 0)


async def _watermark(session: AsyncSession) -> StatsWatermark | None:
    stmt = (
        select(StatsWatermark)
        .where(StatsWatermark.id == 1)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _lock(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        stmt = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=SUMMARY_LOCK_KEY)
        await session.execute(stmt)


async def refresh(
    session: AsyncSession, *, clock: Clock, batch_size_max: int = REFRESH_BATCH_SIZE_MAX
) -> int:
    """Bring the summary tables up to date; returns how many audit rows it read (or,
    on a first build, 0). Cheap when nothing changed: one indexed read of the chain
    head against the watermark, no lock. The caller owns the transaction."""
    mark = await _watermark(session)
    if mark is not None and mark.chain_index >= await _head_index(session):
        return 0
    await _lock(session)
    mark = await _watermark(session)  # as the refresh we may have waited for left it
    if mark is None:
        await rebuild(session, clock=clock)
        return 0
    window = select(AuditRecord.chain_index).where(AuditRecord.chain_index > mark.chain_index)
    indexes = list((await session.execute(
        window.order_by(AuditRecord.chain_index).limit(batch_size_max)
    )).scalars())
    if not indexes:
        return 0
    dirty = await _dirty(session, after=mark.chain_index, through=indexes[-1])
    await _recompute(session, dirty)
    mark.chain_index, mark.refreshed_at = indexes[-1], clock.now()
    await session.flush()
    return len(indexes)


async def _dirty(session: AsyncSession, *, after: int, through: int) -> Dirty:
    """The summary rows the objects changed by audit rows (after, through] belong to."""
    dirty = Dirty()
    in_range = (AuditRecord.chain_index > after, AuditRecord.chain_index <= through)
    receivables = (
        select(Receivable.currency, Receivable.created_at, Receivable.debtor_id)
        .join(AuditRecord, AuditRecord.object_id == Receivable.id)
        .where(AuditRecord.object_type == "receivable", *in_range)
        .distinct()
    )
    for currency, created_at, debtor_id in (await session.execute(receivables)).all():
        dirty.receivable_days.add((currency, created_at.date()))
        dirty.debtors.add((currency, debtor_id))
    deals = (
        select(Deal.currency, Deal.funded_at, Deal.due_date, Deal.debtor_id, AuditRecord.action)
        .join(AuditRecord, AuditRecord.object_id == Deal.id)
        .where(AuditRecord.object_type == "deal", *in_range)
        .distinct()
    )
    for currency, funded_at, due_date, debtor_id, action in (await session.execute(deals)).all():
        dirty.debtors.add((currency, debtor_id))
        if funded_at is None:
            continue  # not financed: only its debtor's record may change
        dirty.deal_days.add((currency, funded_at.date()))
        dirty.due_dates.add((currency, due_date))
        if action == "deal.funded":  # rate and principal never change after funding
            dirty.rate_months.add((currency, month_key(funded_at.date())))
    return dirty


async def _replace(session: AsyncSession, model: type, conditions: list, rows: list[dict]) -> None:
    await session.execute(delete(model).where(*conditions))
    if rows:
        await session.execute(insert(model), rows)


async def _recompute(session: AsyncSession, dirty: Dirty) -> None:
    r, d, m, s, b = StatsReceivableDay, StatsDealDay, StatsRateMonth, StatsSectorDay, StatsDebtor
    for currency, day in sorted(dirty.receivable_days):
        found = await queries.receivable_days(
            session, currency=currency, start=midnight(day), end=midnight(day + ONE_DAY)
        )
        await _replace(session, r, [r.currency == currency, r.day == day], _receivable_rows(found))
    for currency, day in sorted(dirty.deal_days):
        found = await queries.deal_days(
            session, currency=currency, start=midnight(day), end=midnight(day + ONE_DAY)
        )
        await _replace(session, d, [d.currency == currency, d.day == day], _deal_rows(found))
    for currency, month in sorted(dirty.rate_months):
        start = month_start(dt.date.fromisoformat(month + "-01"))
        found = await queries.rate_months(
            session, currency=currency, start=midnight(start), end=midnight(next_month_start(start))
        )
        await _replace(session, m, [m.currency == currency, m.month == month], _rate_rows(found))
    for currency, due_date in sorted(dirty.due_dates):
        found = await queries.sector_days(session, currency=currency, due_date=due_date)
        conditions = [s.currency == currency, s.day == due_date + ONE_DAY]
        await _replace(session, s, conditions, _sector_rows(found))
    for currency, debtor_id in sorted(dirty.debtors):
        rows = await _debtor_rows(session, currency=currency, debtor_id=debtor_id)
        await _replace(session, b, [b.currency == currency, b.debtor_id == debtor_id], rows)


async def rebuild(session: AsyncSession, *, clock: Clock) -> None:
    """Every summary row from the base tables, and the watermark at the chain head as
    read first: a change committed meanwhile is read again by the next refresh, which
    recomputes its rows (idempotent)."""
    head = await _head_index(session)
    for model in SUMMARY_TABLES:
        await session.execute(delete(model))
    for model, rows in (
        (StatsReceivableDay, _receivable_rows(await queries.receivable_days(session))),
        (StatsDealDay, _deal_rows(await queries.deal_days(session))),
        (StatsRateMonth, _rate_rows(await queries.rate_months(session))),
        (StatsSectorDay, _sector_rows(await queries.sector_days(session))),
        (StatsDebtor, await _debtor_rows(session)),
    ):
        if rows:
            await session.execute(insert(model), rows)
    await session.execute(delete(StatsWatermark))
    now = clock.now()
    session.add(StatsWatermark(id=1, chain_index=head, rebuilt_at=now, refreshed_at=now))
    await session.flush()


def _receivable_rows(found: list[tuple]) -> list[dict]:
    return [
        {"currency": c, "day": day, "status": status, "receivables": n}
        for c, day, status, n in found
    ]


def _deal_rows(found: list[tuple]) -> list[dict]:
    return [
        {"currency": c, "day": day, "sme": sme, "deals": n, "principal_minor": p,
         "face_value_minor": f, "owed_minor": owed, "overdue_owed_minor": overdue,
         "defaulted_owed_minor": defaulted}
        for c, day, sme, n, p, f, owed, overdue, defaulted in found
    ]


def _rate_rows(found: list[tuple]) -> list[dict]:
    return [
        {"currency": c, "month": month, "rate_ppm": rate, "deals": n, "principal_minor": p}
        for c, month, rate, n, p in found
    ]


def _sector_rows(found: list[tuple]) -> list[dict]:
    return [
        {"currency": c, "day": due_date + ONE_DAY, "sector": sector, "arrears": n,
         "owed_at_fall_minor": owed_at_fall, "repaid_since_minor": repaid,
         "outstanding_minor": outstanding, "cleared": cleared}
        for c, due_date, sector, n, owed_at_fall, repaid, outstanding, cleared in found
    ]


async def _debtor_rows(
    session: AsyncSession, *, currency: str | None = None, debtor_id: uuid.UUID | None = None
) -> list[dict]:
    confirmations = await queries.confirmation_records(session, currency=currency, debtor_id=debtor_id)
    repayments = await queries.repayment_records(session, currency=currency, debtor_id=debtor_id)
    rows = []
    for key in sorted(confirmations.keys() | repayments.keys()):
        c = confirmations.get(key, queries.EMPTY_CONFIRMATIONS)
        p = repayments.get(key, queries.EMPTY_REPAYMENTS)
        rows.append({
            "currency": key[0], "debtor_id": key[1], "submitted": c.submitted,
            "confirmed": c.confirmed, "disputed": c.disputed, "expired": c.expired,
            "median_confirmation_seconds": c.median_seconds,
            "p90_confirmation_seconds": c.p90_seconds, "financed": p.financed_count,
            "suppliers_financed": p.suppliers_financed, "financed_minor": p.financed_minor,
            "settled": p.settled_count, "on_time": p.on_time_count, "arrears": p.overdue_count,
            "arrears_owed_minor": p.overdue_minor,
        })
    return rows


async def summary_rows(session: AsyncSession) -> int:
    """How many summary rows exist (for the benchmark's report)."""
    total = 0
    for model in SUMMARY_TABLES:
        total += int((await session.execute(select(func.count()).select_from(model))).scalar_one())
    return total
