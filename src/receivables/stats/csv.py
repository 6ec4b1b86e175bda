"""CSV for regulators' spreadsheets (`Accept: text/csv`): the same figures as the JSON.

- A list endpoint answers one row per item of its JSON `items`, one column per field,
  with a header row; the next page's cursor travels in the `X-Next-Cursor` header.
- The overview, one object with nested parts, answers `metric,value` rows: one per
  figure, named by its JSON path (`organizations_by_kind.sme`,
  `monthly.2026-03.financed_amount`).
- A cell is the JSON value as text: strings as they are, numbers as JSON writes them,
  true/false, and an empty cell for null. A string that a spreadsheet would run as a
  formula (starting with = + - @ or a tab/CR: an organization's name can) is prefixed
  with an apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Response
from pydantic import BaseModel

MEDIA_TYPE = "text/csv"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NEXT_CURSOR_HEADER = "X-Next-Cursor"


def _quality(part: str) -> tuple[str, float]:
    media, _, parameters = part.partition(";")
    q = 1.0
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
    return media.strip().lower(), q


def wants_csv(accept: str | None) -> bool:
    """True when the client prefers text/csv to JSON. Only an explicit `text/csv` (or
    `text/*`) asks for CSV; `*/*` and anything unknown get the JSON."""
    if not accept:
        return False
    csv_q, json_q = 0.0, 0.0
    for part in accept.split(",")[:32]:
        media, q = _quality(part)
        if media in ("text/csv", "text/*"):
            csv_q = max(csv_q, q)
        elif media in ("application/json", "application/*", "*/*"):
            json_q = max(json_q, q)
    return csv_q > 0 and csv_q >= json_q


def cell(value: Any) -> str:
    """A JSON value (from `model_dump(mode="json")`) as a CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_TRIGGERS) else value
    return json.dumps(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(header)
    writer.writerows([cell(value) for value in row] for row in rows)
    return out.getvalue()


def items_table(items: Sequence[BaseModel], model: type[BaseModel]) -> str:
    header = [field.serialization_alias or name for name, field in model.model_fields.items()]
    rows = (list(item.model_dump(mode="json", by_alias=True).values()) for item in items)
    return _table(header, rows)


def flatten(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(JSON path, scalar) pairs; lists of objects keyed by their first field's value
    (a month), other lists by position."""
    if isinstance(value, dict):
        pairs: list[tuple[str, Any]] = []
        for key, inner in value.items():
            pairs += flatten(inner, f"{path}.{key}" if path else str(key))
        return pairs
    if isinstance(value, list):
        pairs = []
        for index, inner in enumerate(value):
            if isinstance(inner, dict) and inner:
                label, *_ = inner.values()
                rest = dict(list(inner.items())[1:])
                pairs += flatten(rest, f"{path}.{label}")
            else:
                pairs += flatten(inner, f"{path}.{index}")
        return pairs
    return [(path, value)]


def metrics_table(body: BaseModel) -> str:
    return _table(["metric", "value"], flatten(body.model_dump(mode="json", by_alias=True)))


def response(text: str, *, filename: str, next_cursor: str | None = None) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if next_cursor is not None:
        headers[NEXT_CURSOR_HEADER] = next_cursor
    return Response(text, media_type=f"{MEDIA_TYPE}; charset=utf-8", headers=headers)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
        "description": "The figures; with `Accept: text/csv`, the same as CSV with a header "
        "row (lists: one row per item, next cursor in `X-Next-Cursor`).",
    }
}
