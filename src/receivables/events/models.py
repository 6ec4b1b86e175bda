"""The audit trail, which is also the events feed.

One row per state change, written in the change's own transaction. Just before that
transaction commits, its rows are sealed into one platform-wide hash chain under a lock
on the chain's head: `chain_index` is therefore assigned in commit order, which makes
it both the tamper-evident order (`GET /audit/verify`) and a feed cursor that never
skips a row committed late (`GET /events?after=`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Identity, Integer, LargeBinary
from sqlmodel import Field, SQLModel

from receivables.kit.models import instant_field

HASH_CHARS = 64


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"

    sequence: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), Identity(), primary_key=True),
    )
    """Insertion order (SQLite: its rowid); not commit order — see chain_index."""
    id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True)
    """The event id clients see and de-duplicate on."""
    chain_index: int | None = Field(default=None, sa_type=BigInteger, unique=True)
    """Position in the hash chain, assigned at commit; NULL only inside its transaction."""
    prev_hash: str | None = Field(default=None, max_length=HASH_CHARS)
    hash: str | None = Field(default=None, max_length=HASH_CHARS)
    occurred_at: dt.datetime = instant_field(index=True)
    actor_role: str = Field(max_length=16)
    actor_organization_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    actor_client_id: uuid.UUID | None = None
    """The API client (machine-to-machine credential) that made the call, if any."""
    action: str = Field(max_length=40, index=True)
    """The event type, e.g. `receivable.confirmed`, `bid.placed`, `deal.settled`."""
    object_type: str = Field(max_length=20)
    object_id: uuid.UUID = Field(index=True)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str | None = Field(default=None, max_length=20)
    audience_kind: str | None = Field(default=None, max_length=16)
    """Every organization of this kind receives the event (e.g. all banks: a new listing)."""
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    seal_before: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """PostgreSQL: the canonical bytes before the chain index (`chain.canonical_parts`),
    which the sealing trigger hashes at commit and then clears; NULL once sealed."""
    seal_after: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """PostgreSQL: the canonical bytes after the chain index; NULL once sealed."""


@dataclass(slots=True)
class NewAuditRecord:
    """An `AuditRecord` being recorded, until its transaction commits and writes it
    (`events.repository.insert_records`). A plain dataclass with the table's field names:
    nothing reads it through the ORM, and building table models cost about 3 % of a
    write's CPU (docs/performance.md)."""

    id: uuid.UUID
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
    audience_kind: str | None
    data: dict[str, Any]
    chain_index: int | None = None
    prev_hash: str | None = None
    hash: str | None = None
    seal_before: bytes | None = None
    seal_after: bytes | None = None


class EventRecipient(SQLModel, table=True):
    """An organization the event concerns; its feed is an index range scan."""

    __tablename__ = "event_recipient"

    organization_id: uuid.UUID = Field(foreign_key="organization.id", primary_key=True)
    audit_id: uuid.UUID = Field(foreign_key="audit_record.id", primary_key=True)


class AuditChainHead(SQLModel, table=True):
    """The single row whose lock orders every sealing transaction."""

    __tablename__ = "audit_chain_head"

    id: int = Field(default=1, primary_key=True)
    last_index: int = Field(default=0, sa_type=BigInteger)
    last_hash: str = Field(default="0" * HASH_CHARS, max_length=HASH_CHARS)
