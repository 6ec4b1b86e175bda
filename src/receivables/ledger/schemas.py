"""Ledger response bodies. Money leaves the ledger as decimal strings (kit.money), here only."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from receivables.kit.money import format_amount
from receivables.ledger.models import JournalEntry, Posting
from receivables.ledger.verify import VerifyReport


class BalanceRead(BaseModel):
    currency: str
    balance: str
    """Credits − debits as a decimal string; negative for a net payer ("-1.50")."""


class AccountsRead(BaseModel):
    organization_id: uuid.UUID
    balances: list[BalanceRead]


class VerifyRead(BaseModel):
    balanced: bool
    accounts_checked: int
    entries_checked: int
    mismatches: list[dict[str, Any]]
    """Each names the account, entry, posting, deal or currency, `what` differs, and the
    `expected` and `found` values (money in minor units)."""


class PostingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    debit_account_id: uuid.UUID
    """The account the money left."""
    credit_account_id: uuid.UUID
    """The account the money reached."""
    amount: str
    currency: str


class JournalEntryRead(BaseModel):
    id: uuid.UUID
    kind: str
    created_at: dt.datetime
    reference: str | None
    postings: list[PostingRead]


class DealLedgerRead(BaseModel):
    items: list[JournalEntryRead]


def accounts_read(organization_id: uuid.UUID, rows: Iterable[tuple[str, int]]) -> AccountsRead:
    balances = [BalanceRead(currency=c, balance=format_amount(minor)) for c, minor in rows]
    return AccountsRead(organization_id=organization_id, balances=balances)


def verify_read(report: VerifyReport) -> VerifyRead:
    return VerifyRead(
        balanced=report.balanced,
        accounts_checked=report.accounts_checked,
        entries_checked=report.entries_checked,
        mismatches=report.mismatches,
    )


def posting_read(posting: Posting) -> PostingRead:
    return PostingRead(
        debit_account_id=posting.debit_account_id,
        credit_account_id=posting.credit_account_id,
        amount=format_amount(posting.amount_minor),
        currency=posting.currency,
    )


def entry_read(entry: JournalEntry, postings: Iterable[Posting]) -> JournalEntryRead:
    """One journal entry as `GET /deals/{id}/ledger` shows it."""
    return JournalEntryRead(
        id=entry.id,
        kind=entry.kind,
        created_at=entry.created_at,
        reference=entry.reference,
        postings=[posting_read(p) for p in postings],
    )


def deal_ledger_read(entries: Iterable[tuple[JournalEntry, list[Posting]]]) -> DealLedgerRead:
    """`ledger.service.deal_entries(...)` shaped for `GET /deals/{id}/ledger`."""
    return DealLedgerRead(items=[entry_read(entry, postings) for entry, postings in entries])
