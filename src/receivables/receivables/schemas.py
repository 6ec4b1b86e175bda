"""Request and response bodies for receivables.

Money crosses the API as a decimal string with two places ("1000000.00") and lives in
the database as integer minor units; `kit/money.py` converts between the two, here and
nowhere else in this domain. What can be checked from the payload alone is checked here
(422 `validation_error` naming the field); rules that need the clock or the database
(due date after today, the debtor, the registry) are the service's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from receivables.kit import money
from receivables.receivables.fingerprint import normalize_invoice_number
from receivables.receivables.lifecycle import ReceivableStatus
from receivables.receivables.models import DESCRIPTION_CHARS_MAX, INVOICE_NUMBER_CHARS_MAX

CURRENCY_DEFAULT = "CNY"
DISPUTE_REASON_CHARS_MAX = DESCRIPTION_CHARS_MAX


def _positive_amount(text: str) -> str:
    """Validate an amount string: strict format (kit/money), and more than zero."""
    if money.parse_amount(text) <= 0:
        raise ValueError("amount must be greater than 0")
    return text


def _has_letter_or_digit(text: str) -> str:
    """An invoice number made only of punctuation would collide with every other such
    number in the registry, so it is refused."""
    if not normalize_invoice_number(text):
        raise ValueError("invoice number must contain at least one letter or digit")
    return text


def _format_minor(value: Any) -> Any:
    """Responses are built from the ORM row, whose money is in minor units."""
    return money.format_amount(value) if isinstance(value, int) else value


PositiveAmount = Annotated[
    str,
    Field(
        max_length=24, examples=["1000000.00"], description="Decimal string, at most two places, > 0"
    ),
    AfterValidator(_positive_amount),
]
InvoiceNumber = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=INVOICE_NUMBER_CHARS_MAX),
    AfterValidator(_has_letter_or_digit),
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=DESCRIPTION_CHARS_MAX)
]
CurrencyCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$", max_length=3), Field(description="ISO 4217 code")
]
AmountText = Annotated[str, BeforeValidator(_format_minor)]


def _after_issue_date(due_date: dt.date | None, info: ValidationInfo) -> dt.date | None:
    """Both dates in one payload: the due date must come after the issue date."""
    issue_date = info.data.get("issue_date")
    if due_date is not None and issue_date is not None and due_date <= issue_date:
        raise ValueError("due_date must be after issue_date")
    return due_date


class ReceivableCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    debtor_id: uuid.UUID
    """The core enterprise that owes the money."""
    invoice_number: InvoiceNumber
    face_value: PositiveAmount
    currency: CurrencyCode = CURRENCY_DEFAULT
    issue_date: dt.date
    due_date: dt.date
    description: Description | None = None

    _dates_in_order = field_validator("due_date")(_after_issue_date)

    @property
    def face_value_minor(self) -> int:
        return money.parse_amount(self.face_value)


class ReceivableConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveAmount | None = None
    """The amount the debtor confirms; at most the submitted amount (default: as submitted)."""
    due_date: dt.date | None = None
    """The due date the debtor confirms (default: as submitted)."""

    @property
    def amount_minor(self) -> int | None:
        return None if self.amount is None else money.parse_amount(self.amount)


class ReceivableDispute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=DISPUTE_REASON_CHARS_MAX),
    ]
    """Why the debtor does not confirm; shown to the seller, who may amend."""


AMENDABLE_FIELDS = ("invoice_number", "face_value", "issue_date", "due_date", "description")
NOT_NULLABLE_AMENDABLE_FIELDS = ("invoice_number", "face_value", "issue_date", "due_date")


class ReceivableAmend(BaseModel):
    """The seller's correction of a disputed receivable: only the fields sent change
    (`description: null` clears the description)."""

    model_config = ConfigDict(extra="forbid")

    invoice_number: InvoiceNumber | None = None
    face_value: PositiveAmount | None = None
    issue_date: dt.date | None = None
    due_date: dt.date | None = None
    description: Description | None = None

    _dates_in_order = field_validator("due_date")(_after_issue_date)

    @field_validator(*NOT_NULLABLE_AMENDABLE_FIELDS)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for fields sent: an explicit null cannot erase a required field.
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> ReceivableAmend:
        if not self.model_fields_set:
            raise ValueError(f"send at least one of: {', '.join(AMENDABLE_FIELDS)}")
        return self

    @property
    def face_value_minor(self) -> int | None:
        return None if self.face_value is None else money.parse_amount(self.face_value)


class ReceivableRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: ReceivableStatus
    seller_id: uuid.UUID
    debtor_id: uuid.UUID
    invoice_number: str
    face_value: Annotated[AmountText, Field(validation_alias="face_value_minor")]
    """The amount owed: as submitted until confirmed, then as confirmed."""
    submitted_amount: Annotated[AmountText, Field(validation_alias="submitted_amount_minor")]
    """What the seller claimed."""
    currency: str
    issue_date: dt.date
    due_date: dt.date
    description: str | None
    dispute_reason: str | None
    confirmation_deadline_at: dt.datetime
    """The debtor must answer by then, or the receivable expires."""
    confirmed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
