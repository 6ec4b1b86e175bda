"""/accounts/me (every organization's own balances) and /ledger/verify (supervisors)."""

from __future__ import annotations

from fastapi import APIRouter

from receivables.auth.dependencies import Actor, SupervisorActor
from receivables.kit.deps import SessionDep
from receivables.kit.errors import Forbidden, problem_responses
from receivables.ledger import service
from receivables.ledger.schemas import AccountsRead, VerifyRead, accounts_read, verify_read
from receivables.ledger.verify import verify

router = APIRouter(tags=["ledger"])


@router.get("/accounts/me", response_model=AccountsRead, responses=problem_responses())
async def my_accounts(actor: Actor, session: SessionDep):
    """The caller's balance per currency: credits − debits, i.e. what the organization
    received through the platform minus what it paid in (a bank after funding is
    negative; after settlement it holds its discount income). Empty before any money
    moved."""
    rows = await service.my_balances(session, actor)
    return accounts_read(actor.organization_id, rows)


@router.get("/ledger/verify", response_model=VerifyRead, responses=problem_responses(Forbidden))
async def verify_ledger(actor: SupervisorActor, session: SessionDep):
    """Recompute every account from its postings and compare with the cached balances;
    also checks that escrow is empty and each deal's entries match its state. Operators
    and regulators only."""
    return verify_read(await verify(session))
