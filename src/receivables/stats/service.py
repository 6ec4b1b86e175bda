"""Statistics: the figures regulators, operators and banks read, assembled from the
aggregates in queries.py (over the summary tables summaries.py keeps, brought up to
date at the start of every request) with the arithmetic in figures.py.

The worker's two jobs are here, each `(session, *, clock, settings) -> int` in the
job's own transaction: `refresh_summaries` and `refresh_serious_arrears`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.config import Settings
from receivables.kit import money
from receivables.kit.clock import Clock
from receivables.kit.errors import NotFound
from receivables.stats import figures, paging, queries, serious, summaries
from receivables.stats.models import StatsDebtor
from receivables.stats.queries import Window
from receivables.stats.schemas import (
    ArrearsPage,
    ArrearsRow,
    CoreEnterprisePage,
    CoreEnterpriseRow,
    MonthFigures,
    OrganizationProfile,
    Overview,
    SectorArrearsPage,
    SectorArrearsRow,
    Thresholds,
)


def _scope(window: Window, clock: Clock) -> dict[str, Any]:
    return {
        "as_of": clock.now(),
        "currency": window.currency,
        "from_": window.first_day,
        "to": window.last_day,
    }


# ------------------------------------------------------------------ overview


async def overview(session: AsyncSession, window: Window, *, clock: Clock) -> Overview:
    """The platform's figures over the window (GET /stats/overview), from the summary
    tables brought up to date first."""
    await summaries.refresh(session, clock=clock)
    totals = await queries.summary_financed(session, window)
    histogram = await _rate_histogram(session, window)
    median = figures.percentile([(r, n) for r, n, _p in histogram], figures.MEDIAN)
    return Overview(
        **_scope(window, clock),
        organizations_by_kind=await queries.organizations_by_kind(session, window),
        receivables_by_status=await queries.summary_statuses(session, window),
        financed_count=totals.count,
        financed_amount=figures.amount(totals.principal_minor),
        financed_face_value=figures.amount(totals.face_value_minor),
        sme_financed_count=totals.sme_count,
        sme_financed_amount=figures.amount(totals.sme_principal_minor),
        sme_share_count=figures.share(totals.sme_count, totals.count),
        sme_share_amount=figures.share(totals.sme_principal_minor, totals.principal_minor),
        average_discount_rate=figures.rate(figures.weighted_average(histogram)),
        median_discount_rate=figures.rate(median),
        outstanding_amount=figures.amount(totals.outstanding_minor),
        overdue_amount=figures.amount(totals.overdue_minor),
        defaulted_amount=figures.amount(totals.defaulted_minor),
        monthly=await _monthly(session, window),
    )


async def _rate_histogram(session: AsyncSession, window: Window) -> list[tuple[int, int, int]]:
    """(rate, deals, Σ P) over the window: whole months from the monthly summary, the
    days around them from the deals themselves."""
    cover = figures.month_cover(window.first_day, window.last_day)
    parts = []
    if cover.whole_months:
        parts.append(await queries.summary_rates(
            session, window.currency, cover.first_month, cover.last_month
        ))
    for first, after in cover.edges:
        parts.append(await queries.rate_histogram(
            session, window.currency, queries.midnight(first), queries.midnight(after)
        ))
    merged: dict[int, tuple[int, int]] = {}
    for part in parts:
        for rate_ppm, n, principal in part:
            seen_n, seen_principal = merged.get(rate_ppm, (0, 0))
            merged[rate_ppm] = (seen_n + n, seen_principal + principal)
    return [(rate_ppm, n, p) for rate_ppm, (n, p) in sorted(merged.items())]


async def _monthly(session: AsyncSession, window: Window) -> list[MonthFigures]:
    submitted, financed = await queries.summary_months(session, window)
    active = sorted(set(submitted) | set(financed))
    if not active:
        return []
    series = []
    for month in figures.months_between(active[0], active[-1]):
        count, principal, sme_count, sme_principal = financed.get(month, (0, 0, 0, 0))
        series.append(MonthFigures(
            month=month, submitted_count=submitted.get(month, 0), financed_count=count,
            financed_amount=figures.amount(principal), sme_financed_count=sme_count,
            sme_financed_amount=figures.amount(sme_principal),
        ))
    return series


# ------------------------------------------------------------------ core enterprises


SORTS: dict[str, tuple[Callable[[CoreEnterpriseRow], Any], str]] = {
    "median_confirmation_hours": (lambda r: r.median_confirmation_hours, "desc"),
    "p90_confirmation_hours": (lambda r: r.p90_confirmation_hours, "desc"),
    "confirmation_rate": (lambda r: r.confirmation_rate, "asc"),
    "on_time_rate": (lambda r: r.on_time_rate, "asc"),
    "overdue_amount": (lambda r: money.parse_amount(r.overdue_amount), "desc"),
    "financed_amount": (lambda r: money.parse_amount(r.financed_amount), "desc"),
    "suppliers_financed": (lambda r: r.suppliers_financed, "desc"),
    "submitted": (lambda r: r.submitted, "desc"),
    "name": (lambda r: r.name, "asc"),
}
"""`?sort=` → (the row's key, its default order): by default the worst come first —
the slowest confirmers, the lowest rates, the largest amounts owed."""
SORT_DEFAULT = "median_confirmation_hours"


def sort_rows(rows: list[CoreEnterpriseRow], sort: str, order: str) -> list[CoreEnterpriseRow]:
    """Rows with a value first, in `order`; rows without one (nothing to measure) last;
    ties by name then id, so pages are stable."""
    key, _default = SORTS[sort]
    measured = [r for r in rows if key(r) is not None]
    unmeasured = [r for r in rows if key(r) is None]
    tie = lambda r: (r.name, str(r.debtor_id))
    measured.sort(key=tie)
    measured.sort(key=key, reverse=order == "desc")  # stable: ties keep name order
    return measured + sorted(unmeasured, key=tie)


@dataclass(frozen=True)
class DebtorRecord:
    """A debtor's figures before formatting, from the summary or the base tables."""

    confirmation: queries.ConfirmationRecord
    repayment: queries.RepaymentRecord
    past_due_count: int
    """Deals still `disbursed` after their due date: they came due too."""


def _from_summary(row: StatsDebtor | None, past_due_count: int) -> DebtorRecord:
    if row is None:
        return DebtorRecord(queries.EMPTY_CONFIRMATIONS, queries.EMPTY_REPAYMENTS, past_due_count)
    return DebtorRecord(
        queries.ConfirmationRecord(
            row.submitted, row.confirmed, row.disputed, row.expired,
            row.median_confirmation_seconds, row.p90_confirmation_seconds,
        ),
        queries.RepaymentRecord(
            row.financed, row.suppliers_financed, row.financed_minor, row.settled, row.on_time,
            row.arrears, row.arrears_owed_minor,
        ),
        past_due_count,
    )


async def debtor_records(
    session: AsyncSession, window: Window, *, clock: Clock, debtor_id: uuid.UUID | None = None
) -> dict[uuid.UUID, DebtorRecord]:
    """Each debtor's record over the window: without a date range from the summary
    table; with one, aggregated from the receivables and deals in the range."""
    past_due = await queries.past_due_counts(
        session, currency=window.currency, today=clock.today(), start=window.start,
        end=window.end, debtor_id=debtor_id,
    )
    if not window.ranged:
        rows = await queries.summary_debtors(session, window.currency, debtor_id=debtor_id)
        keys = rows.keys() | past_due.keys()
        return {key: _from_summary(rows.get(key), past_due.get(key, 0)) for key in keys}
    scope = {"currency": window.currency, "start": window.start, "end": window.end,
             "debtor_id": debtor_id}
    confirmations = await queries.confirmation_records(session, **scope)
    repayments = await queries.repayment_records(session, **scope)
    keys = {d for _c, d in confirmations.keys() | repayments.keys()} | past_due.keys()
    return {
        key: DebtorRecord(
            confirmations.get((window.currency, key), queries.EMPTY_CONFIRMATIONS),
            repayments.get((window.currency, key), queries.EMPTY_REPAYMENTS),
            past_due.get(key, 0),
        )
        for key in keys
    }


def _core_row(party: queries.Party, record: DebtorRecord | None) -> CoreEnterpriseRow:
    record = record or _from_summary(None, 0)
    c, r = record.confirmation, record.repayment
    due_count = r.settled_count + r.overdue_count + record.past_due_count
    return CoreEnterpriseRow(
        debtor_id=party.id, name=party.name, sector=party.sector, submitted=c.submitted,
        confirmed=c.confirmed, disputed=c.disputed, expired=c.expired,
        confirmation_rate=figures.share(c.confirmed, c.confirmed + c.disputed + c.expired),
        median_confirmation_hours=figures.hours(c.median_seconds),
        p90_confirmation_hours=figures.hours(c.p90_seconds),
        suppliers_financed=r.suppliers_financed, financed_count=r.financed_count,
        financed_amount=figures.amount(r.financed_minor), due_count=due_count,
        on_time_count=r.on_time_count, on_time_rate=figures.share(r.on_time_count, due_count),
        overdue_count=r.overdue_count, overdue_amount=figures.amount(r.overdue_minor),
    )


async def core_enterprises(
    session: AsyncSession, window: Window, *, clock: Clock, sort: str, order: str | None,
    page: paging.Slice,
) -> CoreEnterprisePage:
    """Every core enterprise's track record over the window (GET /stats/core-enterprises),
    sorted (the database aggregates; the few hundred rows are sorted here)."""
    await summaries.refresh(session, clock=clock)
    records = await debtor_records(session, window, clock=clock)
    rows = [_core_row(party, records.get(party.id)) for party in await queries.core_enterprises(session)]
    order = order or SORTS[sort][1]
    items, next_offset = paging.page_of(sort_rows(rows, sort, order), page)
    return CoreEnterprisePage(
        **_scope(window, clock), sort=sort, order=order, items=items,
        next_cursor=paging.encode_offset(next_offset),
    )


# ------------------------------------------------------------------ arrears


async def refresh_summaries(session: AsyncSession, *, clock: Clock, settings: Settings) -> int:
    """Bring the statistics' summary tables up to date with every change committed so
    far (the first run builds them). Returns how many audit rows it read, at most
    summaries.REFRESH_BATCH_SIZE_MAX. The caller owns the transaction. For the worker;
    every statistics request also runs it first."""
    return await summaries.refresh(session, clock=clock)


async def refresh_serious_arrears(session: AsyncSession, *, clock: Clock, settings: Settings) -> int:
    """Bring the serious-arrears list up to date with the deals, in every currency:
    each debtor that joined it gets an `arrears.listed` audit event, each that left it
    `arrears.delisted` (actor: the platform; recipient: the debtor). Returns how many
    debtors joined or left, at most serious.REFRESH_BATCH_SIZE_MAX. The caller owns the
    transaction. For the worker; GET /stats/arrears also runs it first."""
    return await serious.refresh(session, clock=clock, settings=settings)


async def arrears(
    session: AsyncSession, window: Window, *, clock: Clock, settings: Settings,
    serious_only: bool, page: paging.Slice,
) -> ArrearsPage:
    """Overdue receivables' deals grouped by debtor, largest amount first (GET
    /stats/arrears). The list's membership is refreshed first, so its events are
    written no later than the first time anyone looks."""
    await refresh_serious_arrears(session, clock=clock, settings=settings)
    today = clock.today()
    rows = await queries.arrears(
        session, currency=window.currency, window=window if window.ranged else None
    )
    listed = await serious.serious_now(
        session, today=today, settings=settings, currency=window.currency
    )
    if serious_only:
        rows = [row for row in rows if (row.debtor_id, row.currency) in listed]
    rows.sort(key=lambda r: (-r.overdue_minor, r.oldest_due_date, str(r.debtor_id)))
    chosen, next_offset = paging.page_of(rows, page)
    ids = [row.debtor_id for row in chosen]
    named = await queries.parties(session, ids)
    since = await queries.listed_since(session, window.currency, ids)
    items = [
        ArrearsRow(
            debtor_id=row.debtor_id, name=named[row.debtor_id].name,
            sector=named[row.debtor_id].sector, overdue_count=row.overdue_count,
            overdue_amount=figures.amount(row.overdue_minor), defaulted_count=row.defaulted_count,
            defaulted_amount=figures.amount(row.defaulted_minor),
            oldest_due_date=row.oldest_due_date, max_days_overdue=serious.days_overdue(row, today),
            serious=(row.debtor_id, row.currency) in listed, listed_at=since.get(row.debtor_id),
        )
        for row in chosen
    ]
    thresholds = Thresholds(
        amount=figures.amount(settings.serious_arrears_amount_minor),
        days=settings.serious_arrears_days,
    )
    return ArrearsPage(
        **_scope(window, clock), thresholds=thresholds, items=items,
        next_cursor=paging.encode_offset(next_offset),
    )


async def arrears_by_sector(
    session: AsyncSession, window: Window, *, clock: Clock, page: paging.Slice
) -> SectorArrearsPage:
    """Arrears that arose in the window by the debtor's sector, and how much of them has
    been cleared (GET /stats/arrears?group_by=sector): the regulators' campaigns."""
    await summaries.refresh(session, clock=clock)
    rows = await queries.summary_sectors(session, window)
    chosen, next_offset = paging.page_of(rows, page)
    items = [
        SectorArrearsRow(
            sector=row.sector, overdue_count=row.overdue_count,
            overdue_amount=figures.amount(row.overdue_minor),
            repaid_amount=figures.amount(row.repaid_minor),
            outstanding_amount=figures.amount(row.outstanding_minor),
            cleared_count=row.cleared_count,
            cleared_ratio=figures.share(row.repaid_minor, row.overdue_minor),
        )
        for row in chosen
    ]
    return SectorArrearsPage(**_scope(window, clock), items=items, next_cursor=paging.encode_offset(next_offset))


# ------------------------------------------------------------------ profile


async def profile(
    session: AsyncSession, actor: Principal, organization_id: uuid.UUID, window: Window, *,
    clock: Clock, settings: Settings,
) -> OrganizationProfile:
    """An organization's track record (GET /organizations/{id}/profile): a core
    enterprise's as a debtor; a bank's funding record for itself and supervisors."""
    party = await queries.organization(session, organization_id)
    if party is None:
        raise NotFound("no such organization")
    await summaries.refresh(session, clock=clock)
    found = OrganizationProfile(
        **_scope(window, clock), organization_id=party.id, name=party.name, kind=party.kind,
        size=party.size, sector=party.sector,
    )
    if party.kind == Role.core:
        found = found.model_copy(update=await _debtor_figures(
            session, party.id, window, clock=clock, settings=settings
        ))
    if party.kind == Role.bank and (actor.sees_everything or actor.organization_id == party.id):
        record = await queries.funding_record(session, party.id, window)
        found = found.model_copy(update={
            "won_count": record.won_count, "funded_count": record.funded_count,
            "missed_fundings": record.missed_count,
            "missed_funding_rate": figures.share(
                record.missed_count, record.funded_count + record.missed_count
            ),
        })
    return found


async def _debtor_figures(
    session: AsyncSession, debtor_id: uuid.UUID, window: Window, *, clock: Clock,
    settings: Settings,
) -> dict[str, Any]:
    """The debtor's row of GET /stats/core-enterprises over the window, plus its
    arrears today (whatever the window) and whether it is on the serious list."""
    today = clock.today()
    records = await debtor_records(session, window, clock=clock, debtor_id=debtor_id)
    row = _core_row(queries.Party(debtor_id, "", "core", "", ""), records.get(debtor_id))
    owed = await queries.arrears(session, currency=window.currency, debtor_id=debtor_id)
    current = owed[0] if owed else None
    return {
        "submitted_count": row.submitted, "confirmed_count": row.confirmed,
        "disputed_count": row.disputed, "expired_count": row.expired,
        "confirmation_rate": row.confirmation_rate,
        "median_confirmation_hours": row.median_confirmation_hours,
        "p90_confirmation_hours": row.p90_confirmation_hours,
        "suppliers_financed": row.suppliers_financed, "financed_count": row.financed_count,
        "financed_amount": row.financed_amount, "due_count": row.due_count,
        "on_time_count": row.on_time_count, "on_time_rate": row.on_time_rate,
        "overdue_count": current.overdue_count if current else 0,
        "overdue_amount": figures.amount(current.overdue_minor if current else 0),
        "defaulted_amount": figures.amount(current.defaulted_minor if current else 0),
        "max_days_overdue": serious.days_overdue(current, today) if current else 0,
        "serious_arrears": bool(current and serious.is_serious(current, today=today, settings=settings)),
    }
