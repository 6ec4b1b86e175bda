"""All SQL about the audit trail and the events feed."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import bindparam, exists, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase

from receivables.auth.principal import Principal
from receivables.events.models import AuditChainHead, AuditRecord, EventRecipient, NewAuditRecord
from receivables.kit.db import unnest_select
from receivables.kit.pagination import index_page

WALK_BATCH_ROWS = 2000


_HEAD = AuditChainHead.__table__
_RECORD = AuditRecord.__table__
_RECIPIENT = EventRecipient.__table__
_WRITTEN_COLUMNS = tuple(
    c.name for c in _RECORD.columns if c.name not in {"sequence", "chain_index", "prev_hash", "hash"}
)
"""What a new row carries; its place in the chain is written when it is sealed."""

_ADVANCE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(last_index=_HEAD.c.last_index + bindparam("count"))
    .returning(_HEAD.c.last_index, _HEAD.c.last_hash)
)

_WRITE_LINK = (
    update(_RECORD)
    .where(_RECORD.c.id == bindparam("link_id"))
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


_RECIPIENT_COLUMNS = ("organization_id", "audit_id")
def _rows_with_recipients(prefix: str) -> UpdateBase:
    """PostgreSQL: the rows, in a data-modifying CTE whose rows the recipients' foreign
    key then finds, and their recipients, in one round trip; each column an array
    parameter named `prefix` + the column."""
    rows = unnest_select(_RECORD, _WRITTEN_COLUMNS, prefix=prefix)
    return (
        insert(_RECIPIENT)
        .from_select(_RECIPIENT_COLUMNS, unnest_select(_RECIPIENT, _RECIPIENT_COLUMNS, prefix=prefix))
        .add_cte(insert(_RECORD).from_select(_WRITTEN_COLUMNS, rows).cte("recorded"))
    )


_INSERT_ROWS_WITH_RECIPIENTS = _rows_with_recipients("")
_BESIDE_PREFIX = "audit_"
"""Beside a caller's UPDATE, the rows' parameters must not be named as a column: an
UPDATE takes a parameter named like one of its columns as a value to SET."""


Recipients = list[tuple[uuid.UUID, uuid.UUID]]
"""(organization id, audit id): who sees which row in its events feed."""


def _unnested_columns(
    records: list[NewAuditRecord], recipients: Recipients, prefix: str = ""
) -> dict[str, list]:
    """`_rows_with_recipients`'s parameters: one array per column."""
    columns = {prefix + name: [getattr(r, name) for r in records] for name in _WRITTEN_COLUMNS}
    columns[prefix + "organization_id"] = [organization_id for organization_id, _ in recipients]
    columns[prefix + "audit_id"] = [audit_id for _, audit_id in recipients]
    return columns


def insert_records(session: Session, records: list[NewAuditRecord], recipients: Recipients) -> None:
    """A transaction's audit rows and their (organization, audit id) recipients, in
    order. Core, not the ORM: nothing reads the rows back in this transaction, and the
    unit of work cost more CPU than the insert. SQLite has no data-modifying CTE: two
    statements there."""
    if seals_at_commit(session):
        session.execute(_INSERT_ROWS_WITH_RECIPIENTS, _unnested_columns(records, recipients))
        return
    session.execute(insert(_RECORD), [{name: getattr(r, name) for name in _WRITTEN_COLUMNS} for r in records])
    if recipients:
        session.execute(insert(_RECIPIENT), [
            {"organization_id": organization_id, "audit_id": audit_id} for organization_id, audit_id in recipients
        ])


@functools.cache
def _rows_beside(writes: tuple[UpdateBase, ...]) -> UpdateBase:
    """`_rows_with_recipients` with each of `writes` as one more data-modifying
    CTE, built once per tuple of statements."""
    statement = _rows_with_recipients(_BESIDE_PREFIX)
    for number, write in enumerate(writes):
        statement = statement.add_cte(write.cte(f"beside_{number}"))
    return statement


async def insert_records_beside(
    session: AsyncSession, writes: tuple[UpdateBase, ...], params: dict[str, Any],
    records: list[NewAuditRecord], recipients: Recipients,
) -> None:
    """PostgreSQL: the caller's `writes` (with their `params`) and the audit rows with
    their recipients, in one round trip. PostgreSQL runs every data-modifying CTE
    whether or not the statement reads it."""
    columns = _unnested_columns(records, recipients, _BESIDE_PREFIX)
    await session.execute(_rows_beside(writes), {**params, **columns})


def seals_at_commit(session: Session) -> bool:
    """PostgreSQL links the rows in a trigger at commit (migration 0002)."""
    return session.get_bind().dialect.name == "postgresql"


def write_links(session: Session, records: list[NewAuditRecord], *, head_hash: str) -> None:
    """Store the sealed records' chain fields and the head's new hash while the head is
    locked (after `advance_chain_head`; SQLite, where the one writer holds the file)."""
    session.execute(_WRITE_LINK, [
        {"link_id": r.id, "link_index": r.chain_index,
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
