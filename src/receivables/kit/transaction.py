"""One transaction per request, committed before a byte of the response leaves.

Pure ASGI middleware: it opens the request's session, runs the app with the response
held back, then commits when the status is below 400 (after storing the answer under
the request's Idempotency-Key, in the same transaction as its effect) or rolls back
otherwise. A failed commit becomes a 503 problem instead of a 2xx for work that never
happened. Handlers get the session from `kit.deps.get_session`.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from receivables.kit.errors import problem_response

log = logging.getLogger(__name__)

SESSION_STATE_KEY = "session"
CLAIM_STATE_KEY = "idempotency_claim"


class RequestTransaction:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        async with scope["app"].state.sessionmaker() as session:
            state = scope.setdefault("state", {})
            state[SESSION_STATE_KEY] = session
            try:
                await self.app(scope, receive, hold)
            except BaseException:
                await session.rollback()
                raise
            if not await _finish(session, state, held):
                await problem_response(
                    503, "commit_failed", "The change could not be saved",
                    "Nothing was changed; retry with the same Idempotency-Key.",
                    headers={"Retry-After": "1"},
                )(scope, receive, send)
                return
        for message in held:
            await send(message)


async def _finish(session, state: dict, held: list[Message]) -> bool:
    """Commit a success (storing its idempotent answer first); roll back anything else."""
    start = next((m for m in held if m["type"] == "http.response.start"), None)
    if start is None or start["status"] >= 400:
        await session.rollback()
        return True
    try:
        claim = state.get(CLAIM_STATE_KEY)
        if claim is not None:
            body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            await claim.store(start["status"], body)
        await session.commit()
        return True
    except Exception:
        log.exception("commit failed")
        await session.rollback()
        return False
