"""All money arithmetic of the project, exact and in one place.

Why this module exists: amounts move between four parties through escrow and a
double-entry ledger, so a single fen lost to float rounding or to two modules
rounding differently breaks the "escrow ends at zero" and "ledger sums to zero"
guarantees. Hence:

- amounts are ``int`` minor units (fen), named ``*_minor``;
- rates and ratios are ``int`` parts per million, named ``*_ppm``
  (6 decimal places of an annual rate is finer than any quote a bank makes);
- every division rounds half-up to the fen with exact integer arithmetic;
- strings are parsed and formatted here only, without floats, so the API shows
  exactly what the ledger holds.

The pure functions here do no I/O and read no clock: the value date is always
passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from receivables.kit.invariants import invariant

__all__ = [
    "AMOUNT_MINOR_MAX",
    "DAY_COUNT_BASIS",
    "DEFAULT_DAY_COUNT_BASIS",
    "MINOR_PER_MAJOR",
    "PPM",
    "RATE_PPM_MAX",
    "DealAmounts",
    "RepaymentSplit",
    "day_count_basis",
    "days_between",
    "deal_amounts",
    "format_amount",
    "format_rate",
    "parse_amount",
    "parse_rate",
    "parse_ratio",
    "remaining_due",
    "round_half_up_div",
    "split_repayment",
]

MINOR_PER_MAJOR = 100
"""Fen per yuan (and cents per unit for the other supported currencies)."""

AMOUNT_DECIMAL_PLACES = 2
"""Decimal places of an amount string; matches ``MINOR_PER_MAJOR``."""

PPM = 1_000_000
"""Parts per million: the scale of every rate and ratio (1.0 == PPM)."""

RATE_DECIMAL_PLACES = 6
"""Decimal places of a rate string; matches ``PPM``."""

AMOUNT_MINOR_MAX = 10**15
"""Largest accepted amount (10 trillion yuan): rejects typos and keeps products small."""

RATE_PPM_MAX = PPM
"""Largest accepted annual rate, 100 % a year: anything above is a typo."""

DEFAULT_DAY_COUNT_BASIS = 360
"""ACT/360, the Chinese convention for discounting."""

DAY_COUNT_BASIS: Mapping[str, int] = MappingProxyType(
    {"CNY": 360, "USD": 360, "EUR": 360, "INR": 365, "GBP": 365, "HKD": 365, "JPY": 365}
)
"""Days in the interest year per currency (read-only so no caller changes it globally)."""

_MAX_NUMBER_TEXT_LENGTH = 40
"""Longest numeric string we look at; longer ones are rejected before conversion."""

_DECIMAL_TEXT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
"""Plain ASCII digits with an optional fraction; no sign, exponent or spaces."""

_PLACES_IN_WORDS = {2: "two", 6: "six"}


# --------------------------------------------------------------------------- parsing


def _require_int(value: int, name: str) -> None:
    """Fail loudly if a float or bool slipped into exact arithmetic (a bug)."""
    invariant(
        isinstance(value, int) and not isinstance(value, bool),
        f"{name} must be an int, got {type(value).__name__}",
    )


def _reject_malformed(text: object, what: str) -> str:
    """Return ``text`` if it is a plausible numeric string, else explain why not.

    Specific messages matter: they reach API clients verbatim.
    """
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a decimal string such as \"1234.50\"")
    if text == "":
        raise ValueError(f"{what} must not be empty")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"{what} must not contain white space")
    if text[0] == "-":
        raise ValueError(f"{what} must not be negative")
    if text[0] == "+":
        raise ValueError(f"{what} must not have a sign")
    if "e" in text or "E" in text:
        raise ValueError(f"{what} must not use exponent notation")
    if len(text) > _MAX_NUMBER_TEXT_LENGTH:
        raise ValueError(f"{what} is too long")
    return text


def _parse_scaled(text: str, places: int, what: str) -> int:
    """Parse a non-negative decimal string into an int scaled by ``10**places``.

    Done with string splitting, not floats or Decimal contexts, so it is exact
    and cannot be fooled by "NaN", "Infinity" or locale digits.
    """
    _reject_malformed(text, what)
    match = _DECIMAL_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"{what} is not a plain decimal number such as \"1234.50\"")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > places:
        words = _PLACES_IN_WORDS.get(places, str(places))
        raise ValueError(f"{what} must have at most {words} decimal places")
    return int(whole) * 10**places + int(fraction.ljust(places, "0"))


def parse_amount(text: str) -> int:
    """Parse an API amount string ("1000000.00", "12.5", "7") into minor units.

    Strict on purpose: a sign, an exponent, spaces or a third decimal place is
    almost always a client bug, and guessing would move real money.
    """
    amount_minor = _parse_scaled(text, AMOUNT_DECIMAL_PLACES, "amount")
    if amount_minor > AMOUNT_MINOR_MAX:
        raise ValueError(f"amount must not exceed {format_amount(AMOUNT_MINOR_MAX)}")
    return amount_minor


def parse_rate(text: str) -> int:
    """Parse an annual rate string ("0.0450") into ppm; 0 <= rate <= 1.

    Zero is allowed (an interest-free early payment is legitimate); above 100 %
    a year is rejected as a typo.
    """
    rate_ppm = _parse_scaled(text, RATE_DECIMAL_PLACES, "rate")
    if rate_ppm > RATE_PPM_MAX:
        raise ValueError("rate must not exceed 1 (100 % a year)")
    return rate_ppm


def parse_ratio(text: str) -> int:
    """Parse an advance ratio string ("0.9") into ppm; 0 < ratio <= 1.

    Zero is refused because a zero advance finances nothing.
    """
    ratio_ppm = _parse_scaled(text, RATE_DECIMAL_PLACES, "ratio")
    if ratio_ppm == 0:
        raise ValueError("ratio must be greater than 0")
    if ratio_ppm > PPM:
        raise ValueError("ratio must not exceed 1")
    return ratio_ppm


# ------------------------------------------------------------------------- formatting


def format_amount(amount_minor: int) -> str:
    """Format minor units as the API shows them: always two places ("1656.05").

    Negative values are allowed because account balances can be negative.
    """
    _require_int(amount_minor, "amount_minor")
    sign = "-" if amount_minor < 0 else ""
    major, minor = divmod(abs(amount_minor), MINOR_PER_MAJOR)
    return f"{sign}{major}.{minor:02d}"


def format_rate(rate_ppm: int) -> str:
    """Format a ppm rate: 4 places when exact ("0.0450"), else all 6 ("0.045025").

    Four places is how banks quote; six keeps any finer rate lossless, so
    ``parse_rate(format_rate(x)) == x`` always holds.
    """
    _require_int(rate_ppm, "rate_ppm")
    invariant(rate_ppm >= 0, f"rate_ppm must be non-negative, got {rate_ppm}")
    whole, fraction_ppm = divmod(rate_ppm, PPM)
    if fraction_ppm % 100 == 0:
        return f"{whole}.{fraction_ppm // 100:04d}"
    return f"{whole}.{fraction_ppm:06d}"


# ------------------------------------------------------------------------- arithmetic


def round_half_up_div(numerator: int, denominator: int) -> int:
    """Return ``numerator / denominator`` rounded half-up, exactly, for ints.

    Half-up (not banker's rounding) is what the money model prescribes; the
    domain is non-negative so "half-up" and "half away from zero" agree.
    """
    _require_int(numerator, "numerator")
    _require_int(denominator, "denominator")
    invariant(numerator >= 0, f"numerator must be non-negative, got {numerator}")
    invariant(denominator > 0, f"denominator must be positive, got {denominator}")
    return (2 * numerator + denominator) // (2 * denominator)


def days_between(value_date: date, due_date: date) -> int:
    """Interest days from value date to due date: first day counts, last does not.

    Never negative: funding on or after the due date earns no discount.
    """
    return max(0, (due_date - value_date).days)


def day_count_basis(currency: str) -> int:
    """Days in the interest year for ``currency``; ACT/360 unless known otherwise."""
    return DAY_COUNT_BASIS.get(currency.strip().upper(), DEFAULT_DAY_COUNT_BASIS)


@dataclass(frozen=True)
class DealAmounts:
    """Every amount of one deal, computed together so they always agree."""

    principal_minor: int
    """P = round(F × a): what the bank is repaid before the SME gets anything."""
    discount_minor: int
    """D = round(P × r × days / basis): the bank's interest, taken up front."""
    fee_minor: int
    """round(P × f): the platform's fee, paid out of the funding."""
    funding_minor: int
    """P − D: what the bank pays into escrow."""
    advance_minor: int
    """P − D − fee: what the SME receives at funding."""
    holdback_minor: int
    """F − P: what the SME receives from the debtor's repayment after the bank."""
    days: int
    """Interest days from value date to due date."""


def _check_deal_inputs(
    face_value_minor: int,
    advance_ratio_ppm: int,
    discount_rate_ppm: int,
    fee_rate_ppm: int,
    day_count_basis: int,
) -> None:
    """Reject out-of-range inputs with ValueError: they can come from configuration."""
    for name, value in (
        ("face_value_minor", face_value_minor),
        ("advance_ratio_ppm", advance_ratio_ppm),
        ("discount_rate_ppm", discount_rate_ppm),
        ("fee_rate_ppm", fee_rate_ppm),
        ("day_count_basis", day_count_basis),
    ):
        _require_int(value, name)
    if not 0 < face_value_minor <= AMOUNT_MINOR_MAX:
        raise ValueError(f"face value must be positive and at most {AMOUNT_MINOR_MAX} minor units")
    if not 0 < advance_ratio_ppm <= PPM:
        raise ValueError("advance ratio must be greater than 0 and at most 1")
    if not 0 <= discount_rate_ppm <= RATE_PPM_MAX:
        raise ValueError("discount rate must be between 0 and 1")
    if not 0 <= fee_rate_ppm <= PPM:
        raise ValueError("fee rate must be between 0 and 1")
    if day_count_basis <= 0:
        raise ValueError("day count basis must be positive")


def _check_deal_invariants(amounts: DealAmounts, face_value_minor: int) -> None:
    """Re-state the money model's identities; a failure here is a bug in this module."""
    a = amounts
    invariant(0 < a.principal_minor <= face_value_minor, "0 < P <= F")
    invariant(a.discount_minor >= 0 and a.fee_minor >= 0, "D >= 0 and fee >= 0")
    invariant(a.funding_minor == a.principal_minor - a.discount_minor, "funding == P - D")
    invariant(a.advance_minor == a.funding_minor - a.fee_minor, "advance == P - D - fee")
    invariant(a.advance_minor >= 0, "advance >= 0")
    invariant(a.holdback_minor == face_value_minor - a.principal_minor, "holdback == F - P")
    invariant(
        a.advance_minor + a.fee_minor + a.discount_minor + a.holdback_minor == face_value_minor,
        "advance + fee + discount + holdback == F",
    )


def financed_principal(face_value_minor: int, advance_ratio_ppm: int) -> int:
    """P = round(F × a), fixed when a bid is awarded (it does not depend on dates)."""
    _require_int(face_value_minor, "face_value_minor")
    _require_int(advance_ratio_ppm, "advance_ratio_ppm")
    principal_minor = round_half_up_div(face_value_minor * advance_ratio_ppm, PPM)
    if principal_minor == 0:
        raise ValueError("financed principal rounds to zero; raise the advance ratio")
    return principal_minor


def deal_amounts(
    *,
    face_value_minor: int,
    advance_ratio_ppm: int,
    discount_rate_ppm: int,
    fee_rate_ppm: int,
    value_date: date,
    due_date: date,
    day_count_basis: int = DEFAULT_DAY_COUNT_BASIS,
) -> DealAmounts:
    """Compute P, D, fee, funding, advance and holdback for a deal funded on ``value_date``.

    Each quantity is rounded half-up to the fen exactly once, from exact integer
    products, so the published worked examples are reproduced to the fen.
    Raises ValueError for inputs out of range or so absurd that D + fee > P
    (the SME would owe money for being financed).
    """
    _check_deal_inputs(
        face_value_minor, advance_ratio_ppm, discount_rate_ppm, fee_rate_ppm, day_count_basis
    )
    days = days_between(value_date, due_date)
    principal_minor = financed_principal(face_value_minor, advance_ratio_ppm)
    discount_minor = round_half_up_div(
        principal_minor * discount_rate_ppm * days, PPM * day_count_basis
    )
    fee_minor = round_half_up_div(principal_minor * fee_rate_ppm, PPM)
    if discount_minor + fee_minor > principal_minor:
        raise ValueError("discount plus fee exceed the financed principal")
    funding_minor = principal_minor - discount_minor
    amounts = DealAmounts(
        principal_minor=principal_minor,
        discount_minor=discount_minor,
        fee_minor=fee_minor,
        funding_minor=funding_minor,
        advance_minor=funding_minor - fee_minor,
        holdback_minor=face_value_minor - principal_minor,
        days=days,
    )
    _check_deal_invariants(amounts, face_value_minor)
    return amounts


# ------------------------------------------------------------------------- repayment


@dataclass(frozen=True)
class RepaymentSplit:
    """Where one repayment goes when it leaves escrow."""

    to_bank_minor: int
    """The part that still counts against the bank's principal P."""
    to_sme_minor: int
    """The part beyond P: the SME's holdback."""


def split_repayment(
    *, amount_minor: int, principal_minor: int, bank_received_minor: int
) -> RepaymentSplit:
    """Split one repayment by the principal-first waterfall.

    The bank is paid until it has received P in total (across all earlier
    payments, ``bank_received_minor``), and only then the SME. Overpayment is
    the caller's to refuse (see ``remaining_due``); this only splits.
    """
    for name, value in (
        ("amount_minor", amount_minor),
        ("principal_minor", principal_minor),
        ("bank_received_minor", bank_received_minor),
    ):
        _require_int(value, name)
    if amount_minor <= 0:
        raise ValueError("a repayment must be a positive amount")
    invariant(principal_minor >= 0, "principal must be non-negative")
    invariant(
        0 <= bank_received_minor <= principal_minor,
        "the bank has received between 0 and P so far",
    )
    to_bank_minor = min(amount_minor, principal_minor - bank_received_minor)
    return RepaymentSplit(to_bank_minor=to_bank_minor, to_sme_minor=amount_minor - to_bank_minor)


def remaining_due(face_value_minor: int, repaid_minor: int) -> int:
    """What the debtor still owes: F minus everything repaid so far.

    Repaid above F cannot happen because overpayment is refused, so it is an
    invariant, not a ValueError.
    """
    _require_int(face_value_minor, "face_value_minor")
    _require_int(repaid_minor, "repaid_minor")
    invariant(0 <= repaid_minor <= face_value_minor, "0 <= repaid <= face value")
    return face_value_minor - repaid_minor
