"""All SQL of the ledger: accounts by key, row locks, appends, and the sums `verify` needs.

Nothing here decides anything about money; `ledger.service.post` is the only writer and
calls these in a fixed order (resolve, lock in id order, update counters, append).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, and_, bindparam, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.deals.models import Deal
from receivables.kit.db import unnest_select
from receivables.kit.invariants import InvariantViolation
from receivables.ledger.entries import AccountKey
from receivables.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting

ENTRY_KIND_RANK = {EntryKind.funding: 0, EntryKind.repayment: 1, EntryKind.recourse_repayment: 1}
"""Tie-break for entries stamped with the same instant (a frozen simulated clock): a deal
is always funded before it is repaid. Entries carry no sequence column, so repayments at
the very same instant fall back to id order."""


# ------------------------------------------------------------------------------ accounts


_OWNER_COLUMN = {AccountKind.organization: Account.organization_id, AccountKind.escrow: Account.deal_id}
"""The column naming an account's owner, by kind (the fee account has none)."""


def _key_filter(key: AccountKey) -> ColumnElement[bool]:
    """The row a key names, matching the partial unique index of its kind."""
    conditions = [Account.kind == key.kind, Account.currency == key.currency]
    if key.kind in _OWNER_COLUMN:
        conditions.append(_OWNER_COLUMN[key.kind] == key.owner_id)
    return and_(*conditions)


async def get_account(session: AsyncSession, key: AccountKey) -> Account | None:
    # Oldest first, so that even if a uniqueness index were missing and a race had
    # produced a twin, every caller would keep choosing the same row.
    stmt = select(Account).where(_key_filter(key)).order_by(Account.created_at, Account.id)
    return (await session.execute(stmt.limit(1))).scalar_one_or_none()


def _account_values(key: AccountKey, created_at: dt.datetime) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "kind": str(key.kind),
        "organization_id": key.owner_id if key.kind == AccountKind.organization else None,
        "deal_id": key.owner_id if key.kind == AccountKind.escrow else None,
        "currency": key.currency,
        "debits_posted_minor": 0,
        "credits_posted_minor": 0,
        "created_at": created_at,
    }


def _key_of(account: Account) -> AccountKey:
    kind = AccountKind(account.kind)
    owner_id = {AccountKind.organization: account.organization_id, AccountKind.escrow: account.deal_id}
    return AccountKey(kind=kind, owner_id=owner_id.get(kind), currency=account.currency)


