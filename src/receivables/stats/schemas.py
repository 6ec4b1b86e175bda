"""Statistics bodies. Money is a decimal string ("1000000.00"), rates annual decimal
strings ("0.0450"), shares and ratios JSON numbers from 0 to 1 rounded to 4 places,
hours JSON numbers rounded to 2 places, days integers; a figure with an empty
denominator is null. The list bodies' `items` are also what `Accept: text/csv` answers,
one row per item, the columns in the order of the fields below."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field


class Scope(BaseModel):
    """What the figures cover: the currency and the range of UTC calendar days."""

    as_of: dt.datetime
    """The instant the figures were computed (snapshots such as amounts owed are as of
    this instant)."""
    currency: str
    from_: dt.date | None = Field(default=None, alias="from", serialization_alias="from")
    to: dt.date | None = None

    model_config = {"populate_by_name": True}


class MonthFigures(BaseModel):
    month: str = Field(examples=["2026-03"])
    """UTC calendar month "YYYY-MM"."""
    submitted_count: int
    """Receivables submitted in the month."""
    financed_count: int
    """Deals funded in the month."""
    financed_amount: str
    """Σ principal P of those deals."""
    sme_financed_count: int
    sme_financed_amount: str


class Overview(Scope):
    organizations_by_kind: dict[str, int]
    """Organizations onboarded by the end of the range, per kind."""
    receivables_by_status: dict[str, int]
    """Receivables submitted in the range, per current status."""
    financed_count: int
    """Deals funded in the range."""
    financed_amount: str
    """Σ principal P of the deals funded in the range."""
    financed_face_value: str
    """Σ face value F of the same deals."""
    sme_financed_count: int
    """Of them, deals whose seller's size class is micro, small or medium."""
    sme_financed_amount: str
    sme_share_count: float | None
    """sme_financed_count / financed_count."""
    sme_share_amount: float | None
    """sme_financed_amount / financed_amount (by principal P)."""
    average_discount_rate: str | None
    """Mean discount rate of the deals funded in the range, weighted by P."""
    median_discount_rate: str | None
    """Median discount rate of the same deals, one deal one vote."""
    outstanding_amount: str
    """Still owed (F − repaid) on those deals not yet paid in full, overdue and
    defaulted ones included."""
    overdue_amount: str
    """Of it, on deals `overdue`."""
    defaulted_amount: str
    """Of it, on deals `defaulted`."""
    monthly: list[MonthFigures]
    """One entry per UTC month from the first to the last month with activity."""


class CoreEnterpriseRow(BaseModel):
    debtor_id: uuid.UUID
    name: str
    sector: str
    submitted: int
    """Receivables submitted against it in the range (every one, whatever became of it)."""
    confirmed: int
    disputed: int
    """Receivables whose last answer from it was a dispute."""
    expired: int
    """Receivables it let lapse without an answer."""
    confirmation_rate: float | None
    """confirmed / (confirmed + disputed + expired)."""
    median_confirmation_hours: float | None
    p90_confirmation_hours: float | None
    suppliers_financed: int
    """Distinct suppliers financed on receivables it owes (deals funded in the range)."""
    financed_count: int
    financed_amount: str
    due_count: int
    """Deals funded in the range that came due (settled, or due date passed)."""
    on_time_count: int
    """Of them, deals repaid in full on or before their due date."""
    on_time_rate: float | None
    """on_time_count / due_count."""
    overdue_count: int
    overdue_amount: str
    """Still owed on its deals overdue or defaulted."""


class CoreEnterprisePage(Scope):
    sort: str
    order: Literal["asc", "desc"]
    items: list[CoreEnterpriseRow]
    next_cursor: str | None


class Thresholds(BaseModel):
    amount: str
    """RECEIVABLES_SERIOUS_ARREARS_AMOUNT: listed when the overdue amount reaches it."""
    days: int
    """RECEIVABLES_SERIOUS_ARREARS_DAYS: listed when the oldest arrear is this late."""


class ArrearsRow(BaseModel):
    debtor_id: uuid.UUID
    name: str
    sector: str
    overdue_count: int
    """Deals overdue or defaulted."""
    overdue_amount: str
    """Still owed on them (F − repaid)."""
    defaulted_count: int
    defaulted_amount: str
    oldest_due_date: dt.date
    max_days_overdue: int
    """Days since the due date of its oldest arrear."""
    serious: bool
    """On the serious-arrears list: its whole overdue amount in this currency reaches
    the amount threshold, or its oldest arrear reaches the days threshold."""
    listed_at: dt.datetime | None
    """When it joined the serious-arrears list (null when not on it)."""


class ArrearsPage(Scope):
    group_by: Literal["debtor"] = "debtor"
    thresholds: Thresholds
    items: list[ArrearsRow]
    next_cursor: str | None


class SectorArrearsRow(BaseModel):
    sector: str
    """The debtor's sector: government, state_owned, private or foreign."""
    overdue_count: int
    """Deals that fell overdue in the range (the day after their due date)."""
    overdue_amount: str
    """What was owed on them the day they fell overdue."""
    repaid_amount: str
    """Repaid on them since they fell overdue."""
    outstanding_amount: str
    """Still owed on them now."""
    cleared_count: int
    """Of them, deals since repaid in full."""
    cleared_ratio: float | None
    """repaid_amount / overdue_amount: the share of the arrears cleared."""


class SectorArrearsPage(Scope):
    group_by: Literal["sector"] = "sector"
    items: list[SectorArrearsRow]
    next_cursor: str | None


class OrganizationProfile(Scope):
    """An organization's track record on the platform. The debtor figures are filled
    for a core enterprise (null for other kinds); the funding figures for a bank, shown
    to that bank itself and to operators and regulators (null otherwise)."""

    organization_id: uuid.UUID
    name: str
    kind: str
    size: str
    sector: str
    submitted_count: int | None = None
    confirmed_count: int | None = None
    disputed_count: int | None = None
    expired_count: int | None = None
    confirmation_rate: float | None = None
    median_confirmation_hours: float | None = None
    p90_confirmation_hours: float | None = None
    suppliers_financed: int | None = None
    financed_count: int | None = None
    financed_amount: str | None = None
    due_count: int | None = None
    on_time_count: int | None = None
    on_time_rate: float | None = None
    overdue_count: int | None = None
    overdue_amount: str | None = None
    defaulted_amount: str | None = None
    max_days_overdue: int | None = None
    serious_arrears: bool | None = None
    """On the serious-arrears list in this currency."""
    won_count: int | None = None
    """Deals the bank won (by award instant in the range)."""
    funded_count: int | None = None
    missed_fundings: int | None = None
    """Deals it won but never funded: cancelled at the funding deadline."""
    missed_funding_rate: float | None = None
    """missed_fundings / won_count."""
