"""Recording state changes: one audit row per change, in the change's own transaction,
addressed to the organizations it concerns (the events feed), and sealed into the hash
chain just before commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from receivables.auth.principal import Principal
from receivables.events import chain, repository
from receivables.events.models import AuditRecord, EventRecipient
from receivables.kit.clock import Clock

PENDING_KEY = "audit_pending"


async def record(
    session: AsyncSession,
    actor: Principal,
    *,
    clock: Clock,
    action: str,
    object_type: str,
    object_id: uuid.UUID,
    from_state: str | None = None,
    to_state: str | None = None,
    data: dict[str, Any] | None = None,
    recipients: Iterable[uuid.UUID | None] = (),
    audience_kind: str | None = None,
) -> AuditRecord:
    """`action` is the event type (`deal.funded`); `recipients` the organizations whose
    feed shows it; `audience_kind` a whole kind that sees it (new listings: every bank)."""
    row = AuditRecord(
        occurred_at=clock.now(),
        actor_role=actor.role,
        actor_organization_id=actor.organization_id,
        actor_user_id=actor.user_id,
        actor_client_id=getattr(actor, "client_id", None),
        action=action,
        object_type=object_type,
        object_id=object_id,
        from_state=from_state,
        to_state=to_state,
        audience_kind=audience_kind,
        data=data or {},
    )
    session.add(row)
    for organization_id in {r for r in recipients if r is not None}:
        session.add(EventRecipient(organization_id=organization_id, audit_id=row.id))
    session.info.setdefault(PENDING_KEY, []).append(row)
    return row


@event.listens_for(Session, "before_commit")
def _seal_pending(session: Session) -> None:
    """Chain this transaction's rows after the head, holding the head's lock only for
    the commit that follows: chain order is commit order, never forked, never skipped.
    Every commit path runs it (requests, worker, CLI, tests), so no row stays unsealed."""
    pending: list[AuditRecord] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    head = repository.lock_chain_head(session)
    head.last_index, head.last_hash = chain.seal(
        pending, last_index=head.last_index, last_hash=head.last_hash
    )


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


@dataclass(frozen=True)
class ChainReport:
    valid: bool
    checked: int
    broken_at: dict[str, Any] | None


async def verify_chain(session: AsyncSession) -> ChainReport:
    walk = chain.ChainWalk()
    async for record in repository.walk_chain(session):
        if not walk.accept(record):
            where = {"chain_index": record.chain_index, "id": str(record.id), "action": record.action}
            return ChainReport(valid=False, checked=walk.checked, broken_at=where)
    return ChainReport(valid=True, checked=walk.checked, broken_at=None)
