"""POST/GET/DELETE /webhooks and GET /webhooks/{id}/deliveries over HTTP: the secret is
shown once, every organization sees only its own webhooks (another's → 404), event
types and URLs are validated, lists page. Both databases."""

from __future__ import annotations

import uuid

from receivables.webhooks.service import WEBHOOKS_PER_ORGANIZATION_MAX
from tests.fixtures.market import listed_receivable, ok
from tests.fixtures.world import World
from tests.webhooks.receiver import Receiver
from tests.webhooks.support import deliveries, run_jobs, subscribe


def problem(response, status: int, code: str) -> dict:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    return response.json()


async def test_create_list_delete_and_isolation(app, client, world: World, receiver: Receiver):
    created = await subscribe(
        client, world.bank, receiver.url("/a"), ["deal.*", "listing.opened", "deal.*"]
    )
    assert created["secret"].startswith("whsec_") and len(created["secret"]) >= 40
    assert (created["status"], created["events"]) == ("active", ["deal.*", "listing.opened"])
    own_secret = "s" * 32
    mine = await subscribe(client, world.bank, receiver.url("/b"), ["*"], secret=own_secret)
    assert mine["secret"] == own_secret
    regulator = await subscribe(client, world.regulator, receiver.url("/r"), ["*"])  # any org may
    await subscribe(client, world.operator, receiver.url("/o"), ["deal.*"])

    listed = await ok(await client.get("/webhooks", headers=world.bank.headers))
    assert sorted(w["id"] for w in listed["items"]) == sorted([created["id"], mine["id"]])
    assert all("secret" not in w for w in listed["items"])
    first = await ok(await client.get("/webhooks", params={"limit": 1}, headers=world.bank.headers))
    rest = await ok(
        await client.get(
            "/webhooks", params={"cursor": first["next_cursor"]}, headers=world.bank.headers
        )
    )
    assert first["items"] + rest["items"] == listed["items"]
    assert rest["next_cursor"] is None
    assert (await ok(await client.get("/webhooks", headers=world.bank2.headers)))["items"] == []
    assert [
        w["id"]
        for w in (await ok(await client.get("/webhooks", headers=world.regulator.headers)))["items"]
    ] == [regulator["id"]]

    for rival in (
        world.bank2,
        world.regulator,
        world.operator,
    ):  # another org's webhook does not exist
        problem(
            await client.delete(f"/webhooks/{created['id']}", headers=rival.headers),
            404,
            "not_found",
        )
        problem(
            await client.get(f"/webhooks/{created['id']}/deliveries", headers=rival.headers),
            404,
            "not_found",
        )
    problem(
        await client.delete(f"/webhooks/{uuid.uuid4()}", headers=world.bank.headers),
        404,
        "not_found",
    )

    response = await client.delete(f"/webhooks/{created['id']}", headers=world.bank.headers)
    assert (response.status_code, response.content) == (204, b"")
    problem(
        await client.delete(f"/webhooks/{created['id']}", headers=world.bank.headers),
        404,
        "not_found",
    )
    problem(
        await client.get(f"/webhooks/{created['id']}/deliveries", headers=world.bank.headers),
        404,
        "not_found",
    )
    listed = await ok(await client.get("/webhooks", headers=world.bank.headers))
    assert [w["id"] for w in listed["items"]] == [mine["id"]]
    types = [
        e["type"]
        for e in (await ok(await client.get("/events", headers=world.bank.headers)))["items"]
    ]
    assert types == ["webhook.created", "webhook.created", "webhook.deleted"]

    assert (await client.get("/webhooks")).status_code == 401
    assert (
        await client.post("/webhooks", json={"url": receiver.url(), "events": ["*"]})
    ).status_code == 401


async def test_deleted_webhooks_get_nothing_more(
    app, client, world: World, clock, receiver: Receiver
):
    hook = await subscribe(client, world.bank, receiver.url("/gone"), ["listing.opened"])
    await listed_receivable(client, world, clock)
    assert (
        await client.delete(f"/webhooks/{hook['id']}", headers=world.bank.headers)
    ).status_code == 204
    await run_jobs(app)
    assert receiver.at("/gone") == []


async def test_invalid_subscriptions_are_refused(app, client, world: World, receiver: Receiver):
    def post(**body):
        return client.post(
            "/webhooks",
            json={"url": receiver.url(), "events": ["*"], **body},
            headers=world.bank.headers,
        )

    for events in (["deal.paid"], ["nope.*"], ["deal.**"], ["DEAL.FUNDED"], []):
        body = problem(await post(events=events), 422, "validation_error")
        assert body["errors"][0]["field"].startswith("events"), body
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/hooks",
        "http://10.0.0.7/hooks",
        "http://192.168.1.10/hooks",
        "http://[::ffff:169.254.169.254]/",
        "ftp://hooks.bank.example/",
        "https://user:password@hooks.bank.example/",
        "http://0.0.0.0:8080/",
        "http://intranet/hooks",
        "not a url",
    ):
        problem(await post(url=url), 422, "webhook_url_not_allowed")
    problem(await post(secret="too-short"), 422, "validation_error")
    problem(await post(extra="field"), 422, "validation_error")
    for _ in range(WEBHOOKS_PER_ORGANIZATION_MAX):
        assert (await post()).status_code == 201
    problem(await post(), 409, "too_many_webhooks")


async def test_the_delivery_log_pages_in_event_order(
    app, client, world: World, clock, receiver: Receiver
):
    hook = await subscribe(client, world.bank, receiver.url("/log"), ["listing.opened"])
    for _ in range(5):
        await listed_receivable(client, world, clock)
    await run_jobs(app)
    whole = await deliveries(client, world.bank, hook["id"])
    assert len(whole) == 5 and all(d["status"] == "delivered" for d in whole)
    paged, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await ok(
            await client.get(
                f"/webhooks/{hook['id']}/deliveries", params=params, headers=world.bank.headers
            )
        )
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [d["id"] for d in paged] == [d["id"] for d in whole]
    feed = (await ok(await client.get("/events", headers=world.bank.headers)))["items"]
    assert [d["event_id"] for d in whole] == [
        e["id"] for e in feed if e["type"] == "listing.opened"
    ]
    assert await deliveries(client, world.bank, hook["id"], status="failed") == []
    bad = await client.get(
        f"/webhooks/{hook['id']}/deliveries", params={"cursor": "!!"}, headers=world.bank.headers
    )
    problem(bad, 422, "invalid_cursor")
