"""The backlog gauges on /metrics: webhook deliveries waiting (due now, and retrying
later) with the age of the oldest, and the worker's due deadlines by job. Each figure is
checked against what the worker then does: the webhook jobs deliver to a real receiver on
127.0.0.1 and the backlog drops to 0; a tick closes the due auction and its count drops
to 0. Through the real ASGI app, both databases."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from receivables.config import Settings
from receivables.webhooks.delivery import queue_deliveries
from receivables.worker.jobs import JOB_NAMES
from tests.fixtures.flows import advance_clock
from tests.fixtures.market import bid, funded_deal, listed_receivable, ok
from tests.fixtures.world import World
from tests.webhooks.receiver import Receiver, loopback_webhook_settings, receiver  # noqa: F401  (fixtures)
from tests.webhooks.support import deliveries, run_jobs, subscribe

DAY = 24 * 3600
DEADLINE_JOBS = (
    "receivables_expired", "auctions_closed", "deals_cancelled", "deals_overdue", "deals_defaulted",
)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics: (name, sorted labels) → value."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def webhook_gauges(client: httpx.AsyncClient) -> tuple[float, float, float]:
    """(backlog, oldest age in seconds, retrying)."""
    samples = await scrape(client)
    return (
        samples[("receivables_webhook_backlog", ())],
        samples[("receivables_webhook_backlog_oldest_age_seconds", ())],
        samples[("receivables_webhook_retrying", ())],
    )


async def worker_due(client: httpx.AsyncClient) -> dict[str, float]:
    samples = await scrape(client)
    return {job: samples[("receivables_worker_due", (("job", job),))] for job in DEADLINE_JOBS}


async def tick(client: httpx.AsyncClient, world: World) -> dict[str, int]:
    """POST /admin/tick (what `receivables worker --once` does): what each job moved."""
    body = await ok(await client.post("/admin/tick", headers=world.operator.headers))
    assert body["failed"] == []
    return body["processed"]


async def fill_outbox(app: FastAPI) -> None:
    """The worker's first webhook job only: events become pending deliveries."""
    while True:
        async with app.state.sessionmaker.begin() as session:
            if not await queue_deliveries(session, app.state.clock, app.state.settings):
                return


async def test_webhook_backlog_counts_due_deliveries_until_the_worker_sends_them(
    app, client, world: World, clock, receiver: Receiver
):
    assert await webhook_gauges(client) == (0, 0, 0)
    up = await subscribe(client, world.bank, receiver.url("/up"))
    down = await subscribe(client, world.bank, receiver.url("/down"))
    _, listing = await listed_receivable(client, world, clock)
    await bid(client, world.bank, listing["id"], "0.0600")
    await bid(client, world.bank2, listing["id"], "0.0550")  # another bank's: never sent
    await fill_outbox(app)

    n_up = len(await deliveries(client, world.bank, up["id"], status="pending"))
    n_down = len(await deliveries(client, world.bank, down["id"], status="pending"))
    assert n_up >= 2 and n_down >= 2  # at least the listing and the bank's own bid
    assert await webhook_gauges(client) == (n_up + n_down, 0, 0)

    # Nobody sends for 90 seconds: the oldest queued delivery is 90 seconds old.
    advance_clock(app, world, seconds=90)
    assert await webhook_gauges(client) == (n_up + n_down, 90, 0)

    # The worker sends everything: /up answers 200, /down 500 (retried in 60-75 s).
    receiver.answer("/down", *[500] * n_down)
    assert (await run_jobs(app))["webhook_attempts"] == n_up + n_down
    assert (len(receiver.at("/up")), len(receiver.at("/down"))) == (n_up, n_down)
    assert await webhook_gauges(client) == (0, 0, n_down)

    # The retry delay passes: /down's deliveries are due again, queued 90 + 120 s ago.
    advance_clock(app, world, seconds=120)
    assert await webhook_gauges(client) == (n_down, 210, 0)
    assert (await run_jobs(app))["webhook_attempts"] == n_down
    assert len(receiver.at("/down")) == 2 * n_down
    assert await webhook_gauges(client) == (0, 0, 0)
    assert len(await deliveries(client, world.bank, down["id"], status="delivered")) == n_down

async def test_deliveries_of_a_deleted_endpoint_leave_the_backlog(
    app, client, world: World, clock, receiver: Receiver
):
    hook = await subscribe(client, world.bank, receiver.url())
    _, listing = await listed_receivable(client, world, clock)
    await bid(client, world.bank, listing["id"], "0.0600")
    await fill_outbox(app)
    assert (await webhook_gauges(client))[0] > 0
    deleted = await client.delete(f"/webhooks/{hook['id']}", headers=world.bank.headers)
    assert deleted.status_code == 204
    assert await webhook_gauges(client) == (0, 0, 0)


async def test_worker_due_counts_deadlines_that_have_come_until_a_tick(
    app, client, world: World, clock
):
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0)
    assert set(DEADLINE_JOBS) <= set(JOB_NAMES)
    await listed_receivable(client, world, clock)  # its auction closes in an hour
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0)
    advance_clock(app, world, seconds=3600)
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0) | {"auctions_closed": 1}
    assert (await tick(client, world))["auctions_closed"] == 1
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0)


async def test_worker_due_follows_a_deal_into_overdue_and_default(
    app, client, world: World, clock, settings: Settings
):
    await funded_deal(client, world, clock, due_in_days=2)
    advance_clock(app, world, seconds=3 * DAY)  # the due date has passed
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0) | {"deals_overdue": 1}
    assert (await tick(client, world))["deals_overdue"] == 1
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0)
    advance_clock(app, world, seconds=(settings.grace_days + 1) * DAY)  # and the grace period
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0) | {"deals_defaulted": 1}
    assert (await tick(client, world))["deals_defaulted"] == 1
    assert await worker_due(client) == dict.fromkeys(DEADLINE_JOBS, 0)
