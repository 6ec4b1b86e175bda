"""Goal: prove the pure entry builders move money exactly as the money model says.

Every entry balances and leaves escrow at zero; zero moves are omitted; malformed
amounts and impossible parties are refused as invariant violations; and over a whole
deal life (funding, then any sequence of partial repayments summing to F) the net
positions are: bank +D, SME advance + holdback, debtor −F, platform fee, escrow 0.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receivables.kit.invariants import InvariantViolation
from receivables.kit.money import AMOUNT_MINOR_MAX, PPM, deal_amounts, split_repayment
from receivables.ledger.entries import (
    AccountKey,
    EntrySpec,
    PostingSpec,
    escrow_account,
    escrow_balance_after,
    escrow_net_minor,
    funding_entry,
    organization_account,
    platform_fee_account,
    repayment_entry,
)
from receivables.ledger.models import AccountKind, EntryKind

DEAL, BANK, SME, DEBTOR = (uuid.uuid4() for _ in range(4))
CNY = "CNY"
VALUE_DATE = date(2026, 3, 2)


def balances_minor(entries: list[EntrySpec]) -> dict[AccountKey, int]:
    """credits − debits per account, the API's balance, summed over the entries."""
    balance: dict[AccountKey, int] = defaultdict(int)
    for entry in entries:
        for posting in entry.postings:
            balance[posting.debit] -= posting.amount_minor
            balance[posting.credit] += posting.amount_minor
    return balance


def fund(funding_minor: int, advance_minor: int, fee_minor: int) -> EntrySpec:
    return funding_entry(
        deal_id=DEAL, currency=CNY, bank_id=BANK, sme_id=SME, funding_minor=funding_minor,
        advance_minor=advance_minor, fee_minor=fee_minor, reference="FUND-1",
    )


def repay(
    to_bank_minor: int, to_sme_minor: int, *, payer=DEBTOR, kind=EntryKind.repayment
) -> EntrySpec:
    return repayment_entry(
        deal_id=DEAL, currency=CNY, payer_id=payer, bank_id=BANK, sme_id=SME,
        to_bank_minor=to_bank_minor, to_sme_minor=to_sme_minor, reference="PAY-1", kind=kind,
    )


class TestAccountKey:
    def test_constructors_name_kind_owner_currency(self):
        assert organization_account(SME, CNY) == AccountKey(AccountKind.organization, SME, CNY)
        assert escrow_account(DEAL, CNY) == AccountKey(AccountKind.escrow, DEAL, CNY)
        assert platform_fee_account(CNY) == AccountKey(AccountKind.platform_fee, None, CNY)

    def test_keys_sort_even_with_the_ownerless_fee_account(self):
        keys = [
            platform_fee_account(CNY), escrow_account(DEAL, CNY), organization_account(SME, CNY),
            platform_fee_account("USD"), organization_account(BANK, CNY),
        ]
        assert sorted(keys) == sorted(reversed(keys))

    @pytest.mark.parametrize("currency", ["cny", "CN", "CNYY", "", "C1Y"])
    def test_bad_currency_is_refused(self, currency: str):
        with pytest.raises(InvariantViolation):
            organization_account(SME, currency)

    def test_owner_rules(self):
        with pytest.raises(InvariantViolation):
            AccountKey(AccountKind.platform_fee, SME, CNY)
        with pytest.raises(InvariantViolation):
            AccountKey(AccountKind.escrow, None, CNY)
        with pytest.raises(InvariantViolation):
            AccountKey("escrow", DEAL, CNY)  # a plain string is not an AccountKind


class TestPostingSpec:
    @pytest.mark.parametrize("amount", [0, -1, 1.5, True, AMOUNT_MINOR_MAX + 1])
    def test_bad_amounts_are_refused(self, amount):
        with pytest.raises(InvariantViolation):
            PostingSpec(organization_account(BANK, CNY), escrow_account(DEAL, CNY), amount)

    def test_same_account_both_sides_is_refused(self):
        with pytest.raises(InvariantViolation):
            PostingSpec(escrow_account(DEAL, CNY), escrow_account(DEAL, CNY), 1)

    def test_mixed_currency_is_refused(self):
        with pytest.raises(InvariantViolation):
            PostingSpec(organization_account(BANK, "USD"), escrow_account(DEAL, CNY), 1)


class TestEntrySpec:
    def test_empty_entry_is_refused(self):
        with pytest.raises(InvariantViolation):
            EntrySpec(EntryKind.funding, DEAL, CNY, None, ())

    def test_posting_in_another_currency_is_refused(self):
        posting = PostingSpec(organization_account(BANK, "USD"), escrow_account(DEAL, "USD"), 5)
        with pytest.raises(InvariantViolation):
            EntrySpec(EntryKind.funding, DEAL, CNY, None, (posting,))

    def test_touching_another_deals_escrow_is_refused(self):
        posting = PostingSpec(organization_account(BANK, CNY), escrow_account(uuid.uuid4(), CNY), 5)
        with pytest.raises(InvariantViolation):
            EntrySpec(EntryKind.funding, DEAL, CNY, None, (posting,))


