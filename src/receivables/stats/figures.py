"""Pure arithmetic on the aggregates the database returns: shares, hours, rates and
percentiles of small histograms. No I/O, so each rule is unit-tested on its own.

Output conventions (README "Statistics"): money is a decimal string (kit.money), rates
are annual decimal strings (kit.money.format_rate), shares and ratios are JSON numbers
from 0 to 1 rounded half-up to 4 places, hours are JSON numbers rounded half-up to 2
places; a figure whose denominator is empty is null, never 0 (0 would be a claim).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from receivables.kit import money
from receivables.kit.invariants import invariant

SHARE_QUANTUM = Decimal("0.0001")
"""Shares and ratios: 4 decimal places."""
HOURS_QUANTUM = Decimal("0.01")
"""Hours: 2 decimal places (36 seconds)."""
SECONDS_PER_HOUR = 3600

MEDIAN = Fraction(1, 2)
P90 = Fraction(9, 10)


def share(part: int, whole: int) -> float | None:
    """part / whole rounded half-up to 4 places; null when there is no whole."""
    if whole == 0:
        return None
    exact = Decimal(part) / Decimal(whole)
    return float(exact.quantize(SHARE_QUANTUM, rounding=ROUND_HALF_UP))


def hours(seconds: float | None) -> float | None:
    """A duration in seconds as hours, rounded half-up to 2 places."""
    if seconds is None:
        return None
    exact = Decimal(repr(float(seconds))) / SECONDS_PER_HOUR
    return float(exact.quantize(HOURS_QUANTUM, rounding=ROUND_HALF_UP))


def rate(rate_ppm: Fraction | float | None) -> str | None:
    """A (possibly fractional) ppm rate as the API's rate string, rounded half-up to
    the ppm first."""
    if rate_ppm is None:
        return None
    exact = Fraction(rate_ppm) if not isinstance(rate_ppm, float) else Fraction(repr(rate_ppm))
    return money.format_rate(math.floor(exact + Fraction(1, 2)))


def amount(amount_minor: int | None) -> str:
    """Σ of no rows is NULL in SQL; as money it is zero."""
    return money.format_amount(int(amount_minor or 0))


def weighted_average(histogram: Iterable[tuple[int, int, int]]) -> Fraction | None:
    """Σ(r × P) / Σ P over (rate_ppm, count, principal_minor) rows, exactly: the
    database groups by rate, so no product of two large integers is ever summed there
    (it would overflow SQLite's 64-bit integers at a million deals)."""
    weighted, total = 0, 0
    for rate_ppm, _count, principal_minor in histogram:
        weighted += int(rate_ppm) * int(principal_minor)
        total += int(principal_minor)
    return Fraction(weighted, total) if total else None


def percentile(histogram: Sequence[tuple[int, int]], p: Fraction) -> Fraction | None:
    """PostgreSQL's percentile_cont(p) over a sorted (value, count) histogram, exactly:
    the value at position (n − 1)·p, interpolated linearly between its neighbours."""
    n = sum(count for _value, count in histogram)
    if n == 0:
        return None
    position = (n - 1) * p
    low_index = math.floor(position)
    high_index = math.ceil(position)
    low, high = _value_at(histogram, low_index), _value_at(histogram, high_index)
    return low + (high - low) * (position - low_index)


def _value_at(histogram: Sequence[tuple[int, int]], index: int) -> Fraction:
    seen = 0
    for value, count in histogram:
        seen += count
        if index < seen:
            return Fraction(value)
    raise IndexError(index)


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month_start(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class MonthCover:
    """A range of days split into whole calendar months and the days around them."""

    whole_months: bool
    """Whether at least one whole month lies in the range."""
    first_month: str | None
    """The first whole month ("YYYY-MM"); None: unbounded."""
    last_month: str | None
    edges: tuple[tuple[dt.date, dt.date], ...]
    """[first day, day after the last) of the days outside the whole months."""


def month_cover(first_day: dt.date | None, last_day: dt.date | None) -> MonthCover:
    """Split [first_day, last_day] (either end open when None) for data kept per month:
    whole months come from the monthly summary, the edge days from the base table."""
    one_day = dt.timedelta(days=1)
    start = None if first_day is None else (
        first_day if first_day.day == 1 else next_month_start(first_day)
    )
    end = None if last_day is None else (
        last_day + one_day if (last_day + one_day).day == 1 else month_start(last_day)
    )
    if start is not None and end is not None and start >= end:
        invariant(first_day is not None and last_day is not None, "both ends were given")
        return MonthCover(False, None, None, ((first_day, last_day + one_day),))  # type: ignore[operator]
    edges = []
    if first_day is not None and start != first_day:
        edges.append((first_day, start))
    if last_day is not None and end != last_day + one_day:
        edges.append((end, last_day + one_day))
    return MonthCover(
        True,
        None if start is None else month_key(start),
        None if end is None else month_key(end - one_day),
        tuple(edges),
    )


def months_between(first: str, last: str) -> list[str]:
    """Every "YYYY-MM" from `first` to `last` inclusive, so a series has no holes."""
    year, month = int(first[:4]), int(first[5:7])
    found: list[str] = []
    while f"{year:04d}-{month:02d}" <= last:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found
