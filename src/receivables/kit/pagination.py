"""Keyset pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`.

The cursor encodes the sort key of the last item returned (creation instant and id), so
pages stay stable while rows are inserted and a page costs one index range scan.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_

from receivables.kit.errors import Unprocessable

PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200
CURSOR_CHARS_MAX = 256

T = TypeVar("T")


class InvalidCursor(Unprocessable):
    code, title = "invalid_cursor", "The cursor is not one this API issued"


@dataclass(frozen=True)
class Position:
    """Sort key of the last row of the previous page."""

    created_at: dt.datetime
    id: uuid.UUID


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: Position | None


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position.created_at.isoformat(), str(position.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, id_ = json.loads(base64.urlsafe_b64decode(padded.encode()))
        instant = dt.datetime.fromisoformat(created_at)
        if instant.tzinfo is None:
            raise ValueError("naive")
        return Position(instant, uuid.UUID(id_))
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc


def page_request(
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)] = PAGE_LIMIT_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)] = None,
) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageParams = Annotated[PageRequest, Depends(page_request)]


def next_cursor(rows: list, limit: int) -> str | None:
    """Repositories fetch limit+1 rows: a row beyond the limit means there is a next page."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(Position(last.created_at, last.id))


def keyset_page(stmt: Select, model: type, page: PageRequest) -> Select:
    """One page of `stmt` in (created_at, id) order, plus one row that tells whether a
    next page exists. `model` must have `created_at` and `id` columns."""
    created_at, id_ = model.created_at, model.id
    if page.after is not None:
        stmt = stmt.where(
            or_(
                created_at > page.after.created_at,
                and_(created_at == page.after.created_at, id_ > page.after.id),
            )
        )
    return stmt.order_by(created_at, id_).limit(page.limit + 1)
