"""Webhooks delivered by the worker's jobs to a real HTTP receiver on 127.0.0.1.

Method: parties subscribe over the API, act through the API, then the test runs the
webhook jobs (the same functions the worker runs) at the simulated clock's time and
inspects what the receiver got and what the delivery log says. Both databases."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select, update

from receivables.webhooks import delivery
from receivables.webhooks.delivery import (
    ATTEMPTS_MAX,
    CONSECUTIVE_FAILED_DELIVERIES_MAX,
    deliver_due,
    queue_deliveries,
)
from receivables.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from receivables.webhooks.schemas import EVENT_CATALOGUE
from tests.fixtures.flows import advance_clock
from tests.fixtures.market import award, bid, fund, listed_receivable, ok, repay
from tests.fixtures.world import World
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import (
    all_events,
    deliveries,
    delivery_rows,
    endpoint_row,
    run_jobs,
    signed_by,
    subscribe,
)


class Crash(Exception):
    """The worker process dying at this point: its transaction never commits."""


async def _auction(client, world: World, clock) -> dict:
    receivable, listing = await listed_receivable(
        client, world, clock, face_value="1000.00", due_in_days=20
    )
    losing = await bid(client, world.bank2, listing["id"], "0.0700")
    winning = await bid(client, world.bank, listing["id"], "0.0600")
    deal = await fund(
        client, world.bank, await award(client, world.sme, listing["id"], winning["id"])
    )
    await repay(client, world.core, deal["id"], "1000.00")
    return {
        "receivable": receivable,
        "listing": listing,
        "losing": losing,
        "winning": winning,
        "deal": deal,
    }


async def test_events_arrive_signed_with_their_id_and_the_feed_body(
    app, client, world: World, clock, receiver: Receiver
):
    hook = await subscribe(
        client, world.bank, receiver.url("/bank"), ["listing.*", "bid.*", "deal.*"]
    )
    await _auction(client, world, clock)
    processed = await run_jobs(app)
    assert processed["webhook_endpoints_fed"] >= 1

    got = receiver.at("/bank")
    feed = await all_events(client, world.bank)
    subscribed = {e["id"]: e for e in feed if e["type"].split(".")[0] in {"listing", "bid", "deal"}}
    assert {r.event_id: r.event for r in got} == subscribed
    assert len(got) == len(subscribed) >= 8
    assert {"listing.opened", "bid.won", "deal.funded", "deal.repaid", "deal.settled"} <= {
        r.event["type"] for r in got
    }
    for received in got:
        assert signed_by(received, hook["secret"], app)
        assert not signed_by(received, "whsec_" + "wrong" * 8, app)
        assert received.headers["x-event-id"] == received.event["id"]
        assert received.headers["content-type"] == "application/json"
        assert received.headers["x-event-type"] == received.event["type"]

    log = await deliveries(client, world.bank, hook["id"])
    assert {d["event_id"] for d in log} == set(subscribed)
    assert all(d["status"] == "delivered" and d["attempt_count"] == 1 for d in log)
    assert all(
        d["attempts"][0]["status_code"] == 200
        and d["attempts"][0]["response_body"] == '{"ok": true}'
        for d in log
    )
    assert await run_jobs(app) == {"webhook_endpoints_fed": 0, "webhook_attempts": 0}
    emitted = {e["type"] for e in await all_events(client, world.operator)}
    assert emitted <= set(EVENT_CATALOGUE), emitted - set(EVENT_CATALOGUE)


async def test_retried_after_the_receiver_answers_500_twice(
    app, client, world: World, clock, receiver: Receiver
):
    receiver.answer("/flaky", (500, b"x" * 5000), 500)
    hook = await subscribe(client, world.bank, receiver.url("/flaky"), ["listing.opened"])
    await listed_receivable(client, world, clock)

    await run_jobs(app)
    assert len(receiver.at("/flaky")) == 1
    await run_jobs(app)  # the retry is not due yet
    assert len(receiver.at("/flaky")) == 1
    advance_clock(app, world, seconds=60 * 1.25 + 1)  # first retry: 1 min (+ up to 25 % jitter)
    await run_jobs(app)
    assert len(receiver.at("/flaky")) == 2
    advance_clock(app, world, seconds=120 * 1.25 + 1)  # second retry: 2 min (+ jitter)
    await run_jobs(app)

    got = receiver.at("/flaky")
    assert len(got) == 3
    assert len({r.event_id for r in got}) == 1
    assert len({r.headers["x-signature"] for r in got}) == 3  # signed afresh, new `t`
    assert signed_by(got[-1], hook["secret"], app)
    [logged] = await deliveries(client, world.bank, hook["id"])
    assert (logged["status"], logged["attempt_count"], logged["next_attempt_at"]) == (
        "delivered",
        3,
        None,
    )
    assert [a["status_code"] for a in logged["attempts"]] == [500, 500, 200]
    assert logged["attempts"][0]["response_body"] == "x" * 2048  # the log keeps 2 KB
    assert [a["number"] for a in logged["attempts"]] == [1, 2, 3]
    assert all(a["error"] is None and a["duration_ms"] >= 0 for a in logged["attempts"])


async def test_never_sent_to_a_rival_bank(app, client, world: World, clock, receiver: Receiver):
    hooks = {
        name: await subscribe(client, getattr(world, name), receiver.url(f"/{name}"), ["*"])
        for name in ("bank", "bank2", "bank3")
    }
    objects = await _auction(client, world, clock)
    await run_jobs(app)
    winning, losing = objects["winning"]["id"], objects["losing"]["id"]

    for name in ("bank", "bank2", "bank3"):
        got = receiver.at(f"/{name}")
        feed = await all_events(client, getattr(world, name))
        assert sorted(r.event_id for r in got) == sorted(e["id"] for e in feed)
        assert all(signed_by(r, hooks[name]["secret"], app) for r in got)
    ids = {name: {r.event["data"]["object_id"] for r in receiver.at(f"/{name}")} for name in hooks}
    assert winning in ids["bank"] and losing not in ids["bank"]
    assert losing in ids["bank2"] and winning not in ids["bank2"]
    assert winning not in ids["bank3"] and losing not in ids["bank3"]
    assert objects["listing"]["id"] in ids["bank3"]  # every bank hears of the listing
    assert not [r for r in receiver.at("/bank2") if r.event["type"].startswith("deal.")]


async def _run_until_nothing_pending(app, world: World) -> None:
    """Run the jobs, then move the clock to when every pending delivery is due again
    (a worker polling meanwhile would have found nothing else), until none is left."""
    for _ in range(ATTEMPTS_MAX + 2):
        await run_jobs(app)
        async with app.state.sessionmaker() as session:
            stmt = select(func.max(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == DeliveryStatus.pending
            )
            due = (await session.execute(stmt)).scalar_one()
        if due is None:
            return
        advance_clock(app, world, seconds=max((due - app.state.clock.now()).total_seconds(), 0))
    raise AssertionError("deliveries still pending")


async def test_disabled_after_persistent_failure(
    app, client, world: World, clock, receiver: Receiver
):
    hook = await subscribe(client, world.bank, receiver.url("/down"), ["listing.opened"])
    # One delivery fails for good, the next succeeds: the count of failures starts over.
    receiver.answer("/down", *[503] * ATTEMPTS_MAX)
    await listed_receivable(client, world, clock)
    await _run_until_nothing_pending(app, world)
    assert (await endpoint_row(app, hook["id"])).consecutive_failed_deliveries == 1
    await listed_receivable(client, world, clock)
    await run_jobs(app)
    assert (await endpoint_row(app, hook["id"])).consecutive_failed_deliveries == 0

    receiver.answer("/down", *[503] * (ATTEMPTS_MAX * CONSECUTIVE_FAILED_DELIVERIES_MAX))
    for _ in range(CONSECUTIVE_FAILED_DELIVERIES_MAX):
        await listed_receivable(client, world, clock)
    await _run_until_nothing_pending(app, world)

    log = await deliveries(client, world.bank, hook["id"], status="failed")
    assert len(log) == CONSECUTIVE_FAILED_DELIVERIES_MAX + 1
    for logged in log:
        assert (logged["status"], logged["attempt_count"]) == ("failed", ATTEMPTS_MAX)
        assert {a["status_code"] for a in logged["attempts"]} == {503}
        first = dt.datetime.fromisoformat(logged["attempts"][0]["attempted_at"])
        last = dt.datetime.fromisoformat(logged["attempts"][-1]["attempted_at"])
        assert last - first >= dt.timedelta(days=1)  # retried for at least a day
    assert len(receiver.at("/down")) == ATTEMPTS_MAX * (CONSECUTIVE_FAILED_DELIVERIES_MAX + 1) + 1

    [listed] = (await ok(await client.get("/webhooks", headers=world.bank.headers)))["items"]
    assert (listed["id"], listed["status"]) == (hook["id"], "disabled")
    assert listed["consecutive_failed_deliveries"] == CONSECUTIVE_FAILED_DELIVERIES_MAX
    assert "failed" in listed["disabled_reason"] and listed["disabled_at"] is not None
    feed = await all_events(client, world.bank)
    assert [e["data"]["object_id"] for e in feed if e["type"] == "webhook.disabled"] == [hook["id"]]

    await listed_receivable(client, world, clock)  # a disabled endpoint gets nothing new
    assert await run_jobs(app) == {"webhook_endpoints_fed": 0, "webhook_attempts": 0}
    assert len(await delivery_rows(app, hook["id"])) == CONSECUTIVE_FAILED_DELIVERIES_MAX + 2


async def test_a_crash_between_sending_and_bookkeeping_sends_again(
    app, client, world: World, clock, receiver: Receiver
):
    hook = await subscribe(client, world.bank, receiver.url("/crash"), ["listing.opened"])
    await listed_receivable(client, world, clock)
    sessionmaker, settings = app.state.sessionmaker, app.state.settings
    async with sessionmaker.begin() as session:
        assert await queue_deliveries(session, clock, settings) == 1

    with pytest.raises(Crash):
        async with sessionmaker.begin() as session:
            assert await deliver_due(session, clock, settings) == 1
            raise Crash()
    assert len(receiver.at("/crash")) == 1
    [row] = await delivery_rows(app, hook["id"])
    assert (row.status, row.attempt_count) == ("pending", 0)  # the bookkeeping never happened

    await run_jobs(app)
    first, second = receiver.at("/crash")
    assert first.event_id == second.event_id and first.body == second.body
    [logged] = await deliveries(client, world.bank, hook["id"])
    assert (logged["status"], logged["attempt_count"]) == ("delivered", 1)


async def test_the_outbox_fill_loses_and_duplicates_nothing(
    app, client, world: World, clock, receiver: Receiver
):
    hook = await subscribe(client, world.bank, receiver.url("/fill"), ["listing.opened"])
    await listed_receivable(client, world, clock)
    sessionmaker, settings = app.state.sessionmaker, app.state.settings
    cursor_before = (await endpoint_row(app, hook["id"])).last_chain_index

    with pytest.raises(Crash):
        async with sessionmaker.begin() as session:
            assert await queue_deliveries(session, clock, settings) == 1
            raise Crash()
    assert await delivery_rows(app, hook["id"]) == []
    assert (await endpoint_row(app, hook["id"])).last_chain_index == cursor_before

    async with sessionmaker.begin() as session:
        assert await queue_deliveries(session, clock, settings) == 1
    async with sessionmaker.begin() as session:
        assert await queue_deliveries(session, clock, settings) == 0  # caught up
    assert len(await delivery_rows(app, hook["id"])) == 1
    async with sessionmaker.begin() as session:  # even a cursor moved back re-queues nothing
        await session.execute(update(WebhookEndpoint).values(last_chain_index=0))
    async with sessionmaker.begin() as session:
        assert await queue_deliveries(session, clock, settings) == 1
    assert len(await delivery_rows(app, hook["id"])) == 1


async def test_four_concurrent_drainers_send_each_delivery_once(
    app, client, world: World, clock, receiver: Receiver
):
    """PostgreSQL: FOR UPDATE SKIP LOCKED splits the due rows; SQLite: writers queue."""
    await subscribe(client, world.sme, receiver.url("/sme"), ["*"])
    for _ in range(6):
        await listed_receivable(client, world, clock)
    sessionmaker, settings = app.state.sessionmaker, app.state.settings
    while True:
        async with sessionmaker.begin() as session:
            if not await queue_deliveries(session, clock, settings):
                break

    async def drain() -> int:
        sent = 0
        while True:
            async with sessionmaker.begin() as session:
                attempted = await deliver_due(session, clock, settings)
            sent += attempted
            if not attempted:
                return sent

    sent = await asyncio.gather(*(drain() for _ in range(4)))
    per_event = Counter(r.event_id for r in receiver.at("/sme"))
    assert sum(sent) == len(per_event) >= 20
    assert set(per_event.values()) == {1}


async def test_names_are_resolved_and_checked_at_delivery(
    app, client, world: World, clock, receiver: Receiver
):
    """DNS rebinding: a name that now resolves to the metadata address is never
    contacted; a name that resolves to an allowed address is contacted at that very
    address (not a second DNS answer), under its own name in the Host header."""
    port = receiver.server.server_address[1]
    rebound = await subscribe(
        client, world.bank, "https://hooks.bank.example/receivables", ["listing.opened"]
    )
    pinned = await subscribe(
        client, world.bank, f"http://receiver.bank.example:{port}/pinned", ["listing.opened"]
    )
    await listed_receivable(client, world, clock)
    asked: list[str] = []
    answers = {"hooks.bank.example": ["169.254.169.254"], "receiver.bank.example": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[host]

    await run_jobs(app, resolver=resolver)
    assert sorted(asked) == ["hooks.bank.example", "receiver.bank.example"]
    [logged] = await deliveries(client, world.bank, rebound["id"])
    [tried] = logged["attempts"]
    assert tried["status_code"] is None and tried["error"].startswith("refused:")
    assert "metadata" in tried["error"]
    assert logged["status"] == "pending"  # names change: retried later, checked again

    [got] = receiver.at("/pinned")
    assert got.headers["host"] == f"receiver.bank.example:{port}"
    assert signed_by(got, pinned["secret"], app)


async def test_the_worker_tick_runs_the_webhook_jobs(
    app, client, world: World, clock, receiver: Receiver
):
    await subscribe(client, world.bank, receiver.url("/tick"), ["listing.opened"])
    await listed_receivable(client, world, clock)
    ticked = await ok(await client.post("/admin/tick", headers=world.operator.headers))
    assert ticked["failed"] == []
    assert (
        ticked["processed"]["webhook_endpoints_fed"],
        ticked["processed"]["webhook_attempts"],
    ) == (1, 1)
    assert [r.event["type"] for r in receiver.at("/tick")] == ["listing.opened"]


def test_backoff_spans_more_than_a_day_and_is_bounded() -> None:
    shortest = [delivery.retry_delay_seconds(n, jitter=lambda: 0.0) for n in range(1, ATTEMPTS_MAX)]
    longest = [delivery.retry_delay_seconds(n, jitter=lambda: 1.0) for n in range(1, ATTEMPTS_MAX)]
    assert shortest[:3] == [60, 120, 240]
    assert shortest == sorted(shortest)
    assert sum(shortest) >= 24 * 3600
    assert max(longest) <= delivery.RETRY_DELAY_SECONDS_MAX * (1 + delivery.RETRY_JITTER_RATIO)
    assert all(lo <= hi for lo, hi in zip(shortest, longest))
