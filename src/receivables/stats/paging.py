"""Pages of the statistics lists: `?limit=` rows from the offset an opaque `?cursor=`
names. The lists are a few hundred aggregated rows, sorted after aggregation, so an
offset is both exact and cheap (keyset cursors fit tables, not computed rankings)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

CURSOR_PREFIX = "o"
OFFSET_DIGITS_MAX = 9


@dataclass(frozen=True)
class Slice:
    """One page: `limit` rows from `offset`."""

    limit: int
    offset: int = 0


def page_of(rows: Sequence[T], page: Slice) -> tuple[list[T], int | None]:
    """The page's rows and the next page's offset (None on the last page)."""
    end = page.offset + page.limit
    return list(rows[page.offset : end]), (end if end < len(rows) else None)


def encode_offset(offset: int | None) -> str | None:
    return None if offset is None else f"{CURSOR_PREFIX}{offset}"


def decode_offset(cursor: str | None) -> int | None:
    """The offset a cursor of ours names (0 without one); None when it is not ours."""
    if not cursor:
        return 0
    digits = cursor.removeprefix(CURSOR_PREFIX)
    if cursor[:1] != CURSOR_PREFIX or not digits.isdigit() or len(digits) > OFFSET_DIGITS_MAX:
        return None
    return int(digits)
