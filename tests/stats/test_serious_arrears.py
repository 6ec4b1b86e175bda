"""Goal: the serious-arrears list's membership is kept current and every join and leave
is an audited platform event in the debtor's feed: a debtor crosses the amount
threshold when a second deal falls overdue, leaves it when it repays, crosses the days
threshold on the very day its oldest arrear is RECEIVABLES_SERIOUS_ARREARS_DAYS late,
and leaves again when it repays.

Method: one debtor (Grid Power) owes two 600,000.00 deals due 2026-03-12 and 03-22
(thresholds: the defaults, 1,000,000.00 and 90 days). The worker's tick moves them
overdue; membership is refreshed both by the worker-facing
`stats.service.refresh_serious_arrears` (called directly, as the worker job does) and by
GET /stats/arrears. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from receivables.events.models import AuditRecord, EventRecipient
from receivables.stats import service as stats_service
from tests.fixtures.flows import confirm_receivable, submit_receivable
from tests.fixtures.market import award, bid, fund, ok, open_listing, repay
from tests.stats.support import advance_to, get, tick


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2026, month, day, 10, 0, tzinfo=dt.UTC)


async def arrears_events(app, debtor_id: uuid.UUID) -> list[AuditRecord]:
    async with app.state.sessionmaker() as session:
        stmt = (
            select(AuditRecord)
            .where(AuditRecord.object_id == debtor_id, AuditRecord.action.startswith("arrears."))
            .order_by(AuditRecord.chain_index)
        )
        return list((await session.execute(stmt)).scalars())


async def refresh(app) -> int:
    """What the worker's job does: one refresh in its own transaction."""
    async with app.state.sessionmaker.begin() as session:
        return await stats_service.refresh_serious_arrears(
            session, clock=app.state.clock, settings=app.state.settings
        )


async def funded(client, world, clock, due_in_days: int) -> dict:
    receivable = await submit_receivable(
        client, world.sme, world.core2, face_value="600000.00", due_in_days=due_in_days
    )
    await confirm_receivable(client, world.core2, receivable["id"])
    listing = await open_listing(client, world.sme, receivable["id"], clock)
    winning = await bid(client, world.bank, listing["id"], "0.0500")
    return await fund(client, world.bank, await award(client, world.sme, listing["id"], winning["id"]))


async def debtor_row(client, world) -> dict:
    body = await get(client, world.regulator, "/stats/arrears")
    [row] = [r for r in body["items"] if r["debtor_id"] == str(world.core2.organization_id)]
    return row


async def test_joining_and_leaving_the_list_is_audited(app, client, world):
    clock = app.state.clock
    debtor_id = world.core2.organization_id
    first = await funded(client, world, clock, due_in_days=10)  # due 2026-03-12
    second = await funded(client, world, clock, due_in_days=20)  # due 2026-03-22

    await advance_to(app, world, at(3, 13))
    assert (await tick(client, world))["deals_overdue"] == 1
    row = await debtor_row(client, world)
    assert (row["overdue_amount"], row["max_days_overdue"], row["serious"]) == ("600000.00", 1, False)
    assert await refresh(app) == 0 and await arrears_events(app, debtor_id) == []

    # The second deal falls overdue: 1,200,000.00 owed reaches the amount threshold.
    await advance_to(app, world, at(3, 23))
    ticked = await tick(client, world)
    # The tick's own serious-arrears job lists the debtor, in the same run.
    assert (ticked["deals_overdue"], ticked["serious_arrears_changed"]) == (1, 1)
    assert await refresh(app) == 0  # nothing changed since
    [listed] = await arrears_events(app, debtor_id)
    assert (listed.action, listed.actor_role, listed.actor_organization_id) == ("arrears.listed", "system", None)
    assert (listed.object_type, listed.from_state, listed.to_state) == ("organization", None, "listed")
    assert listed.data == {
        "currency": "CNY", "overdue_amount": "1200000.00", "max_days_overdue": 11,
        "threshold_amount": "1000000.00", "threshold_days": 90,
    }
    async with app.state.sessionmaker() as session:
        stmt = select(EventRecipient.organization_id).where(EventRecipient.audit_id == listed.id)
        assert set((await session.execute(stmt)).scalars()) == {debtor_id}
    row = await debtor_row(client, world)
    assert (row["overdue_count"], row["serious"], row["listed_at"]) == (2, True, "2026-03-23T10:00:00Z")
    assert len(await arrears_events(app, debtor_id)) == 1  # GET found it listed already
    feed = await get(client, world.core2, "/events", limit=200)
    assert "arrears.listed" in [event["type"] for event in feed["items"]]

    # Repaying the first deal brings it under both thresholds: GET delists it.
    await repay(client, world.core2, first["id"], "600000.00")
    row = await debtor_row(client, world)
    assert (row["overdue_amount"], row["max_days_overdue"], row["serious"], row["listed_at"]) == (
        "600000.00", 1, False, None
    )
    listed, delisted = await arrears_events(app, debtor_id)
    assert (delisted.action, delisted.from_state, delisted.to_state) == ("arrears.delisted", "listed", "delisted")
    assert delisted.data == {
        "currency": "CNY", "listed_at": "2026-03-23T10:00:00+00:00",
        "overdue_amount": "600000.00", "max_days_overdue": 1,
    }

    # 89 days late is not yet serious; 90 days (2026-06-20) is.
    await advance_to(app, world, at(6, 19))
    assert (await tick(client, world))["deals_defaulted"] == 1
    assert (await debtor_row(client, world))["serious"] is False
    await advance_to(app, world, at(6, 20))
    row = await debtor_row(client, world)
    assert (row["max_days_overdue"], row["serious"]) == (90, True)
    assert [e.action for e in await arrears_events(app, debtor_id)] == [
        "arrears.listed", "arrears.delisted", "arrears.listed"
    ]
    assert (await arrears_events(app, debtor_id))[-1].data["max_days_overdue"] == 90

    # Paid in full: off the list, and out of the arrears altogether.
    await repay(client, world.core2, second["id"], "600000.00")
    assert await refresh(app) == 1
    body = await get(client, world.bank, "/stats/arrears")
    assert body["items"] == []
    assert [e.action for e in await arrears_events(app, debtor_id)] == [
        "arrears.listed", "arrears.delisted", "arrears.listed", "arrears.delisted"
    ]
    assert (await ok(await client.get("/audit/verify", headers=world.regulator.headers)))["valid"]
