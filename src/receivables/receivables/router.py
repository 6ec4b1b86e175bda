"""/receivables: submission by the seller, confirmation or dispute by the debtor,
amendment and cancellation by the seller; reads scoped to who may see each one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from receivables.auth.dependencies import Actor, SmeActor
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import Forbidden, IllegalTransition, problem_responses
from receivables.kit.pagination import InvalidCursor, Page, PageParams, next_cursor
from receivables.receivables import service
from receivables.receivables.lifecycle import ReceivableStatus
from receivables.receivables.schemas import (
    ReceivableAmend,
    ReceivableConfirm,
    ReceivableCreate,
    ReceivableDispute,
    ReceivableRead,
)

router = APIRouter(prefix="/receivables", tags=["receivables"])

# Actions on one receivable take any authenticated caller (`Actor`), not a role gate:
# the service answers 404 for a receivable the caller cannot see before it answers 403
# for the wrong role or party (API.md), so a wrong-role caller learns nothing about ids.


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReceivableRead,
    responses=problem_responses(
        Forbidden, service.DuplicateReceivable, service.InvalidDebtor,
        service.DueDateNotAfterToday, service.DueDateNotAfterIssueDate,
    ),
)
async def submit_receivable(
    body: ReceivableCreate,
    actor: SmeActor,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
):
    """Register a receivable the caller's organization is owed by a core enterprise and
    ask the debtor to confirm it within the confirmation window. The same invoice
    (seller, debtor, invoice number ignoring case, spaces and punctuation) cannot be
    registered twice while a receivable for it is alive: 409 `duplicate_receivable`."""
    return await service.submit(
        session, actor, body, clock=clock,
        confirmation_window_days=settings.confirmation_window_days,
    )


@router.get("", response_model=Page[ReceivableRead], responses=problem_responses(InvalidCursor))
async def list_receivables(
    actor: Actor,
    session: SessionDep,
    page: PageParams,
    status: Annotated[ReceivableStatus | None, Query()] = None,
):
    """Receivables the caller may see, oldest first: its own as seller or debtor; for a
    bank those it bid on or financed; everything for operators and regulators."""
    rows = await service.list_page(session, actor, page, status=status)
    return Page(items=rows[: page.limit], next_cursor=next_cursor(rows, page.limit))


@router.get(
    "/{receivable_id}",
    response_model=ReceivableRead,
    responses=problem_responses(service.ReceivableNotFound),
)
async def get_receivable(receivable_id: uuid.UUID, actor: Actor, session: SessionDep):
    """One receivable, if the caller may see it (else 404)."""
    return await service.get(session, actor, receivable_id)


@router.post(
    "/{receivable_id}/confirm",
    response_model=ReceivableRead,
    responses=problem_responses(
        Forbidden, service.ReceivableNotFound, IllegalTransition,
        service.ConfirmationWindowClosed, service.AmountIncrease,
        service.DueDateNotAfterToday, service.DueDateNotAfterIssueDate,
    ),
)
async def confirm_receivable(
    receivable_id: uuid.UUID,
    actor: Actor,
    session: SessionDep,
    clock: ClockDep,
    body: ReceivableConfirm | None = None,
):
    """The debtor confirms what it owes. It may confirm a lower amount than submitted
    (which becomes the face value) and another due date; the latency is recorded."""
    return await service.confirm(
        session, actor, receivable_id, body or ReceivableConfirm(), clock=clock
    )


@router.post(
    "/{receivable_id}/dispute",
    response_model=ReceivableRead,
    responses=problem_responses(
        Forbidden, service.ReceivableNotFound, IllegalTransition,
        service.ConfirmationWindowClosed,
    ),
)
async def dispute_receivable(
    receivable_id: uuid.UUID,
    body: ReceivableDispute,
    actor: Actor,
    session: SessionDep,
    clock: ClockDep,
):
    """The debtor disputes a submitted receivable, giving its reason; the seller may
    then amend it or cancel it."""
    return await service.dispute(session, actor, receivable_id, body, clock=clock)


@router.patch(
    "/{receivable_id}",
    response_model=ReceivableRead,
    responses=problem_responses(
        Forbidden, service.ReceivableNotFound, IllegalTransition,
        service.DuplicateReceivable, service.DueDateNotAfterToday,
        service.DueDateNotAfterIssueDate,
    ),
)
async def amend_receivable(
    receivable_id: uuid.UUID,
    body: ReceivableAmend,
    actor: Actor,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
):
    """The seller corrects a disputed receivable. It returns to `submitted` with a new
    confirmation window; the dispute reason is cleared."""
    return await service.amend(
        session, actor, receivable_id, body, clock=clock,
        confirmation_window_days=settings.confirmation_window_days,
    )


@router.post(
    "/{receivable_id}/cancel",
    response_model=ReceivableRead,
    responses=problem_responses(Forbidden, service.ReceivableNotFound, IllegalTransition),
)
async def cancel_receivable(
    receivable_id: uuid.UUID, actor: Actor, session: SessionDep, clock: ClockDep
):
    """The seller withdraws a receivable that is submitted, disputed or confirmed (not
    listed); the invoice may then be submitted again."""
    return await service.cancel(session, actor, receivable_id, clock=clock)
