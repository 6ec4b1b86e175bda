"""Deal bodies. The debtor's view omits everything about the bank's pricing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from receivables.deals.models import PAYMENT_REFERENCE_CHARS_MAX, Deal
from receivables.kit import money

AMOUNT_CHARS_MAX = 24


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[str, Field(max_length=AMOUNT_CHARS_MAX, examples=["1000000.00"])]
    payment_reference: Annotated[str, Field(min_length=1, max_length=PAYMENT_REFERENCE_CHARS_MAX)]
    """The payer's own reference for the transfer, kept on the ledger entry."""

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: str) -> str:
        if money.parse_amount(value) <= 0:
            raise ValueError("the amount must be greater than zero")
        return value

    @property
    def amount_minor(self) -> int:
        return money.parse_amount(self.amount)


class DealRead(BaseModel):
    id: uuid.UUID
    listing_id: uuid.UUID
    receivable_id: uuid.UUID
    sme_id: uuid.UUID
    bank_id: uuid.UUID
    debtor_id: uuid.UUID
    status: str
    currency: str
    recourse: bool
    face_value: str
    advance_ratio: str
    principal: str
    """P = round(F × advance ratio)."""
    discount_rate: str
    discount_amount: str
    """D = round(P × r × days / basis), days from value_date to due_date."""
    fee_amount: str
    funding_amount: str
    """P − D: what the bank pays into escrow."""
    advance_amount: str
    """P − D − fee: what escrow pays the SME at funding."""
    value_date: dt.date
    """The funding day; until funded, today (the amounts are what funding today takes)."""
    due_date: dt.date
    funding_deadline: dt.datetime
    repaid_amount: str
    amount_due: str
    escrow_balance: str
    funded_at: dt.datetime | None
    settled_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DealDebtorRead(BaseModel):
    """What the debtor may know: what it owes and to whom, never the bank's price."""

    id: uuid.UUID
    receivable_id: uuid.UUID
    bank_id: uuid.UUID
    debtor_id: uuid.UUID
    status: str
    currency: str
    face_value: str
    due_date: dt.date
    repaid_amount: str
    amount_due: str


def current_amounts(deal: Deal, today: dt.date) -> money.DealAmounts:
    """Stored amounts once funded; until then, what funding today would take."""
    value_date = deal.value_date or today
    return money.deal_amounts(
        face_value_minor=deal.face_value_minor,
        advance_ratio_ppm=deal.advance_ratio_ppm,
        discount_rate_ppm=deal.discount_rate_ppm,
        fee_rate_ppm=deal.fee_rate_ppm,
        value_date=value_date,
        due_date=deal.due_date,
        day_count_basis=money.day_count_basis(deal.currency),
    )


def deal_read(deal: Deal, *, today: dt.date, escrow_balance_minor: int = 0) -> DealRead:
    amounts = current_amounts(deal, today)
    fmt = money.format_amount
    return DealRead(
        id=deal.id, listing_id=deal.listing_id, receivable_id=deal.receivable_id,
        sme_id=deal.sme_id, bank_id=deal.bank_id, debtor_id=deal.debtor_id,
        status=deal.status, currency=deal.currency, recourse=deal.recourse,
        face_value=fmt(deal.face_value_minor),
        advance_ratio=money.format_rate(deal.advance_ratio_ppm),
        principal=fmt(amounts.principal_minor),
        discount_rate=money.format_rate(deal.discount_rate_ppm),
        discount_amount=fmt(amounts.discount_minor),
        fee_amount=fmt(amounts.fee_minor),
        funding_amount=fmt(amounts.funding_minor),
        advance_amount=fmt(amounts.advance_minor),
        value_date=deal.value_date or today,
        due_date=deal.due_date,
        funding_deadline=deal.funding_deadline_at,
        repaid_amount=fmt(deal.repaid_minor),
        amount_due=fmt(money.remaining_due(deal.face_value_minor, deal.repaid_minor)),
        escrow_balance=fmt(escrow_balance_minor),
        funded_at=deal.funded_at, settled_at=deal.settled_at,
        created_at=deal.created_at, updated_at=deal.updated_at,
    )


def deal_debtor_read(deal: Deal) -> DealDebtorRead:
    fmt = money.format_amount
    return DealDebtorRead(
        id=deal.id, receivable_id=deal.receivable_id, bank_id=deal.bank_id,
        debtor_id=deal.debtor_id, status=deal.status, currency=deal.currency,
        face_value=fmt(deal.face_value_minor), due_date=deal.due_date,
        repaid_amount=fmt(deal.repaid_minor),
        amount_due=fmt(money.remaining_due(deal.face_value_minor, deal.repaid_minor)),
    )
