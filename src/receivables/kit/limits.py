"""A cap on request body size, enforced before the application reads the body.

Pure ASGI (no BaseHTTPMiddleware): a declared `Content-Length` over the cap answers 413
at once without reading a byte; a body without one (chunked, streamed) is counted as it
arrives and the request is cut off with 413 as soon as it passes the cap, so no handler,
JSON parser or multipart parser ever buffers more than the cap (OWASP API4; the
multipart and form-parsing denial-of-service advisories against Starlette and
python-multipart were all about unbounded reads).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receivables.kit.errors import problem_response

REQUEST_TOO_LARGE_CODE = "request_too_large"


class _BodyTooLarge(Exception):
    """Raised from `receive` inside the app; never escapes the middleware."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such requests; count the bytes anyway
    return None


def _too_large(bytes_max: int):
    return problem_response(
        413,
        REQUEST_TOO_LARGE_CODE,
        "Request body too large",
        f"the request body exceeds the limit of {bytes_max} bytes",
        headers={"Connection": "close"},
    )


class BodySizeLimit:
    """Answer 413 problem+json to any HTTP request whose body exceeds `bytes_max`."""

    def __init__(self, app: ASGIApp, *, bytes_max: int) -> None:
        if bytes_max <= 0:
            raise ValueError("bytes_max must be positive")
        self.app = app
        self.bytes_max = bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.bytes_max:
            await _too_large(self.bytes_max)(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = {"received": 0, "too_large": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.bytes_max:
                    state["too_large"] = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            # Once the body overflowed, whatever the app answers (FastAPI turns a failed
            # body read into a 400) is replaced by our 413 below.
            if state["too_large"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not state["too_large"]:
                raise
        if state["too_large"] and not state["started"]:
            await _too_large(self.bytes_max)(scope, receive, send)
