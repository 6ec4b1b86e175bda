"""Receivables: submission against the double-financing registry, the debtor's
confirmation or dispute, the seller's amendment or cancellation.

Every state change goes through `transition()`, which other domains (auctions, deals,
the worker) call too: one place applies RECEIVABLE_TRANSITIONS, frees the registry and
writes the audit row, in the caller's transaction. Checks run in the API's order:
visibility (404), role and party (403), state (409), payload (422); nothing is written
before the last check passed, and the request's transaction is rolled back on any error.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import SYSTEM, Principal
from receivables.auth.roles import Role
from receivables.events import service as audit
from receivables.kit import money, transitions
from receivables.kit.clock import Clock
from receivables.kit.db import flush_or_raise
from receivables.kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from receivables.kit.invariants import invariant
from receivables.kit.pagination import PageRequest
from receivables.organizations import repository as organizations
from receivables.organizations.models import Organization, OrganizationStatus
from receivables.receivables import repository
from receivables.receivables.fingerprint import receivable_fingerprint
from receivables.receivables.lifecycle import (
    RECEIVABLE_TRANSITIONS,
    REGISTRY_FREED,
    ReceivableAction,
    ReceivableStatus,
)
from receivables.receivables.models import Receivable
from receivables.receivables.schemas import (
    ReceivableAmend,
    ReceivableConfirm,
    ReceivableCreate,
    ReceivableDispute,
)

LAPSED_BATCH_SIZE_MAX = 100
"""Receivables one worker pass expires at most; the rest wait for the next pass."""


class DuplicateReceivable(Conflict):
    code, title = "duplicate_receivable", "This invoice is already registered on the platform"


class ConfirmationWindowClosed(Conflict):
    code, title = "confirmation_window_closed", "The debtor's confirmation window has passed"


class InvalidDebtor(Unprocessable):
    code, title = "invalid_debtor", "The debtor must be another, active core enterprise"


class AmountIncrease(Unprocessable):
    code, title = "amount_increase", "The confirmed amount may not exceed the submitted amount"


class DueDateNotAfterToday(Unprocessable):
    code, title = "due_date_not_after_today", "The due date must be after today"


class DueDateNotAfterIssueDate(Unprocessable):
    code, title = "due_date_not_after_issue_date", "The due date must be after the issue date"


class ReceivableNotFound(NotFound):
    code, title = "not_found", "No such receivable"


# ------------------------------------------------------------------ the one transition


EVENT_SUFFIX: dict[ReceivableAction, str] = {
    ReceivableAction.confirm: "confirmed",
    ReceivableAction.dispute: "disputed",
    ReceivableAction.amend: "amended",
    ReceivableAction.cancel: "cancelled",
    ReceivableAction.expire: "expired",
    ReceivableAction.list: "listed",
    ReceivableAction.delist: "delisted",
    ReceivableAction.award: "awarded",
    ReceivableAction.unaward: "unawarded",
    ReceivableAction.finance: "financed",
    ReceivableAction.mark_overdue: "overdue",
    ReceivableAction.mark_defaulted: "defaulted",
    ReceivableAction.settle: "settled",
}
"""Event types are past tense (`receivable.confirmed`), as API.md names them."""


async def transition(
    session: AsyncSession,
    receivable: Receivable,
    action: ReceivableAction,
    actor: Principal,
    *,
    clock: Clock,
    data: dict | None = None,
) -> None:
    """Move `receivable` by `action` per RECEIVABLE_TRANSITIONS (403 for a role no rule
    admits, 409 `illegal_transition` naming the current state), free its registry entry
    when it becomes cancelled or expired, and write the audit row. The caller holds the
    row lock (`repository.get_for_update`) and owns the transaction; this flushes."""
    from_state = ReceivableStatus(receivable.status)
    to_state = transitions.apply(RECEIVABLE_TRANSITIONS, from_state, action, actor.role)
    receivable.status = to_state
    receivable.updated_at = clock.now()
    if to_state in REGISTRY_FREED:
        receivable.active_fingerprint = None
    await audit.record(
        session, actor, clock=clock, action=f"receivable.{EVENT_SUFFIX[action]}",
        object_type="receivable", object_id=receivable.id, from_state=from_state,
        to_state=to_state, data=data, recipients=(receivable.seller_id, receivable.debtor_id),
    )
    await session.flush()


# ------------------------------------------------------------------ checks


def _require_party(receivable: Receivable, actor: Principal, action: ReceivableAction) -> None:
    """The right role is not enough: only the debtor answers, only the seller amends or
    cancels. Checked before the state so the answer is 403 before 409."""
    party_by_role = {Role.core: receivable.debtor_id, Role.sme: receivable.seller_id}
    party_id = party_by_role.get(actor.role)
    if party_id is not None and actor.organization_id != party_id:
        party = "debtor" if actor.role == Role.core else "seller"
        raise Forbidden(f"only the receivable's {party} may {action} it")


def _check_allowed(receivable: Receivable, actor: Principal, action: ReceivableAction) -> None:
    """403 or 409 without changing anything (kit.transitions.apply is pure)."""
    _require_party(receivable, actor, action)
    state = ReceivableStatus(receivable.status)
    transitions.apply(RECEIVABLE_TRANSITIONS, state, action, actor.role)


def _check_window_open(receivable: Receivable, *, clock: Clock) -> None:
    """Enforced at request time too: the worker may not have expired it yet."""
    if clock.now() >= receivable.confirmation_deadline_at:
        closed_at = receivable.confirmation_deadline_at.isoformat()
        raise ConfirmationWindowClosed(f"the confirmation window closed at {closed_at}")


def _check_dates(*, issue_date: dt.date, due_date: dt.date, clock: Clock) -> None:
    if due_date <= issue_date:
        raise DueDateNotAfterIssueDate(
            f"due_date: {due_date} is not after issue_date {issue_date}"
        )
    if due_date <= clock.today():
        raise DueDateNotAfterToday(f"due_date: {due_date} is not after today ({clock.today()})")


async def _load(
    session: AsyncSession, actor: Principal, receivable_id: uuid.UUID, *, lock: bool
) -> Receivable:
    receivable = await repository.get_visible(session, actor, receivable_id, lock=lock)
    if receivable is None:
        raise ReceivableNotFound()
    return receivable


# ------------------------------------------------------------------ submission


def _valid_debtor(debtor: Organization | None, seller_id: uuid.UUID) -> Organization:
    if debtor is None or debtor.kind != Role.core:
        raise InvalidDebtor("debtor_id: no core enterprise with this id")
    if debtor.status != OrganizationStatus.active:
        raise InvalidDebtor("debtor_id: the core enterprise is not active")
    if debtor.id == seller_id:
        raise InvalidDebtor("debtor_id: a seller cannot owe itself")
    return debtor


def _fingerprint(
    parties: dict[uuid.UUID, Organization], seller_id: uuid.UUID, debtor_id: uuid.UUID,
    invoice_number: str,
) -> str:
    seller, debtor = parties.get(seller_id), parties.get(debtor_id)
    if seller is None or debtor is None:
        raise InvalidDebtor("debtor_id: unknown party")
    return receivable_fingerprint(seller.credit_code, debtor.credit_code, invoice_number)


async def submit(
    session: AsyncSession,
    actor: Principal,
    body: ReceivableCreate,
    *,
    clock: Clock,
    confirmation_window_days: int,
) -> Receivable:
    """Register a receivable the actor's organization is owed; the debtor is asked to
    confirm it within the confirmation window."""
    seller_id = actor.organization_id
    invariant(seller_id is not None, "an sme principal belongs to an organization")
    parties = await organizations.get_many(session, (seller_id, body.debtor_id))
    debtor = _valid_debtor(parties.get(body.debtor_id), seller_id)
    _check_dates(issue_date=body.issue_date, due_date=body.due_date, clock=clock)
    fingerprint = _fingerprint(parties, seller_id, debtor.id, body.invoice_number)
    if await repository.active_fingerprint_taken(session, fingerprint):
        raise DuplicateReceivable()
    now = clock.now()
    receivable = Receivable(
        seller_id=seller_id, debtor_id=debtor.id, invoice_number=body.invoice_number,
        fingerprint=fingerprint, active_fingerprint=fingerprint,
        submitted_amount_minor=body.face_value_minor, face_value_minor=body.face_value_minor,
        currency=body.currency, issue_date=body.issue_date, due_date=body.due_date,
        description=body.description, status=ReceivableStatus.submitted, submitted_at=now,
        confirmation_deadline_at=now + dt.timedelta(days=confirmation_window_days),
        created_at=now, updated_at=now,
    )
    session.add(receivable)
    # The unique registry index is the last line: a concurrent twin is a 409, not a 500.
    await flush_or_raise(session, DuplicateReceivable)
    await audit.record(
        session, actor, clock=clock, action="receivable.submitted", object_type="receivable",
        object_id=receivable.id, to_state=ReceivableStatus.submitted,
        data={"face_value_minor": receivable.face_value_minor, "currency": receivable.currency},
        recipients=(receivable.seller_id, receivable.debtor_id),
    )
    return receivable


# ------------------------------------------------------------------ reads


async def get(session: AsyncSession, actor: Principal, receivable_id: uuid.UUID) -> Receivable:
    return await _load(session, actor, receivable_id, lock=False)


async def list_page(
    session: AsyncSession, actor: Principal, page: PageRequest, *, status: ReceivableStatus | None
) -> list[Receivable]:
    return await repository.list_visible(session, actor, page, status=status)


# ------------------------------------------------------------------ the debtor's answer


async def confirm(
    session: AsyncSession,
    actor: Principal,
    receivable_id: uuid.UUID,
    body: ReceivableConfirm,
    *,
    clock: Clock,
) -> Receivable:
    """The debtor fixes the amount (the submitted one or less) and the due date."""
    receivable = await _load(session, actor, receivable_id, lock=True)
    _check_allowed(receivable, actor, ReceivableAction.confirm)
    _check_window_open(receivable, clock=clock)
    amount_minor = receivable.submitted_amount_minor if body.amount is None else body.amount_minor
    if amount_minor > receivable.submitted_amount_minor:
        submitted = money.format_amount(receivable.submitted_amount_minor)
        raise AmountIncrease(f"amount: may not exceed the submitted amount {submitted}")
    due_date = receivable.due_date if body.due_date is None else body.due_date
    _check_dates(issue_date=receivable.issue_date, due_date=due_date, clock=clock)
    now = clock.now()
    receivable.face_value_minor = amount_minor
    receivable.due_date = due_date
    receivable.confirmed_at = now
    receivable.confirmation_seconds = int((now - receivable.submitted_at).total_seconds())
    await transition(
        session, receivable, ReceivableAction.confirm, actor, clock=clock,
        data={"face_value_minor": amount_minor, "due_date": due_date.isoformat(),
              "confirmation_seconds": receivable.confirmation_seconds},
    )
    return receivable


async def dispute(
    session: AsyncSession,
    actor: Principal,
    receivable_id: uuid.UUID,
    body: ReceivableDispute,
    *,
    clock: Clock,
) -> Receivable:
    """The debtor refuses to confirm as submitted; the seller may amend."""
    receivable = await _load(session, actor, receivable_id, lock=True)
    _check_allowed(receivable, actor, ReceivableAction.dispute)
    _check_window_open(receivable, clock=clock)
    receivable.dispute_reason = body.reason
    await transition(
        session, receivable, ReceivableAction.dispute, actor, clock=clock,
        data={"reason": body.reason},
    )
    return receivable


# ------------------------------------------------------------------ the seller's moves


def _amended_values(receivable: Receivable, body: ReceivableAmend) -> dict[str, Any]:
    """Column values after the amendment: only the fields the seller sent change."""
    copied = ("invoice_number", "issue_date", "due_date", "description")
    values: dict[str, Any] = {name: getattr(receivable, name) for name in copied}
    values.update({name: getattr(body, name) for name in copied if name in body.model_fields_set})
    amount_minor = body.face_value_minor
    if amount_minor is None:
        amount_minor = receivable.submitted_amount_minor
    values["submitted_amount_minor"] = values["face_value_minor"] = amount_minor
    return values


async def amend(
    session: AsyncSession,
    actor: Principal,
    receivable_id: uuid.UUID,
    body: ReceivableAmend,
    *,
    clock: Clock,
    confirmation_window_days: int,
) -> Receivable:
    """The seller corrects a disputed receivable and asks the debtor again."""
    receivable = await _load(session, actor, receivable_id, lock=True)
    _check_allowed(receivable, actor, ReceivableAction.amend)
    values = _amended_values(receivable, body)
    _check_dates(issue_date=values["issue_date"], due_date=values["due_date"], clock=clock)
    parties = await organizations.get_many(session, (receivable.seller_id, receivable.debtor_id))
    fingerprint = _fingerprint(
        parties, receivable.seller_id, receivable.debtor_id, values["invoice_number"]
    )
    if await repository.active_fingerprint_taken(session, fingerprint, other_than=receivable.id):
        raise DuplicateReceivable()
    changed = sorted(name for name, value in values.items() if getattr(receivable, name) != value)
    now = clock.now()
    for name, value in values.items():
        setattr(receivable, name, value)
    receivable.fingerprint = receivable.active_fingerprint = fingerprint
    receivable.dispute_reason = None
    receivable.submitted_at = now
    receivable.confirmation_deadline_at = now + dt.timedelta(days=confirmation_window_days)
    await flush_or_raise(session, DuplicateReceivable)
    await transition(
        session, receivable, ReceivableAction.amend, actor, clock=clock, data={"changed": changed}
    )
    return receivable


async def cancel(
    session: AsyncSession, actor: Principal, receivable_id: uuid.UUID, *, clock: Clock
) -> Receivable:
    """The seller withdraws it; the invoice may be submitted again."""
    receivable = await _load(session, actor, receivable_id, lock=True)
    _check_allowed(receivable, actor, ReceivableAction.cancel)
    await transition(session, receivable, ReceivableAction.cancel, actor, clock=clock)
    return receivable


# ------------------------------------------------------------------ deadlines


async def expire_lapsed(
    session: AsyncSession, *, clock: Clock, batch_size_max: int = LAPSED_BATCH_SIZE_MAX
) -> int:
    """Expire submitted receivables whose confirmation window has passed (a lapse the
    debtor's track record shows); for the worker. Returns how many were expired."""
    lapsed = await repository.claim_lapsed(session, now=clock.now(), batch_size_max=batch_size_max)
    for receivable in lapsed:
        await transition(
            session, receivable, ReceivableAction.expire, SYSTEM, clock=clock,
            data={"confirmation_deadline_at": receivable.confirmation_deadline_at.isoformat()},
        )
    return len(lapsed)
