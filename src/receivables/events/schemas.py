"""Event and audit bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel

from receivables.events.models import AuditRecord


class EventRead(BaseModel):
    """A thin event: what changed and its new state; fetch the object for details (the
    object's own endpoint applies who-may-see-what)."""

    id: uuid.UUID
    type: str
    created_at: dt.datetime
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventRead]
    next_cursor: str | None


def event_read(record: AuditRecord) -> EventRead:
    return EventRead(
        id=record.id,
        type=record.action,
        created_at=record.occurred_at,
        data={
            "object_type": record.object_type,
            "object_id": str(record.object_id),
            "from_state": record.from_state,
            "to_state": record.to_state,
        },
    )


class AuditRead(BaseModel):
    id: uuid.UUID
    chain_index: int | None
    prev_hash: str | None
    hash: str | None
    occurred_at: dt.datetime
    actor_role: str
    actor_organization_id: uuid.UUID | None
    actor_user_id: uuid.UUID | None
    actor_client_id: uuid.UUID | None
    action: str
    object_type: str
    object_id: uuid.UUID
    from_state: str | None
    to_state: str | None
    data: dict[str, Any]

    model_config = {"from_attributes": True}


class AuditPage(BaseModel):
    items: list[AuditRead]
    next_cursor: str | None


class ChainVerifyRead(BaseModel):
    valid: bool
    checked: int
    broken_at: dict[str, Any] | None
    """The first row whose link or content does not verify."""