async def _insert_absent_accounts(
    session: AsyncSession, keys: Sequence[AccountKey], created_at: dt.datetime
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING for every key, in the keys' order, as one
    executemany (one round trip, one cached statement): an existing account is skipped,
    and when a concurrent transaction is creating the same account PostgreSQL waits for
    it and then skips ours instead of raising, so a first-time race never turns into a
    500 (SQLite writers are serialized anyway)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [_account_values(key, created_at) for key in keys]
    # The table, not the entity: the ORM's bulk insert would split the rows by which
    # owner column they fill, one statement per kind.
    await session.execute(insert(Account.__table__).on_conflict_do_nothing(), rows)


@functools.lru_cache(maxsize=32)
def _lock_statement(kinds: tuple[AccountKind, ...]) -> Select:
    """SELECT ... FOR UPDATE of the accounts of these kinds (key i's owner and currency
    bound as `owner_i`, `currency_i`), in id order. Built once per shape of entry (a
    funding touches two organizations, an escrow and the fee account): building the
    conditions cost more CPU than running them."""
    conditions = []
    for i, kind in enumerate(kinds):
        condition = [Account.kind == kind, Account.currency == bindparam(f"currency_{i}")]
        if kind in _OWNER_COLUMN:
            condition.append(_OWNER_COLUMN[kind] == bindparam(f"owner_{i}"))
        conditions.append(and_(*condition))
    return (
        select(Account)
        .where(or_(*conditions))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def lock_accounts(
    session: AsyncSession, keys: Sequence[AccountKey], *, created_at: dt.datetime
) -> dict[AccountKey, Account]:
    """Every account the keys name, created on first use and locked: two statements
    whatever the number of keys.

    Deadlock-free by two global orders: creation follows the keys' sorted order (a first
    insert waits on a concurrent twin's uncommitted row), and SELECT ... FOR UPDATE locks
    in ascending id order. populate_existing: the rows may already sit in the identity
    map with counters read before the lock; the locked, current values must replace them.
    (SQLite drops FOR UPDATE; its writers are serialized by BEGIN IMMEDIATE.)"""
    ordered = sorted(set(keys))
    await _insert_absent_accounts(session, ordered, created_at)
    params: dict[str, object] = {}
    for i, key in enumerate(ordered):
        params[f"currency_{i}"] = key.currency
        if key.kind in _OWNER_COLUMN:
            params[f"owner_{i}"] = key.owner_id
    stmt = _lock_statement(tuple(AccountKind(key.kind) for key in ordered))
    rows = list((await session.execute(stmt, params)).scalars())
    locked = {_key_of(account): account for account in rows}
    if len(locked) != len(rows) or set(locked) != set(ordered):
        # The partial unique indexes make a twin or a vanished row impossible: a bug.
        raise InvariantViolation(f"accounts {ordered} resolved to {sorted(locked)}")
    return locked


# ------------------------------------------------------------------------------ entries

_ENTRY, _POSTING = JournalEntry.__table__, Posting.__table__
_ENTRY_COLUMNS = tuple(c.name for c in _ENTRY.columns)
_POSTING_COLUMNS = tuple(c.name for c in _POSTING.columns)
_INSERT_ENTRY_WITH_POSTINGS = (
    insert(_POSTING)
    .from_select(_POSTING_COLUMNS, unnest_select(_POSTING, _POSTING_COLUMNS))
    .add_cte(insert(_ENTRY).values({
        name: bindparam(f"journal_{name}", type_=_ENTRY.c[name].type) for name in _ENTRY_COLUMNS
    }).cte("entry"))
)
"""PostgreSQL: the entry, in a data-modifying CTE the postings' foreign key then finds,
and its postings, in one round trip."""


async def insert_entry(
    session: AsyncSession, entry: JournalEntry, postings: Sequence[Posting]
) -> None:
    """Append an entry and its postings (Core: nothing reads them back in this
    transaction, and the unit of work cost more than the insert). SQLite has no
    data-modifying CTE: the entry first, then the postings."""
    if session.get_bind().dialect.name == "postgresql":
        params = {f"journal_{name}": getattr(entry, name) for name in _ENTRY_COLUMNS}
        params.update({name: [getattr(p, name) for p in postings] for name in _POSTING_COLUMNS})
        await session.execute(_INSERT_ENTRY_WITH_POSTINGS, params)
        return
    await session.execute(insert(_ENTRY), {name: getattr(entry, name) for name in _ENTRY_COLUMNS})
    await session.execute(insert(_POSTING), [{name: getattr(p, name) for name in _POSTING_COLUMNS} for p in postings])


def _entry_order(entry: JournalEntry) -> tuple[dt.datetime, int, uuid.UUID]:
    return (entry.created_at, ENTRY_KIND_RANK.get(entry.kind, 2), entry.id)


def _posting_order(escrow_ids: set[uuid.UUID]):
    """Money into escrow first, then out of it: the order the builders write them."""

    def key(posting: Posting) -> tuple[int, int, uuid.UUID, uuid.UUID]:
        into_escrow = 0 if posting.credit_account_id in escrow_ids else 1
        return (
            into_escrow, -posting.amount_minor, posting.debit_account_id, posting.credit_account_id
        )

    return key


async def deal_escrow_ids(session: AsyncSession, deal_id: uuid.UUID) -> set[uuid.UUID]:
    stmt = select(Account.id).where(Account.kind == AccountKind.escrow, Account.deal_id == deal_id)
    return set((await session.execute(stmt)).scalars())


async def entries_touching(
    session: AsyncSession, account_ids: set[uuid.UUID]
) -> list[tuple[JournalEntry, list[Posting]]]:
    """Every entry with a posting on one of `account_ids`, oldest first, with all of its
    postings."""
    if not account_ids:
        return []
    touching = select(Posting.entry_id).where(
        or_(Posting.debit_account_id.in_(account_ids), Posting.credit_account_id.in_(account_ids))
    )
    entries = list(
        (await session.execute(select(JournalEntry).where(JournalEntry.id.in_(touching)))).scalars()
    )
    postings_stmt = select(Posting).where(Posting.entry_id.in_([e.id for e in entries]))
    by_entry: dict[uuid.UUID, list[Posting]] = {entry.id: [] for entry in entries}
    for posting in (await session.execute(postings_stmt)).scalars():
        by_entry[posting.entry_id].append(posting)
    order = _posting_order(account_ids)
    return [
        (entry, sorted(by_entry[entry.id], key=order))
        for entry in sorted(entries, key=_entry_order)
    ]


# ----------------------------------------------------------------------------- balances


async def organization_balances(
    session: AsyncSession, organization_id: uuid.UUID
) -> list[tuple[str, int]]:
    """(currency, credits − debits) per currency, from the cached counters."""
    balance = func.sum(Account.credits_posted_minor - Account.debits_posted_minor)
    stmt = (
        select(Account.currency, balance)
        .where(Account.kind == AccountKind.organization, Account.organization_id == organization_id)
        .group_by(Account.currency)
        .order_by(Account.currency)
    )
    return [(currency, int(total)) for currency, total in (await session.execute(stmt)).all()]


# ------------------------------------------------------------------------------- verify


class AccountFacts(NamedTuple):
    """One account with its cached counters, the sums recomputed from its postings, and
    its deal's status (escrow only), all read by a single statement."""

    id: uuid.UUID
    kind: str
    currency: str
    deal_id: uuid.UUID | None
    deal_status: str | None
    debits_cached_minor: int
    credits_cached_minor: int
    debits_posted_minor: int
    credits_posted_minor: int


async def account_facts(session: AsyncSession) -> list[AccountFacts]:
    """Every account against its postings in ONE statement: on PostgreSQL at READ
    COMMITTED each statement reads one snapshot, so an entry committed meanwhile is
    either in both the counters and the sums or in neither (no false mismatch)."""
    total = func.sum(Posting.amount_minor).label("total")
    debits = (
        select(Posting.debit_account_id.label("account_id"), total)
        .group_by(Posting.debit_account_id)
        .subquery("debit_sums")
    )
    credits = (
        select(Posting.credit_account_id.label("account_id"), total)
        .group_by(Posting.credit_account_id)
        .subquery("credit_sums")
    )
    stmt = (
        select(
            Account.id, Account.kind, Account.currency, Account.deal_id, Deal.status,
            Account.debits_posted_minor, Account.credits_posted_minor,
            func.coalesce(debits.c.total, 0), func.coalesce(credits.c.total, 0),
        )
        .outerjoin(Deal, Deal.id == Account.deal_id)
        .outerjoin(debits, debits.c.account_id == Account.id)
        .outerjoin(credits, credits.c.account_id == Account.id)
        .order_by(Account.id)
    )
    rows = (await session.execute(stmt)).all()
    return [
        AccountFacts(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), int(r[7]), int(r[8]))
        for r in rows
    ]


async def count_entries(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(JournalEntry))).scalar_one())


