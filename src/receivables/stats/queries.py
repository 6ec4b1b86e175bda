"""The statistics' read SQL: aggregates the database computes (GROUP BY, FILTER,
percentile_cont), over the summary tables (stats/models.py, kept by summaries.py) or,
for what those cannot answer (a date range on a debtor's record), over the base tables.

Two things differ between the backends and are chosen here, per dialect:
- the UTC calendar day or month of an instant (PostgreSQL `timezone('UTC', t)`;
  SQLite stores UTC instants as ISO text, so `date(t)` / `strftime('%Y-%m', t)`);
- percentiles: PostgreSQL's `percentile_cont(p) WITHIN GROUP (ORDER BY v)`, in the same
  pass as the counts; SQLite has no ordered-set aggregates, so the same linear
  interpolation is computed from `row_number()` and `count()` window functions over the
  sorted values.

Dates (README "Statistics"): receivables count by the instant they were first
submitted, deals by the instant they were funded, arrears by the day they fell overdue
(the day after the due date), a bank's record by the instant it won the deal.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.roles import ORGANIZATION_KINDS
from receivables.deals.lifecycle import DealStatus
from receivables.deals.models import Deal
from receivables.ledger.entries import REPAYMENT_KINDS
from receivables.ledger.models import Account, AccountKind, JournalEntry, Posting
from receivables.organizations.models import SME_SIZES, Organization, Sector
from receivables.receivables.lifecycle import ReceivableStatus
from receivables.receivables.models import Receivable
from receivables.stats.models import (
    SeriousArrearsMember,
    StatsDealDay,
    StatsDebtor,
    StatsRateMonth,
    StatsReceivableDay,
    StatsSectorDay,
)

ARREARS = (DealStatus.overdue, DealStatus.defaulted)
"""Deals still owed after their due date (API.md: arrears)."""
OWING = (DealStatus.disbursed, DealStatus.overdue, DealStatus.defaulted)
"""Funded deals the debtor has not paid in full."""

ARREARS_REFRESH_LOCK_KEY = 0x5EA1_0A55_0001
"""PostgreSQL advisory-lock key serializing serious-arrears refreshes (one at a time)."""

OWED = Deal.face_value_minor - Deal.repaid_minor
"""What the debtor still owes on a deal: F minus everything repaid."""
IS_SME = Organization.size.in_(SME_SIZES)
"""Joined on the seller: its size class is micro, small or medium."""


@dataclass(frozen=True)
class Window:
    """The filters every statistic takes: one currency and an optional range of UTC
    calendar days, both ends inclusive."""

    currency: str
    first_day: dt.date | None = None
    last_day: dt.date | None = None

    @property
    def ranged(self) -> bool:
        return self.first_day is not None or self.last_day is not None

    @property
    def start(self) -> dt.datetime | None:
        """The first instant inside the window."""
        return None if self.first_day is None else midnight(self.first_day)

    @property
    def end(self) -> dt.datetime | None:
        """The first instant after the window."""
        return None if self.last_day is None else midnight(self.last_day + dt.timedelta(days=1))


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def as_date(value: Any) -> dt.date:
    """A day as the driver returns it (SQLite's date() is text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _between(column: Any, start: Any, end: Any) -> list[ColumnElement[bool]]:
    """start <= column < end, either end open when None."""
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def _days(column: Any, first_day: dt.date | None, last_day: dt.date | None) -> list[ColumnElement[bool]]:
    """first_day <= column <= last_day, either end open when None."""
    conditions = []
    if first_day is not None:
        conditions.append(column >= first_day)
    if last_day is not None:
        conditions.append(column <= last_day)
    return conditions


def _currency_is(column: Any, currency: str | None) -> list[ColumnElement[bool]]:
    return [] if currency is None else [column == currency]


def _debtor_is(column: Any, debtor_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    return [] if debtor_id is None else [column == debtor_id]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _utc_date(session: AsyncSession, column: Any) -> ColumnElement[Any]:
    if _dialect(session) == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _utc_month(session: AsyncSession, column: Any) -> ColumnElement[str]:
    if _dialect(session) == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _month_of_day(session: AsyncSession, column: Any) -> ColumnElement[str]:
    if _dialect(session) == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _sqlite_percentiles(values: Select) -> Select:
    """(currency, debtor_id, median, p90) by currency and debtor for a select of
    (currency, debtor_id, value) rows: PostgreSQL's percentile_cont, computed with window
    functions (SQLite has no ordered-set aggregates): the value at position (n − 1)·p
    of the sorted values, interpolated linearly between its neighbours."""
    source = values.subquery()
    keys = (source.c.currency, source.c.debtor_id)
    ranked = select(
        *keys,
        source.c.value,
        (func.row_number().over(partition_by=keys, order_by=source.c.value) - 1).label("rank"),
        func.count().over(partition_by=keys).label("n"),
    ).subquery()
    columns = []
    for p in (0.5, 0.9):
        position = cast(ranked.c.n - 1, Float) * p
        low = cast(position, Integer)  # floor: the position is never negative
        fraction = position - low
        weight = case((ranked.c.rank == low, 1 - fraction), else_=0) + case(
            (ranked.c.rank == low + 1, fraction), else_=0
        )
        columns.append(func.sum(ranked.c.value * weight))
    return select(ranked.c.currency, ranked.c.debtor_id, *columns).group_by(
        ranked.c.currency, ranked.c.debtor_id
    )


# ------------------------------------------------------------------ organizations


async def organizations_by_kind(session: AsyncSession, window: Window) -> dict[str, int]:
    """Organizations onboarded by the end of the window, per kind (every kind listed)."""
    stmt = select(Organization.kind, func.count()).group_by(Organization.kind)
    if window.end is not None:
        stmt = stmt.where(Organization.created_at < window.end)
    found = {kind.value: 0 for kind in ORGANIZATION_KINDS}
    found.update({kind: int(n) for kind, n in (await session.execute(stmt)).all()})
    return found


@dataclass(frozen=True)
class Party:
    id: uuid.UUID
    name: str
    kind: str
    size: str
    sector: str


_PARTY_COLUMNS = (
    Organization.id, Organization.name, Organization.kind, Organization.size, Organization.sector
)


async def core_enterprises(session: AsyncSession) -> list[Party]:
    stmt = select(*_PARTY_COLUMNS).where(Organization.kind == "core")
    return [Party(*row) for row in (await session.execute(stmt)).all()]


async def parties(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Party]:
    if not ids:
        return {}
    stmt = select(*_PARTY_COLUMNS).where(Organization.id.in_(list(ids)))
    return {row[0]: Party(*row) for row in (await session.execute(stmt)).all()}


async def organization(session: AsyncSession, organization_id: uuid.UUID) -> Party | None:
    return (await parties(session, [organization_id])).get(organization_id)


# ------------------------------------------------------------------ base-table aggregates
# Used to (re)compute the summary tables, and live for a debtor's record over a range.


async def receivable_days(
    session: AsyncSession, *, currency: str | None = None, start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[tuple[str, dt.date, str, int]]:
    """(currency, UTC day first submitted, current status, receivables)."""
    day = _utc_date(session, Receivable.created_at).label("day")
    stmt = (
        select(Receivable.currency, day, Receivable.status, func.count())
        .where(*_currency_is(Receivable.currency, currency), *_between(Receivable.created_at, start, end))
        .group_by(Receivable.currency, day, Receivable.status)
    )
    return [(c, as_date(d), s, int(n)) for c, d, s, n in (await session.execute(stmt)).all()]


def _funded(currency: str | None, start: Any, end: Any) -> list[ColumnElement[bool]]:
    return [
        Deal.funded_at.is_not(None),
        *_currency_is(Deal.currency, currency),
        *_between(Deal.funded_at, start, end),
    ]


async def deal_days(
    session: AsyncSession, *, currency: str | None = None, start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[tuple]:
    """(currency, UTC day funded, sme, deals, Σ P, Σ F, owed, overdue owed, defaulted owed)."""
    day = _utc_date(session, Deal.funded_at).label("day")
    stmt = (
        select(
            Deal.currency, day, IS_SME.label("sme"), func.count(),
            func.sum(Deal.principal_minor), func.sum(Deal.face_value_minor),
            func.sum(OWED).filter(Deal.status.in_(OWING)),
            func.sum(OWED).filter(Deal.status == DealStatus.overdue),
            func.sum(OWED).filter(Deal.status == DealStatus.defaulted),
        )
        .select_from(Deal)
        .join(Organization, Organization.id == Deal.sme_id)
        .where(*_funded(currency, start, end))
        .group_by(Deal.currency, day, IS_SME)
    )
    return [
        (c, as_date(d), bool(sme), *(int(v or 0) for v in values))
        for c, d, sme, *values in (await session.execute(stmt)).all()
    ]


async def rate_months(
    session: AsyncSession, *, currency: str | None = None, start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[tuple[str, str, int, int, int]]:
    """(currency, UTC month funded, discount_rate_ppm, deals, Σ principal)."""
    month = _utc_month(session, Deal.funded_at).label("month")
    stmt = (
        select(Deal.currency, month, Deal.discount_rate_ppm, func.count(), func.sum(Deal.principal_minor))
        .where(*_funded(currency, start, end))
        .group_by(Deal.currency, month, Deal.discount_rate_ppm)
    )
    return [(c, m, int(r), int(n), int(p)) for c, m, r, n, p in (await session.execute(stmt)).all()]


async def rate_histogram(
    session: AsyncSession, currency: str, start: dt.datetime | None, end: dt.datetime | None
) -> list[tuple[int, int, int]]:
    """(discount_rate_ppm, deals, Σ principal) of the deals funded in [start, end)."""
    stmt = (
        select(Deal.discount_rate_ppm, func.count(), func.sum(Deal.principal_minor))
        .where(*_funded(currency, start, end))
        .group_by(Deal.discount_rate_ppm)
    )
    return [(int(r), int(n), int(p)) for r, n, p in (await session.execute(stmt)).all()]


@dataclass(frozen=True)
class ConfirmationRecord:
    submitted: int
    confirmed: int
    disputed: int
    """Receivables whose debtor's last answer was a dispute (still disputed, or
    cancelled by the seller after it); an amended one that is then confirmed counts as
    confirmed only."""
    expired: int
    median_seconds: float | None = None
    p90_seconds: float | None = None


EMPTY_CONFIRMATIONS = ConfirmationRecord(0, 0, 0, 0)


async def confirmation_records(
    session: AsyncSession, *, currency: str | None = None, start: dt.datetime | None = None,
    end: dt.datetime | None = None, debtor_id: uuid.UUID | None = None,
) -> dict[tuple[str, uuid.UUID], ConfirmationRecord]:
    """Per (currency, debtor), over receivables submitted in [start, end): how many were
    submitted, confirmed, disputed and expired, and the median and 90th percentile of
    the confirmation latency. Reads only columns of ix_receivable_debtor_confirmation
    (confirmation_seconds is set exactly when the debtor confirms)."""
    scope = [
        *_currency_is(Receivable.currency, currency),
        *_between(Receivable.created_at, start, end),
        *_debtor_is(Receivable.debtor_id, debtor_id),
    ]
    confirmed = Receivable.confirmation_seconds.is_not(None)
    keys = (Receivable.currency, Receivable.debtor_id)
    counts = [
        func.count(),
        func.count().filter(confirmed),
        func.count().filter(~confirmed, Receivable.dispute_reason.is_not(None)),
        func.count().filter(Receivable.status == ReceivableStatus.expired),
    ]
    if _dialect(session) == "postgresql":  # one pass: ordered-set aggregates take FILTER
        percentiles = [
            func.percentile_cont(p).within_group(Receivable.confirmation_seconds).filter(confirmed)
            for p in (0.5, 0.9)
        ]
        stmt = select(*keys, *counts, *percentiles).where(*scope).group_by(*keys)
        return {
            (c, d): _confirmation_record(values)
            for c, d, *values in (await session.execute(stmt)).all()
        }
    latencies = select(*keys, Receivable.confirmation_seconds.label("value")).where(*scope, confirmed)
    by_key = {
        (c, d): (median, p90)
        for c, d, median, p90 in (await session.execute(_sqlite_percentiles(latencies))).all()
    }
    stmt = select(*keys, *counts).where(*scope).group_by(*keys)
    return {
        (c, d): _confirmation_record([*values, *by_key.get((c, d), (None, None))])
        for c, d, *values in (await session.execute(stmt)).all()
    }


def _confirmation_record(values: Sequence[Any]) -> ConfirmationRecord:
    submitted, confirmed, disputed, expired, median, p90 = values
    return ConfirmationRecord(
        int(submitted), int(confirmed), int(disputed), int(expired),
        None if median is None else float(median), None if p90 is None else float(p90),
    )


@dataclass(frozen=True)
class RepaymentRecord:
    financed_count: int
    suppliers_financed: int
    financed_minor: int
    settled_count: int
    on_time_count: int
    """Deals settled on or before their due date."""
    overdue_count: int
    """Deals overdue or defaulted."""
    overdue_minor: int
    """Still owed on them."""


EMPTY_REPAYMENTS = RepaymentRecord(0, 0, 0, 0, 0, 0, 0)


async def repayment_records(
    session: AsyncSession, *, currency: str | None = None, start: dt.datetime | None = None,
    end: dt.datetime | None = None, debtor_id: uuid.UUID | None = None,
) -> dict[tuple[str, uuid.UUID], RepaymentRecord]:
    """Per (currency, debtor), over deals funded in [start, end): suppliers financed
    through it, the amount financed, how punctually it repaid, and what it owes overdue."""
    is_arrear = Deal.status.in_(ARREARS)
    settled = Deal.status == DealStatus.settled
    on_time = and_(settled, _utc_date(session, Deal.settled_at) <= Deal.due_date)
    stmt = (
        select(
            Deal.currency,
            Deal.debtor_id,
            func.count(),
            func.count(distinct(Deal.sme_id)),
            func.sum(Deal.principal_minor),
            func.count().filter(settled),
            func.count().filter(on_time),
            func.count().filter(is_arrear),
            func.sum(OWED).filter(is_arrear),
        )
        .where(*_funded(currency, start, end), *_debtor_is(Deal.debtor_id, debtor_id))
        .group_by(Deal.currency, Deal.debtor_id)
    )
    return {
        (row[0], row[1]): RepaymentRecord(*(int(value or 0) for value in row[2:]))
        for row in (await session.execute(stmt)).all()
    }


async def past_due_counts(
    session: AsyncSession, *, currency: str, today: dt.date, start: dt.datetime | None = None,
    end: dt.datetime | None = None, debtor_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, int]:
    """Per debtor, deals still `disbursed` although their due date has passed (the
    worker has not marked them overdue yet): they came due too. Usually none; read
    through ix_deal_status_due_date."""
    stmt = (
        select(Deal.debtor_id, func.count())
        .where(
            Deal.status == DealStatus.disbursed, Deal.due_date < today, Deal.currency == currency,
            *_between(Deal.funded_at, start, end), *_debtor_is(Deal.debtor_id, debtor_id),
        )
        .group_by(Deal.debtor_id)
    )
    return {debtor: int(n) for debtor, n in (await session.execute(stmt)).all()}


def _fell_overdue(session: AsyncSession) -> list[ColumnElement[bool]]:
    """Still owed after the due date: in arrears now, or settled after the due date.
    The explicit status list lets ix_deal_status_due_date find the deals of one day."""
    settled_late = and_(
        Deal.status == DealStatus.settled, _utc_date(session, Deal.settled_at) > Deal.due_date
    )
    return [
        Deal.status.in_([*ARREARS, DealStatus.settled]),
        or_(Deal.status.in_(ARREARS), settled_late),
    ]


async def sector_days(
    session: AsyncSession, *, currency: str | None = None, due_date: dt.date | None = None
) -> list[tuple]:
    """(currency, due date, debtor's sector, deals that fell overdue the day after it,
    owed on them that day, repaid since, still owed, settled since). What was repaid
    after the due date comes from the ledger's repayment entries, dated."""
    cohort = [
        Deal.funded_at.is_not(None),
        *_fell_overdue(session),
        *_currency_is(Deal.currency, currency),
        *([] if due_date is None else [Deal.due_date == due_date]),
    ]
    escrow_credit = and_(Account.id == Posting.credit_account_id, Account.kind == AccountKind.escrow)
    repaid_late = (
        select(JournalEntry.deal_id.label("deal_id"), func.sum(Posting.amount_minor).label("repaid"))
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(Account, escrow_credit)
        .join(Deal, Deal.id == JournalEntry.deal_id)
        .where(
            JournalEntry.kind.in_([kind.value for kind in REPAYMENT_KINDS]),
            _utc_date(session, JournalEntry.created_at) > Deal.due_date,
            *cohort,
        )
        .group_by(JournalEntry.deal_id)
        .subquery()
    )
    repaid = func.coalesce(repaid_late.c.repaid, 0)
    stmt = (
        select(
            Deal.currency, Deal.due_date, Organization.sector, func.count(),
            func.sum(OWED + repaid), func.sum(repaid), func.sum(OWED),
            func.count().filter(Deal.status == DealStatus.settled),
        )
        .select_from(Deal)
        .join(Organization, Organization.id == Deal.debtor_id)
        .outerjoin(repaid_late, repaid_late.c.deal_id == Deal.id)
        .where(*cohort)
        .group_by(Deal.currency, Deal.due_date, Organization.sector)
    )
    return [
        (c, as_date(d), s, *(int(v or 0) for v in values))
        for c, d, s, *values in (await session.execute(stmt)).all()
    ]


# ------------------------------------------------------------------ summary reads


async def summary_statuses(session: AsyncSession, window: Window) -> dict[str, int]:
    """Receivables submitted in the window, per current status (every status listed)."""
    stmt = (
        select(StatsReceivableDay.status, func.sum(StatsReceivableDay.receivables))
        .where(
            StatsReceivableDay.currency == window.currency,
            *_days(StatsReceivableDay.day, window.first_day, window.last_day),
        )
        .group_by(StatsReceivableDay.status)
    )
    found = {status.value: 0 for status in ReceivableStatus}
    found.update({status: int(n) for status, n in (await session.execute(stmt)).all()})
    return found


@dataclass(frozen=True)
class FinancedTotals:
    count: int
    principal_minor: int
    face_value_minor: int
    sme_count: int
    sme_principal_minor: int
    outstanding_minor: int
    overdue_minor: int
    defaulted_minor: int


async def summary_financed(session: AsyncSession, window: Window) -> FinancedTotals:
    """Deals funded in the window: counts and sums, their SME part, and what is still
    owed on them, overdue and defaulted."""
    d = StatsDealDay
    stmt = select(
        func.sum(d.deals), func.sum(d.principal_minor), func.sum(d.face_value_minor),
        func.sum(d.deals).filter(d.sme), func.sum(d.principal_minor).filter(d.sme),
        func.sum(d.owed_minor), func.sum(d.overdue_owed_minor), func.sum(d.defaulted_owed_minor),
    ).where(d.currency == window.currency, *_days(d.day, window.first_day, window.last_day))
    row = (await session.execute(stmt)).one()
    return FinancedTotals(*(int(value or 0) for value in row))


async def summary_months(
    session: AsyncSession, window: Window
) -> tuple[dict[str, int], dict[str, tuple[int, int, int, int]]]:
    """month → receivables submitted; month → (deals, Σ P, SME deals, SME Σ P) funded."""
    r, d = StatsReceivableDay, StatsDealDay
    r_month = _month_of_day(session, r.day).label("month")
    submitted = (
        select(r_month, func.sum(r.receivables))
        .where(r.currency == window.currency, *_days(r.day, window.first_day, window.last_day))
        .group_by(r_month)
    )
    d_month = _month_of_day(session, d.day).label("month")
    financed = (
        select(
            d_month, func.sum(d.deals), func.sum(d.principal_minor),
            func.sum(d.deals).filter(d.sme), func.sum(d.principal_minor).filter(d.sme),
        )
        .where(d.currency == window.currency, *_days(d.day, window.first_day, window.last_day))
        .group_by(d_month)
    )
    return (
        {m: int(n) for m, n in (await session.execute(submitted)).all()},
        {
            m: (int(n), int(p or 0), int(sn or 0), int(sp or 0))
            for m, n, p, sn, sp in (await session.execute(financed)).all()
        },
    )


async def summary_rates(
    session: AsyncSession, currency: str, first_month: str | None, last_month: str | None
) -> list[tuple[int, int, int]]:
    """(rate, deals, Σ P) of the deals funded in the whole months from first to last."""
    m = StatsRateMonth
    conditions = [m.currency == currency]
    if first_month is not None:
        conditions.append(m.month >= first_month)
    if last_month is not None:
        conditions.append(m.month <= last_month)
    stmt = (
        select(m.rate_ppm, func.sum(m.deals), func.sum(m.principal_minor))
        .where(*conditions)
        .group_by(m.rate_ppm)
    )
    return [(int(r), int(n), int(p)) for r, n, p in (await session.execute(stmt)).all()]


async def summary_debtors(
    session: AsyncSession, currency: str, *, debtor_id: uuid.UUID | None = None
) -> dict[uuid.UUID, StatsDebtor]:
    stmt = select(StatsDebtor).where(
        StatsDebtor.currency == currency, *_debtor_is(StatsDebtor.debtor_id, debtor_id)
    )
    return {row.debtor_id: row for row in (await session.execute(stmt)).scalars()}


@dataclass(frozen=True)
class SectorArrears:
    sector: str
    overdue_count: int
    """Deals that fell overdue in the window."""
    overdue_minor: int
    """What was owed on them the day they fell overdue."""
    repaid_minor: int
    """Repaid on them since."""
    outstanding_minor: int
    """Still owed on them now."""
    cleared_count: int
    """Of them, deals since repaid in full."""


async def summary_sectors(session: AsyncSession, window: Window) -> list[SectorArrears]:
    """Arrears that arose in the window, by the debtor's sector (every sector listed)."""
    s = StatsSectorDay
    stmt = (
        select(
            s.sector, func.sum(s.arrears), func.sum(s.owed_at_fall_minor),
            func.sum(s.repaid_since_minor), func.sum(s.outstanding_minor), func.sum(s.cleared),
        )
        .where(s.currency == window.currency, *_days(s.day, window.first_day, window.last_day))
        .group_by(s.sector)
    )
    found = {sector.value: SectorArrears(sector.value, 0, 0, 0, 0, 0) for sector in Sector}
    for sector, *values in (await session.execute(stmt)).all():
        found[sector] = SectorArrears(sector, *(int(value or 0) for value in values))
    return list(found.values())


# ------------------------------------------------------------------ arrears (live)


@dataclass(frozen=True)
class Arrears:
    debtor_id: uuid.UUID
    currency: str
    overdue_count: int
    """Deals overdue or defaulted."""
    overdue_minor: int
    """Still owed on them."""
    defaulted_count: int
    defaulted_minor: int
    oldest_due_date: dt.date


async def arrears(
    session: AsyncSession,
    *,
    currency: str | None = None,
    window: Window | None = None,
    debtor_id: uuid.UUID | None = None,
) -> list[Arrears]:
    """What each debtor owes overdue, per currency (one currency when given), over the
    deals that fell overdue in `window` (all of them when None). A few percent of the
    deals, read through ix_deal_status_due_date alone."""
    defaulted = Deal.status == DealStatus.defaulted
    conditions = [Deal.status.in_(ARREARS), *_debtor_is(Deal.debtor_id, debtor_id)]
    conditions += _currency_is(Deal.currency, currency)
    if window is not None:
        # A deal falls overdue the day after its due date: that day lies in the window.
        day_before = dt.timedelta(days=1)
        conditions += _days(
            Deal.due_date,
            None if window.first_day is None else window.first_day - day_before,
            None if window.last_day is None else window.last_day - day_before,
        )
    stmt = (
        select(
            Deal.debtor_id,
            Deal.currency,
            func.count(),
            func.sum(OWED),
            func.count().filter(defaulted),
            func.sum(OWED).filter(defaulted),
            func.min(Deal.due_date),
        )
        .where(*conditions)
        .group_by(Deal.debtor_id, Deal.currency)
    )
    return [
        Arrears(debtor, cur, int(n), int(owed or 0), int(dn), int(downed or 0), as_date(oldest))
        for debtor, cur, n, owed, dn, downed, oldest in (await session.execute(stmt)).all()
    ]


async def try_lock_arrears_refresh(session: AsyncSession) -> bool:
    """One refresh at a time: PostgreSQL takes a transaction-scoped advisory lock (False
    when another transaction holds it: that one is doing the same work); on SQLite every
    transaction already holds the database's write lock (BEGIN IMMEDIATE)."""
    if _dialect(session) != "postgresql":
        return True
    stmt = text("SELECT pg_try_advisory_xact_lock(:key)").bindparams(key=ARREARS_REFRESH_LOCK_KEY)
    return bool((await session.execute(stmt)).scalar_one())


async def serious_members(session: AsyncSession) -> dict[tuple[uuid.UUID, str], SeriousArrearsMember]:
    rows = (await session.execute(select(SeriousArrearsMember))).scalars()
    return {(row.debtor_id, row.currency): row for row in rows}


async def listed_since(
    session: AsyncSession, currency: str, debtor_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dt.datetime]:
    if not debtor_ids:
        return {}
    stmt = select(SeriousArrearsMember.debtor_id, SeriousArrearsMember.listed_at).where(
        SeriousArrearsMember.currency == currency,
        SeriousArrearsMember.debtor_id.in_(list(debtor_ids)),
    )
    return dict((await session.execute(stmt)).all())


# ------------------------------------------------------------------ a bank's record


@dataclass(frozen=True)
class FundingRecord:
    won_count: int
    """Deals the bank won (awarded to it) in the window."""
    funded_count: int
    missed_count: int
    """Deals cancelled because the bank missed the funding deadline (the only way a
    deal is cancelled)."""


async def funding_record(session: AsyncSession, bank_id: uuid.UUID, window: Window) -> FundingRecord:
    stmt = select(
        func.count(),
        func.count().filter(Deal.funded_at.is_not(None)),
        func.count().filter(Deal.status == DealStatus.cancelled),
    ).where(
        Deal.bank_id == bank_id,
        Deal.currency == window.currency,
        *_between(Deal.created_at, window.start, window.end),
    )
    won, funded, missed = (await session.execute(stmt)).one()
    return FundingRecord(int(won), int(funded), int(missed))