class TestFundingEntry:
    def test_bank_funds_escrow_which_pays_sme_and_platform(self):
        entry = fund(funding_minor=9_700, advance_minor=9_600, fee_minor=100)
        escrow = escrow_account(DEAL, CNY)
        assert [(p.debit, p.credit, p.amount_minor) for p in entry.postings] == [
            (organization_account(BANK, CNY), escrow, 9_700),
            (escrow, organization_account(SME, CNY), 9_600),
            (escrow, platform_fee_account(CNY), 100),
        ]
        assert (entry.kind, entry.reference, entry.currency) == (EntryKind.funding, "FUND-1", CNY)
        assert escrow_net_minor(entry) == 0
        assert sum(balances_minor([entry]).values()) == 0

    def test_zero_fee_posting_is_omitted(self):
        entry = fund(funding_minor=9_700, advance_minor=9_700, fee_minor=0)
        assert len(entry.postings) == 2
        assert platform_fee_account(CNY) not in balances_minor([entry])

    def test_zero_advance_posting_is_omitted(self):
        entry = fund(funding_minor=50, advance_minor=0, fee_minor=50)
        credited = [p.credit.kind for p in entry.postings]
        assert credited == [AccountKind.escrow, AccountKind.platform_fee]

    @pytest.mark.parametrize(
        ("funding", "advance", "fee"),
        [(100, 90, 5), (100, 101, -1), (0, 0, 0), (-5, -5, 0), (100, 100.0, 0)],
    )
    def test_amounts_that_do_not_add_up_are_refused(self, funding, advance, fee):
        with pytest.raises(InvariantViolation):
            fund(funding, advance, fee)

    def test_bank_cannot_be_the_sme(self):
        with pytest.raises(InvariantViolation):
            funding_entry(deal_id=DEAL, currency=CNY, bank_id=BANK, sme_id=BANK, funding_minor=10,
                          advance_minor=10, fee_minor=0, reference=None)


class TestRepaymentEntry:
    def test_payer_pays_escrow_which_pays_bank_then_sme(self):
        entry = repay(to_bank_minor=700, to_sme_minor=300)
        escrow = escrow_account(DEAL, CNY)
        assert [(p.debit, p.credit, p.amount_minor) for p in entry.postings] == [
            (organization_account(DEBTOR, CNY), escrow, 1_000),
            (escrow, organization_account(BANK, CNY), 700),
            (escrow, organization_account(SME, CNY), 300),
        ]
        assert escrow_net_minor(entry) == 0

    def test_zero_parts_are_omitted(self):
        assert [p.amount_minor for p in repay(500, 0).postings] == [500, 500]
        assert [p.credit for p in repay(0, 40).postings][-1] == organization_account(SME, CNY)
        assert len(repay(0, 40).postings) == 2

    def test_recourse_payment_by_the_sme_goes_to_the_bank(self):
        entry = repay(250, 0, payer=SME, kind=EntryKind.recourse_repayment)
        assert entry.kind == EntryKind.recourse_repayment
        assert balances_minor([entry])[organization_account(SME, CNY)] == -250

    def test_sme_paying_its_own_holdback_is_refused(self):
        with pytest.raises(InvariantViolation):
            repay(100, 1, payer=SME, kind=EntryKind.recourse_repayment)

    @pytest.mark.parametrize(
        ("payer", "kind"),
        [(SME, EntryKind.repayment), (DEBTOR, EntryKind.recourse_repayment),
         (DEBTOR, EntryKind.funding), (BANK, EntryKind.repayment)],
    )
    def test_payer_and_kind_must_agree(self, payer, kind):
        with pytest.raises(InvariantViolation):
            repay(100, 0, payer=payer, kind=kind)

    @pytest.mark.parametrize(("to_bank", "to_sme"), [(0, 0), (-1, 2), (1, -1), (1.0, 0)])
    def test_bad_amounts_are_refused(self, to_bank, to_sme):
        with pytest.raises(InvariantViolation):
            repay(to_bank, to_sme)


def test_escrow_net_counts_money_in_minus_money_out():
    escrow = escrow_account(DEAL, CNY)
    lopsided = EntrySpec(EntryKind.funding, DEAL, CNY, None, (
        PostingSpec(organization_account(BANK, CNY), escrow, 100),
        PostingSpec(escrow, organization_account(SME, CNY), 60),
    ))
    assert escrow_net_minor(lopsided) == 40
    # The balance a deal's answer shows after an entry is the one before plus that net.
    assert escrow_balance_after(15, lopsided) == 55


# ------------------------------------------------------------------ whole deal lives

deal_inputs = st.fixed_dictionaries({
    "face_value_minor": st.integers(min_value=1, max_value=10**12),
    "advance_ratio_ppm": st.integers(min_value=1, max_value=PPM),
    "discount_rate_ppm": st.integers(min_value=0, max_value=200_000),
    "fee_rate_ppm": st.integers(min_value=0, max_value=20_000),
    "days": st.integers(min_value=0, max_value=720),
})


