"""Goal: prove the money module exact to the fen.

It must reproduce the published worked examples in DESIGN.md, round half-up
exactly where rounding decides, parse and format strictly and losslessly, and
keep the money model's identities (P − D − fee == advance, the repayment
waterfall never pays the bank more than P) for any inputs.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receivables.kit.invariants import InvariantViolation, invariant
from receivables.kit.money import (
    AMOUNT_MINOR_MAX,
    DAY_COUNT_BASIS,
    PPM,
    DealAmounts,
    RepaymentSplit,
    day_count_basis,
    days_between,
    deal_amounts,
    format_amount,
    format_rate,
    parse_amount,
    parse_rate,
    parse_ratio,
    remaining_due,
    round_half_up_div,
    split_repayment,
)

VALUE_DATE = date(2025, 3, 3)


def full_advance(face: str, rate: str, days: int, basis: int = 360) -> DealAmounts:
    """Deal amounts for a full advance without fee, as in the published examples."""
    return deal_amounts(
        face_value_minor=parse_amount(face),
        advance_ratio_ppm=PPM,
        discount_rate_ppm=parse_rate(rate),
        fee_rate_ppm=0,
        value_date=VALUE_DATE,
        due_date=VALUE_DATE + timedelta(days=days),
        day_count_basis=basis,
    )


# ----------------------------------------------------------- published examples


@pytest.mark.parametrize(
    ("face", "rate", "days", "discount"),
    [
        ("1505500.00", "0.0180", 22, "1656.05"),
        ("3000000.00", "0.0390", 118, "38350.00"),
        ("1000.00", "0.0600", 20, "3.33"),
    ],
)
def test_design_rows_are_reproduced(face: str, rate: str, days: int, discount: str) -> None:
    amounts = full_advance(face, rate, days)
    assert amounts.days == days
    assert format_amount(amounts.discount_minor) == discount
    assert amounts.principal_minor == parse_amount(face)
    assert amounts.funding_minor == amounts.principal_minor - amounts.discount_minor
    assert amounts.advance_minor == amounts.funding_minor
    assert amounts.fee_minor == 0
    assert amounts.holdback_minor == 0


def test_design_row_one_in_full() -> None:
    amounts = full_advance("1505500.00", "0.0180", 22)
    assert amounts == DealAmounts(
        principal_minor=150_550_000,
        discount_minor=165_605,
        fee_minor=0,
        funding_minor=150_384_395,
        advance_minor=150_384_395,
        holdback_minor=0,
        days=22,
    )


# ------------------------------------------------------------------ rounding


def test_round_half_up_div_rounds_exact_half_up() -> None:
    assert round_half_up_div(5, 2) == 3  # banker's rounding would give 2
    assert round_half_up_div(25, 10) == 3
    assert round_half_up_div(15, 10) == 2
    assert round_half_up_div(14, 10) == 1
    assert round_half_up_div(16, 10) == 2
    assert round_half_up_div(0, 7) == 0
    assert round_half_up_div(7, 7) == 1


def test_round_half_up_div_is_exact_for_huge_numbers() -> None:
    # A float would lose the last digit here.
    assert round_half_up_div(10**30 + 5, 10) == 10**29 + 1
    assert round_half_up_div(10**30 + 4, 10) == 10**29


def test_round_half_up_div_rejects_programmer_errors() -> None:
    with pytest.raises(InvariantViolation):
        round_half_up_div(-1, 2)
    with pytest.raises(InvariantViolation):
        round_half_up_div(1, 0)
    with pytest.raises(InvariantViolation):
        round_half_up_div(1.0, 2)  # type: ignore[arg-type]


def test_principal_half_fen_goes_up() -> None:
    # F = 0.01 yuan, a = 0.5 -> P = 0.5 fen exactly -> 1 fen.
    amounts = deal_amounts(
        face_value_minor=1,
        advance_ratio_ppm=500_000,
        discount_rate_ppm=0,
        fee_rate_ppm=0,
        value_date=VALUE_DATE,
        due_date=VALUE_DATE,
    )
    assert amounts.principal_minor == 1
    assert amounts.holdback_minor == 0


def test_discount_half_fen_goes_up() -> None:
    # P = 100.00, r = 0.09, 1 day / 360: D = 10000 × 0.09 / 360 = 2.5 fen -> 3 fen.
    amounts = full_advance("100.00", "0.09", 1)
    assert amounts.discount_minor == 3
    # Just below the half: r = 0.089999 -> 2.4999... fen -> 2 fen.
    assert full_advance("100.00", "0.089999", 1).discount_minor == 2


def test_fee_half_fen_goes_up() -> None:
    # P = 1.00, f = 0.005 -> fee = 0.5 fen -> 1 fen.
    amounts = deal_amounts(
        face_value_minor=100,
        advance_ratio_ppm=PPM,
        discount_rate_ppm=0,
        fee_rate_ppm=5_000,
        value_date=VALUE_DATE,
        due_date=VALUE_DATE + timedelta(days=30),
    )
    assert amounts.fee_minor == 1
    assert amounts.advance_minor == 99


def test_partial_advance_with_fee() -> None:
    # F = 1,000,000.00, a = 0.9, r = 0.045, 90 days / 360, f = 0.001.
    amounts = deal_amounts(
        face_value_minor=parse_amount("1000000.00"),
        advance_ratio_ppm=parse_ratio("0.9"),
        discount_rate_ppm=parse_rate("0.0450"),
        fee_rate_ppm=parse_rate("0.001"),
        value_date=VALUE_DATE,
        due_date=VALUE_DATE + timedelta(days=90),
    )
    assert format_amount(amounts.principal_minor) == "900000.00"
    assert format_amount(amounts.discount_minor) == "10125.00"
    assert format_amount(amounts.fee_minor) == "900.00"
    assert format_amount(amounts.funding_minor) == "889875.00"
    assert format_amount(amounts.advance_minor) == "888975.00"
    assert format_amount(amounts.holdback_minor) == "100000.00"


def test_day_count_basis_changes_the_discount() -> None:
    # 1,000.00 at 6 % for 20 days: 3.33 on ACT/360, 3.29 on ACT/365.
    assert full_advance("1000.00", "0.06", 20, basis=365).discount_minor == 329


def test_discount_plus_fee_above_principal_is_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        full_advance("1000.00", "1", 361)
    # Exactly P is allowed: 360 days at 100 % consumes the whole principal.
    assert full_advance("1000.00", "1", 360).advance_minor == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"face_value_minor": 0},
        {"face_value_minor": -1},
        {"face_value_minor": AMOUNT_MINOR_MAX + 1},
        {"advance_ratio_ppm": 0},
        {"advance_ratio_ppm": PPM + 1},
        {"discount_rate_ppm": -1},
        {"discount_rate_ppm": PPM + 1},
        {"fee_rate_ppm": -1},
        {"fee_rate_ppm": PPM + 1},
        {"day_count_basis": 0},
        {"face_value_minor": 1, "advance_ratio_ppm": 1},  # P rounds to zero
    ],
)
def test_deal_amounts_rejects_out_of_range_inputs(overrides: dict[str, int]) -> None:
    arguments: dict[str, int] = {
        "face_value_minor": 100_000,
        "advance_ratio_ppm": PPM,
        "discount_rate_ppm": 45_000,
        "fee_rate_ppm": 0,
        "day_count_basis": 360,
    }
    arguments.update(overrides)
    with pytest.raises(ValueError):
        deal_amounts(value_date=VALUE_DATE, due_date=VALUE_DATE, **arguments)


def test_deal_amounts_refuses_floats() -> None:
    with pytest.raises(InvariantViolation):
        deal_amounts(
            face_value_minor=100.0,  # type: ignore[arg-type]
            advance_ratio_ppm=PPM,
            discount_rate_ppm=0,
            fee_rate_ppm=0,
            value_date=VALUE_DATE,
            due_date=VALUE_DATE,
        )


# ---------------------------------------------------------------------- days


def test_days_between_counts_first_not_last() -> None:
    assert days_between(date(2025, 1, 1), date(2025, 1, 2)) == 1
    assert days_between(date(2024, 2, 1), date(2024, 3, 1)) == 29  # leap year
    assert days_between(date(2025, 1, 1), date(2026, 1, 1)) == 365


def test_days_between_is_never_negative() -> None:
    assert days_between(date(2025, 1, 2), date(2025, 1, 2)) == 0
    assert days_between(date(2025, 1, 3), date(2025, 1, 2)) == 0


def test_day_count_basis_per_currency() -> None:
    assert day_count_basis("CNY") == 360
    assert day_count_basis("INR") == 365
    assert day_count_basis("gbp") == 365
    assert day_count_basis("XYZ") == 360
    assert dict(DAY_COUNT_BASIS)["JPY"] == 365
    with pytest.raises(TypeError):
        DAY_COUNT_BASIS["CNY"] = 365  # type: ignore[index]


# -------------------------------------------------------------- parse/format


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1000000.00", 100_000_000),
        ("12.5", 1250),
        ("7", 700),
        ("0", 0),
        ("0.05", 5),
        ("0.5", 50),
        ("1656.05", 165_605),
        ("007.10", 710),
        ("10000000000000.00", AMOUNT_MINOR_MAX),
    ],
)
def test_parse_amount_accepts(text: str, minor: int) -> None:
    assert parse_amount(text) == minor


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (" 1.00", "white space"),
        ("1.00 ", "white space"),
        ("1 000.00", "white space"),
        ("1.00\n", "white space"),
        ("1\u00a0000", "white space"),
        ("-1.00", "negative"),
        ("-0", "negative"),
        ("+1.00", "sign"),
        ("1e3", "exponent"),
        ("1E3", "exponent"),
        ("NaN", "decimal number"),
        ("nan", "decimal number"),
        ("Infinity", "decimal number"),
        ("inf", "decimal number"),
        ("1.005", "at most two decimal places"),
        ("0.001", "at most two decimal places"),
        ("1.", "decimal number"),
        (".5", "decimal number"),
        ("1,000.00", "decimal number"),
        ("1_000", "decimal number"),
        ("0x10", "decimal number"),
        ("１２", "decimal number"),  # full-width digits
        ("١٢", "decimal number"),  # Arabic-Indic digits
        ("1.2.3", "decimal number"),
        ("10000000000000.01", "must not exceed"),
        ("9" * 41, "too long"),
    ],
)
def test_parse_amount_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


@pytest.mark.parametrize("value", [None, 1, 1.5, b"1.00"])
def test_parse_amount_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="decimal string"):
        parse_amount(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("minor", "text"),
    [(165_605, "1656.05"), (5, "0.05"), (0, "0.00"), (-150, "-1.50"), (-5, "-0.05"), (100, "1.00")],
)
def test_format_amount(minor: int, text: str) -> None:
    assert format_amount(minor) == text


def test_format_amount_refuses_floats() -> None:
    with pytest.raises(InvariantViolation):
        format_amount(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "ppm"),
    [("0.0450", 45_000), ("0", 0), ("1", PPM), ("1.000000", PPM), ("0.045025", 45_025)],
)
def test_parse_rate(text: str, ppm: int) -> None:
    assert parse_rate(text) == ppm


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("0.0000001", "at most six decimal places"),
        ("1.000001", "must not exceed 1"),
        ("2", "must not exceed 1"),
        ("-0.01", "negative"),
        ("+0.01", "sign"),
        ("4.5e-2", "exponent"),
        (" 0.045", "white space"),
        ("NaN", "decimal number"),
        ("4.5%", "decimal number"),
        (".5", "decimal number"),
    ],
)
def test_parse_rate_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rate(text)


def test_parse_ratio() -> None:
    assert parse_ratio("0.9") == 900_000
    assert parse_ratio("1") == PPM
    assert parse_ratio("0.000001") == 1
    for bad, message in [("0", "greater than 0"), ("0.000000", "greater than 0"),
                         ("1.01", "must not exceed 1"), ("-0.5", "negative"),
                         ("0.0000001", "six decimal places")]:
        with pytest.raises(ValueError, match=message):
            parse_ratio(bad)


@pytest.mark.parametrize(
    ("ppm", "text"),
    [(45_000, "0.0450"), (45_025, "0.045025"), (0, "0.0000"), (PPM, "1.0000"), (1, "0.000001"),
     (18_000, "0.0180"), (100, "0.0001"), (150, "0.000150")],
)
def test_format_rate(ppm: int, text: str) -> None:
    assert format_rate(ppm) == text


# ---------------------------------------------------------------- repayment


def test_split_repayment_principal_first() -> None:
    assert split_repayment(amount_minor=300, principal_minor=900, bank_received_minor=0) == (
        RepaymentSplit(to_bank_minor=300, to_sme_minor=0)
    )
    assert split_repayment(amount_minor=700, principal_minor=900, bank_received_minor=300) == (
        RepaymentSplit(to_bank_minor=600, to_sme_minor=100)
    )
    assert split_repayment(amount_minor=50, principal_minor=900, bank_received_minor=900) == (
        RepaymentSplit(to_bank_minor=0, to_sme_minor=50)
    )


def test_split_repayment_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        split_repayment(amount_minor=0, principal_minor=900, bank_received_minor=0)
    with pytest.raises(ValueError):
        split_repayment(amount_minor=-1, principal_minor=900, bank_received_minor=0)
    with pytest.raises(InvariantViolation):
        split_repayment(amount_minor=1, principal_minor=900, bank_received_minor=901)
    with pytest.raises(InvariantViolation):
        split_repayment(amount_minor=1, principal_minor=900, bank_received_minor=-1)


def test_remaining_due() -> None:
    assert remaining_due(1000, 0) == 1000
    assert remaining_due(1000, 400) == 600
    assert remaining_due(1000, 1000) == 0
    with pytest.raises(InvariantViolation):
        remaining_due(1000, 1001)
    with pytest.raises(InvariantViolation):
        remaining_due(1000, -1)


def test_invariant_survives_without_assert() -> None:
    invariant(True, "never raised")
    with pytest.raises(InvariantViolation, match="boom"):
        invariant(False, "boom")
    assert not issubclass(InvariantViolation, ValueError)


# --------------------------------------------------------------- properties

faces = st.integers(min_value=1, max_value=AMOUNT_MINOR_MAX)
ratios = st.integers(min_value=1, max_value=PPM)
rates = st.integers(min_value=0, max_value=PPM)
fee_rates = st.integers(min_value=0, max_value=50_000)
day_counts = st.integers(min_value=0, max_value=400)
bases = st.sampled_from([360, 365])


@given(faces, ratios, rates, fee_rates, day_counts, bases)
def test_deal_identities_hold(
    face: int, ratio: int, rate: int, fee_rate: int, days: int, basis: int
) -> None:
    try:
        amounts = deal_amounts(
            face_value_minor=face,
            advance_ratio_ppm=ratio,
            discount_rate_ppm=rate,
            fee_rate_ppm=fee_rate,
            value_date=VALUE_DATE,
            due_date=VALUE_DATE + timedelta(days=days),
            day_count_basis=basis,
        )
    except ValueError:
        return  # absurd combination (P rounds to 0, or D + fee > P): refused, fine
    p, d, fee = amounts.principal_minor, amounts.discount_minor, amounts.fee_minor
    assert p - d - fee == amounts.advance_minor
    assert amounts.funding_minor == amounts.advance_minor + fee
    assert amounts.holdback_minor == face - p
    assert amounts.advance_minor + fee + d + amounts.holdback_minor == face
    assert 0 <= amounts.advance_minor <= amounts.funding_minor <= p <= face
    # Each rounding is the true value within half a fen.
    assert abs(2 * (p * PPM) - 2 * face * ratio) <= PPM
    assert abs(2 * d * PPM * basis - 2 * p * rate * days) <= PPM * basis


@st.composite
def repayment_plans(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    """A face value, a principal P <= F, and positive partial payments summing to F."""
    face = draw(st.integers(min_value=1, max_value=10**12))
    principal = draw(st.one_of(st.just(face), st.integers(min_value=1, max_value=face)))
    cuts = draw(
        st.lists(st.integers(min_value=1, max_value=max(1, face - 1)), max_size=20, unique=True)
    )
    bounds = [0, *sorted(c for c in cuts if c < face), face]
    return face, principal, [b - a for a, b in zip(bounds, bounds[1:])]


@given(repayment_plans())
def test_partial_repayments_follow_the_waterfall(plan: tuple[int, int, list[int]]) -> None:
    face, principal, payments = plan
    bank_received = sme_received = repaid = 0
    for amount in payments:
        assert 0 < amount <= remaining_due(face, repaid)
        split = split_repayment(
            amount_minor=amount, principal_minor=principal, bank_received_minor=bank_received
        )
        assert split.to_bank_minor + split.to_sme_minor == amount
        assert split.to_bank_minor >= 0 and split.to_sme_minor >= 0
        # Principal first: the SME gets nothing while the bank is short.
        assert split.to_sme_minor == 0 or bank_received + split.to_bank_minor == principal
        bank_received += split.to_bank_minor
        sme_received += split.to_sme_minor
        repaid += amount
        assert bank_received <= principal
    assert remaining_due(face, repaid) == 0
    assert bank_received == principal
    assert sme_received == face - principal


@given(st.integers(min_value=0, max_value=AMOUNT_MINOR_MAX))
def test_amount_round_trip(amount_minor: int) -> None:
    assert parse_amount(format_amount(amount_minor)) == amount_minor


@given(st.from_regex(r"(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?", fullmatch=True))
def test_amount_text_round_trip(text: str) -> None:
    formatted = format_amount(parse_amount(text))
    assert parse_amount(formatted) == parse_amount(text)
    whole, _, fraction = text.partition(".")
    assert formatted == f"{whole}.{fraction.ljust(2, '0')}"


@given(st.integers(min_value=-AMOUNT_MINOR_MAX, max_value=AMOUNT_MINOR_MAX))
def test_format_amount_always_two_places(amount_minor: int) -> None:
    text = format_amount(amount_minor)
    assert len(text.partition(".")[2]) == 2
    assert text.startswith("-") == (amount_minor < 0)
    assert format_amount(abs(amount_minor)) == text.removeprefix("-")


@given(rates)
def test_rate_round_trip(rate_ppm: int) -> None:
    assert parse_rate(format_rate(rate_ppm)) == rate_ppm


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=10**6))
def test_round_half_up_div_matches_definition(numerator: int, denominator: int) -> None:
    q = round_half_up_div(numerator, denominator)
    # q is the nearest integer, ties going up: n/d - 1/2 < q <= n/d + 1/2.
    assert 2 * numerator - denominator < 2 * q * denominator <= 2 * numerator + denominator
