"""/webhooks: each organization's own subscriptions and their delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from receivables.auth.dependencies import Actor
from receivables.kit.deps import ClockDep, SessionDep, SettingsDep
from receivables.kit.errors import NotFound, problem_responses
from receivables.kit.pagination import (
    PAGE_LIMIT_DEFAULT,
    CursorQuery,
    IndexCursor,
    LimitQuery,
    Page,
    PageParams,
    next_cursor,
)
from receivables.webhooks import service
from receivables.webhooks.schemas import (
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    delivery_read,
    webhook_created,
    webhook_read,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

DELIVERY_CURSOR = IndexCursor("delivery")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=problem_responses(service.WebhookUrlNotAllowed, service.TooManyWebhooks),
)
async def create_webhook(
    body: WebhookCreate, actor: Actor, session: SessionDep, clock: ClockDep, settings: SettingsDep
):
    """Subscribe a URL of yours to event types. Each matching event your organization
    may see (as in `GET /events`) is POSTed to it as JSON, signed
    `X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` with the `secret` that this
    answer shows once (generated when you give none), with `X-Event-Id` to de-duplicate
    on. Delivery is at least once, retried with backoff for more than a day; an endpoint
    that keeps failing is disabled. Events committed after this call are delivered."""
    endpoint, secret = await service.create(session, actor, body, clock=clock, settings=settings)
    return webhook_created(endpoint, secret)


@router.get("", response_model=Page[WebhookRead], responses=problem_responses())
async def list_webhooks(
    actor: Actor,
    session: SessionDep,
    page: PageParams,
    status: Annotated[Literal["active", "disabled"] | None, Query()] = None,
):
    """Your organization's webhooks, oldest first, without their secrets; `disabled`
    ones were stopped after persistent failure (`disabled_reason` says why)."""
    rows = await service.list_page(session, actor, page, status=status)
    items = [webhook_read(row) for row in rows[: page.limit]]
    return Page(items=items, next_cursor=next_cursor(rows, page.limit))


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(NotFound),
)
async def delete_webhook(
    webhook_id: uuid.UUID, actor: Actor, session: SessionDep, clock: ClockDep
) -> Response:
    """Delete one of your webhooks: nothing more is sent to it, pending deliveries
    included."""
    await service.delete(session, actor, webhook_id, clock=clock)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(NotFound),
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    actor: Actor,
    session: SessionDep,
    limit: LimitQuery = PAGE_LIMIT_DEFAULT,
    cursor: CursorQuery = None,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
):
    """The delivery log of one of your webhooks, in event order: each event queued for
    it, its state, and every attempt (status code, the start of the answer, error,
    duration)."""
    after_index = DELIVERY_CURSOR.decode(cursor)
    rows, attempts = await service.deliveries_page(
        session, actor, webhook_id, after_index=after_index, limit=limit, status=status
    )
    items = [delivery_read(row, attempts[row.id]) for row in rows[:limit]]
    following = next_cursor(rows, limit, lambda row: DELIVERY_CURSOR.encode(row.chain_index))
    return DeliveryPage(items=items, next_cursor=following)
