"""The ledger check: recompute every balance from the postings and compare (TIGER_STYLE's
pair assertion — `post` checks when writing, this checks again from the rows).

What is checked, each against RELIABILITY.md:
- I1 conservation: each account's cached debits/credits equal the sums of its postings;
  every entry has postings, all in the entry's currency (the accounts' too); Σ balances
  over all accounts is zero per currency, by the cached counters and by the postings.
- I2 no overdraft: no escrow balance is negative; and because escrow holds money only
  inside a transaction, every escrow is exactly zero (a settled deal's above all).
- I5 state ↔ ledger: a funded deal has exactly one funding entry (an unfunded one none),
  and the repayments paid into its escrow add up to the deal's `repaid_minor`.

Each check is a single SQL statement, so on PostgreSQL at READ COMMITTED an entry
committed while `verify` runs never shows up as a false mismatch.

A mismatch is a JSON-ready dict: the object (`account_id`, `entry_id`, `posting_id`,
`deal_id` or `currency`), `what` differs, the `expected` value and the value `found`;
money in minor units.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.deals.lifecycle import DealStatus
from receivables.ledger import repository
from receivables.ledger.models import AccountKind

__all__ = ["VerifyReport", "verify"]

SETTLED = DealStatus.settled.value
"""The deal status after which escrow must (like always) be empty."""

FUNDED_STATUSES = frozenset(
    {DealStatus.disbursed, DealStatus.overdue, DealStatus.defaulted, DealStatus.settled}
)
"""Deal states reached only through `fund`: each implies exactly one funding entry."""

Mismatch = dict[str, Any]


@dataclass
class VerifyReport:
    balanced: bool
    accounts_checked: int
    entries_checked: int
    mismatches: list[Mismatch] = field(default_factory=list)


def _mismatch(what: str, expected: Any, found: Any, **names: Any) -> Mismatch:
    named = {key: (str(value) if value is not None else None) for key, value in names.items()}
    return {**named, "what": what, "expected": expected, "found": found}


def _counter_mismatches(facts: list[repository.AccountFacts]) -> list[Mismatch]:
    found: list[Mismatch] = []
    for a in facts:
        if a.debits_cached_minor != a.debits_posted_minor:
            found.append(_mismatch("debits_posted_minor", a.debits_posted_minor,
                                   a.debits_cached_minor, account_id=a.id))
        if a.credits_cached_minor != a.credits_posted_minor:
            found.append(_mismatch("credits_posted_minor", a.credits_posted_minor,
                                   a.credits_cached_minor, account_id=a.id))
    return found


def _currency_total_mismatches(facts: list[repository.AccountFacts]) -> list[Mismatch]:
    """Σ (credits − debits) over all accounts of a currency is zero, both ways."""
    cached_minor: dict[str, int] = defaultdict(int)
    posted_minor: dict[str, int] = defaultdict(int)
    for a in facts:
        cached_minor[a.currency] += a.credits_cached_minor - a.debits_cached_minor
        posted_minor[a.currency] += a.credits_posted_minor - a.debits_posted_minor
    found = []
    for currency in sorted(cached_minor):
        for what, total_minor in (
            ("currency_total_cached", cached_minor[currency]),
            ("currency_total_postings", posted_minor[currency]),
        ):
            if total_minor != 0:
                found.append(_mismatch(what, 0, total_minor, currency=currency))
    return found


def _escrow_mismatches(facts: list[repository.AccountFacts]) -> list[Mismatch]:
    """Escrow from its postings (the truth; a drifted cache is reported above)."""
    found = []
    for a in facts:
        if a.kind != AccountKind.escrow:
            continue
        balance_minor = a.credits_posted_minor - a.debits_posted_minor
        if balance_minor == 0:
            continue
        if balance_minor < 0:
            what = "escrow_negative"
        elif a.deal_status == SETTLED:
            what = "settled_escrow_not_zero"
        else:
            what = "escrow_not_zero"
        found.append(_mismatch(what, 0, balance_minor, account_id=a.id, deal_id=a.deal_id))
    return found


async def _entry_mismatches(session: AsyncSession) -> list[Mismatch]:
    found = [
        _mismatch("entry_without_postings", "at least one posting", 0, entry_id=entry_id)
        for entry_id in await repository.entries_without_postings(session)
    ]
    found += [
        _mismatch("entry_without_deal", "a deal id", None, entry_id=entry_id)
        for entry_id in await repository.entries_without_deal(session)
    ]
    found += [
        _mismatch("posting_currency", entry_currency, odd_currency, entry_id=entry_id,
                  posting_id=posting_id)
        for entry_id, posting_id, entry_currency, odd_currency
        in await repository.postings_off_currency(session)
    ]
    return found


async def _deal_mismatches(session: AsyncSession) -> list[Mismatch]:
    """I5: what each deal's status and repaid amount say against what the ledger holds."""
    found = []
    for deal_id, status, repaid_minor, fundings, repaid_into_escrow_minor in (
        await repository.deals_with_entry_counts(session)
    ):
        fundings_expected = 1 if status in FUNDED_STATUSES else 0
        if fundings != fundings_expected:
            found.append(_mismatch("funding_entries", fundings_expected, fundings, deal_id=deal_id))
        if repaid_into_escrow_minor != repaid_minor:
            found.append(
                _mismatch("repaid_minor", repaid_minor, repaid_into_escrow_minor, deal_id=deal_id)
            )
    return found


async def verify(session: AsyncSession) -> VerifyReport:
    """Check the whole ledger; read-only. `balanced` is true when nothing was found."""
    facts = await repository.account_facts(session)
    mismatches = (
        _counter_mismatches(facts)
        + _currency_total_mismatches(facts)
        + _escrow_mismatches(facts)
        + await _entry_mismatches(session)
        + await _deal_mismatches(session)
    )
    return VerifyReport(
        balanced=not mismatches,
        accounts_checked=len(facts),
        entries_checked=await repository.count_entries(session),
        mismatches=mismatches,
    )
