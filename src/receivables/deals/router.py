"""/deals: funding, repayment and the deal's ledger."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from receivables.auth.dependencies import Actor, BankActor, require_roles
from receivables.auth.principal import Principal
from receivables.auth.roles import Role
from receivables.deals import service
from receivables.deals.models import Deal
from receivables.deals.schemas import DealDebtorRead, DealRead, Payment, deal_debtor_read, deal_read
from receivables.kit.deps import ClockDep, SessionDep
from receivables.kit.errors import Forbidden, IllegalTransition, NotFound, problem_responses
from receivables.kit.pagination import Page, PageParams, next_cursor
from receivables.ledger.schemas import DealLedgerRead, entry_read

router = APIRouter(prefix="/deals", tags=["deals"])

PayerActor = Annotated[Principal, Depends(require_roles(Role.core, Role.sme))]
DealStatusFilter = Literal["awaiting_funding", "disbursed", "overdue", "defaulted", "settled", "cancelled"]


def _view(actor: Principal, deal: Deal, escrow_minor: int, clock) -> DealRead | DealDebtorRead:
    """The debtor learns what it owes, never the bank's price."""
    if actor.role == Role.core:
        return deal_debtor_read(deal)
    return deal_read(deal, today=clock.today(), escrow_balance_minor=escrow_minor)


@router.get("", response_model=Page[DealRead | DealDebtorRead], responses=problem_responses())
async def list_deals(
    actor: Actor,
    session: SessionDep,
    clock: ClockDep,
    page: PageParams,
    status_filter: Annotated[DealStatusFilter | None, Query(alias="status")] = None,
):
    """Deals the caller is a party to (operators and regulators: all), oldest first."""
    rows = await service.list_page(session, actor, page, status=status_filter)
    items = [_view(actor, deal, escrow, clock) for deal, escrow in rows[: page.limit]]
    return Page(items=items, next_cursor=next_cursor([r[0] for r in rows], page.limit))


@router.get("/{deal_id}", response_model=DealRead | DealDebtorRead, responses=problem_responses(NotFound))
async def get_deal(deal_id: uuid.UUID, actor: Actor, session: SessionDep, clock: ClockDep):
    """One deal. Until funded, `value_date` is today and the amounts are what funding
    today would take."""
    deal, escrow = await service.get(session, actor, deal_id)
    return _view(actor, deal, escrow, clock)


@router.post(
    "/{deal_id}/fund",
    response_model=DealRead,
    responses=problem_responses(
        Forbidden, NotFound, IllegalTransition, service.FundingAmountMismatch, service.FundingDeadlinePassed
    ),
)
async def fund_deal(deal_id: uuid.UUID, body: Payment, actor: BankActor, session: SessionDep, clock: ClockDep):
    """The winning bank pays the funding amount (P − D for today's value date) into
    escrow; escrow pays the SME its advance and the platform its fee at once."""
    deal, escrow = await service.fund(session, actor, deal_id, body, clock=clock)
    return deal_read(deal, today=clock.today(), escrow_balance_minor=escrow)


@router.post(
    "/{deal_id}/repay",
    response_model=DealRead | DealDebtorRead,
    responses=problem_responses(Forbidden, NotFound, IllegalTransition, service.Overpayment),
)
async def repay_deal(deal_id: uuid.UUID, body: Payment, actor: PayerActor, session: SessionDep, clock: ClockDep):
    """The debtor pays towards the face value, in one payment or several; escrow passes
    each on at once, to the bank until it has its principal, then to the SME. Paid in
    full → settled. Under recourse the SME may pay once the deal has defaulted."""
    deal, escrow = await service.repay(session, actor, deal_id, body, clock=clock)
    return _view(actor, deal, escrow, clock)


@router.get(
    "/{deal_id}/ledger", response_model=DealLedgerRead, responses=problem_responses(Forbidden, NotFound)
)
async def deal_ledger(deal_id: uuid.UUID, actor: Actor, session: SessionDep):
    """Every journal entry touching the deal's escrow, oldest first (not for the debtor)."""
    found = await service.ledger_entries(session, actor, deal_id)
    return DealLedgerRead(items=[entry_read(entry, postings) for entry, postings in found])
