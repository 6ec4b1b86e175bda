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
from sqlalchemy.sql.dml import UpdateBase

from receivables.auth.principal import Principal
from receivables.events import chain, repository
from receivables.events.models import NewAuditRecord
from receivables.kit.clock import Clock

PENDING_KEY = "audit_pending"
RECIPIENTS_KEY = "audit_pending_recipients"


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
) -> NewAuditRecord:
    """`action` is the event type (`deal.funded`); `recipients` the organizations whose
    feed shows it; `audience_kind` a whole kind that sees it (new listings: every bank)."""
    row = NewAuditRecord(
        id=uuid.uuid4(),
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
    # Written at commit (`_seal_pending`), all at once: the rows of a transaction and
    # their recipients go out as one statement (PostgreSQL) instead of two per flush the
    # transition makes on its way (an award flushed three times: six statements).
    session.info.setdefault(PENDING_KEY, []).append(row)
    session.info.setdefault(RECIPIENTS_KEY, []).extend(
        (organization_id, row.id) for organization_id in {r for r in recipients if r is not None}
    )
    return row


@event.listens_for(Session, "before_commit")
def _seal_pending(session: Session) -> None:
    """Write this transaction's rows, chained after the head as the commit happens:
    chain order is commit order, never forked, never skipped. Every commit path runs it
    (requests, worker, CLI, tests), so no row stays unsealed.

    The head's lock serializes every writing transaction of the platform, so it is held
    as briefly as possible (docs/performance.md measured it as the writers' bottleneck).
    PostgreSQL: the rows carry their canonical bytes around the index and a deferred
    trigger (migration 0002) links them inside the COMMIT itself, so no round trip, nor
    a turn of this event loop, happens under the lock. SQLite: its one writer holds the
    file, so Python links them here. A savepoint's commit (`flush_or_raise`) is not the
    transaction's: its rows stay pending until the real commit."""
    if session.in_nested_transaction():
        return
    pending: list[NewAuditRecord] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    sealed_by_trigger = repository.seals_at_commit(session)
    if sealed_by_trigger:
        _prepare_for_trigger(pending)
    # The ORM's pending rows first (a Core statement does not autoflush): a recipient
    # may be an organization this very transaction created.
    session.flush()
    repository.insert_records(session, pending, session.info.pop(RECIPIENTS_KEY, []))
    if sealed_by_trigger:
        return
    last_index, last_hash = repository.advance_chain_head(session, len(pending))
    _, head_hash = chain.seal(pending, last_index=last_index, last_hash=last_hash)
    repository.write_links(session, pending, head_hash=head_hash)


def _prepare_for_trigger(pending: list[NewAuditRecord]) -> None:
    for record in pending:
        record.seal_before, record.seal_after = chain.canonical_parts(record)


async def write_pending_beside(
    session: AsyncSession, writes: tuple[UpdateBase, ...], params: dict[str, Any]
) -> bool:
    """PostgreSQL: run the caller's `writes` (UPDATEs, with `params`) now, and write
    this transaction's pending audit rows in the same round trip instead of at commit.
    For a write that holds a contended row lock until its COMMIT (a hot auction's
    revision) that is one round trip fewer under the lock (docs/performance.md). The
    trigger still seals the rows inside the COMMIT, in the order they were written, so
    rows recorded later join the chain after them. Returns False, having done nothing,
    on SQLite, where Python seals a transaction's rows at commit under the chain head:
    the caller then runs its writes itself and the rows wait for the commit."""
    if not repository.seals_at_commit(session.sync_session):
        return False
    pending: list[NewAuditRecord] = session.info.pop(PENDING_KEY, [])
    recipients = session.info.pop(RECIPIENTS_KEY, [])
    _prepare_for_trigger(pending)
    await session.flush()  # as at commit: a recipient may be a row this transaction added
    await repository.insert_records_beside(session, writes, params, pending, recipients)
    return True


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
    session.info.pop(RECIPIENTS_KEY, None)


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
