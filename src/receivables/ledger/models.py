"""Double-entry ledger: accounts, append-only journal entries and their postings.

A posting moves `amount_minor` from its debit account to its credit account, so every
posting balances by construction. An account's balance is credits − debits: money the
owner has received through the platform minus what it paid in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from receivables.kit.models import id_field, instant_field, minor_field, partial_unique_index


class AccountKind(StrEnum):
    organization = "organization"
    """An organization's position in one currency (may go negative: a bank after funding)."""
    escrow = "escrow"
    """One per deal; debits must never exceed credits, and it is zero after every call."""
    platform_fee = "platform_fee"
    """The platform's fee revenue in one currency."""


class EntryKind(StrEnum):
    funding = "funding"
    repayment = "repayment"
    recourse_repayment = "recourse_repayment"


class Account(SQLModel, table=True):
    __table_args__ = (
        # One account per owner and currency; partial because NULLs are distinct in UNIQUE.
        partial_unique_index(
            "uq_account_organization_currency", "organization_id", "currency",
            where=text("kind = 'organization'"),
        ),
        partial_unique_index("uq_account_escrow_deal", "deal_id", where=text("kind = 'escrow'")),
        partial_unique_index(
            "uq_account_platform_fee_currency", "currency", where=text("kind = 'platform_fee'")
        ),
        CheckConstraint(
            "kind <> 'escrow' OR debits_posted_minor <= credits_posted_minor",
            name="escrow_not_negative",
        ),
        CheckConstraint(
            "debits_posted_minor >= 0 AND credits_posted_minor >= 0", name="counters_not_negative"
        ),
    )

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=16)
    organization_id: uuid.UUID | None = Field(default=None, foreign_key="organization.id", index=True)
    deal_id: uuid.UUID | None = Field(default=None, foreign_key="deal.id", index=True)
    currency: str = Field(max_length=3)
    debits_posted_minor: int = minor_field(default=0)
    """Cached Σ of postings debiting this account (TigerBeetle's debits_posted)."""
    credits_posted_minor: int = minor_field(default=0)
    created_at: dt.datetime = instant_field()


class JournalEntry(SQLModel, table=True):
    __tablename__ = "journal_entry"

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=24)
    deal_id: uuid.UUID | None = Field(default=None, foreign_key="deal.id", index=True)
    currency: str = Field(max_length=3)
    reference: str | None = Field(default=None, max_length=128)
    """The payer's payment reference, for reconciliation with bank statements."""
    created_at: dt.datetime = instant_field(index=True)


class Posting(SQLModel, table=True):
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        Index("ix_posting_debit_account", "debit_account_id"),
        Index("ix_posting_credit_account", "credit_account_id"),
    )

    id: uuid.UUID = id_field()
    entry_id: uuid.UUID = Field(foreign_key="journal_entry.id", index=True)
    debit_account_id: uuid.UUID = Field(foreign_key="account.id")
    credit_account_id: uuid.UUID = Field(foreign_key="account.id")
    amount_minor: int = minor_field()
    currency: str = Field(max_length=3)
