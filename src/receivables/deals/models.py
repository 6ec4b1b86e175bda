"""Deals: one awarded listing, financed through escrow."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from receivables.deals.lifecycle import DealStatus
from receivables.kit.models import id_field, instant_field, minor_field, partial_unique_index

PAYMENT_REFERENCE_CHARS_MAX = 128


class Deal(SQLModel, table=True):
    __table_args__ = (
        partial_unique_index(
            "uq_deal_live_receivable", "receivable_id", where=text("status <> 'cancelled'")
        ),
        # Statistics (stats/queries.py) read deals through these alone on PostgreSQL
        # (index-only scans; SQLite ignores INCLUDE): by funding instant (a day's or a
        # month's figures, a range), by debtor (its whole record), and by status and due
        # date (arrears, deals past due; also the worker's overdue and default sweeps).
        # Measured in bench/README.md.
        Index(
            "ix_deal_funded_at_stats",
            "funded_at",
            postgresql_include=[
                "currency", "debtor_id", "sme_id", "status", "principal_minor", "face_value_minor",
                "repaid_minor", "discount_rate_ppm", "settled_at", "due_date",
            ],
        ),
        Index(
            "ix_deal_debtor_stats",
            "debtor_id",
            "currency",
            postgresql_include=[
                "funded_at", "sme_id", "status", "principal_minor", "face_value_minor",
                "repaid_minor", "settled_at", "due_date",
            ],
        ),
        Index(
            "ix_deal_status_due_date",
            "status",
            "due_date",
            postgresql_include=[
                "debtor_id", "currency", "face_value_minor", "repaid_minor", "funded_at", "settled_at",
            ],
        ),
        CheckConstraint("repaid_minor <= face_value_minor", name="repaid_within_face_value"),
        CheckConstraint("bank_received_minor <= principal_minor", name="bank_within_principal"),
    )

    id: uuid.UUID = id_field()
    listing_id: uuid.UUID = Field(foreign_key="listing.id", unique=True)
    bid_id: uuid.UUID = Field(foreign_key="bid.id", unique=True)
    receivable_id: uuid.UUID = Field(foreign_key="receivable.id", index=True)
    sme_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    bank_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    debtor_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    status: str = Field(max_length=20, default=DealStatus.awaiting_funding, index=True)
    currency: str = Field(max_length=3)
    face_value_minor: int = minor_field()
    principal_minor: int = minor_field()
    """P = round(F × advance ratio): fixed at award."""
    advance_ratio_ppm: int
    discount_rate_ppm: int
    fee_rate_ppm: int
    """Platform fee rate in force at award."""
    recourse: bool = False
    due_date: dt.date
    funding_deadline_at: dt.datetime = instant_field(index=True)
    value_date: dt.date | None = None
    """The funding day; NULL until funded (amounts are then quoted for today)."""
    discount_minor: int | None = minor_field(nullable=True)
    fee_minor: int | None = minor_field(nullable=True)
    funding_minor: int | None = minor_field(nullable=True)
    """P − D: what the bank paid into escrow."""
    advance_minor: int | None = minor_field(nullable=True)
    """P − D − fee: what escrow paid the SME."""
    funding_reference: str | None = Field(default=None, max_length=PAYMENT_REFERENCE_CHARS_MAX)
    repaid_minor: int = minor_field(default=0)
    """Everything paid into escrow towards F (by the debtor, or the SME under recourse)."""
    bank_received_minor: int = minor_field(default=0)
    """Repayments passed on to the bank; reaches P first (principal-first waterfall)."""
    funded_at: dt.datetime | None = instant_field(nullable=True)
    settled_at: dt.datetime | None = instant_field(nullable=True)
    created_at: dt.datetime = instant_field(index=True)
    updated_at: dt.datetime = instant_field()
