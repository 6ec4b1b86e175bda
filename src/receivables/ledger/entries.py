"""Pure builders: a business event (funding, repayment) becomes balanced postings.

No I/O, no clock, no arithmetic beyond adding what the caller gives: every amount comes
from `kit/money.py` (P, D, fee, the repayment waterfall), so this module only decides
*where* money moves. A posting moves `amount_minor` from its debit account to its credit
account (TigerBeetle's transfer), so each posting — and therefore each entry — balances by
construction; what is left to check here is that escrow, which holds money only inside a
transaction, nets to exactly zero over every entry.

Accounts are named by `AccountKey` (kind, owner, currency) rather than by row id so that
building an entry needs no database; `ledger.service.post` resolves keys to rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from receivables.kit.invariants import invariant
from receivables.kit.money import AMOUNT_MINOR_MAX
from receivables.ledger.models import AccountKind, EntryKind

__all__ = [
    "AccountKey",
    "EntrySpec",
    "PostingSpec",
    "escrow_account",
    "escrow_net_minor",
    "funding_entry",
    "organization_account",
    "platform_fee_account",
    "repayment_entry",
]

CURRENCY_CODE_CHARS = 3
"""ISO 4217 alphabetic codes are three upper-case letters."""

REPAYMENT_KINDS = frozenset({EntryKind.repayment, EntryKind.recourse_repayment})


def _check_currency(currency: str) -> None:
    invariant(
        isinstance(currency, str)
        and len(currency) == CURRENCY_CODE_CHARS
        and currency.isascii()
        and currency.isalpha()
        and currency.isupper(),
        f"currency must be an upper-case ISO 4217 code, got {currency!r}",
    )


def _check_amount(amount_minor: int, name: str, *, positive: bool) -> None:
    """Amounts are exact ints; a float or bool here is a bug upstream of the ledger."""
    invariant(
        isinstance(amount_minor, int) and not isinstance(amount_minor, bool),
        f"{name} must be an int of minor units, got {type(amount_minor).__name__}",
    )
    lowest_minor = 1 if positive else 0
    invariant(
        lowest_minor <= amount_minor <= AMOUNT_MINOR_MAX,
        f"{name} must be between {lowest_minor} and {AMOUNT_MINOR_MAX}, got {amount_minor}",
    )


@dataclass(frozen=True, order=True)
class AccountKey:
    """Names one ledger account: an organization's, a deal's escrow, or the fee account.

    Ordered so that a set of keys sorts deterministically (field order: kind first, so
    the `None` owner of the fee account is only ever compared with another `None`).
    """

    kind: AccountKind
    owner_id: uuid.UUID | None
    """The organization id, the deal id (escrow), or None (platform fee)."""
    currency: str

    def __post_init__(self) -> None:
        invariant(isinstance(self.kind, AccountKind), f"unknown account kind {self.kind!r}")
        owned = self.kind != AccountKind.platform_fee
        invariant(
            isinstance(self.owner_id, uuid.UUID) if owned else self.owner_id is None,
            f"a {self.kind} account {'needs' if owned else 'has no'} owner id",
        )
        _check_currency(self.currency)


def organization_account(org_id: uuid.UUID, currency: str) -> AccountKey:
    return AccountKey(AccountKind.organization, org_id, currency)


def escrow_account(deal_id: uuid.UUID, currency: str) -> AccountKey:
    return AccountKey(AccountKind.escrow, deal_id, currency)


def platform_fee_account(currency: str) -> AccountKey:
    return AccountKey(AccountKind.platform_fee, None, currency)


@dataclass(frozen=True)
class PostingSpec:
    """Move `amount_minor` from `debit` to `credit` (TigerBeetle's transfer rules:
    amount positive, accounts different, one currency)."""

    debit: AccountKey
    credit: AccountKey
    amount_minor: int

    def __post_init__(self) -> None:
        _check_amount(self.amount_minor, "posting amount_minor", positive=True)
        invariant(self.debit != self.credit, f"a posting needs two accounts, got {self.debit}")
        invariant(
            self.debit.currency == self.credit.currency,
            f"a posting stays in one currency: {self.debit.currency} vs {self.credit.currency}",
        )


@dataclass(frozen=True)
class EntrySpec:
    """One journal entry: postings that succeed or fail together."""

    kind: EntryKind
    deal_id: uuid.UUID
    currency: str
    reference: str | None
    """The payer's payment reference, for reconciliation with bank statements."""
    postings: tuple[PostingSpec, ...]

    def __post_init__(self) -> None:
        invariant(isinstance(self.kind, EntryKind), f"unknown entry kind {self.kind!r}")
        invariant(isinstance(self.deal_id, uuid.UUID), "an entry belongs to a deal")
        _check_currency(self.currency)
        invariant(isinstance(self.postings, tuple), "postings must be a tuple (immutable)")
        invariant(len(self.postings) > 0, "an entry needs at least one posting")
        for posting in self.postings:
            invariant(
                posting.debit.currency == self.currency,
                f"posting currency {posting.debit.currency} differs from entry {self.currency}",
            )
            for key in (posting.debit, posting.credit):
                # An entry may only touch its own deal's escrow: money never hops deals.
                invariant(
                    key.kind != AccountKind.escrow or key.owner_id == self.deal_id,
                    f"entry for deal {self.deal_id} touches escrow of deal {key.owner_id}",
                )


