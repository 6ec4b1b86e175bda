"""Keyset pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`.

The cursor encodes the sort key of the last item returned (creation instant and id, or
for tables read in feed order the one growing integer position), so pages stay stable
while rows are inserted and a page costs one index range scan.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, or_

from receivables.kit.errors import Unprocessable

PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200
CURSOR_CHARS_MAX = 256

T = TypeVar("T")

LimitQuery = Annotated[int, Query(ge=1, le=PAGE_LIMIT_MAX)]
CursorQuery = Annotated[str | None, Query(max_length=CURSOR_CHARS_MAX)]
"""The two query parameters of every list, for routes that read them by hand."""


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


def _to_base64(raw: bytes) -> str:
    # URL-safe and unpadded: a cursor travels in a query string as it is.
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _from_base64(cursor: str) -> bytes:
    """Raises ValueError (binascii.Error is one) for text that is not such base64.
    Characters outside the alphabet, non-ASCII ones included, are skipped (not refused):
    what these cursors have always accepted."""
    return base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())


def encode_cursor(position: Position) -> str:
    return _to_base64(json.dumps([position.created_at.isoformat(), str(position.id)]).encode())


def decode_cursor(cursor: str) -> Position:
    try:
        created_at, id_ = json.loads(_from_base64(cursor))
        instant = dt.datetime.fromisoformat(created_at)
        if instant.tzinfo is None:
            raise ValueError("naive")
        return Position(instant, uuid.UUID(id_))
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc


async def page_request(limit: LimitQuery = PAGE_LIMIT_DEFAULT, cursor: CursorQuery = None) -> PageRequest:
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


PageParams = Annotated[PageRequest, Depends(page_request)]


def _position_of(row: Any) -> str:
    return encode_cursor(Position(row.created_at, row.id))


def next_cursor(
    rows: list, limit: int, cursor_of: Callable[[Any], str] = _position_of
) -> str | None:
    """Repositories fetch limit+1 rows: a row beyond the limit means there is a next page.
    Its cursor names the last row returned: by default its (created_at, id)."""
    if len(rows) <= limit:
        return None
    return cursor_of(rows[limit - 1])


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


@dataclass(frozen=True)
class IndexCursor:
    """Cursors of a table read in the order of one unique, growing integer (a position in
    the events feed): base64 of `prefix:index`; the prefix keeps one list's cursors out
    of another's."""

    prefix: str

    def encode(self, index: int) -> str:
        return _to_base64(f"{self.prefix}:{index}".encode())

    def decode(self, cursor: str | None) -> int:
        """The index the cursor names; 0 (the start) without one."""
        if not cursor:
            return 0
        try:
            # Unlike (created_at, id) cursors, these have always refused non-ASCII text
            # rather than skip it: which cursors a route refuses is part of its contract.
            if not cursor.isascii():
                raise ValueError(cursor)
            prefix, index = _from_base64(cursor).decode().split(":")
            if prefix != self.prefix or int(index) < 0:
                raise ValueError(prefix)
            return int(index)
        except ValueError:  # binascii.Error and UnicodeDecodeError among them
            raise InvalidCursor() from None


def index_page(stmt: Select, column: ColumnElement[int], *, after: int, limit: int) -> Select:
    """One page of `stmt` in `column` order (unique, e.g. a feed position) after the
    index `after`, plus one row that tells whether a next page exists."""
    return stmt.where(column > after).order_by(column).limit(limit + 1)