async def entries_without_postings(session: AsyncSession) -> list[uuid.UUID]:
    has_posting = select(Posting.id).where(Posting.entry_id == JournalEntry.id).exists()
    stmt = select(JournalEntry.id).where(~has_posting).order_by(JournalEntry.id)
    return list((await session.execute(stmt)).scalars())


async def entries_without_deal(session: AsyncSession) -> list[uuid.UUID]:
    stmt = select(JournalEntry.id).where(JournalEntry.deal_id.is_(None)).order_by(JournalEntry.id)
    return list((await session.execute(stmt)).scalars())


async def postings_off_currency(
    session: AsyncSession,
) -> list[tuple[uuid.UUID, uuid.UUID, str, str]]:
    """(entry id, posting id, entry currency, offending currency) for every posting whose
    own currency, or either account's, differs from its entry's."""
    debit = Account.__table__.alias("debit_account")
    credit = Account.__table__.alias("credit_account")
    stmt: Select = (
        select(JournalEntry.id, Posting.id, JournalEntry.currency, Posting.currency,
               debit.c.currency, credit.c.currency)
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(debit, debit.c.id == Posting.debit_account_id)
        .join(credit, credit.c.id == Posting.credit_account_id)
        .where(or_(Posting.currency != JournalEntry.currency,
                   debit.c.currency != JournalEntry.currency,
                   credit.c.currency != JournalEntry.currency))
        .order_by(JournalEntry.id, Posting.id)
    )
    found = []
    for entry_id, posting_id, entry_ccy, posting_ccy, debit_ccy, credit_ccy in (
        await session.execute(stmt)
    ).all():
        odd = next(c for c in (posting_ccy, debit_ccy, credit_ccy) if c != entry_ccy)
        found.append((entry_id, posting_id, entry_ccy, odd))
    return found


async def deals_with_entry_counts(
    session: AsyncSession,
) -> list[tuple[uuid.UUID, str, int, int, int]]:
    """Per deal: (id, status, repaid_minor, funding entries, Σ repayments into escrow),
    the facts the state ↔ ledger check (RELIABILITY I5) compares."""
    funding_count = (
        select(func.count(JournalEntry.id))
        .where(JournalEntry.deal_id == Deal.id, JournalEntry.kind == EntryKind.funding)
        .scalar_subquery()
    )
    repaid_into_escrow = (
        select(func.coalesce(func.sum(Posting.amount_minor), 0))
        .select_from(Posting)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.credit_account_id)
        .where(
            JournalEntry.deal_id == Deal.id,
            JournalEntry.kind.in_([EntryKind.repayment, EntryKind.recourse_repayment]),
            Account.kind == AccountKind.escrow,
        )
        .scalar_subquery()
    )
    stmt = select(Deal.id, Deal.status, Deal.repaid_minor, funding_count, repaid_into_escrow)
    rows = (await session.execute(stmt.order_by(Deal.id))).all()
    return [(r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in rows]
