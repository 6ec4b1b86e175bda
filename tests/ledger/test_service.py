"""Goal: prove `ledger.service.post` and `ledger.verify` on real databases (both backends).

A funding and repayments move the balances the money model predicts; `verify` agrees
with the cached counters and catches every kind of tampering behind `post`'s back; an
entry that would leave escrow negative or non-empty is refused with nothing written;
the escrow CHECK constraint holds even against a raw UPDATE; and on PostgreSQL
concurrent writers neither deadlock nor lose updates.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from receivables.deals.models import Deal
from receivables.kit.invariants import InvariantViolation
from receivables.kit.money import split_repayment
from receivables.ledger import repository
from receivables.ledger import service as ledger
from receivables.ledger.entries import (
    EntrySpec,
    PostingSpec,
    escrow_account,
    funding_entry,
    organization_account,
    platform_fee_account,
    repayment_entry,
)
from receivables.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from receivables.ledger.schemas import deal_ledger_read
from receivables.ledger.verify import verify
from tests.ledger.conftest import CNY, Parties, add_deal

F_MINOR, P_MINOR, D_MINOR, FEE_MINOR = 1_000_000, 900_000, 9_000, 900
FUNDING_MINOR = P_MINOR - D_MINOR
ADVANCE_MINOR = FUNDING_MINOR - FEE_MINOR

# ------------------------------------------------------------------------ helpers


async def fund(session, deal: Deal, clock) -> JournalEntry:
    """What the deals service does on fund: status and amounts, plus the entry."""
    deal.status, deal.value_date = "disbursed", clock.today()
    deal.discount_minor, deal.fee_minor = D_MINOR, FEE_MINOR
    deal.funding_minor, deal.advance_minor = FUNDING_MINOR, ADVANCE_MINOR
    return await ledger.post(session, funding_entry(
        deal_id=deal.id, currency=deal.currency, bank_id=deal.bank_id, sme_id=deal.sme_id,
        funding_minor=FUNDING_MINOR, advance_minor=ADVANCE_MINOR, fee_minor=FEE_MINOR,
        reference="FUND-1",
    ), clock=clock)


async def repay(session, deal: Deal, amount_minor: int, clock, *, payer_id=None) -> JournalEntry:
    payer_id = payer_id or deal.debtor_id
    split = split_repayment(amount_minor=amount_minor, principal_minor=deal.principal_minor,
                            bank_received_minor=deal.bank_received_minor)
    kind = EntryKind.recourse_repayment if payer_id == deal.sme_id else EntryKind.repayment
    entry = await ledger.post(session, repayment_entry(
        deal_id=deal.id, currency=deal.currency, payer_id=payer_id, bank_id=deal.bank_id,
        sme_id=deal.sme_id, to_bank_minor=split.to_bank_minor, to_sme_minor=split.to_sme_minor,
        reference=f"PAY-{amount_minor}", kind=kind,
    ), clock=clock)
    deal.repaid_minor += amount_minor
    deal.bank_received_minor += split.to_bank_minor
    if deal.repaid_minor == deal.face_value_minor:
        deal.status = "settled"
    return entry


async def funded_deal(sessionmaker, clock, parties: Parties, **deal_fields) -> uuid.UUID:
    async with sessionmaker.begin() as session:
        deal = await add_deal(session, clock, parties, **deal_fields)
        await fund(session, deal, clock)
        return deal.id


async def account_id(sessionmaker, key) -> uuid.UUID:
    async with sessionmaker() as session:
        account = await repository.get_account(session, key)
        assert account is not None
        return account.id


async def ledger_counts(sessionmaker) -> tuple[int, int, int, list[tuple[int, int]]]:
    async with sessionmaker() as session:
        count = select(func.count())
        entries = (await session.execute(count.select_from(JournalEntry))).scalar_one()
        postings = (await session.execute(count.select_from(Posting))).scalar_one()
        accounts = (await session.execute(
            select(Account.debits_posted_minor, Account.credits_posted_minor).order_by(Account.id)
        )).all()
        return entries, postings, len(accounts), [tuple(row) for row in accounts]


# -------------------------------------------------------------------------- posting


class TestPostAndBalances:
    async def test_funding_then_repayments_move_the_money_models_amounts(
        self, sessionmaker, clock, parties: Parties
    ):
        deal_id = await funded_deal(sessionmaker, clock, parties)
        for amount_minor in (600_000, 400_000):  # all to the bank; then 300k bank, 100k SME
            clock.advance(3600)
            async with sessionmaker.begin() as session:
                await repay(session, await session.get(Deal, deal_id), amount_minor, clock)

        async with sessionmaker() as session:
            assert await ledger.balances(session, parties.bank_id) == [(CNY, D_MINOR)]
            sme_minor = ADVANCE_MINOR + 100_000
            assert await ledger.balances(session, parties.sme_id) == [(CNY, sme_minor)]
            assert await ledger.balances(session, parties.debtor_id) == [(CNY, -F_MINOR)]
            fee = await repository.get_account(session, platform_fee_account(CNY))
            escrow = await repository.get_account(session, escrow_account(deal_id, CNY))
            assert fee.credits_posted_minor - fee.debits_posted_minor == FEE_MINOR
            through_escrow_minor = F_MINOR + FUNDING_MINOR
            assert escrow.debits_posted_minor == escrow.credits_posted_minor == through_escrow_minor
            report = await verify(session)
        assert report.balanced, report.mismatches
        assert (report.accounts_checked, report.entries_checked) == (5, 3)

    async def test_an_organization_without_money_has_no_balances(self, sessionmaker, parties):
        async with sessionmaker() as session:
            assert await ledger.balances(session, parties.sme_id) == []

    async def test_balances_are_per_currency_sorted(self, sessionmaker, clock, parties):
        await funded_deal(sessionmaker, clock, parties, currency="USD")
        await funded_deal(sessionmaker, clock, parties)
        async with sessionmaker() as session:
            assert await ledger.balances(session, parties.bank_id) == [
                ("CNY", -FUNDING_MINOR), ("USD", -FUNDING_MINOR)
            ]
            assert (await verify(session)).balanced

    async def test_accounts_are_created_once_and_reused(self, sessionmaker, clock, parties):
        await funded_deal(sessionmaker, clock, parties)
        await funded_deal(sessionmaker, clock, parties)
        async with sessionmaker() as session:
            kinds = (await session.execute(select(Account.kind).order_by(Account.kind))).scalars()
            # bank, SME and fee accounts shared; one escrow per deal
            expected = ["escrow", "escrow", "organization", "organization", "platform_fee"]
            assert list(kinds) == expected

    async def test_deal_entries_are_oldest_first_with_postings_into_escrow_first(
        self, sessionmaker, clock, parties
    ):
        deal_id = await funded_deal(sessionmaker, clock, parties)
        async with sessionmaker.begin() as session:  # same instant: funding still sorts first
            await repay(session, await session.get(Deal, deal_id), 950_000, clock)
        async with sessionmaker() as session:
            found = await ledger.deal_entries(session, deal_id)
            escrow_id = (await repository.get_account(session, escrow_account(deal_id, CNY))).id
        assert [entry.kind for entry, _ in found] == ["funding", "repayment"]
        assert [p.amount_minor for p in found[0][1]] == [FUNDING_MINOR, ADVANCE_MINOR, FEE_MINOR]
        assert found[1][1][0].credit_account_id == escrow_id
        shaped = deal_ledger_read(found).model_dump(mode="json")
        assert shaped["items"][0]["reference"] == "FUND-1"
        amounts = [p["amount"] for p in shaped["items"][1]["postings"]]
        assert amounts == ["9500.00", "9000.00", "500.00"]  # in, to the bank, to the SME

    async def test_a_deal_without_money_has_no_entries(self, sessionmaker, clock, parties):
        async with sessionmaker.begin() as session:
            deal = await add_deal(session, clock, parties)
        async with sessionmaker() as session:
            assert await ledger.deal_entries(session, deal.id) == []


class TestPostRefuses:
    async def test_escrow_going_negative_is_refused_and_nothing_is_written(
        self, sessionmaker, clock, parties
    ):
        deal_id = await funded_deal(sessionmaker, clock, parties)
        before = await ledger_counts(sessionmaker)
        overdraw = EntrySpec(EntryKind.repayment, deal_id, CNY, None, (
            PostingSpec(escrow_account(deal_id, CNY), organization_account(parties.sme_id, CNY), 1),
        ))
        with pytest.raises(InvariantViolation, match="negative"):
            async with sessionmaker.begin() as session:
                await ledger.post(session, overdraw, clock=clock)
        assert await ledger_counts(sessionmaker) == before

    async def test_money_left_in_escrow_is_refused(self, sessionmaker, clock, parties):
        async with sessionmaker.begin() as session:
            deal = await add_deal(session, clock, parties)
        before = await ledger_counts(sessionmaker)
        parked = EntrySpec(EntryKind.funding, deal.id, CNY, None, (
            PostingSpec(
                organization_account(parties.bank_id, CNY), escrow_account(deal.id, CNY), 5
            ),
        ))
        with pytest.raises(InvariantViolation, match="holds 5"):
            async with sessionmaker.begin() as session:
                await ledger.post(session, parked, clock=clock)
        # The accounts it would have created are rolled back with it.
        assert await ledger_counts(sessionmaker) == before == (0, 0, 0, [])

    async def test_a_hand_built_entry_in_another_currency_is_refused(
        self, sessionmaker, clock, parties
    ):
        async with sessionmaker.begin() as session:
            deal = await add_deal(session, clock, parties)
        good = funding_entry(deal_id=deal.id, currency=CNY, bank_id=parties.bank_id,
                             sme_id=parties.sme_id, funding_minor=10, advance_minor=10,
                             fee_minor=0, reference=None)
        forged = object.__new__(EntrySpec)  # skips EntrySpec's own checks: post re-checks
        for name, value in {**vars(good), "currency": "USD"}.items():
            object.__setattr__(forged, name, value)
        with pytest.raises(InvariantViolation, match="currency"):
            async with sessionmaker.begin() as session:
                await ledger.post(session, forged, clock=clock)

    async def test_escrow_check_constraint_refuses_a_raw_negative_update(
        self, sessionmaker, clock, parties
    ):
        deal_id = await funded_deal(sessionmaker, clock, parties)
        escrow_id = await account_id(sessionmaker, escrow_account(deal_id, CNY))
        with pytest.raises(IntegrityError):
            async with sessionmaker.begin() as session:
                await session.execute(
                    update(Account).where(Account.id == escrow_id)
                    .values(debits_posted_minor=Account.credits_posted_minor + 1)
                )


# --------------------------------------------------------------------------- verify


@pytest.mark.corrupts_ledger
class TestVerify:
    async def test_an_empty_ledger_is_balanced(self, sessionmaker):
        async with sessionmaker() as session:
            report = await verify(session)
        assert (report.balanced, report.accounts_checked, report.entries_checked) == (True, 0, 0)

    async def test_a_corrupted_counter_is_reported_naming_its_account(
        self, sessionmaker, clock, parties
    ):
        await funded_deal(sessionmaker, clock, parties)
        bank_account_id = await account_id(sessionmaker, organization_account(parties.bank_id, CNY))
        async with sessionmaker.begin() as session:
            await session.execute(
                update(Account).where(Account.id == bank_account_id)
                .values(credits_posted_minor=Account.credits_posted_minor + 7)
            )
        async with sessionmaker() as session:
            report = await verify(session)
        assert not report.balanced
        assert {"account_id": str(bank_account_id), "what": "credits_posted_minor",
                "expected": 0, "found": 7} in report.mismatches
        assert {"currency": CNY, "what": "currency_total_cached", "expected": 0, "found": 7} in (
            report.mismatches
        )

    async def test_postings_written_behind_posts_back_are_caught(
        self, sessionmaker, clock, parties
    ):
        deal_id = await funded_deal(sessionmaker, clock, parties)
        bank_id = await account_id(sessionmaker, organization_account(parties.bank_id, CNY))
        escrow_id = await account_id(sessionmaker, escrow_account(deal_id, CNY))
        async with sessionmaker.begin() as session:
            deal = await session.get(Deal, deal_id)
            deal.status = "settled"
            now = clock.now()
            sneaky = JournalEntry(kind="repayment", deal_id=deal_id, currency=CNY, created_at=now)
            empty = JournalEntry(kind="repayment", deal_id=None, currency=CNY, created_at=now)
            session.add_all([sneaky, empty])
            await session.flush()
            session.add(Posting(entry_id=sneaky.id, debit_account_id=bank_id,
                                credit_account_id=escrow_id, amount_minor=5, currency="USD"))
        async with sessionmaker() as session:
            report = await verify(session)
        whats = {(m["what"], m.get("account_id") or m.get("entry_id") or m.get("deal_id"))
                 for m in report.mismatches}
        assert ("settled_escrow_not_zero", str(escrow_id)) in whats
        assert ("credits_posted_minor", str(escrow_id)) in whats
        assert ("debits_posted_minor", str(bank_id)) in whats
        assert ("posting_currency", str(sneaky.id)) in whats
        assert ("entry_without_postings", str(empty.id)) in whats
        assert ("entry_without_deal", str(empty.id)) in whats
        assert ("repaid_minor", str(deal_id)) in whats  # 5 paid into escrow, deal says 0
        assert report.entries_checked == 3

    async def test_deal_state_and_ledger_must_agree(self, sessionmaker, clock, parties):
        async with sessionmaker.begin() as session:
            unfunded = await add_deal(session, clock, parties)
            unfunded.status = "disbursed"  # says funded, but no funding entry exists
        async with sessionmaker() as session:
            report = await verify(session)
        assert report.mismatches == [{"deal_id": str(unfunded.id), "what": "funding_entries",
                                      "expected": 1, "found": 0}]


# ---------------------------------------------------------------- PostgreSQL writers


@pytest.mark.usefixtures("postgres_only")
class TestConcurrentWriters:
    async def test_concurrent_entries_neither_deadlock_nor_lose_updates(
        self, sessionmaker, clock, parties
    ):
        deal_ids = [await funded_deal(sessionmaker, clock, parties) for _ in range(2)]
        payment_minor, rounds = 1_000, 12

        async def pay(deal_id: uuid.UUID) -> None:
            async with sessionmaker.begin() as session:
                deal = (await session.execute(
                    select(Deal).where(Deal.id == deal_id).with_for_update()
                )).scalar_one()
                await repay(session, deal, payment_minor, clock)

        await asyncio.wait_for(
            asyncio.gather(*(pay(deal_ids[i % 2]) for i in range(rounds))), timeout=60
        )
        async with sessionmaker() as session:
            debtor = await ledger.balances(session, parties.debtor_id)
            assert debtor == [(CNY, -payment_minor * rounds)]
            report = await verify(session)
        assert report.balanced, report.mismatches

    async def test_a_first_time_account_race_yields_one_account(self, sessionmaker, clock, parties):
        key = organization_account(parties.sme_id, CNY)
        first = sessionmaker()
        second = sessionmaker()
        try:
            await first.begin()
            await second.begin()
            winner = (await repository.lock_accounts(first, [key], created_at=clock.now()))[key]
            # The second insert waits on the first's uncommitted row, then skips its own.
            racer = asyncio.create_task(
                repository.lock_accounts(second, [key], created_at=clock.now())
            )
            await asyncio.sleep(0.2)
            await first.commit()
            loser = (await asyncio.wait_for(racer, timeout=10))[key]
            await second.commit()
        finally:
            await first.close()
            await second.close()
        assert loser.id == winner.id


async def test_the_database_refuses_a_twin_account(sessionmaker, clock, parties):
    """The partial unique indexes, not just the code, keep one account per key."""
    twin = {"kind": AccountKind.organization, "organization_id": parties.sme_id, "currency": CNY,
            "debits_posted_minor": 0, "credits_posted_minor": 0, "created_at": clock.now()}
    with pytest.raises(IntegrityError):
        async with sessionmaker.begin() as session:
            session.add_all([Account(**twin), Account(**twin)])
