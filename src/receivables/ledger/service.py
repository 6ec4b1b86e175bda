"""The ledger's only writer (`post`) and its two readers for other domains.

`post` is TigerBeetle's create_transfers for one linked batch: resolve the accounts, lock
them in one global order, apply every posting to the cached counters while checking the
account flags, and append the rows. It flushes and never commits: the caller's
transaction (the deal transition, its audit event) commits or rolls back with it.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from receivables.auth.principal import Principal
from receivables.kit.clock import Clock
from receivables.kit.invariants import InvariantViolation, invariant
from receivables.ledger import repository
from receivables.ledger.entries import AccountKey, EntrySpec
from receivables.ledger.models import Account, AccountKind, JournalEntry, Posting

__all__ = ["balances", "deal_entries", "my_balances", "post"]


def _check_entry(entry: EntrySpec) -> None:
    """Re-state what EntrySpec guarantees (pair assertion: the spec could have been
    built by hand, or its checks weakened later)."""
    invariant(len(entry.postings) > 0, "an entry needs at least one posting")
    for posting in entry.postings:
        invariant(
            isinstance(posting.amount_minor, int) and posting.amount_minor > 0,
            f"posting amount must be a positive int, got {posting.amount_minor!r}",
        )
        invariant(posting.debit != posting.credit, "a posting needs two different accounts")
        for key in (posting.debit, posting.credit):
            invariant(
                key.currency == entry.currency,
                f"posting currency {key.currency} differs from entry currency {entry.currency}",
            )


async def _locked_accounts(
    session: AsyncSession, entry: EntrySpec, clock: Clock
) -> dict[AccountKey, Account]:
    """Resolve (creating on first use) and lock every account the entry touches."""
    keys = {key for p in entry.postings for key in (p.debit, p.credit)}
    locked = await repository.lock_accounts(session, list(keys), created_at=clock.now())
    invariant(set(locked) == keys, "every account of the entry was locked")
    for key, account in locked.items():
        invariant(
            account.kind == key.kind and account.currency == key.currency,
            f"account {account.id} does not match its key {key}",
        )
    return locked


def _escrow_ok(account: Account, debits_minor: int, credits_minor: int, *, final: bool) -> None:
    """Escrow flags: debits never exceed credits (at every posting, like linked transfers
    applied in order), and escrow is exactly zero once the entry is complete."""
    if account.kind != AccountKind.escrow:
        return
    invariant(
        debits_minor <= credits_minor,
        f"escrow {account.id} would go negative: debits {debits_minor} > credits {credits_minor}",
    )
    if final:
        invariant(
            debits_minor == credits_minor,
            f"escrow {account.id} holds {credits_minor - debits_minor} after the entry",
        )


def _apply(
    entry: EntrySpec, accounts: dict[AccountKey, Account]
) -> dict[uuid.UUID, tuple[int, int]]:
    """New (debits, credits) per account id, computed aside and checked before any ORM
    object is touched, so a refused entry leaves nothing dirty in the session."""
    counters = {
        a.id: (a.debits_posted_minor, a.credits_posted_minor) for a in accounts.values()
    }
    for posting in entry.postings:
        debit, credit = accounts[posting.debit], accounts[posting.credit]
        debits_minor, credits_minor = counters[debit.id]
        counters[debit.id] = (debits_minor + posting.amount_minor, credits_minor)
        debits_minor, credits_minor = counters[credit.id]
        counters[credit.id] = (debits_minor, credits_minor + posting.amount_minor)
        _escrow_ok(debit, *counters[debit.id], final=False)
    for account in accounts.values():
        _escrow_ok(account, *counters[account.id], final=True)
    return counters


async def post(session: AsyncSession, entry: EntrySpec, *, clock: Clock) -> JournalEntry:
    """Append one balanced entry and update the touched accounts' cached counters.

    Raises InvariantViolation (a bug in the caller, never a client error) for an empty
    or mixed-currency entry, or one that would leave escrow negative or non-zero; nothing
    is written then. Flushes; the caller's transaction commits.
    """
    _check_entry(entry)
    accounts = await _locked_accounts(session, entry, clock)
    counters = _apply(entry, accounts)
    for account in accounts.values():
        account.debits_posted_minor, account.credits_posted_minor = counters[account.id]
        # Both counters in every UPDATE, changed or not: equal SET clauses let the flush
        # send all the entry's accounts as one executemany instead of one UPDATE each.
        flag_modified(account, "debits_posted_minor")
        flag_modified(account, "credits_posted_minor")
    row = JournalEntry(
        kind=str(entry.kind), deal_id=entry.deal_id, currency=entry.currency,
        reference=entry.reference, created_at=clock.now(),
    )
    postings = [
        Posting(
            entry_id=row.id, debit_account_id=accounts[p.debit].id,
            credit_account_id=accounts[p.credit].id, amount_minor=p.amount_minor,
            currency=entry.currency,
        )
        for p in entry.postings
    ]
    await repository.insert_entry(session, row, postings)
    return row


async def balances(session: AsyncSession, organization_id: uuid.UUID) -> list[tuple[str, int]]:
    """(currency, balance_minor) of an organization, sorted by currency; balance is
    credits − debits (received through the platform minus paid in)."""
    return await repository.organization_balances(session, organization_id)


async def my_balances(session: AsyncSession, principal: Principal) -> list[tuple[str, int]]:
    """The caller's own balances (`GET /accounts/me`)."""
    organization_id = principal.organization_id
    if organization_id is None:
        # Only the platform's SYSTEM principal lacks one, and it never holds a token.
        raise InvariantViolation("a token always names an organization")
    return await balances(session, organization_id)


async def deal_entries(
    session: AsyncSession, deal_id: uuid.UUID
) -> list[tuple[JournalEntry, list[Posting]]]:
    """Every entry touching the deal's escrow, oldest first, each with its postings.
    Visibility of the deal is the caller's concern (the deals service answers 404)."""
    escrow_ids = await repository.deal_escrow_ids(session, deal_id)
    return await repository.entries_touching(session, escrow_ids)
