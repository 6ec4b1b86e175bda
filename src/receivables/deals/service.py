"""The escrow state machine: a deal is opened by an award, funded by the bank (escrow
pays the SME at once) and repaid by the debtor (escrow passes each payment on by the
principal-first waterfall). Status, ledger entry and audit row commit together.

Lock order: deal → receivable → ledger accounts (the ledger sorts its own).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auctions.models import Bid, Listing
from receivables.auth.principal import SYSTEM, Principal
from receivables.auth.roles import Role
from receivables.config import Settings
from receivables.deals import repository
from receivables.deals.lifecycle import DEAL_TRANSITIONS, DealAction, DealStatus
from receivables.deals.models import Deal
from receivables.deals.schemas import Payment, current_amounts
from receivables.events import service as audit
from receivables.kit import money
from receivables.kit.clock import Clock
from receivables.kit.errors import Conflict, Forbidden, NotFound, Unprocessable
from receivables.kit.invariants import invariant
from receivables.kit.transitions import apply
from receivables.ledger import entries
from receivables.ledger import service as ledger
from receivables.ledger.models import EntryKind
from receivables.receivables import repository as receivables_repository
from receivables.receivables import service as receivables
from receivables.receivables.lifecycle import ReceivableAction
from receivables.receivables.models import Receivable

DEADLINE_BATCH_SIZE_MAX = 100
"""Deals one worker pass moves at most, per deadline; the rest wait for the next pass."""


class FundingAmountMismatch(Unprocessable):
    code, title = "funding_amount_mismatch", "The amount is not the funding amount for today"


class FundingDeadlinePassed(Conflict):
    code, title = "funding_deadline_passed", "The funding deadline has passed"


class Overpayment(Unprocessable):
    code, title = "overpayment", "The payment exceeds what is still owed"


async def _audit(session, actor, deal: Deal, *, clock, action: str, before, data=None) -> None:
    await audit.record(
        session, actor, clock=clock, action=f"deal.{action}", object_type="deal",
        object_id=deal.id, from_state=before, to_state=deal.status, data=data,
        recipients=(deal.sme_id, deal.bank_id, deal.debtor_id),
    )


async def open_from_award(
    session: AsyncSession, actor: Principal, *, listing: Listing, bid: Bid,
    receivable: Receivable, clock: Clock, settings: Settings,
) -> Deal:
    """A deal awaiting funding, with P fixed now and the fee rate in force now."""
    now = clock.now()
    deal = Deal(
        listing_id=listing.id, bid_id=bid.id, receivable_id=receivable.id,
        sme_id=receivable.seller_id, bank_id=bid.bank_id, debtor_id=receivable.debtor_id,
        currency=receivable.currency, face_value_minor=receivable.face_value_minor,
        principal_minor=money.financed_principal(receivable.face_value_minor, listing.advance_ratio_ppm),
        advance_ratio_ppm=listing.advance_ratio_ppm, discount_rate_ppm=bid.discount_rate_ppm,
        fee_rate_ppm=settings.platform_fee_rate_ppm, recourse=listing.recourse,
        due_date=receivable.due_date,
        funding_deadline_at=now + dt.timedelta(hours=settings.funding_window_hours),
        created_at=now, updated_at=now,
    )
    session.add(deal)
    await session.flush()
    await _audit(session, actor, deal, clock=clock, action="created", before=None,
                 data={"bid_id": str(bid.id), "principal": money.format_amount(deal.principal_minor)})
    return deal


async def _visible_locked(session: AsyncSession, actor: Principal, deal_id: uuid.UUID) -> repository.LockedDeal:
    locked = await repository.lock_visible(session, actor, deal_id)
    if locked is None:
        raise NotFound("no such deal")
    return locked


async def _post(session: AsyncSession, entry: entries.EntrySpec, *, escrow_minor: int, clock: Clock) -> int:
    """Posts the deal's entry; returns its escrow balance after it, so the answer needs
    no re-read (the ledger asserts the entry nets escrow to zero, so this is unchanged)."""
    await ledger.post(session, entry, clock=clock)
    return entries.escrow_balance_after(escrow_minor, entry)


async def _locked_receivable(session: AsyncSession, deal: Deal) -> Receivable:
    receivable = await receivables_repository.get_for_update(session, deal.receivable_id)
    invariant(receivable is not None, "a deal's receivable exists")
    assert receivable is not None
    return receivable


async def fund(
    session: AsyncSession, actor: Principal, deal_id: uuid.UUID, body: Payment, *, clock: Clock
) -> repository.DealRow:
    deal, escrow_minor, receivable = await _visible_locked(session, actor, deal_id)
    if actor.role == Role.bank and deal.bank_id != actor.organization_id:
        raise Forbidden("only the winning bank funds a deal")
    before = deal.status
    target = apply(DEAL_TRANSITIONS, DealStatus(before), DealAction.fund, actor.role)
    if clock.now() >= deal.funding_deadline_at:
        raise FundingDeadlinePassed(f"the deadline was {deal.funding_deadline_at.isoformat()}")
    today = clock.today()
    amounts = current_amounts(deal, today)
    if body.amount_minor != amounts.funding_minor:
        raise FundingAmountMismatch(
            f"funding today ({today.isoformat()}) takes {money.format_amount(amounts.funding_minor)}"
        )
    deal.status, deal.value_date = target, today
    deal.discount_minor, deal.fee_minor = amounts.discount_minor, amounts.fee_minor
    deal.funding_minor, deal.advance_minor = amounts.funding_minor, amounts.advance_minor
    deal.funding_reference = body.payment_reference
    deal.funded_at = deal.updated_at = clock.now()
    escrow_minor = await _post(session, entries.funding_entry(
        deal_id=deal.id, currency=deal.currency, bank_id=deal.bank_id, sme_id=deal.sme_id,
        funding_minor=amounts.funding_minor, advance_minor=amounts.advance_minor,
        fee_minor=amounts.fee_minor, reference=body.payment_reference,
    ), escrow_minor=escrow_minor, clock=clock)
    await receivables.transition(session, receivable, ReceivableAction.finance, actor, clock=clock)
    await _audit(session, actor, deal, clock=clock, action="funded", before=before,
                 data={"funding_amount": body.amount, "advance_amount": money.format_amount(amounts.advance_minor)})
    return deal, escrow_minor


def _payer_may_repay(actor: Principal, deal: Deal) -> None:
    """The debtor repays; the SME too, but only under recourse (the action table then
    admits it only once the deal has defaulted)."""
    if actor.role == Role.core and deal.debtor_id != actor.organization_id:
        raise Forbidden("only the debtor repays this deal")
    if actor.role == Role.sme and (deal.sme_id != actor.organization_id or not deal.recourse):
        raise Forbidden("the seller pays only under recourse, once the deal has defaulted")


def _repayment_split(actor: Principal, deal: Deal, amount_minor: int) -> money.RepaymentSplit:
    owed_minor = money.remaining_due(deal.face_value_minor, deal.repaid_minor)
    if actor.role == Role.sme:
        # Under recourse the seller's money only ever goes to the bank's principal.
        owed_minor = min(owed_minor, deal.principal_minor - deal.bank_received_minor)
    if amount_minor > owed_minor:
        raise Overpayment(f"at most {money.format_amount(owed_minor)} may be paid now")
    return money.split_repayment(
        amount_minor=amount_minor, principal_minor=deal.principal_minor,
        bank_received_minor=deal.bank_received_minor,
    )


async def repay(
    session: AsyncSession, actor: Principal, deal_id: uuid.UUID, body: Payment, *, clock: Clock
) -> repository.DealRow:
    deal, escrow_minor, receivable = await _visible_locked(session, actor, deal_id)
    _payer_may_repay(actor, deal)
    amount_minor = body.amount_minor
    in_full = deal.repaid_minor + amount_minor >= deal.face_value_minor
    action = DealAction.repay_in_full if in_full else DealAction.repay
    before = deal.status
    target = apply(DEAL_TRANSITIONS, DealStatus(before), action, actor.role)
    split = _repayment_split(actor, deal, amount_minor)
    escrow_minor = await _post(session, entries.repayment_entry(
        deal_id=deal.id, currency=deal.currency, payer_id=actor.organization_id,
        bank_id=deal.bank_id, sme_id=deal.sme_id, to_bank_minor=split.to_bank_minor,
        to_sme_minor=split.to_sme_minor, reference=body.payment_reference,
        kind=EntryKind.recourse_repayment if actor.role == Role.sme else EntryKind.repayment,
    ), escrow_minor=escrow_minor, clock=clock)
    # Set after the posting's flush, so the deal is written in one UPDATE.
    deal.status = target
    deal.repaid_minor += amount_minor
    deal.bank_received_minor += split.to_bank_minor
    deal.updated_at = clock.now()
    invariant(deal.repaid_minor <= deal.face_value_minor, "never repaid above face value")
    await _audit(session, actor, deal, clock=clock, action="repaid", before=before,
                 data={"amount": body.amount, "to_bank": money.format_amount(split.to_bank_minor),
                       "to_sme": money.format_amount(split.to_sme_minor)})
    if in_full:
        deal.settled_at = clock.now()
        await receivables.transition(session, receivable, ReceivableAction.settle, actor, clock=clock)
        await _audit(session, actor, deal, clock=clock, action="settled", before=before)
    return deal, escrow_minor


async def get(session: AsyncSession, actor: Principal, deal_id: uuid.UUID) -> repository.DealRow:
    row = await repository.get_visible(session, actor, deal_id)
    if row is None:
        raise NotFound("no such deal")
    return row


async def list_page(session, actor: Principal, page, *, status: str | None) -> list[repository.DealRow]:
    return await repository.list_visible(session, actor, page, status=status)


async def ledger_entries(session: AsyncSession, actor: Principal, deal_id: uuid.UUID):
    """Every entry touching the deal's escrow: not for the debtor (it would show the price)."""
    deal, _ = await get(session, actor, deal_id)
    if actor.role == Role.core:
        raise Forbidden("the debtor does not see the deal's ledger")
    return await ledger.deal_entries(session, deal.id)


