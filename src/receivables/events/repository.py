"""All SQL about the audit trail and the events feed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from sqlalchemy import bindparam, exists, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from receivables.auth.principal import Principal
from receivables.events.models import AuditChainHead, AuditRecord, EventRecipient
from receivables.kit.pagination import index_page

WALK_BATCH_ROWS = 2000


_HEAD = AuditChainHead.__table__
_RECORD = AuditRecord.__table__

_ADVANCE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_index=_HEAD.c.last_index + bindparam("count"))
    .returning(_HEAD.c.last_index, _HEAD.c.last_hash)
)

_WRITE_LINK = (
    update(_RECORD)
    .where(_RECORD.c.sequence == bindparam("link_sequence"))
    .values(
        chain_index=bindparam("link_index"),
        prev_hash=bindparam("link_prev_hash"),
        hash=bindparam("link_hash"),
    )
)
_WRITE_HEAD_HASH = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("head_hash"))


def advance_chain_head(session: Session, count: int) -> tuple[int, str]:
    """Lock the head row (created on first use) until this transaction ends and move its
    index `count` places on, in one statement: returns the index and hash it had. Sync:
    it runs inside the commit (a `before_commit` hook), where SQLAlchemy's asyncio layer
    lets synchronous calls do I/O."""
    row = session.execute(_ADVANCE_HEAD, {"count": count}).first()
    if row is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(insert(AuditChainHead).values(id=1).on_conflict_do_nothing())
        row = session.execute(_ADVANCE_HEAD, {"count": count}).one()
    return row.last_index - count, row.last_hash


def seals_at_commit(session: Session) -> bool:
    """PostgreSQL links the rows in a trigger at commit (migration 0002)."""
    return session.get_bind().dialect.name == "postgresql"


def write_links(session: Session, records: list[AuditRecord], *, head_hash: str) -> None:
    """Store the sealed records' chain fields and the head's new hash while the head is
    locked (after `advance_chain_head`; SQLite, where the one writer holds the file)."""
    session.execute(_WRITE_LINK, [
        {"link_sequence": r.sequence, "link_index": r.chain_index,
         "link_prev_hash": r.prev_hash, "link_hash": r.hash}
        for r in records
    ])
    session.execute(_WRITE_HEAD_HASH, {"head_hash": head_hash})


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
    stmt = index_page(_feed_for(principal), AuditRecord.chain_index, after=after_index, limit=limit)
    return list((await session.execute(stmt)).scalars())


async def chain_index_of(session: AsyncSession, event_id: uuid.UUID) -> int | None:
    stmt = select(AuditRecord.chain_index).where(AuditRecord.id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def audit_page(session: AsyncSession, *, after_index: int, limit: int) -> list[AuditRecord]:
    stmt = index_page(select(AuditRecord), AuditRecord.chain_index, after=after_index, limit=limit)
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