def escrow_net_minor(entry: EntrySpec) -> int:
    """Σ credited to escrow − Σ debited from escrow over the entry (0 for a valid one)."""
    net_minor = 0
    for posting in entry.postings:
        if posting.credit.kind == AccountKind.escrow:
            net_minor += posting.amount_minor
        if posting.debit.kind == AccountKind.escrow:
            net_minor -= posting.amount_minor
    return net_minor


def escrow_balance_after(escrow_minor: int, entry: EntrySpec) -> int:
    """An escrow account's balance once `entry` is posted, from its balance before:
    what the deal's answer shows without reading the account again."""
    return escrow_minor + escrow_net_minor(entry)


def _postings(*moves: tuple[AccountKey, AccountKey, int]) -> tuple[PostingSpec, ...]:
    """Postings for the non-zero moves, in the given order (zero moves are omitted:
    a posting of 0 is refused by the schema and would mean nothing)."""
    return tuple(PostingSpec(debit, credit, amount) for debit, credit, amount in moves if amount)


def _sealed(entry: EntrySpec) -> EntrySpec:
    net_minor = escrow_net_minor(entry)
    invariant(net_minor == 0, f"{entry.kind} entry leaves {net_minor} minor units in escrow")
    return entry


def funding_entry(
    *,
    deal_id: uuid.UUID,
    currency: str,
    bank_id: uuid.UUID,
    sme_id: uuid.UUID,
    funding_minor: int,
    advance_minor: int,
    fee_minor: int,
    reference: str | None,
) -> EntrySpec:
    """The bank pays P − D into escrow; escrow pays the SME its advance and the platform
    its fee at once, so escrow is back to zero within the same entry."""
    _check_amount(funding_minor, "funding_minor", positive=True)
    _check_amount(advance_minor, "advance_minor", positive=False)
    _check_amount(fee_minor, "fee_minor", positive=False)
    invariant(funding_minor == advance_minor + fee_minor, "funding == advance + fee")
    invariant(bank_id != sme_id, "the bank and the SME are different organizations")
    escrow = escrow_account(deal_id, currency)
    postings = _postings(
        (organization_account(bank_id, currency), escrow, funding_minor),
        (escrow, organization_account(sme_id, currency), advance_minor),
        (escrow, platform_fee_account(currency), fee_minor),
    )
    entry = EntrySpec(EntryKind.funding, deal_id, currency, reference, postings)
    return _sealed(entry)


def _check_repayment_parties(
    kind: EntryKind, payer_id: uuid.UUID, bank_id: uuid.UUID, sme_id: uuid.UUID, to_sme_minor: int
) -> None:
    invariant(kind in REPAYMENT_KINDS, f"{kind} is not a repayment kind")
    invariant(bank_id != sme_id, "the bank and the SME are different organizations")
    invariant(payer_id != bank_id, "the bank never repays itself")
    payer_is_sme = payer_id == sme_id
    # Under recourse the SME pays the bank's principal; it cannot pay its own holdback.
    invariant(
        not (payer_is_sme and to_sme_minor > 0), "an SME's recourse payment goes to the bank only"
    )
    invariant(
        (kind == EntryKind.recourse_repayment) == payer_is_sme,
        "recourse_repayment is exactly the kind of a payment by the SME",
    )


def repayment_entry(
    *,
    deal_id: uuid.UUID,
    currency: str,
    payer_id: uuid.UUID,
    bank_id: uuid.UUID,
    sme_id: uuid.UUID,
    to_bank_minor: int,
    to_sme_minor: int,
    reference: str | None,
    kind: EntryKind = EntryKind.repayment,
) -> EntrySpec:
    """The payer pays into escrow; escrow passes it on at once by the waterfall the
    caller computed (`kit.money.split_repayment`): to the bank, then to the SME."""
    _check_amount(to_bank_minor, "to_bank_minor", positive=False)
    _check_amount(to_sme_minor, "to_sme_minor", positive=False)
    paid_minor = to_bank_minor + to_sme_minor
    invariant(paid_minor > 0, "a repayment moves a positive amount")
    _check_repayment_parties(kind, payer_id, bank_id, sme_id, to_sme_minor)
    escrow = escrow_account(deal_id, currency)
    postings = _postings(
        (organization_account(payer_id, currency), escrow, paid_minor),
        (escrow, organization_account(bank_id, currency), to_bank_minor),
        (escrow, organization_account(sme_id, currency), to_sme_minor),
    )
    entry = EntrySpec(kind, deal_id, currency, reference, postings)
    return _sealed(entry)
