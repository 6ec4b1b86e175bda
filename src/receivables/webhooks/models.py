"""Webhook endpoints, the outbox of deliveries, and the log of every attempt.

An endpoint's `last_chain_index` is its cursor in the events feed (`AuditRecord.
chain_index`, assigned in commit order): the outbox job turns the events after it into
`WebhookDelivery` rows and advances it in one transaction, so a crash between the two
loses nothing and the unique (endpoint, event) pair duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from receivables.kit.models import id_field, instant_field

URL_CHARS_MAX = 2048
SECRET_CHARS_MAX = 256
EVENT_TYPE_CHARS_MAX = 40
RESPONSE_BODY_CHARS_MAX = 2048
"""What the delivery log keeps of a receiver's answer (Polar keeps 2048 too)."""
ERROR_CHARS_MAX = 500


class WebhookStatus(StrEnum):
    active = "active"
    """Receives deliveries."""
    disabled = "disabled"
    """Stopped by the platform after persistent failure; its deliveries wait."""
    deleted = "deleted"
    """Deleted by its organization: invisible, never delivered to again."""


class DeliveryStatus(StrEnum):
    pending = "pending"
    """Not yet answered with a 2xx; due again at `next_attempt_at`."""
    delivered = "delivered"
    """The receiver answered 2xx."""
    failed = "failed"
    """Every attempt failed; no more are made."""


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"
    __table_args__ = (Index("ix_webhook_endpoint_status_cursor", "status", "last_chain_index"),)

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    url: str = Field(max_length=URL_CHARS_MAX)
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    """Subscribed event types: exact names, `deal.*` prefixes or `*`."""
    secret: str = Field(max_length=SECRET_CHARS_MAX)
    """The HMAC key deliveries are signed with; shown once, at creation, never again."""
    status: str = Field(max_length=16, default=WebhookStatus.active)
    last_chain_index: int = Field(default=0, sa_type=BigInteger)
    """The feed position up to which events were turned into deliveries."""
    consecutive_failed_deliveries: int = 0
    """Deliveries that failed for good since the last success; at the limit: disabled."""
    created_at: dt.datetime = instant_field(index=True)
    disabled_at: dt.datetime | None = instant_field(nullable=True)
    disabled_reason: str | None = Field(default=None, max_length=ERROR_CHARS_MAX)
    deleted_at: dt.datetime | None = instant_field(nullable=True)


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: the outbox row, kept as the delivery log's head."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint_chain", "endpoint_id", "chain_index"),
    )

    id: uuid.UUID = id_field()
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoint.id")
    event_id: uuid.UUID = Field(foreign_key="audit_record.id")
    event_type: str = Field(max_length=EVENT_TYPE_CHARS_MAX)
    chain_index: int = Field(sa_type=BigInteger)
    """The event's feed position: orders the log and its pages."""
    payload: str = Field(sa_column=Column(Text, nullable=False))
    """The exact body sent: the event as `GET /events` shows it (signed per attempt)."""
    status: str = Field(max_length=16, default=DeliveryStatus.pending)
    attempt_count: int = 0
    next_attempt_at: dt.datetime | None = instant_field(nullable=True)
    """When the next attempt is due; null once delivered or failed."""
    created_at: dt.datetime = instant_field()
    last_attempt_at: dt.datetime | None = instant_field(nullable=True)
    delivered_at: dt.datetime | None = instant_field(nullable=True)
    failed_at: dt.datetime | None = instant_field(nullable=True)


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery, as the receiver answered it (or why it did not)."""

    __tablename__ = "webhook_attempt"

    id: uuid.UUID = id_field()
    delivery_id: uuid.UUID = Field(foreign_key="webhook_delivery.id", index=True)
    number: int
    """1 for the first attempt of its delivery."""
    attempted_at: dt.datetime = instant_field()
    status_code: int | None = None
    """The receiver's HTTP status; null when no answer came (timeout, refused, ...)."""
    response_body: str | None = Field(default=None, max_length=RESPONSE_BODY_CHARS_MAX)
    """The start of the receiver's answer, at most 2048 characters."""
    error: str | None = Field(default=None, max_length=ERROR_CHARS_MAX)
    duration_ms: int
