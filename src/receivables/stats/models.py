"""The statistics' own tables: the serious-arrears list as last published, and the
summary tables the statistics are read from.

The serious-arrears list itself is a pure function of the deals (who owes how much, how late), so it
needs no table to be *answered*. This table exists for the events: joining or leaving
the list is an audited event, and nothing in the deal lifecycle fires when a debtor
crosses a threshold (a repayment lowers the amount, a day passing raises the days).
`stats.service.refresh_serious_arrears` compares the current list with these rows and
writes `arrears.listed` / `arrears.delisted` for the difference.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from receivables.kit.models import instant_field, minor_field


class SeriousArrearsMember(SQLModel, table=True):
    __tablename__ = "serious_arrears_member"

    debtor_id: uuid.UUID = Field(foreign_key="organization.id", primary_key=True)
    currency: str = Field(max_length=3, primary_key=True)
    """Thresholds are amounts, so membership is per currency the debtor owes in."""
    listed_at: dt.datetime = instant_field()
    overdue_amount_minor: int = minor_field()
    """What the debtor owed overdue in `currency` when it was listed."""
    max_days_overdue: int
    """Days past due of its oldest arrear when it was listed."""


# ------------------------------------------------------------------ summary tables
#
# At a province's scale (a million receivables) no statistic can afford to aggregate the
# base tables at request time. These tables hold the aggregates, at the grain the
# requests filter on (UTC day, currency), and `stats.summaries.refresh` keeps them
# current: it reads the audit trail after its watermark (every state change of a
# receivable or a deal writes an audit row, sealed in commit order), and recomputes
# from the base tables only the rows the changed objects belong to. Rows are
# recomputed, never adjusted by deltas, so a refresh is idempotent.


class StatsReceivableDay(SQLModel, table=True):
    """Receivables first submitted on `day` (UTC), by their current status."""

    __tablename__ = "stats_receivable_day"

    currency: str = Field(max_length=3, primary_key=True)
    day: dt.date = Field(primary_key=True)
    status: str = Field(max_length=16, primary_key=True)
    receivables: int


class StatsDealDay(SQLModel, table=True):
    """Deals funded on `day` (UTC), split by whether the seller is an SME by size."""

    __tablename__ = "stats_deal_day"

    currency: str = Field(max_length=3, primary_key=True)
    day: dt.date = Field(primary_key=True)
    sme: bool = Field(primary_key=True)
    """The seller's size class is micro, small or medium."""
    deals: int
    principal_minor: int = minor_field()
    face_value_minor: int = minor_field()
    owed_minor: int = minor_field()
    """Still owed (F − repaid) on those not settled."""
    overdue_owed_minor: int = minor_field()
    defaulted_owed_minor: int = minor_field()


class StatsRateMonth(SQLModel, table=True):
    """Deals funded in `month` ("YYYY-MM", UTC) per discount rate: the average and
    median rates follow exactly from it. A month, not a day: a day per rate would be
    a quarter of a million rows at a million receivables."""

    __tablename__ = "stats_rate_month"

    currency: str = Field(max_length=3, primary_key=True)
    month: str = Field(max_length=7, primary_key=True)
    rate_ppm: int = Field(primary_key=True)
    deals: int
    principal_minor: int = minor_field()


class StatsDebtor(SQLModel, table=True):
    """One core enterprise's whole record as a debtor in one currency (no date range)."""

    __tablename__ = "stats_debtor"

    currency: str = Field(max_length=3, primary_key=True)
    debtor_id: uuid.UUID = Field(foreign_key="organization.id", primary_key=True)
    submitted: int
    confirmed: int
    disputed: int
    expired: int
    median_confirmation_seconds: float | None = None
    p90_confirmation_seconds: float | None = None
    financed: int
    suppliers_financed: int
    financed_minor: int = minor_field()
    settled: int
    on_time: int
    """Settled on or before the due date."""
    arrears: int
    """Deals overdue or defaulted."""
    arrears_owed_minor: int = minor_field()


class StatsSectorDay(SQLModel, table=True):
    """Deals that fell overdue on `day` (the day after their due date; in arrears now
    or settled late), by the debtor's sector: the arrears-clearing report."""

    __tablename__ = "stats_sector_day"

    currency: str = Field(max_length=3, primary_key=True)
    day: dt.date = Field(primary_key=True)
    sector: str = Field(max_length=16, primary_key=True)
    arrears: int
    owed_at_fall_minor: int = minor_field()
    """Owed on them the day they fell overdue."""
    repaid_since_minor: int = minor_field()
    """Repaid on them after their due date (from the ledger)."""
    outstanding_minor: int = minor_field()
    cleared: int
    """Of them, settled since."""


class StatsWatermark(SQLModel, table=True):
    """How far the summary tables have read the audit trail."""

    __tablename__ = "stats_watermark"

    id: int = Field(default=1, primary_key=True)
    chain_index: int = Field(sa_type=BigInteger)
    """Every audit row up to this chain index is reflected in the summaries."""
    rebuilt_at: dt.datetime = instant_field()
    refreshed_at: dt.datetime = instant_field()
