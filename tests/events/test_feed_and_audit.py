"""The events feed shows each organization exactly the events that concern it (sealed
bids stay sealed), resumable without gaps or repeats; the audit trail is a hash chain
that verifies, and a row edited behind the API's back is found. Both databases."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import bindparam, select, text, update

from receivables.auctions.models import Bid
from receivables.auth.principal import SYSTEM
from receivables.events import service as audit
from receivables.events.models import AuditRecord
from tests.fixtures.market import award, bid, fund, listed_receivable, ok, repay
from tests.fixtures.world import Party, World


async def _all_events(client: httpx.AsyncClient, party: Party, *, limit: int = 200) -> list[dict]:
    events, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = await ok(await client.get("/events", params=params, headers=party.headers))
        events += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


async def _auction(client: httpx.AsyncClient, world: World, clock) -> dict:
    receivable, listing = await listed_receivable(client, world, clock, face_value="1000.00", due_in_days=20)
    losing = await bid(client, world.bank2, listing["id"], "0.0700")
    winning = await bid(client, world.bank, listing["id"], "0.0600")
    deal = await fund(client, world.bank, await award(client, world.sme, listing["id"], winning["id"]))
    await repay(client, world.core, deal["id"], "1000.00")
    return {"receivable": receivable, "listing": listing, "losing": losing, "winning": winning, "deal": deal}


class TestFeed:
    async def test_each_party_sees_what_concerns_it(self, client, world: World, clock):
        objects = await _auction(client, world, clock)
        winning_id, losing_id = objects["winning"]["id"], objects["losing"]["id"]

        def ids(events: list[dict]) -> set[str]:
            return {e["data"]["object_id"] for e in events}

        loser = await _all_events(client, world.bank2)
        assert winning_id not in ids(loser)
        assert [e["type"] for e in loser if e["data"]["object_id"] == losing_id] == ["bid.placed", "bid.lost"]
        assert {"listing.opened", "listing.awarded"} <= {e["type"] for e in loser}
        assert not [e for e in loser if e["type"].startswith("deal.")]

        winner_types = [e["type"] for e in await _all_events(client, world.bank)]
        assert losing_id not in ids(await _all_events(client, world.bank))
        for expected in ("bid.placed", "bid.won", "deal.created", "deal.funded", "deal.repaid", "deal.settled"):
            assert expected in winner_types

        debtor = await _all_events(client, world.core)
        assert not [e for e in debtor if e["type"].startswith(("bid.", "listing."))]
        assert "receivable.confirmed" in {e["type"] for e in debtor}

        seller = await _all_events(client, world.sme)
        assert {winning_id, losing_id} <= ids(seller)
        assert await _all_events(client, world.sme2) == []

    async def test_pages_resume_without_gaps_or_repeats(self, client, world: World, clock):
        await _auction(client, world, clock)
        whole = await _all_events(client, world.sme)
        paged = await _all_events(client, world.sme, limit=2)
        assert [e["id"] for e in paged] == [e["id"] for e in whole]
        assert len({e["id"] for e in whole}) == len(whole) > 6
        middle = whole[3]["id"]
        rest = await ok(await client.get("/events", params={"after": middle}, headers=world.sme.headers))
        assert [e["id"] for e in rest["items"]] == [e["id"] for e in whole[4:]]

    async def test_garbage_cursor_is_422(self, client, world: World):
        response = await client.get("/events", params={"cursor": "!!nope"}, headers=world.bank.headers)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor")


class TestAuditChain:
    async def test_verifies_after_a_whole_life_and_under_parallel_bids(self, client, world: World, clock):
        await _auction(client, world, clock)
        _, listing = await listed_receivable(client, world, clock)
        await asyncio.gather(*(bid(client, bank, listing["id"], "0.0500") for bank in (world.bank, world.bank2, world.bank3)))
        report = await ok(await client.get("/audit/verify", headers=world.regulator.headers))
        assert report["valid"] is True
        page = await ok(await client.get("/audit", params={"limit": 200}, headers=world.operator.headers))
        assert report["checked"] == len(page["items"])
        indexes = [row["chain_index"] for row in page["items"]]
        assert indexes == list(range(1, len(indexes) + 1))

    async def test_every_committed_row_is_sealed_and_a_rolled_back_one_leaves_no_link(
        self, app, client, world: World, clock
    ):
        """PostgreSQL seals in a trigger inside the COMMIT, SQLite in Python before it:
        either way no committed row is left without its link or with its canonical bytes,
        and a refused request (rolled back) takes no place in the chain."""
        await _auction(client, world, clock)
        refused = await client.post("/receivables", json={}, headers=world.sme.headers)
        assert refused.status_code == 422
        async with app.state.sessionmaker() as session:
            counts = (await session.execute(text(
                "SELECT count(*), count(chain_index), count(hash), count(seal_before), "
                "count(seal_after), max(chain_index) FROM audit_record"
            ))).one()
            head = (await session.execute(text("SELECT last_index FROM audit_chain_head"))).scalar_one()
        rows, indexed, hashed, befores, afters, last = counts
        assert rows == indexed == hashed == last == head > 10
        assert befores == afters == 0

    async def test_rows_written_beside_a_write_are_sealed_before_those_recorded_after_it(
        self, app, client, world: World, clock, backend
    ):
        """`write_pending_beside` (a revision's path) sends the rows recorded so far with
        the caller's UPDATE, on PostgreSQL; rows recorded later are written at commit.
        Both are sealed inside the COMMIT, in the order written. SQLite declines (its
        chain is sealed in Python at commit): the caller writes alone, rows wait."""
        _, listing = await listed_receivable(client, world, clock)
        placed = uuid.UUID((await bid(client, world.bank, listing["id"], "0.0500"))["id"])
        touched_at = clock.now() + dt.timedelta(seconds=7)
        touch = update(Bid).where(Bid.id == bindparam("touched_id")).values(updated_at=bindparam("touched_at"))
        params = {"touched_id": placed, "touched_at": touched_at}

        def record(action: str):
            return audit.record(session, SYSTEM, clock=clock, action=action, object_type="bid",
                                object_id=placed, recipients=(world.bank.organization_id,))

        async with app.state.sessionmaker() as session:
            first = await record("test.first")
            wrote_now = await audit.write_pending_beside(session, (touch,), params)
            assert wrote_now is (backend == "postgres")
            if not wrote_now:
                await session.execute(touch, params)
            second = await record("test.second")
            await session.commit()
        async with app.state.sessionmaker() as session:
            links = dict((await session.execute(
                select(AuditRecord.id, AuditRecord.chain_index)
                .where(AuditRecord.id.in_([first.id, second.id]), AuditRecord.hash.is_not(None))
            )).all())
            stored_at = (await session.execute(select(Bid.updated_at).where(Bid.id == placed))).scalar_one()
        assert links[first.id] + 1 == links[second.id]
        assert stored_at == touched_at
        feed = [e["type"] for e in await _all_events(client, world.bank)]
        assert feed[-2:] == ["test.first", "test.second"]

    @pytest.mark.corrupts_audit
    async def test_an_edited_row_breaks_the_chain_there(self, app, client, world: World, clock):
        await _auction(client, world, clock)
        async with app.state.sessionmaker.begin() as session:
            await session.execute(text("UPDATE audit_record SET to_state = 'settled' WHERE chain_index = 5"))
        report = await ok(await client.get("/audit/verify", headers=world.operator.headers))
        assert report["valid"] is False
        assert (report["checked"], report["broken_at"]["chain_index"]) == (4, 5)

    async def test_only_supervisors_read_the_audit(self, client, world: World):
        for party in (world.sme, world.core, world.bank):
            assert (await client.get("/audit", headers=party.headers)).status_code == 403
            assert (await client.get("/audit/verify", headers=party.headers)).status_code == 403
        assert (await client.get("/audit/verify")).status_code == 401
