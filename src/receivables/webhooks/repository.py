"""All SQL about webhooks: the caller's own endpoints (another organization's do not
exist for it: 404), the outbox claims of the worker, and the delivery log."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import Principal
from receivables.events.models import AuditChainHead
from receivables.kit.pagination import PageRequest, index_page, keyset_page
from receivables.organizations.models import Organization, OrganizationStatus
from receivables.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
)


def _own(principal: Principal):
    return select(WebhookEndpoint).where(
        WebhookEndpoint.organization_id == principal.organization_id,
        WebhookEndpoint.status != WebhookStatus.deleted,
    )


async def get_own(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint | None:
    stmt = _own(principal).where(WebhookEndpoint.id == webhook_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_own(
    session: AsyncSession, principal: Principal, page: PageRequest, *, status: str | None
) -> list[WebhookEndpoint]:
    stmt = _own(principal)
    if status is not None:
        stmt = stmt.where(WebhookEndpoint.status == status)
    return list((await session.execute(keyset_page(stmt, WebhookEndpoint, page))).scalars())


async def count_live(session: AsyncSession, organization_id: uuid.UUID) -> int:
    stmt = (
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(
            WebhookEndpoint.organization_id == organization_id,
            WebhookEndpoint.status != WebhookStatus.deleted,
        )
    )
    return (await session.execute(stmt)).scalar_one()


async def chain_head_index(session: AsyncSession) -> int:
    """The newest sealed feed position. Every event at or below it has committed (the
    head moves in the sealing transaction), so a feed read that follows sees them all."""
    stmt = select(AuditChainHead.last_index).where(AuditChainHead.id == 1)
    return (await session.execute(stmt)).scalar_one_or_none() or 0


async def claim_endpoint_behind(
    session: AsyncSession, *, head_index: int
) -> tuple[WebhookEndpoint, Organization] | None:
    """An active endpoint of an active organization whose cursor is behind the feed,
    locked; on PostgreSQL one another worker holds is skipped."""
    stmt = (
        select(WebhookEndpoint, Organization)
        .join(Organization, Organization.id == WebhookEndpoint.organization_id)
        .where(
            WebhookEndpoint.status == WebhookStatus.active,
            WebhookEndpoint.last_chain_index < head_index,
            Organization.status == OrganizationStatus.active,
        )
        .order_by(WebhookEndpoint.last_chain_index, WebhookEndpoint.id)
        .limit(1)
        .with_for_update(of=WebhookEndpoint, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).first()
    return (row[0], row[1]) if row is not None else None


async def add_deliveries(session: AsyncSession, rows: Sequence[dict]) -> None:
    """Insert outbox rows; an (endpoint, event) pair already there is left alone, so
    even a replayed fill never queues an event twice."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(WebhookDelivery)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
    )
    await session.execute(stmt)


async def claim_due(
    session: AsyncSession, *, now: dt.datetime, batch_size_max: int
) -> list[tuple[WebhookDelivery, WebhookEndpoint]]:
    """Pending deliveries whose attempt is due, of active endpoints of active
    organizations, locked for this transaction (PostgreSQL: others' skipped)."""
    stmt = (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Organization, Organization.id == WebhookEndpoint.organization_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.pending,
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.status == WebhookStatus.active,
            Organization.status == OrganizationStatus.active,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.chain_index)
        .limit(batch_size_max)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def count_failed_delivery(session: AsyncSession, endpoint_id: uuid.UUID) -> int:
    """One more delivery failed for good: the endpoint's new consecutive count (an
    atomic increment, so concurrent workers never lose one)."""
    stmt = (
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(consecutive_failed_deliveries=WebhookEndpoint.consecutive_failed_deliveries + 1)
        .returning(WebhookEndpoint.consecutive_failed_deliveries)
    )
    return (await session.execute(stmt)).scalar_one()


async def reset_failed_deliveries(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    stmt = (
        update(WebhookEndpoint)
        .where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.consecutive_failed_deliveries != 0
        )
        .values(consecutive_failed_deliveries=0)
    )
    await session.execute(stmt)


async def disable(
    session: AsyncSession, endpoint_id: uuid.UUID, *, now: dt.datetime, reason: str
) -> bool:
    stmt = (
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.status == WebhookStatus.active)
        .values(status=WebhookStatus.disabled, disabled_at=now, disabled_reason=reason)
    )
    return ((await session.execute(stmt)).rowcount or 0) > 0


async def park_pending(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    """A deleted or disabled endpoint's pending deliveries stay in the log but are due
    no more (no `next_attempt_at`), so the due-delivery scan never meets them again."""
    stmt = (
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.pending,
        )
        .values(next_attempt_at=None)
    )
    await session.execute(stmt)


async def delivery_page(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    after_index: int,
    limit: int,
    status: str | None,
) -> list[WebhookDelivery]:
    """One page of the log in event order, plus one row telling whether more follow."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    stmt = index_page(stmt, WebhookDelivery.chain_index, after=after_index, limit=limit)
    return list((await session.execute(stmt)).scalars())


async def attempts_of(
    session: AsyncSession, delivery_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    found: dict[uuid.UUID, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return found
    stmt = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(list(delivery_ids)))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
    )
    for attempt in (await session.execute(stmt)).scalars():
        found[attempt.delivery_id].append(attempt)
    return found


class DeliveryBacklog(NamedTuple):
    due: int
    """Deliveries `claim_due` would claim now: pending and due, of active endpoints of
    active organizations."""
    oldest_due_created_at: dt.datetime | None
    """When the oldest of those was queued; None when there is none."""
    retrying: int
    """Pending deliveries of such endpoints waiting out a retry delay (due later)."""


async def delivery_backlog(session: AsyncSession, *, now: dt.datetime) -> DeliveryBacklog:
    """For /metrics, in one indexed scan of the pending rows (`ix_webhook_delivery_due`).
    Parked deliveries (disabled or deleted endpoints: no `next_attempt_at`), failed and
    delivered ones are waiting for nothing: not counted."""
    is_due = WebhookDelivery.next_attempt_at <= now
    stmt = (
        select(
            func.count(case((is_due, 1))),
            func.min(case((is_due, WebhookDelivery.created_at))),
            func.count(case((WebhookDelivery.next_attempt_at > now, 1))),
        )
        .select_from(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Organization, Organization.id == WebhookEndpoint.organization_id)
        .where(
            WebhookDelivery.status == DeliveryStatus.pending,
            WebhookDelivery.next_attempt_at.is_not(None),
            WebhookEndpoint.status == WebhookStatus.active,
            Organization.status == OrganizationStatus.active,
        )
    )
    due, oldest, retrying = (await session.execute(stmt)).one()
    return DeliveryBacklog(int(due), oldest, int(retrying))
