"""/events (each organization's feed), /audit and /audit/verify (supervisors)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from receivables.auth.dependencies import Actor, SupervisorActor
from receivables.events import repository, service
from receivables.events.schemas import (
    AuditPage,
    AuditRead,
    ChainVerifyRead,
    EventPage,
    event_read,
)
from receivables.kit.deps import SessionDep
from receivables.kit.errors import Forbidden, problem_responses
from receivables.kit.pagination import (
    PAGE_LIMIT_DEFAULT,
    CursorQuery,
    IndexCursor,
    LimitQuery,
    next_cursor,
)

router = APIRouter(tags=["events"])

CHAIN_CURSOR = IndexCursor("chain")


async def _after_index(session, after: str | None) -> int:
    """`after` is an event id (resume after that event) or a cursor from a page."""
    if not after:
        return 0
    try:
        return await repository.chain_index_of(session, uuid.UUID(after)) or 0
    except ValueError:
        return CHAIN_CURSOR.decode(after)


def _next(rows: list, limit: int) -> str | None:
    return next_cursor(rows, limit, lambda row: CHAIN_CURSOR.encode(row.chain_index))


@router.get("/events", response_model=EventPage, responses=problem_responses())
async def list_events(
    actor: Actor,
    session: SessionDep,
    after: CursorQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_LIMIT_DEFAULT,
):
    """Events concerning the caller's organization, oldest first, in commit order: resume
    from the last event id you processed (`after`) or a page's `next_cursor`. A bank sees
    new listings and its own bids and deals, never a rival's bid."""
    start = await _after_index(session, after or cursor)
    rows = await repository.feed_page(session, actor, after_index=start, limit=limit)
    return EventPage(items=[event_read(r) for r in rows[:limit]], next_cursor=_next(rows, limit))


@router.get("/audit", response_model=AuditPage, responses=problem_responses(Forbidden))
async def list_audit(
    actor: SupervisorActor, session: SessionDep, cursor: CursorQuery = None, limit: LimitQuery = PAGE_LIMIT_DEFAULT
):
    """The hash-chained audit trail, in chain (commit) order."""
    start = await _after_index(session, cursor)
    rows = await repository.audit_page(session, after_index=start, limit=limit)
    items = [AuditRead.model_validate(r) for r in rows[:limit]]
    return AuditPage(items=items, next_cursor=_next(rows, limit))


@router.get("/audit/verify", response_model=ChainVerifyRead, responses=problem_responses(Forbidden))
async def verify_audit(actor: SupervisorActor, session: SessionDep):
    """Recompute the hash chain from the first row; report the first that does not verify."""
    report = await service.verify_chain(session)
    return ChainVerifyRead(valid=report.valid, checked=report.checked, broken_at=report.broken_at)
