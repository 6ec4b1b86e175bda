"""Writing audit rows: one per transition, in the transition's own transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import Principal
from receivables.events.models import AuditRecord
from receivables.kit.clock import Clock


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
) -> AuditRecord:
    row = AuditRecord(
        occurred_at=clock.now(),
        actor_role=actor.role,
        actor_organization_id=actor.organization_id,
        actor_user_id=actor.user_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        from_state=from_state,
        to_state=to_state,
        data=data or {},
    )
    session.add(row)
    return row
