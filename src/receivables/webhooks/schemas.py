"""Webhook bodies and the event catalogue a subscription may name.

The catalogue is every event type the platform emits (API.md names most; the rest are
the receivable's side of auction and deal steps). A subscription lists exact types,
`<object>.*` for every type of one object, or `*` for all; any name outside the
catalogue is a 422 naming the field, so a typo never silently subscribes to nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from receivables.webhooks.models import (
    EVENT_TYPE_CHARS_MAX,
    SECRET_CHARS_MAX,
    URL_CHARS_MAX,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

EVENT_CATALOGUE: dict[str, str] = {
    "receivable.submitted": "A supplier submitted a receivable against its debtor.",
    "receivable.confirmed": "The debtor confirmed it owes the receivable.",
    "receivable.disputed": "The debtor disputed the receivable.",
    "receivable.amended": "The supplier corrected a disputed receivable.",
    "receivable.cancelled": "The supplier withdrew the receivable.",
    "receivable.expired": "The debtor did not answer within the confirmation window.",
    "receivable.listed": "The receivable was put up for auction.",
    "receivable.delisted": "Its auction was cancelled or expired without an award.",
    "receivable.awarded": "Its auction was awarded to a bank.",
    "receivable.unawarded": "The winning bank did not fund in time; the award lapsed.",
    "receivable.financed": "The winning bank funded the deal.",
    "receivable.overdue": "The due date passed without full repayment.",
    "receivable.defaulted": "The grace period passed without full repayment.",
    "receivable.settled": "The receivable was repaid in full.",
    "listing.opened": "A listing opened for sealed bids (every bank is told).",
    "listing.awarded": "The listing was awarded to one bid.",
    "listing.cancelled": "The supplier cancelled the listing.",
    "listing.expired": "The listing closed without an award.",
    "bid.placed": "Your bank placed a bid (the seller is told too).",
    "bid.revised": "Your bank revised its bid's rate.",
    "bid.withdrawn": "Your bank withdrew its bid.",
    "bid.won": "Your bid won the auction: a deal awaits funding.",
    "bid.lost": "Your bid lost the auction.",
    "deal.created": "A deal was opened from an award; it awaits funding.",
    "deal.funded": "The bank paid into escrow and the supplier was paid.",
    "deal.repaid": "The debtor (or, under recourse, the supplier) repaid part of the deal.",
    "deal.settled": "The deal was repaid in full and escrow paid out.",
    "deal.overdue": "The due date passed without full repayment.",
    "deal.defaulted": "The grace period passed without full repayment.",
    "deal.cancelled": "The bank did not fund within the funding window.",
    "arrears.listed": "A debtor joined the serious-arrears list (the debtor, supervisors).",
    "arrears.delisted": "A debtor left the serious-arrears list (the debtor, supervisors).",
    "webhook.created": "Your organization created a webhook.",
    "webhook.deleted": "Your organization deleted a webhook.",
    "webhook.disabled": "The platform disabled your webhook after persistent delivery failure.",
    "organization.created": "An organization was onboarded (operators and regulators).",
    "organization.suspended": "An organization was suspended (operators and regulators).",
    "user.created": "A user was created (operators and regulators).",
    "api_client.created": "An API client was created (operators and regulators).",
    "api_client.revoked": "An API client was revoked (operators and regulators).",
}
"""Every event type, with what it means; docs/integration.md lists the same."""

WILDCARD = "*"
EVENT_TYPES_PER_WEBHOOK_MAX = 50
OBJECT_PREFIXES = frozenset(name.split(".")[0] for name in EVENT_CATALOGUE)


def _known_pattern(pattern: str) -> str:
    if pattern == WILDCARD or pattern in EVENT_CATALOGUE:
        return pattern
    if pattern.endswith(".*") and pattern[:-2] in OBJECT_PREFIXES:
        return pattern
    raise ValueError(
        f"unknown event type {pattern!r}: use a catalogue name (e.g. deal.funded), "
        f"'<object>.*' for one of {sorted(OBJECT_PREFIXES)}, or '*'"
    )


EventPattern = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=EVENT_TYPE_CHARS_MAX),
    AfterValidator(_known_pattern),
]


def _distinct(patterns: list[str]) -> list[str]:
    return list(dict.fromkeys(patterns))


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=URL_CHARS_MAX)
    ] = Field(examples=["https://hooks.bank.example/receivables"])
    """Where to POST events: https and a public host (http and loopback only when the
    platform runs with RECEIVABLES_WEBHOOK_ALLOW_INSECURE=true)."""
    events: Annotated[
        list[EventPattern],
        Field(
            min_length=1,
            max_length=EVENT_TYPES_PER_WEBHOOK_MAX,
            examples=[["listing.opened", "bid.*", "deal.*"]],
        ),
        AfterValidator(_distinct),
    ]
    """Event types to receive: catalogue names, `<object>.*`, or `*` for all."""
    secret: (
        Annotated[
            str,
            StringConstraints(
                min_length=32, max_length=SECRET_CHARS_MAX, pattern=r"^[\x21-\x7e]+$"
            ),
        ]
        | None
    ) = None
    """Your own signing secret (32-256 visible ASCII characters); omit it and the
    platform generates one. Either way it is shown in the creation answer only."""


class WebhookRead(BaseModel):
    """A webhook as listed: never its secret."""

    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    events: list[str]
    status: str
    """`active`, or `disabled` after persistent delivery failure."""
    consecutive_failed_deliveries: int
    """Deliveries that failed every attempt since the last success."""
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    disabled_reason: str | None


class WebhookCreated(WebhookRead):
    secret: str
    """The signing secret, shown in this answer only: store it now."""


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    attempted_at: dt.datetime
    status_code: int | None
    """The receiver's HTTP status; null when it did not answer."""
    response_body: str | None
    """The first 2048 characters of the receiver's answer."""
    error: str | None
    """Why there was no usable answer: timeout, connection refused, refused address..."""
    duration_ms: int


class DeliveryRead(BaseModel):
    id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    """Also sent as `X-Event-Id`: de-duplicate on it."""
    event_type: str
    status: str
    """`pending` (due again at `next_attempt_at`), `delivered` or `failed`."""
    attempt_count: int
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    failed_at: dt.datetime | None
    attempts: list[AttemptRead]
    """Every attempt, oldest first."""


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None


def webhook_read(endpoint: WebhookEndpoint) -> WebhookRead:
    return WebhookRead(
        id=endpoint.id,
        organization_id=endpoint.organization_id,
        url=endpoint.url,
        events=list(endpoint.event_types),
        status=endpoint.status,
        consecutive_failed_deliveries=endpoint.consecutive_failed_deliveries,
        created_at=endpoint.created_at,
        disabled_at=endpoint.disabled_at,
        disabled_reason=endpoint.disabled_reason,
    )


def webhook_created(endpoint: WebhookEndpoint, secret: str) -> WebhookCreated:
    return WebhookCreated(**webhook_read(endpoint).model_dump(), secret=secret)


def delivery_read(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        webhook_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempt_count=delivery.attempt_count,
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        failed_at=delivery.failed_at,
        attempts=[AttemptRead.model_validate(a) for a in attempts],
    )
