"""Receivables: the confirmed debts SMEs finance."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from receivables.kit.models import id_field, instant_field, minor_field
from receivables.receivables.lifecycle import ReceivableStatus

INVOICE_NUMBER_CHARS_MAX = 64
DESCRIPTION_CHARS_MAX = 1000


class Receivable(SQLModel, table=True):
    __table_args__ = (
        # Statistics (stats/queries.py) read receivables through these alone on
        # PostgreSQL (index-only scans; SQLite ignores INCLUDE): a debtor's whole record,
        # its confirmation latencies in order; and every debtor's record over a range
        # of submission days. Measured in bench/README.md.
        Index(
            "ix_receivable_debtor_confirmation",
            "debtor_id",
            "currency",
            "confirmation_seconds",
            postgresql_include=["status", "dispute_reason", "created_at"],
        ),
        Index(
            "ix_receivable_created_at_stats",
            "created_at",
            postgresql_include=["currency", "debtor_id", "confirmation_seconds", "status", "dispute_reason"],
        ),
    )

    id: uuid.UUID = id_field()
    seller_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    debtor_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    invoice_number: str = Field(max_length=INVOICE_NUMBER_CHARS_MAX)
    fingerprint: str = Field(max_length=64, index=True)
    """Registry key: seller and debtor credit codes plus the normalized invoice number."""
    active_fingerprint: str | None = Field(default=None, max_length=64, unique=True)
    """The fingerprint while the receivable blocks re-submission; NULL once cancelled or
    expired. UNIQUE (NULLs distinct) makes the registry rule hold under concurrency."""
    submitted_amount_minor: int = minor_field()
    """What the seller claimed; the debtor may confirm less."""
    face_value_minor: int = minor_field()
    """The amount owed: the submitted amount until confirmed, then the confirmed one."""
    currency: str = Field(max_length=3, default="CNY")
    issue_date: dt.date
    due_date: dt.date
    description: str | None = Field(default=None, max_length=DESCRIPTION_CHARS_MAX)
    status: str = Field(max_length=16, default=ReceivableStatus.submitted, index=True)
    dispute_reason: str | None = Field(default=None, max_length=DESCRIPTION_CHARS_MAX)
    submitted_at: dt.datetime = instant_field()
    """Start of the current confirmation request (reset by an amendment)."""
    confirmation_deadline_at: dt.datetime = instant_field(index=True)
    confirmed_at: dt.datetime | None = instant_field(nullable=True)
    confirmation_seconds: int | None = None
    """Latency of the debtor's answer, recorded for its track record."""
    created_at: dt.datetime = instant_field(index=True)
    updated_at: dt.datetime = instant_field()
