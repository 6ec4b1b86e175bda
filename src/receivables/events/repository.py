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

WALK_BATCH_ROWS = 2000


_HEAD = AuditChainHead.__table__
_RECORD = AuditRecord.__table__

_ADVANCE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_index=_HEAD.c.last_index + bindparam("count"))
    .returning(_HEAD.c.last_index, _HEAD.c.last_hash)
)

_LINK_HASH_SQL = (
    "encode(sha256(convert_to({prev} || chr(10), 'UTF8') || (CAST(:befores AS BYTEA[]))[{n}] "
    "|| convert_to(CAST({index} AS TEXT), 'UTF8') || (CAST(:afters AS BYTEA[]))[{n}]), 'hex')"
)
_SEAL_PG = text(
    "WITH RECURSIVE head AS ("
    " SELECT last_index, last_hash FROM audit_chain_head WHERE id = 1 FOR UPDATE"
    "), link (n, chain_index, prev_hash, hash) AS ("
    " SELECT 1, last_index + 1, CAST(last_hash AS TEXT), "
    + _LINK_HASH_SQL.format(prev="last_hash", n="1", index="last_index + 1")
    + " FROM head"
    " UNION ALL"
    " SELECT n + 1, chain_index + 1, hash, "
    + _LINK_HASH_SQL.format(prev="hash", n="n + 1", index="chain_index + 1")
    + " FROM link WHERE n < cardinality(CAST(:sequences AS BIGINT[]))"
    "), sealed AS ("
    " UPDATE audit_record SET chain_index = link.chain_index, prev_hash = link.prev_hash,"
    " hash = link.hash FROM link"
    " WHERE audit_record.sequence = (CAST(:sequences AS BIGINT[]))[link.n]"
    ") "
    "UPDATE audit_chain_head SET last_index = (SELECT max(chain_index) FROM link),"
    " last_hash = (SELECT hash FROM link ORDER BY n DESC LIMIT 1) "
    "FROM head WHERE audit_chain_head.id = 1 "
    "RETURNING head.last_index, head.last_hash, audit_chain_head.last_hash AS head_hash"
)
"""PostgreSQL seals in ONE statement: lock the head, compute each record's link with
the database's sha256 over the canonical bytes Python prepared around the index
(`chain.canonical_parts`), store the links and the new head. The head's lock is then
held for that statement and the commit only, instead of a round trip per step."""

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


def seals_in_one_statement(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def seal_in_one_statement(
    session: Session, records: list[AuditRecord], parts: list[tuple[bytes, bytes]]
) -> tuple[int, str, str]:
    """PostgreSQL: lock the head (created on first use), link `records` (flushed, in
    order) after it and move it, in one statement held under the head's lock until the
    commit. Returns the index and hash the head had, and the hash it has now."""
    params = {
        "sequences": [r.sequence for r in records],
        "befores": [before for before, _ in parts],
        "afters": [after for _, after in parts],
    }
    row = session.execute(_SEAL_PG, params).first()
    if row is None:
        session.execute(pg_insert(AuditChainHead).values(id=1).on_conflict_do_nothing())
        row = session.execute(_SEAL_PG, params).one()
    return row.last_index, row.last_hash, row.head_hash


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
