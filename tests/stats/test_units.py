"""Goal: the pure arithmetic and formatting behind the statistics — percentiles, shares,
hours, rates, month series, sorting, CSV cells and content negotiation — each checked
against known answers and, for percentiles, against a direct definition over random
samples. No database."""

from __future__ import annotations

import datetime as dt
import uuid
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from receivables.stats import csv, figures, paging, service
from receivables.stats.schemas import CoreEnterpriseRow


def direct_percentile(values: list[int], p: Fraction) -> Fraction:
    """percentile_cont as PostgreSQL documents it, over the expanded sorted list."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * p
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class TestPercentile:
    def test_known_answers(self):
        assert figures.percentile([(2, 1), (4, 1), (6, 1)], figures.MEDIAN) == 4
        assert figures.percentile([(2, 1), (4, 1), (6, 1)], figures.P90) == Fraction(28, 5)
        assert figures.percentile([(40, 1), (45, 1), (50, 1), (60, 1)], figures.MEDIAN) == Fraction(95, 2)
        assert figures.percentile([(7, 5)], figures.P90) == 7
        assert figures.percentile([], figures.MEDIAN) is None

    @given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=60),
           st.sampled_from([figures.MEDIAN, figures.P90, Fraction(0), Fraction(1)]))
    def test_histogram_equals_the_definition(self, values, p):
        histogram = sorted({v: values.count(v) for v in values}.items())
        assert figures.percentile(histogram, p) == direct_percentile(values, p)


class TestFormatting:
    def test_share_rounds_half_up_to_four_places(self):
        assert figures.share(2, 3) == 0.6667
        assert figures.share(1, 8) == 0.125
        assert figures.share(28, 92) == 0.3043
        assert figures.share(1, 20000) == 0.0001  # 0.00005 rounds up
        assert figures.share(0, 5) == 0.0
        assert figures.share(3, 0) is None

    def test_hours(self):
        assert figures.hours(7200) == 2.0
        assert figures.hours(20160.0) == 5.6
        assert figures.hours(18) == 0.01  # 0.005 h rounds up
        assert figures.hours(None) is None

    def test_rates_round_to_the_ppm(self):
        assert figures.rate(Fraction(95000, 2)) == "0.0475"
        assert figures.rate(Fraction(4035000, 92)) == "0.043859"
        assert figures.rate(45000.5) == "0.045001"
        assert figures.rate(None) is None

    def test_weighted_average_is_exact(self):
        histogram = [(40000, 1, 640_000_000), (45000, 1, 50_000_000), (50000, 2, 130_000_000),
                     (60000, 1, 100_000_000)]
        assert figures.weighted_average(histogram) == Fraction(4035000, 92)
        assert figures.weighted_average([]) is None

    def test_month_cover_splits_a_range_into_whole_months_and_edge_days(self):
        d = dt.date
        cover = figures.month_cover
        assert cover(None, None) == figures.MonthCover(True, None, None, ())
        assert cover(d(2026, 3, 1), d(2026, 3, 31)) == figures.MonthCover(True, "2026-03", "2026-03", ())
        assert cover(d(2026, 3, 15), None) == figures.MonthCover(
            True, "2026-04", None, ((d(2026, 3, 15), d(2026, 4, 1)),)
        )
        assert cover(None, d(2026, 3, 15)) == figures.MonthCover(
            True, None, "2026-02", ((d(2026, 3, 1), d(2026, 3, 16)),)
        )
        assert cover(d(2026, 3, 15), d(2026, 4, 10)) == figures.MonthCover(
            False, None, None, ((d(2026, 3, 15), d(2026, 4, 11)),)
        )
        assert cover(d(2026, 3, 15), d(2026, 5, 10)) == figures.MonthCover(
            True, "2026-04", "2026-04", ((d(2026, 3, 15), d(2026, 4, 1)), (d(2026, 5, 1), d(2026, 5, 11)))
        )
        assert cover(d(2026, 12, 15), d(2027, 1, 31)) == figures.MonthCover(
            True, "2027-01", "2027-01", ((d(2026, 12, 15), d(2027, 1, 1)),)
        )

    @given(st.dates(), st.integers(min_value=0, max_value=800))
    def test_month_cover_covers_every_day_once(self, first, length):
        last = first + dt.timedelta(days=length)
        if last.year > 9998:
            return
        cover = figures.month_cover(first, last)
        days = set()
        for start, after in cover.edges:
            days |= {start + dt.timedelta(days=i) for i in range((after - start).days)}
        if cover.whole_months:
            day = dt.date.fromisoformat(cover.first_month + "-01")
            while figures.month_key(day) <= cover.last_month:
                assert day not in days
                days.add(day)
                day += dt.timedelta(days=1)
        assert days == {first + dt.timedelta(days=i) for i in range(length + 1)}

    def test_months_between_has_no_holes(self):
        assert figures.months_between("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
        assert figures.months_between("2026-03", "2026-03") == ["2026-03"]


def row(name: str, hours: float | None, overdue: str = "0.00") -> CoreEnterpriseRow:
    return CoreEnterpriseRow(
        debtor_id=uuid.uuid4(), name=name, sector="private", submitted=0, confirmed=0,
        disputed=0, expired=0, confirmation_rate=None, median_confirmation_hours=hours,
        p90_confirmation_hours=None, suppliers_financed=0, financed_count=0,
        financed_amount="0.00", due_count=0, on_time_count=0, on_time_rate=None,
        overdue_count=0, overdue_amount=overdue,
    )


class TestSorting:
    def test_unmeasured_last_in_either_order_and_ties_by_name(self):
        rows = [row("d", None), row("c", 5.0), row("b", 9.0), row("a", 5.0)]
        desc = service.sort_rows(rows, "median_confirmation_hours", "desc")
        asc = service.sort_rows(rows, "median_confirmation_hours", "asc")
        assert [r.name for r in desc] == ["b", "a", "c", "d"]
        assert [r.name for r in asc] == ["a", "c", "b", "d"]

    def test_amounts_sort_as_numbers_not_text(self):
        rows = [row("a", None, "900.00"), row("b", None, "10000.00")]
        assert [r.name for r in service.sort_rows(rows, "overdue_amount", "desc")] == ["b", "a"]


class TestCsv:
    def test_cells(self):
        assert [csv.cell(v) for v in (None, True, False, 3, 0.6667, "1.00", "Acme")] == [
            "", "true", "false", "3", "0.6667", "1.00", "Acme"
        ]
        for dangerous in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
            assert csv.cell(dangerous) == "'" + dangerous

    def test_flatten_names_each_figure_by_its_path(self):
        body = {"a": 1, "by": {"x": 2}, "monthly": [{"month": "2026-03", "n": 3, "m": None}]}
        assert csv.flatten(body) == [
            ("a", 1), ("by.x", 2), ("monthly.2026-03.n", 3), ("monthly.2026-03.m", None)
        ]

    def test_offset_cursors(self):
        assert paging.decode_offset(paging.encode_offset(150)) == 150
        assert paging.decode_offset(None) == 0
        for foreign in ("150", "o", "o-1", "x12", "o1e3", "o" + "9" * 10):
            assert paging.decode_offset(foreign) is None
