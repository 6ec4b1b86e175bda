"""Helpers for webhook tests: subscribe over HTTP, run the worker's webhook jobs, read
the delivery log and check signatures against the app's (simulated) clock."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from receivables.webhooks import signing
from receivables.webhooks.delivery import run_webhook_jobs
from receivables.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.fixtures.market import ok
from tests.fixtures.world import Party
from tests.webhooks.receiver import Received


async def subscribe(
    client: httpx.AsyncClient, party: Party, url: str, events: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"url": url, "events": events or ["*"], **extra}
    return await ok(await client.post("/webhooks", json=body, headers=party.headers), 201)


async def run_jobs(app: FastAPI, **kwargs: Any) -> dict[str, int]:
    return await run_webhook_jobs(
        app.state.sessionmaker, clock=app.state.clock, settings=app.state.settings, **kwargs
    )


async def deliveries(
    client: httpx.AsyncClient, party: Party, webhook_id: str, **params: Any
) -> list[dict]:
    found, cursor = [], None
    while True:
        query = {"limit": 200, **params} | ({"cursor": cursor} if cursor else {})
        page = await ok(
            await client.get(
                f"/webhooks/{webhook_id}/deliveries", params=query, headers=party.headers
            )
        )
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def all_events(client: httpx.AsyncClient, party: Party) -> list[dict]:
    events, cursor = [], None
    while True:
        params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = await ok(await client.get("/events", params=params, headers=party.headers))
        events += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def signed_by(received: Received, secret: str, app: FastAPI) -> bool:
    """The signature verifies under `secret` at the platform's clock (simulated)."""
    now = app.state.clock.now().timestamp()
    return signing.verify(secret, received.headers["x-signature"], received.body, now=now)


async def endpoint_row(app: FastAPI, webhook_id: str) -> WebhookEndpoint:
    async with app.state.sessionmaker() as session:
        return await session.get_one(WebhookEndpoint, uuid.UUID(webhook_id))


async def delivery_rows(app: FastAPI, webhook_id: str) -> list[WebhookDelivery]:
    async with app.state.sessionmaker() as session:
        stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == uuid.UUID(webhook_id))
        return list((await session.execute(stmt.order_by(WebhookDelivery.chain_index))).scalars())
