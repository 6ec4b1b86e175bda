"""The audit trail: one row per state transition, written in the transition's transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Identity, Integer
from sqlmodel import Field, SQLModel

from receivables.kit.models import instant_field


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"

    sequence: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"),
                         Identity(), primary_key=True),
    )
    """Append order (SQLite: its rowid)."""
    id: uuid.UUID = Field(default_factory=uuid.uuid4, unique=True)
    occurred_at: dt.datetime = instant_field(index=True)
    actor_role: str = Field(max_length=16)
    actor_organization_id: uuid.UUID | None = None
    actor_user_id: uuid.UUID | None = None
    action: str = Field(max_length=40)
    object_type: str = Field(max_length=20)
    object_id: uuid.UUID = Field(index=True)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str | None = Field(default=None, max_length=20)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