@st.composite
def repayment_sizes(draw, face_value_minor: int) -> list[int]:
    """Positive amounts summing to F: cut points drawn inside (0, F)."""
    cut_count = draw(st.integers(min_value=0, max_value=min(8, face_value_minor - 1)))
    cuts = draw(st.lists(st.integers(min_value=1, max_value=max(1, face_value_minor - 1)),
                         min_size=cut_count, max_size=cut_count, unique=True))
    points = [0, *sorted(cuts), face_value_minor]
    return [b - a for a, b in zip(points, points[1:]) if b > a]


def _amounts(inputs: dict[str, int]):
    """The deal's amounts, or None when the money model refuses the deal (P rounds to 0,
    D + fee > P) or there is nothing to fund (the deals service must refuse that)."""
    try:
        amounts = deal_amounts(
            face_value_minor=inputs["face_value_minor"],
            advance_ratio_ppm=inputs["advance_ratio_ppm"],
            discount_rate_ppm=inputs["discount_rate_ppm"],
            fee_rate_ppm=inputs["fee_rate_ppm"],
            value_date=VALUE_DATE,
            due_date=VALUE_DATE + timedelta(days=inputs["days"]),
        )
    except ValueError:
        return None
    return amounts if amounts.funding_minor > 0 else None


def _repayments(sizes_minor: list[int], principal_minor: int, bank_received_minor: int,
                *, payer=DEBTOR, kind=EntryKind.repayment) -> tuple[list[EntrySpec], int]:
    """Entries for payments split by the waterfall; returns them and the bank's new total."""
    entries = []
    for amount_minor in sizes_minor:
        split = split_repayment(amount_minor=amount_minor, principal_minor=principal_minor,
                                bank_received_minor=bank_received_minor)
        bank_received_minor += split.to_bank_minor
        entries.append(repay(split.to_bank_minor, split.to_sme_minor, payer=payer, kind=kind))
    return entries, bank_received_minor


def _assert_entries_sealed(entries: list[EntrySpec]) -> dict[AccountKey, int]:
    for entry in entries:
        assert escrow_net_minor(entry) == 0
        assert sum(balances_minor([entry]).values()) == 0
    balance = balances_minor(entries)
    assert balance[escrow_account(DEAL, CNY)] == 0
    assert sum(balance.values()) == 0
    return balance


@settings(max_examples=300, deadline=None)
@given(inputs=deal_inputs, data=st.data())
def test_a_whole_deal_life_ends_at_the_money_models_positions(inputs, data):
    amounts = _amounts(inputs)
    if amounts is None:
        return
    face_value_minor = inputs["face_value_minor"]
    entries = [fund(amounts.funding_minor, amounts.advance_minor, amounts.fee_minor)]
    sizes_minor = data.draw(repayment_sizes(face_value_minor))
    entries += _repayments(sizes_minor, amounts.principal_minor, 0)[0]

    balance = _assert_entries_sealed(entries)
    assert balance[organization_account(BANK, CNY)] == amounts.discount_minor  # paid P − D, got P
    assert balance[organization_account(SME, CNY)] == amounts.advance_minor + amounts.holdback_minor
    assert balance[organization_account(DEBTOR, CNY)] == -face_value_minor
    assert balance[platform_fee_account(CNY)] == amounts.fee_minor


@settings(max_examples=200, deadline=None)
@given(inputs=deal_inputs, data=st.data())
def test_under_recourse_what_the_sme_pays_only_reaches_the_bank(inputs, data):
    """The debtor pays part, the SME (recourse) pays part of the bank's remaining P, the
    debtor pays the rest: the bank still ends at +D, and the SME's position falls by
    exactly what it paid."""
    amounts = _amounts(inputs)
    if amounts is None:
        return
    face_value_minor, principal_minor = inputs["face_value_minor"], amounts.principal_minor
    debtor_first_minor = data.draw(st.integers(min_value=0, max_value=principal_minor - 1))
    bank_still_due_minor = principal_minor - debtor_first_minor
    recourse_minor = data.draw(st.integers(min_value=1, max_value=bank_still_due_minor))
    entries = [fund(amounts.funding_minor, amounts.advance_minor, amounts.fee_minor)]
    more, received_minor = _repayments([debtor_first_minor] if debtor_first_minor else [],
                                       principal_minor, 0)
    entries += more
    more, received_minor = _repayments([recourse_minor], principal_minor, received_minor,
                                       payer=SME, kind=EntryKind.recourse_repayment)
    entries += more
    rest_minor = face_value_minor - debtor_first_minor - recourse_minor
    entries += _repayments([rest_minor] if rest_minor else [], principal_minor, received_minor)[0]

    balance = _assert_entries_sealed(entries)
    assert balance[organization_account(BANK, CNY)] == amounts.discount_minor
    assert balance[organization_account(SME, CNY)] == (
        amounts.advance_minor + amounts.holdback_minor - recourse_minor
    )
    assert balance[organization_account(DEBTOR, CNY)] == -(face_value_minor - recourse_minor)
    assert balance[platform_fee_account(CNY)] == amounts.fee_minor
