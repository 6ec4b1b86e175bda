"""The error tree and its RFC 9457 problem+json rendering.

Every error a client can cause is a `ReceivablesError` subclass with a stable snake_case
`code` (part of the contract: never rename one). Routes declare the ones they raise with
`problem_responses(...)` so the OpenAPI document lists them.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://receivables.example/problems/"


class Problem(BaseModel):
    """RFC 9457 problem details with a stable machine-readable `code`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


class ReceivablesError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = detail or self.title
        self.headers = headers
        super().__init__(self.detail)


class NotAuthenticated(ReceivablesError):
    status, code, title = 401, "not_authenticated", "Missing, invalid or expired credentials"


class Forbidden(ReceivablesError):
    status, code, title = 403, "forbidden", "Your role may not perform this action"


class NotFound(ReceivablesError):
    status, code, title = 404, "not_found", "No such object"


class Conflict(ReceivablesError):
    status, code, title = 409, "conflict", "Conflict with the current state"


class IllegalTransition(Conflict):
    code, title = "illegal_transition", "Action not allowed in the current state"


class Unprocessable(ReceivablesError):
    status, code, title = 422, "unprocessable", "The request is well-formed but not acceptable"


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail, "code": code}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def problem_response(
    status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_responses(*errors: type[ReceivablesError]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting the problems a route can answer."""
    by_status: dict[int, list[type[ReceivablesError]]] = {}
    for error in (NotAuthenticated, *errors):
        by_status.setdefault(error.status, []).append(error)
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": "; ".join(f"`{e.code}`: {e.title}" for e in errs),
        }
        for status, errs in sorted(by_status.items())
    }


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    return ".".join(parts) or "body"


async def _on_receivables_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReceivablesError)
    return problem_response(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem_response(
        422, "validation_error", "The request has invalid fields", detail, errors=errors
    )


async def _on_unreadable_body(exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI and Starlette answer 400 when a body cannot be read at all: JSON that is
    not UTF-8, a malformed multipart body, a form with more fields or files than the
    parser allows. To a client that is one more invalid payload, so it gets the
    contract's 422 `validation_error` naming the body, which every operation with a body
    documents (a bare 400 is documented nowhere)."""
    detail = str(exc.detail)
    errors = [{"field": "body", "message": detail}]
    return problem_response(
        422, "validation_error", "The request has invalid fields", f"body: {detail}", errors=errors
    )


async def _on_http_exception(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        return await _on_unreadable_body(exc)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    return problem_response(
        exc.status_code, code, str(exc.detail), str(exc.detail), headers=getattr(exc, "headers", None)
    )


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal_error", "Internal error", "An unexpected error occurred")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ReceivablesError, _on_receivables_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
