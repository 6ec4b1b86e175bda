"""Column helpers shared by every domain's table models."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import BigInteger, Index, TextClause
from sqlmodel import Field

from receivables.kit.db import UTCDateTime


def id_field() -> Any:
    """A random UUID primary key: never sequential, so ids reveal nothing (DESIGN.md)."""
    return Field(default_factory=uuid.uuid4, primary_key=True)


def instant_field(*, nullable: bool = False, index: bool = False) -> Any:
    """A UTC instant; values always come from the injected clock, never a DB default."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def minor_field(*, default: int | None = None, nullable: bool = False) -> Any:
    """Money in integer minor units (fen); BIGINT on every backend."""
    return Field(default=default, sa_type=BigInteger, nullable=nullable)


def ppm_field(*, nullable: bool = False) -> Any:
    """A rate or ratio in parts per million (0.0450 → 45000)."""
    return Field(default=None, nullable=nullable)


def partial_unique_index(name: str, *columns: str, where: TextClause) -> Index:
    """A UNIQUE index over the rows matching `where` only. Both backends take the same
    predicate; SQLAlchemy reads each dialect's keyword alone, so naming one would leave
    the other backend's index unique over every row."""
    return Index(name, *columns, unique=True, postgresql_where=where, sqlite_where=where)
