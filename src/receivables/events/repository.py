"""All SQL about the audit trail and the events feed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from sqlalchemy import exists, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from receivables.auth.principal import Principal
from receivables.events.models import AuditChainHead, AuditRecord, EventRecipient

WALK_BATCH_ROWS = 2000


def lock_chain_head(session: Session) -> AuditChainHead:
    """The head row, created on first use, locked until this transaction ends. Sync:
    it runs inside the commit (a `before_commit` hook), where SQLAlchemy's asyncio layer
    lets synchronous calls do I/O."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(AuditChainHead).values(id=1).on_conflict_do_nothing())
    stmt = (
        select(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one()


def _feed_for(principal: Principal):
    stmt = select(AuditRecord).where(AuditRecord.chain_index.is_not(None))
    if principal.sees_everything:
        return stmt
    addressed = exists().where(
        EventRecipient.audit_id == AuditRecord.id,
        EventRecipient.organization_id == principal.organization_id,
    )
    return stmt.where(or_(addressed, AuditRecord.audience_kind == principal.role))


async def feed_page(
    session: AsyncSession, principal: Principal, *, after_index: int, limit: int
) -> list[AuditRecord]:
    stmt = (
        _feed_for(principal)
        .where(AuditRecord.chain_index > after_index)
        .order_by(AuditRecord.chain_index)
        .limit(limit + 1)
    )
    return list((await session.execute(stmt)).scalars())


async def chain_index_of(session: AsyncSession, event_id: uuid.UUID) -> int | None:
    stmt = select(AuditRecord.chain_index).where(AuditRecord.id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def audit_page(session: AsyncSession, *, after_index: int, limit: int) -> list[AuditRecord]:
    stmt = (
        select(AuditRecord)
        .where(AuditRecord.chain_index > after_index)
        .order_by(AuditRecord.chain_index)
        .limit(limit + 1)
    )
    return list((await session.execute(stmt)).scalars())


async def walk_chain(session: AsyncSession) -> AsyncIterator[AuditRecord]:
    """Every sealed row in chain order, in batches (bounded memory), then the unsealed."""
    after = 0
    while True:
        batch = await audit_page(session, after_index=after, limit=WALK_BATCH_ROWS - 1)
        for record in batch:
            yield record
        if len(batch) < WALK_BATCH_ROWS:
            break
        after = batch[-1].chain_index or after
    unsealed = select(AuditRecord).where(AuditRecord.chain_index.is_(None)).limit(1)
    for record in (await session.execute(unsealed)).scalars():
        yield record