# ------------------------------------------------------------------ deadlines


async def cancel_unfunded(
    session: AsyncSession, *, clock: Clock, batch_size_max: int = DEADLINE_BATCH_SIZE_MAX
) -> int:
    """The bank missed the funding deadline: the deal is cancelled (the miss shows in the
    bank's record, `repository.missed_fundings`) and the receivable is `confirmed` and
    listable again. No money moved, so no ledger entry. For the worker."""
    due = await repository.claim_unfunded(session, now=clock.now(), batch_size_max=batch_size_max)
    for deal in due:
        before = deal.status
        deal.status = apply(
            DEAL_TRANSITIONS, DealStatus(before), DealAction.expire_funding, SYSTEM.role
        )
        deal.updated_at = clock.now()
        receivable = await _locked_receivable(session, deal)
        await receivables.transition(
            session, receivable, ReceivableAction.unaward, SYSTEM, clock=clock,
            data={"deal_id": str(deal.id), "bank_id": str(deal.bank_id)},
        )
        await _audit(session, SYSTEM, deal, clock=clock, action="cancelled", before=before,
                     data={"funding_deadline_at": deal.funding_deadline_at.isoformat(),
                           "bank_id": str(deal.bank_id)})
    return len(due)


async def _mark(
    session: AsyncSession, deal: Deal, *, clock: Clock, action: DealAction,
    mirror: ReceivableAction, event: str,
) -> None:
    """One overdue/default step: the deal moves by `action`, its receivable mirrors it."""
    before = deal.status
    deal.status = apply(DEAL_TRANSITIONS, DealStatus(before), action, SYSTEM.role)
    deal.updated_at = clock.now()
    owed = money.format_amount(money.remaining_due(deal.face_value_minor, deal.repaid_minor))
    receivable = await _locked_receivable(session, deal)
    await receivables.transition(session, receivable, mirror, SYSTEM, clock=clock,
                                 data={"deal_id": str(deal.id)})
    await _audit(session, SYSTEM, deal, clock=clock, action=event, before=before,
                 data={"due_date": deal.due_date.isoformat(), "amount_due": owed})


async def mark_overdue(
    session: AsyncSession, *, clock: Clock, batch_size_max: int = DEADLINE_BATCH_SIZE_MAX
) -> int:
    """Disbursed deals past their due date (today is later) with money owed become
    `overdue`, their receivables too. For the worker."""
    due = await repository.claim_overdue(
        session, today=clock.today(), batch_size_max=batch_size_max
    )
    for deal in due:
        await _mark(session, deal, clock=clock, action=DealAction.mark_overdue,
                    mirror=ReceivableAction.mark_overdue, event="overdue")
    return len(due)


async def mark_defaulted(
    session: AsyncSession, *, clock: Clock, grace_days: int,
    batch_size_max: int = DEADLINE_BATCH_SIZE_MAX,
) -> int:
    """Overdue deals still owing once `grace_days` have passed after the due date (today
    is later than due date + grace) become `defaulted`, their receivables too."""
    due = await repository.claim_defaulting(
        session, today=clock.today(), grace_days=grace_days, batch_size_max=batch_size_max
    )
    for deal in due:
        await _mark(session, deal, clock=clock, action=DealAction.mark_defaulted,
                    mirror=ReceivableAction.mark_defaulted, event="defaulted")
    return len(due)
