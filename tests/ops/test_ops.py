"""Operations endpoints: health, readiness at the migration head, Prometheus metrics by
route template with business gauges, request ids, and the simulated clock hidden unless
enabled. Both databases."""

from __future__ import annotations

import re

import httpx

from receivables.app import create_app
from tests.conftest import make_settings
from tests.fixtures.market import funded_deal, listed_receivable
from tests.fixtures.world import World


async def test_health_and_readiness(client: httpx.AsyncClient):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_metrics_by_route_template_and_business_gauges(client, world: World, clock):
    await listed_receivable(client, world, clock)
    deal = await funded_deal(client, world, clock)
    await client.get(f"/deals/{deal['id']}", headers=world.bank.headers)
    text = (await client.get("/metrics")).text
    assert 'route="/deals/{deal_id}"' in text
    assert deal["id"] not in text
    assert re.search(r'receivables_http_requests_total\{method="POST",route="/deals/\{deal_id\}/fund",status="200"\} [1-9]', text)
    assert re.search(r"^receivables_open_listings 1\.0$", text, re.M)
    assert re.search(r'^receivables_deals\{status="disbursed"\} 1\.0$', text, re.M)


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient):
    given = await client.get("/healthz", headers={"X-Request-ID": "bank-trace-42"})
    assert given.headers["X-Request-ID"] == "bank-trace-42"
    hostile = await client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert hostile.headers["X-Request-ID"] != "x" * 500
    assert len(hostile.headers["X-Request-ID"]) == 32


async def test_admin_clock_is_404_unless_enabled(database_url: str, world: World):
    app = create_app(make_settings(database_url, simulated_clock=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/admin/clock", json={"advance_seconds": 60}, headers=world.operator.headers)
            assert response.status_code == 404
            assert (await http.post("/admin/clock", json={"advance_seconds": 60})).status_code == 404


async def test_admin_clock_moves_forward_only(client, world: World, clock):
    before = clock.now()
    moved = await client.post("/admin/clock", json={"advance_seconds": 3600}, headers=world.operator.headers)
    assert moved.status_code == 200
    assert (clock.now() - before).total_seconds() == 3600
    back = await client.post("/admin/clock", json={"now": before.isoformat()}, headers=world.operator.headers)
    assert back.status_code == 422
    forbidden = await client.post("/admin/clock", json={"advance_seconds": 1}, headers=world.bank.headers)
    assert forbidden.status_code == 403
