"""The exception every failed call raises: the API's problem+json, as attributes."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """An error answer (4xx/5xx). `code` is the API's stable snake_case code
    (`illegal_transition`, `bid_above_reserve`, `validation_error`, ...): branch on it,
    never on `title` or `detail`, which are for people."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        body: Any = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors or []
        """For `validation_error`: `[{"field": "face_value", "message": "..."}]`."""
        self.body = body
        self.headers = headers or httpx.Headers()

    @property
    def retry_after_seconds(self) -> float | None:
        value = self.headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "code" in body:
            return cls(
                response.status_code,
                str(body["code"]),
                str(body.get("title", "")),
                str(body.get("detail", "")),
                errors=body.get("errors"),
                body=body,
                headers=response.headers,
            )
        text = response.text[:500]
        return cls(
            response.status_code,
            f"http_{response.status_code}",
            response.reason_phrase,
            text or response.reason_phrase,
            body=body if body is not None else text,
            headers=response.headers,
        )
