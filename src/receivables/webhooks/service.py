"""Managing webhooks (the API side): create, list, delete, read the delivery log.

A new endpoint starts at the feed's current head: it receives the events committed
after its creation (earlier ones are in `GET /events`). Its secret is generated when
not given, returned once and never shown again. Creating, deleting and the platform's
disabling of an endpoint are events of the organization's own feed (`webhook.*`).
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from receivables.auth.principal import Principal
from receivables.config import Settings
from receivables.events import service as audit
from receivables.kit.clock import Clock
from receivables.kit.errors import Conflict, NotFound, Unprocessable
from receivables.kit.pagination import PageRequest
from receivables.webhooks import repository, urls
from receivables.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
)
from receivables.webhooks.schemas import WebhookCreate

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
"""Generated secrets carry 256 random bits."""
WEBHOOKS_PER_ORGANIZATION_MAX = 20


class WebhookNotFound(NotFound):
    code, title = "not_found", "No such webhook"


class WebhookUrlNotAllowed(Unprocessable):
    code, title = "webhook_url_not_allowed", "The platform does not deliver to this URL"


class TooManyWebhooks(Conflict):
    code, title = "too_many_webhooks", "The organization has the most webhooks allowed"


async def _audit(
    session: AsyncSession,
    actor: Principal,
    endpoint: WebhookEndpoint,
    *,
    clock: Clock,
    action: str,
    before: str | None,
) -> None:
    await audit.record(
        session,
        actor,
        clock=clock,
        action=f"webhook.{action}",
        object_type="webhook",
        object_id=endpoint.id,
        from_state=before,
        to_state=endpoint.status,
        data={"url": endpoint.url},
        recipients=(endpoint.organization_id,),
    )


async def create(
    session: AsyncSession,
    actor: Principal,
    body: WebhookCreate,
    *,
    clock: Clock,
    settings: Settings,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret (to show once)."""
    assert actor.organization_id is not None
    try:
        target = urls.check_url(body.url, allow_insecure=settings.webhook_allow_insecure)
    except urls.UrlRefused as exc:
        raise WebhookUrlNotAllowed(str(exc)) from None
    if await repository.count_live(session, actor.organization_id) >= WEBHOOKS_PER_ORGANIZATION_MAX:
        raise TooManyWebhooks(f"at most {WEBHOOKS_PER_ORGANIZATION_MAX}; delete one first")
    secret = body.secret or SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    endpoint = WebhookEndpoint(
        organization_id=actor.organization_id,
        url=target.url,
        event_types=list(body.events),
        secret=secret,
        status=WebhookStatus.active,
        last_chain_index=await repository.chain_head_index(session),
        created_at=clock.now(),
    )
    session.add(endpoint)
    await _audit(session, actor, endpoint, clock=clock, action="created", before=None)
    await session.flush()
    return endpoint, secret


async def list_page(
    session: AsyncSession, actor: Principal, page: PageRequest, *, status: str | None
) -> list[WebhookEndpoint]:
    return await repository.list_own(session, actor, page, status=status)


async def delete(
    session: AsyncSession, actor: Principal, webhook_id: uuid.UUID, *, clock: Clock
) -> None:
    """Stop deliveries at once (pending ones are never sent) and hide the endpoint."""
    endpoint = await repository.get_own(session, actor, webhook_id, lock=True)
    if endpoint is None:
        raise WebhookNotFound()
    before = endpoint.status
    endpoint.status = WebhookStatus.deleted
    endpoint.deleted_at = clock.now()
    await repository.park_pending(session, endpoint.id)
    await _audit(session, actor, endpoint, clock=clock, action="deleted", before=before)
    await session.flush()


async def deliveries_page(
    session: AsyncSession,
    actor: Principal,
    webhook_id: uuid.UUID,
    *,
    after_index: int,
    limit: int,
    status: str | None,
) -> tuple[list[WebhookDelivery], dict[uuid.UUID, list[WebhookAttempt]]]:
    """One page of the endpoint's log (limit + 1 rows) and each delivery's attempts."""
    if await repository.get_own(session, actor, webhook_id) is None:
        raise WebhookNotFound()
    rows = await repository.delivery_page(
        session, webhook_id, after_index=after_index, limit=limit, status=status
    )
    return rows, await repository.attempts_of(session, [row.id for row in rows[:limit]])
