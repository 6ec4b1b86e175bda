"""The shapes the API answers with, as TypedDicts: at run time plain dicts (exactly the
JSON of API.md), to a type checker every field named. Money and rates are decimal
strings (`"1000000.00"`, `"0.0450"`), ids UUID strings, instants RFC 3339 strings."""

from __future__ import annotations

from typing import Any, Generic, TypedDict, TypeVar

T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Token(TypedDict, total=False):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class OrganizationRef(TypedDict):
    id: str
    name: str
    kind: str


class Me(TypedDict, total=False):
    user_id: str | None
    client_id: str | None
    email: str | None
    organization: OrganizationRef
    role: str


class Organization(TypedDict, total=False):
    id: str
    name: str
    kind: str
    credit_code: str
    size: str
    sector: str
    status: str
    created_at: str


class User(TypedDict, total=False):
    id: str
    organization_id: str
    email: str
    created_at: str


class ApiClient(TypedDict, total=False):
    client_id: str
    organization_id: str
    name: str | None
    created_at: str
    revoked_at: str | None


class ApiClientCreated(ApiClient, total=False):
    client_secret: str
    """Shown once."""


class Receivable(TypedDict, total=False):
    id: str
    status: str
    seller_id: str
    debtor_id: str
    invoice_number: str
    face_value: str
    submitted_amount: str
    currency: str
    issue_date: str
    due_date: str
    description: str | None
    dispute_reason: str | None
    confirmation_deadline_at: str
    confirmed_at: str | None
    created_at: str
    updated_at: str


class Listing(TypedDict, total=False):
    id: str
    receivable_id: str
    seller_id: str
    status: str
    currency: str
    awarded_bid_id: str | None
    created_at: str
    updated_at: str
    max_discount_rate: str
    advance_ratio: str
    recourse: bool
    auto_award: bool
    closes_at: str
    face_value: str
    due_date: str
    debtor_id: str
    debtor_name: str
    bid_count: int


class Bid(TypedDict, total=False):
    id: str
    listing_id: str
    bank_id: str
    discount_rate: str
    status: str
    created_at: str
    updated_at: str
    rate_set_at: str


class Deal(TypedDict, total=False):
    id: str
    listing_id: str
    receivable_id: str
    sme_id: str
    bank_id: str
    debtor_id: str
    status: str
    currency: str
    face_value: str
    advance_ratio: str
    recourse: bool
    principal: str
    discount_rate: str
    discount_amount: str
    fee_amount: str
    funding_amount: str
    """What the bank pays in to fund (P − D)."""
    advance_amount: str
    value_date: str
    due_date: str
    funding_deadline: str
    repaid_amount: str
    escrow_balance: str
    amount_due: str
    """The debtor's view: what is still owed."""
    funded_at: str | None
    settled_at: str | None
    created_at: str
    updated_at: str


class Posting(TypedDict):
    debit_account_id: str
    credit_account_id: str
    amount: str
    currency: str


class LedgerEntry(TypedDict, total=False):
    id: str
    kind: str
    reference: str | None
    created_at: str
    postings: list[Posting]


class Balance(TypedDict):
    currency: str
    balance: str


class Accounts(TypedDict):
    organization_id: str
    balances: list[Balance]


class EventData(TypedDict):
    object_type: str
    object_id: str
    from_state: str | None
    to_state: str | None


class Event(TypedDict):
    """A thin event: fetch the object (`get_deal(...)`) for its details."""

    id: str
    type: str
    created_at: str
    data: EventData


class Webhook(TypedDict, total=False):
    id: str
    organization_id: str
    url: str
    events: list[str]
    status: str
    consecutive_failed_deliveries: int
    created_at: str
    disabled_at: str | None
    disabled_reason: str | None


class WebhookCreated(Webhook, total=False):
    secret: str
    """Shown once: store it to verify signatures."""


class Attempt(TypedDict):
    number: int
    attempted_at: str
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int


class Delivery(TypedDict):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: str
    attempt_count: int
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None
    failed_at: str | None
    attempts: list[Attempt]


JSON = dict[str, Any]
