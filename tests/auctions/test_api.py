"""Goal: the listings and bids endpoints keep the contract of API.md "Listings and bids"
and the sealed-auction rules of DESIGN.md.

Method: the real app over HTTP with real tokens (the `world` parties), one class per
endpoint and one test per scenario, on SQLite and PostgreSQL. Every refused call is
checked for its status and problem `code`, and a whole-database snapshot taken before
and after proves it changed nothing (no row, no audit record, no journal entry).
Deadlines are driven with the simulated `clock` fixture.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Self

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from receivables.events.models import AuditRecord
from receivables.kit.clock import SimulatedClock
from tests.auctions.support import (
    assert_problem,
    bad_fields,
    changed_tables,
    db_snapshot,
    get_json,
    instant,
    ok,
)
from tests.fixtures.flows import advance_clock, confirmed_receivable, submit_receivable
from tests.fixtures.market import award, bid, closes_in, listed_receivable, open_listing
from tests.fixtures.world import Party, World
from tests.worker.support import tick

# ------------------------------------------------------------------ helpers


def listing_body(receivable_id: str, clock: SimulatedClock, **extra: Any) -> dict[str, Any]:
    body = {
        "receivable_id": receivable_id,
        "max_discount_rate": "0.0800",
        "closes_at": closes_in(clock),
    }
    body.update(extra)
    return body


async def read_listing(client: httpx.AsyncClient, party: Party, listing_id: str) -> dict[str, Any]:
    return await get_json(client, party, f"/listings/{listing_id}")


async def read_bid(client: httpx.AsyncClient, party: Party, bid_id: str) -> dict[str, Any]:
    return await get_json(client, party, f"/bids/{bid_id}")


async def read_receivable(
    client: httpx.AsyncClient, party: Party, receivable_id: str
) -> dict[str, Any]:
    return await get_json(client, party, f"/receivables/{receivable_id}")


async def bids_seen(
    client: httpx.AsyncClient, party: Party, listing_id: str
) -> list[dict[str, Any]]:
    return (await get_json(client, party, f"/listings/{listing_id}/bids"))["items"]


async def audit_trail(app: FastAPI, object_id: str) -> list[tuple[str, str | None, str | None]]:
    """(object type, from state, to state) of every audit row about the object, oldest
    first. Action names are the implementer's choice; the states are the contract."""
    async with app.state.sessionmaker() as session:
        stmt = (
            select(AuditRecord)
            .where(AuditRecord.object_id == uuid.UUID(object_id))
            .order_by(AuditRecord.sequence)
        )
        rows = (await session.execute(stmt)).scalars().all()
    for r in rows:
        assert r.action.startswith(f"{r.object_type}."), r.action
    return [(r.object_type, r.from_state, r.to_state) for r in rows]


class Unchanged:
    """`async with Unchanged(app):` around a refused call: the database is identical."""

    def __init__(self, app: FastAPI):
        self.app = app

    async def __aenter__(self) -> Self:
        self.before = await db_snapshot(self.app)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            after = await db_snapshot(self.app)
            assert changed_tables(self.before, after) == []


async def market(client, world: World, clock, **listing: Any):
    """A listing by world.sme with bids by bank (4.5 %) and bank2 (5.0 %)."""
    receivable, listed = await listed_receivable(client, world, clock, **listing)
    first = await bid(client, world.bank, listed["id"], "0.0450")
    second = await bid(client, world.bank2, listed["id"], "0.0500")
    return receivable, listed, first, second


# ------------------------------------------------------------------ POST /listings


class TestCreateListing:
    async def test_seller_lists_a_confirmed_receivable(self, client, world: World, clock, app):
        receivable = await confirmed_receivable(client, world, face_value="1505500.00")
        closes_at = clock.now() + dt.timedelta(hours=2)
        body = listing_body(
            receivable["id"],
            clock,
            closes_at=closes_at.isoformat(),
            advance_ratio="0.90",
            recourse=True,
            auto_award=False,
        )
        created = await ok(
            await client.post("/listings", json=body, headers=world.sme.headers), 201
        )
        uuid.UUID(created["id"])
        assert created["status"] == "open"
        assert created["receivable_id"] == receivable["id"]
        assert created["seller_id"] == str(world.sme.organization_id)
        assert created["debtor_id"] == str(world.core.organization_id)
        assert created["debtor_name"] == world.core.name
        assert (created["face_value"], created["currency"], created["due_date"]) == (
            "1505500.00",
            "CNY",
            receivable["due_date"],
        )
        assert (created["max_discount_rate"], created["advance_ratio"]) == ("0.0800", "0.9000")
        assert (created["recourse"], created["auto_award"]) == (True, False)
        assert instant(created["closes_at"]) == closes_at
        assert (created["bid_count"], created["awarded_bid_id"]) == (0, None)
        assert instant(created["created_at"]) == clock.now()
        assert (await read_receivable(client, world.sme, receivable["id"]))["status"] == "listed"
        assert await audit_trail(app, created["id"]) == [("listing", None, "open")]
        assert ("receivable", "confirmed", "listed") in await audit_trail(app, receivable["id"])

    async def test_defaults(self, client, world: World, clock):
        receivable = await confirmed_receivable(client, world)
        created = await open_listing(client, world.sme, receivable["id"], clock)
        assert (created["advance_ratio"], created["recourse"], created["auto_award"]) == (
            "1.0000",
            False,
            True,
        )

    async def test_another_smes_receivable_is_404(self, client, world: World, clock, app):
        receivable = await confirmed_receivable(client, world)
        async with Unchanged(app):
            response = await client.post(
                "/listings", json=listing_body(receivable["id"], clock), headers=world.sme2.headers
            )
            assert_problem(response, 404, "not_found")
        assert (await read_receivable(client, world.sme, receivable["id"]))["status"] == "confirmed"

    async def test_unknown_receivable_is_404(self, client, world: World, clock, app):
        async with Unchanged(app):
            response = await client.post(
                "/listings", json=listing_body(str(uuid.uuid4()), clock), headers=world.sme.headers
            )
            assert_problem(response, 404, "not_found")

    @pytest.mark.parametrize("caller", ["core", "bank", "operator", "regulator"])
    async def test_other_roles_are_403(self, client, world: World, clock, app, caller):
        receivable = await confirmed_receivable(client, world)
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock),
                headers=getattr(world, caller).headers,
            )
            assert_problem(response, 403, "forbidden")

    async def test_anonymous_is_401(self, client, world: World, clock, app):
        receivable = await confirmed_receivable(client, world)
        async with Unchanged(app):
            response = await client.post("/listings", json=listing_body(receivable["id"], clock))
            assert_problem(response, 401, "not_authenticated")

    async def test_submitted_receivable_is_409(self, client, world: World, clock, app):
        receivable = await submit_receivable(client, world.sme, world.core)
        async with Unchanged(app):
            response = await client.post(
                "/listings", json=listing_body(receivable["id"], clock), headers=world.sme.headers
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "submitted" in problem["detail"]

    async def test_state_is_checked_before_closes_at(self, client, world: World, clock, app):
        receivable = await submit_receivable(client, world.sme, world.core)
        past = (clock.now() - dt.timedelta(hours=1)).isoformat()
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock, closes_at=past),
                headers=world.sme.headers,
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "submitted" in problem["detail"]

    async def test_listing_twice_is_409(self, client, world: World, clock, app):
        receivable = await confirmed_receivable(client, world)
        first = await open_listing(client, world.sme, receivable["id"], clock)
        async with Unchanged(app):
            response = await client.post(
                "/listings", json=listing_body(receivable["id"], clock), headers=world.sme.headers
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "listed" in problem["detail"]
        listings = await get_json(client, world.sme, "/listings")
        assert [item["id"] for item in listings["items"]] == [first["id"]]

    @pytest.mark.parametrize(
        "closes_at",
        [
            pytest.param(lambda now, due: now - dt.timedelta(seconds=1), id="one-second-ago"),
            pytest.param(lambda now, due: now - dt.timedelta(days=3), id="days-ago"),
            pytest.param(lambda now, due: now, id="exactly-now"),
            pytest.param(
                lambda now, due: dt.datetime.combine(due, dt.time(0), dt.UTC), id="on-the-due-date"
            ),
            pytest.param(
                lambda now, due: (
                    dt.datetime.combine(due, dt.time(12), dt.UTC) + dt.timedelta(days=1)
                ),
                id="after-the-due-date",
            ),
        ],
    )
    async def test_bad_closes_at_is_422(self, client, world: World, clock, app, closes_at):
        receivable = await confirmed_receivable(client, world)
        due = dt.date.fromisoformat(receivable["due_date"])
        body = listing_body(
            receivable["id"], clock, closes_at=closes_at(clock.now(), due).isoformat()
        )
        async with Unchanged(app):
            response = await client.post("/listings", json=body, headers=world.sme.headers)
            assert_problem(response, 422, "invalid_closes_at")

    async def test_closes_at_more_than_90_days_ahead_is_422(self, client, world: World, clock, app):
        receivable = await confirmed_receivable(client, world, due_in_days=200)
        closes_at = clock.now() + dt.timedelta(days=90, seconds=1)
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock, closes_at=closes_at.isoformat()),
                headers=world.sme.headers,
            )
            assert_problem(response, 422, "invalid_closes_at")

    @pytest.mark.parametrize("rate", ["1", "0.9"])
    async def test_reserve_that_would_eat_the_advance_is_422(
        self, client, world: World, clock, app, rate
    ):
        """Funded today at the reserve, D = P x rate x 400/360 >= P: nothing left to advance."""
        receivable = await confirmed_receivable(client, world, due_in_days=400)
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock, max_discount_rate=rate),
                headers=world.sme.headers,
            )
            assert_problem(response, 422, "unfinanceable")

    async def test_one_instant_gets_one_answer_in_any_offset(self, client, world: World, clock):
        async def answer(closes_at: dt.datetime, offset_hours: int) -> int:
            receivable = await confirmed_receivable(client, world, due_in_days=3)
            zone = dt.timezone(dt.timedelta(hours=offset_hours))
            body = listing_body(
                receivable["id"], clock, closes_at=closes_at.astimezone(zone).isoformat()
            )
            return (
                await client.post("/listings", json=body, headers=world.sme.headers)
            ).status_code

        due = clock.today() + dt.timedelta(days=3)
        on_the_due_date = dt.datetime.combine(due, dt.time(1), dt.UTC)
        the_evening_before = dt.datetime.combine(due - dt.timedelta(days=1), dt.time(23), dt.UTC)
        answers = [
            await answer(on_the_due_date, 0),
            await answer(on_the_due_date, -5),  # written as the day before, 20:00 -05:00
            await answer(the_evening_before, 0),
            await answer(the_evening_before, 8),  # written as the due date, 07:00 +08:00
        ]
        assert answers == [422, 422, 201, 201]

    async def test_closes_at_is_answered_in_utc(self, client, world: World, clock):
        receivable = await confirmed_receivable(client, world)
        closes_at = clock.now() + dt.timedelta(hours=2)
        shanghai = closes_at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
        created = await open_listing(client, world.sme, receivable["id"], clock, closes_at=shanghai)
        seen = await read_listing(client, world.sme, created["id"])
        assert instant(created["closes_at"]) == instant(seen["closes_at"]) == closes_at
        assert created["closes_at"] == seen["closes_at"]
        assert instant(created["closes_at"]).utcoffset() == dt.timedelta(0)

    async def test_closes_the_day_before_the_due_date(self, client, world: World, clock):
        receivable = await confirmed_receivable(client, world, due_in_days=3)
        due = dt.date.fromisoformat(receivable["due_date"])
        closes_at = dt.datetime.combine(due - dt.timedelta(days=1), dt.time(23, 59), dt.UTC)
        created = await open_listing(
            client, world.sme, receivable["id"], clock, closes_at=closes_at.isoformat()
        )
        assert instant(created["closes_at"]) == closes_at

    @pytest.mark.parametrize("rate", ["1.5", "0", "abc", "-0.01", "0.0000001", ""])
    async def test_bad_max_discount_rate_is_422_naming_it(
        self, client, world: World, clock, app, rate
    ):
        receivable = await confirmed_receivable(client, world)
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock, max_discount_rate=rate),
                headers=world.sme.headers,
            )
            assert bad_fields(response) == {"max_discount_rate"}

    @pytest.mark.parametrize("ratio", ["0", "1.01", "x"])
    async def test_bad_advance_ratio_is_422_naming_it(
        self, client, world: World, clock, app, ratio
    ):
        receivable = await confirmed_receivable(client, world)
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock, advance_ratio=ratio),
                headers=world.sme.headers,
            )
            assert bad_fields(response) == {"advance_ratio"}

    async def test_extra_field_status_is_422(self, client, world: World, clock, app):
        receivable = await confirmed_receivable(client, world)
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock, status="awarded"),
                headers=world.sme.headers,
            )
            assert bad_fields(response) == {"status"}

    async def test_closes_at_without_a_zone_is_422(self, client, world: World, clock, app):
        receivable = await confirmed_receivable(client, world)
        naive = (clock.now() + dt.timedelta(hours=1)).replace(tzinfo=None).isoformat()
        async with Unchanged(app):
            response = await client.post(
                "/listings",
                json=listing_body(receivable["id"], clock, closes_at=naive),
                headers=world.sme.headers,
            )
            assert bad_fields(response) == {"closes_at"}

    @pytest.mark.parametrize("missing", ["receivable_id", "max_discount_rate", "closes_at"])
    async def test_missing_field_is_422(self, client, world: World, clock, missing):
        receivable = await confirmed_receivable(client, world)
        body = listing_body(receivable["id"], clock)
        del body[missing]
        response = await client.post("/listings", json=body, headers=world.sme.headers)
        assert bad_fields(response) == {missing}


# ------------------------------------------------------------------ GET /listings/{id}


class TestGetListing:
    async def test_seller_and_supervisors_see_the_bid_count_banks_do_not(
        self, client, world: World, clock
    ):
        _, listed, _, _ = await market(client, world, clock)
        for party in (world.sme, world.operator, world.regulator):
            assert (await read_listing(client, party, listed["id"]))["bid_count"] == 2, party.name
        for party in (world.bank, world.bank2, world.bank3):
            seen = await read_listing(client, party, listed["id"])
            assert (seen["bid_count"], seen["awarded_bid_id"]) == (None, None), party.name
            assert seen["status"] == "open"
            assert "0.0450" not in str(seen) and "0.0500" not in str(seen)

    async def test_core_is_403(self, client, world: World, clock):
        _, listed = await listed_receivable(client, world, clock)
        response = await client.get(f"/listings/{listed['id']}", headers=world.core.headers)
        assert_problem(response, 403, "forbidden")

    async def test_another_sme_is_404(self, client, world: World, clock):
        _, listed = await listed_receivable(client, world, clock)
        response = await client.get(f"/listings/{listed['id']}", headers=world.sme2.headers)
        assert_problem(response, 404, "not_found")

    async def test_unknown_is_404(self, client, world: World):
        response = await client.get(f"/listings/{uuid.uuid4()}", headers=world.operator.headers)
        assert_problem(response, 404, "not_found")

    async def test_closed_listing_only_to_banks_that_bid(self, client, world: World, clock):
        _, listed = await listed_receivable(client, world, clock)
        await bid(client, world.bank, listed["id"], "0.0450")
        await ok(await client.post(f"/listings/{listed['id']}/cancel", headers=world.sme.headers))
        assert (await read_listing(client, world.bank, listed["id"]))["status"] == "cancelled"
        response = await client.get(f"/listings/{listed['id']}", headers=world.bank2.headers)
        assert_problem(response, 404, "not_found")


# ------------------------------------------------------------------ GET /listings


class TestListListings:
    async def test_banks_see_the_open_market(self, client, world: World, clock):
        receivable, listed = await listed_receivable(client, world, clock, face_value="250000.00")
        _, cancelled = await listed_receivable(client, world, clock)
        await ok(
            await client.post(f"/listings/{cancelled['id']}/cancel", headers=world.sme.headers)
        )
        page = await ok(
            await client.get("/listings", params={"status": "open"}, headers=world.bank.headers)
        )
        assert page["next_cursor"] is None
        assert [item["id"] for item in page["items"]] == [listed["id"]]
        item = page["items"][0]
        assert (item["face_value"], item["due_date"]) == ("250000.00", receivable["due_date"])
        assert (item["debtor_id"], item["debtor_name"]) == (
            str(world.core.organization_id),
            world.core.name,
        )
        assert item["status"] == "open" and item["bid_count"] is None

    async def test_core_is_403(self, client, world: World, clock):
        await listed_receivable(client, world, clock)
        response = await client.get(
            "/listings", params={"status": "open"}, headers=world.core.headers
        )
        assert_problem(response, 403, "forbidden")

    async def test_each_sme_sees_its_own(self, client, world: World, clock):
        _, mine = await listed_receivable(client, world, clock)
        clock.advance(1)  # lists are oldest first; distinct instants fix the order
        theirs_receivable = await submit_receivable(client, world.sme2, world.core2)
        await ok(
            await client.post(
                f"/receivables/{theirs_receivable['id']}/confirm", headers=world.core2.headers
            )
        )
        theirs = await open_listing(client, world.sme2, theirs_receivable["id"], clock)

        async def ids(party: Party) -> list[str]:
            return [item["id"] for item in (await get_json(client, party, "/listings"))["items"]]

        assert await ids(world.sme) == [mine["id"]]
        assert await ids(world.sme2) == [theirs["id"]]
        assert await ids(world.regulator) == await ids(world.operator) == [mine["id"], theirs["id"]]
        assert await ids(world.bank) == [mine["id"], theirs["id"]]
        own = await get_json(client, world.sme, "/listings")
        assert own["items"][0]["bid_count"] == 0

    async def test_unknown_status_is_422(self, client, world: World):
        response = await client.get(
            "/listings", params={"status": "live"}, headers=world.bank.headers
        )
        assert bad_fields(response) == {"query.status"}

    @pytest.mark.parametrize("same_instant", [False, True], ids=["spread", "same-instant"])
    async def test_pages_cover_everything_once(self, client, world: World, clock, same_instant):
        created = []
        for _ in range(5):
            created.append((await listed_receivable(client, world, clock))[1]["id"])
            if not same_instant:
                clock.advance(1)
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": 2, "status": "open"} | (
                {"cursor": cursor} if cursor else {}
            )
            page = await ok(
                await client.get("/listings", params=params, headers=world.bank.headers)
            )
            assert len(page["items"]) <= 2
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 5
        assert set(seen) == set(created)
        if not same_instant:
            assert seen == created

    async def test_bad_cursor_is_422(self, client, world: World):
        response = await client.get(
            "/listings", params={"cursor": "garbage"}, headers=world.bank.headers
        )
        assert_problem(response, 422, "invalid_cursor")


# ------------------------------------------------------------------ POST /listings/{id}/bids


class TestPlaceBid:
    async def test_bank_places_a_sealed_bid(self, client, world: World, clock, app):
        _, listed = await listed_receivable(client, world, clock)
        response = await client.post(
            f"/listings/{listed['id']}/bids",
            json={"discount_rate": "0.045"},
            headers=world.bank.headers,
        )
        placed = await ok(response, 201)
        uuid.UUID(placed["id"])
        assert placed["listing_id"] == listed["id"]
        assert placed["bank_id"] == str(world.bank.organization_id)
        assert (placed["discount_rate"], placed["status"]) == ("0.0450", "active")
        assert instant(placed["created_at"]) == instant(placed["rate_set_at"]) == clock.now()
        assert (await read_listing(client, world.sme, listed["id"]))["bid_count"] == 1
        assert await audit_trail(app, placed["id"]) == [("bid", None, "active")]

    async def test_rate_exactly_at_the_reserve_is_accepted(self, client, world: World, clock):
        _, listed = await listed_receivable(client, world, clock)
        assert (await bid(client, world.bank, listed["id"], "0.08"))["discount_rate"] == "0.0800"

    async def test_rate_above_reserve_is_422(self, client, world: World, clock, app):
        _, listed = await listed_receivable(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": "0.080001"},
                headers=world.bank.headers,
            )
            assert_problem(response, 422, "bid_above_reserve")

    async def test_second_bid_by_the_same_bank_is_409(self, client, world: World, clock, app):
        _, listed = await listed_receivable(client, world, clock)
        first = await bid(client, world.bank, listed["id"], "0.0500")
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": "0.0400"},
                headers=world.bank.headers,
            )
            assert_problem(response, 409, "bid_exists")
        assert (await read_bid(client, world.bank, first["id"]))["discount_rate"] == "0.0500"

    async def test_a_bank_may_bid_again_after_withdrawing(self, client, world: World, clock):
        _, listed = await listed_receivable(client, world, clock)
        first = await bid(client, world.bank, listed["id"], "0.0500")
        await ok(await client.post(f"/bids/{first['id']}/withdraw", headers=world.bank.headers))
        again = await bid(client, world.bank, listed["id"], "0.0400")
        assert again["id"] != first["id"]
        assert (await read_listing(client, world.sme, listed["id"]))["bid_count"] == 1

    @pytest.mark.parametrize("caller", ["sme", "core", "operator", "regulator"])
    async def test_other_roles_are_403(self, client, world: World, clock, app, caller):
        _, listed = await listed_receivable(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": "0.0400"},
                headers=getattr(world, caller).headers,
            )
            assert_problem(response, 403, "forbidden")

    @pytest.mark.parametrize("rate", ["abc", "0", "1.5", "-0.01", "0.04%"])
    async def test_malformed_rate_is_422_naming_it(self, client, world: World, clock, app, rate):
        _, listed = await listed_receivable(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": rate},
                headers=world.bank.headers,
            )
            assert bad_fields(response) == {"discount_rate"}

    async def test_extra_field_is_422(self, client, world: World, clock, app):
        _, listed = await listed_receivable(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": "0.04", "status": "won"},
                headers=world.bank.headers,
            )
            assert bad_fields(response) == {"status"}

    async def test_unknown_listing_is_404(self, client, world: World, app):
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{uuid.uuid4()}/bids",
                json={"discount_rate": "0.04"},
                headers=world.bank.headers,
            )
            assert_problem(response, 404, "not_found")

    async def test_one_second_before_closes_at_is_accepted(self, client, world: World, clock):
        _, listed = await listed_receivable(client, world, clock)
        clock.advance(3600 - 1)
        assert (await bid(client, world.bank, listed["id"], "0.0450"))["status"] == "active"

    @pytest.mark.parametrize(
        "late", [0, 1, 86400], ids=["at-closes_at", "one-second-after", "a-day-after"]
    )
    async def test_at_or_after_closes_at_is_409(self, client, world: World, clock, app, late):
        _, listed = await listed_receivable(client, world, clock)
        advance_clock(app, world, seconds=3600 + late)  # fresh tokens: a day outlives them
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": "0.0450"},
                headers=world.bank.headers,
            )
            assert_problem(response, 409, "auction_closed")

    async def test_cancelled_listing_is_closed_to_the_banks_that_bid(
        self, client, world: World, clock, app
    ):
        _, listed = await listed_receivable(client, world, clock)
        first = await bid(client, world.bank, listed["id"], "0.0450")
        await ok(await client.post(f"/listings/{listed['id']}/cancel", headers=world.sme.headers))
        late_withdraw = await client.post(
            f"/bids/{first['id']}/withdraw", headers=world.bank.headers
        )
        assert_problem(late_withdraw, 409, "auction_closed")
        async with Unchanged(app):
            closed = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": "0.04"},
                headers=world.bank.headers,
            )
            assert_problem(closed, 409, "auction_closed")
            hidden = await client.post(
                f"/listings/{listed['id']}/bids",
                json={"discount_rate": "0.04"},
                headers=world.bank2.headers,
            )
            assert_problem(hidden, 404, "not_found")


# ------------------------------------------------------------ GET /listings/{id}/bids, /bids/{id}


class TestListBids:
    async def test_a_bank_sees_only_its_own_the_seller_all(self, client, world: World, clock):
        _, listed, first, second = await market(client, world, clock)
        assert [b["id"] for b in await bids_seen(client, world.bank, listed["id"])] == [first["id"]]
        assert [b["id"] for b in await bids_seen(client, world.bank2, listed["id"])] == [
            second["id"]
        ]
        assert await bids_seen(client, world.bank3, listed["id"]) == []
        for party in (world.sme, world.operator, world.regulator):
            seen = await bids_seen(client, party, listed["id"])
            assert {b["id"] for b in seen} == {first["id"], second["id"]}, party.name
            assert {b["discount_rate"] for b in seen} == {"0.0450", "0.0500"}

    async def test_a_bank_never_reads_a_rivals_rate(self, client, world: World, clock):
        _, listed, _, _ = await market(client, world, clock)
        response = await client.get(f"/listings/{listed['id']}/bids", headers=world.bank.headers)
        assert "0.0500" not in response.text
        assert str(world.bank2.organization_id) not in response.text

    async def test_core_is_403(self, client, world: World, clock):
        _, listed, _, _ = await market(client, world, clock)
        response = await client.get(f"/listings/{listed['id']}/bids", headers=world.core.headers)
        assert_problem(response, 403, "forbidden")

    async def test_another_sme_is_404(self, client, world: World, clock):
        _, listed, _, _ = await market(client, world, clock)
        response = await client.get(f"/listings/{listed['id']}/bids", headers=world.sme2.headers)
        assert_problem(response, 404, "not_found")

    async def test_pages_of_bids(self, client, world: World, clock):
        _, listed, first, second = await market(client, world, clock)
        third = await bid(client, world.bank3, listed["id"], "0.0600")
        page = await ok(
            await client.get(
                f"/listings/{listed['id']}/bids", params={"limit": 2}, headers=world.sme.headers
            )
        )
        rest = await ok(
            await client.get(
                f"/listings/{listed['id']}/bids",
                params={"limit": 2, "cursor": page["next_cursor"]},
                headers=world.sme.headers,
            )
        )
        ids = [b["id"] for b in page["items"] + rest["items"]]
        assert (
            sorted(ids) == sorted([first["id"], second["id"], third["id"]]) and len(set(ids)) == 3
        )
        assert rest["next_cursor"] is None


class TestGetBid:
    async def test_the_bank_and_the_seller_see_it(self, client, world: World, clock):
        _, _, first, _ = await market(client, world, clock)
        for party in (world.bank, world.sme, world.operator, world.regulator):
            assert await read_bid(client, party, first["id"]) == first, party.name

    @pytest.mark.parametrize(
        ("caller", "status"), [("bank2", 404), ("bank3", 404), ("sme2", 404), ("core", 403)]
    )
    async def test_others_cannot(self, client, world: World, clock, caller, status):
        _, _, first, _ = await market(client, world, clock)
        response = await client.get(f"/bids/{first['id']}", headers=getattr(world, caller).headers)
        assert_problem(response, status, "not_found" if status == 404 else "forbidden")
        assert "0.0450" not in response.text


# ------------------------------------------------------------------ PATCH /bids/{id}


class TestReviseBid:
    async def test_revise_changes_the_rate_and_its_time(self, client, world: World, clock, app):
        _, listed, first, _ = await market(client, world, clock)
        clock.advance(60)
        response = await client.patch(
            f"/bids/{first['id']}", json={"discount_rate": "0.0420"}, headers=world.bank.headers
        )
        revised = await ok(response)
        assert (revised["id"], revised["status"], revised["discount_rate"]) == (
            first["id"],
            "active",
            "0.0420",
        )
        assert instant(revised["rate_set_at"]) == clock.now()
        assert revised["created_at"] == first["created_at"]
        assert await read_bid(client, world.sme, first["id"]) == revised
        assert (await read_listing(client, world.sme, listed["id"]))["bid_count"] == 2
        assert (await audit_trail(app, first["id"]))[-1] == ("bid", "active", "active")

    async def test_rate_above_reserve_is_422(self, client, world: World, clock, app):
        _, _, first, _ = await market(client, world, clock)
        async with Unchanged(app):
            response = await client.patch(
                f"/bids/{first['id']}", json={"discount_rate": "0.0900"}, headers=world.bank.headers
            )
            assert_problem(response, 422, "bid_above_reserve")

    @pytest.mark.parametrize(
        ("caller", "status"), [("bank2", 404), ("bank3", 404), ("sme", 403), ("core", 403)]
    )
    async def test_someone_elses_bid(self, client, world: World, clock, app, caller, status):
        _, _, first, _ = await market(client, world, clock)
        async with Unchanged(app):
            response = await client.patch(
                f"/bids/{first['id']}",
                json={"discount_rate": "0.0100"},
                headers=getattr(world, caller).headers,
            )
            assert_problem(response, status, "not_found" if status == 404 else "forbidden")

    @pytest.mark.parametrize("late", [0, 1], ids=["at-closes_at", "one-second-after"])
    async def test_at_or_after_closes_at_is_409(self, client, world: World, clock, app, late):
        _, _, first, _ = await market(client, world, clock)
        clock.advance(3600 + late)
        async with Unchanged(app):
            response = await client.patch(
                f"/bids/{first['id']}", json={"discount_rate": "0.0400"}, headers=world.bank.headers
            )
            assert_problem(response, 409, "auction_closed")

    async def test_withdrawn_bid_is_409(self, client, world: World, clock, app):
        _, _, first, _ = await market(client, world, clock)
        await ok(await client.post(f"/bids/{first['id']}/withdraw", headers=world.bank.headers))
        async with Unchanged(app):
            response = await client.patch(
                f"/bids/{first['id']}", json={"discount_rate": "0.0400"}, headers=world.bank.headers
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "withdrawn" in problem["detail"]

    async def test_malformed_rate_is_422(self, client, world: World, clock, app):
        _, _, first, _ = await market(client, world, clock)
        async with Unchanged(app):
            response = await client.patch(
                f"/bids/{first['id']}", json={"discount_rate": "four"}, headers=world.bank.headers
            )
            assert bad_fields(response) == {"discount_rate"}


# ------------------------------------------------------------------ POST /bids/{id}/withdraw


class TestWithdrawBid:
    async def test_withdraw_and_the_count_drops(self, client, world: World, clock, app):
        _, listed, first, second = await market(client, world, clock)
        withdrawn = await ok(
            await client.post(f"/bids/{first['id']}/withdraw", headers=world.bank.headers)
        )
        assert (withdrawn["id"], withdrawn["status"]) == (first["id"], "withdrawn")
        assert (await read_listing(client, world.sme, listed["id"]))["bid_count"] == 1
        assert (await read_bid(client, world.bank2, second["id"]))["status"] == "active"
        assert (await audit_trail(app, first["id"]))[-1] == ("bid", "active", "withdrawn")

    @pytest.mark.parametrize(
        ("caller", "status"), [("bank2", 404), ("bank3", 404), ("sme", 403), ("core", 403)]
    )
    async def test_someone_elses_bid(self, client, world: World, clock, app, caller, status):
        _, _, first, _ = await market(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/bids/{first['id']}/withdraw", headers=getattr(world, caller).headers
            )
            assert_problem(response, status, "not_found" if status == 404 else "forbidden")

    async def test_twice_is_409(self, client, world: World, clock, app):
        _, listed, first, _ = await market(client, world, clock)
        await ok(await client.post(f"/bids/{first['id']}/withdraw", headers=world.bank.headers))
        async with Unchanged(app):
            response = await client.post(
                f"/bids/{first['id']}/withdraw", headers=world.bank.headers
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "withdrawn" in problem["detail"]
        assert (await read_listing(client, world.sme, listed["id"]))["bid_count"] == 1

    @pytest.mark.parametrize("late", [0, 1], ids=["at-closes_at", "one-second-after"])
    async def test_at_or_after_closes_at_is_409(self, client, world: World, clock, app, late):
        _, _, first, _ = await market(client, world, clock)
        clock.advance(3600 + late)
        async with Unchanged(app):
            response = await client.post(
                f"/bids/{first['id']}/withdraw", headers=world.bank.headers
            )
            assert_problem(response, 409, "auction_closed")


# ------------------------------------------------------------------ POST /listings/{id}/award


class TestAward:
    async def test_seller_picks_a_bid(self, client, world: World, clock, app):
        receivable, listed, first, second = await market(client, world, clock)
        third = await bid(client, world.bank3, listed["id"], "0.0600")
        await ok(await client.post(f"/bids/{third['id']}/withdraw", headers=world.bank3.headers))
        response = await client.post(
            f"/listings/{listed['id']}/award",
            json={"bid_id": second["id"]},
            headers=world.sme.headers,
        )
        deal = await ok(response, 201)
        assert deal["status"] == "awaiting_funding"
        assert deal["bank_id"] == str(world.bank2.organization_id)
        assert (deal["listing_id"], deal["receivable_id"]) == (listed["id"], receivable["id"])
        assert (deal["sme_id"], deal["debtor_id"]) == (
            str(world.sme.organization_id),
            str(world.core.organization_id),
        )
        assert (deal["discount_rate"], deal["face_value"], deal["principal"]) == (
            "0.0500",
            "1000000.00",
            "1000000.00",
        )
        assert (await read_bid(client, world.bank2, second["id"]))["status"] == "won"
        assert (await read_bid(client, world.bank, first["id"]))["status"] == "lost"
        assert (await read_bid(client, world.bank3, third["id"]))["status"] == "withdrawn"
        seen = await read_listing(client, world.sme, listed["id"])
        assert (seen["status"], seen["awarded_bid_id"]) == ("awarded", second["id"])
        assert (await read_receivable(client, world.sme, receivable["id"]))["status"] == "awarded"
        assert (await get_json(client, world.bank2, f"/deals/{deal['id']}"))[
            "status"
        ] == "awaiting_funding"
        assert (await audit_trail(app, listed["id"]))[-1] == ("listing", "open", "awarded")

    async def test_the_picked_bid_is_won(self, client, world: World, clock, app):
        """Regression: award_bid once set `won` in memory, then _close_losers re-read the
        active bids with populate_existing (autoflush off) and put `active` back."""
        _, listed, first, _ = await market(client, world, clock)
        await award(client, world.sme, listed["id"], first["id"])
        assert (await read_bid(client, world.bank, first["id"]))["status"] == "won"
        assert (await audit_trail(app, first["id"]))[-1] == ("bid", "active", "won")

    async def test_after_the_award_only_bidders_still_see_the_listing(
        self, client, world: World, clock
    ):
        _, listed, first, _ = await market(client, world, clock)
        await award(client, world.sme, listed["id"], first["id"])
        for bidder in (world.bank, world.bank2):
            assert (await read_listing(client, bidder, listed["id"]))["status"] == "awarded"
        response = await client.get(f"/listings/{listed['id']}", headers=world.bank3.headers)
        assert_problem(response, 404, "not_found")
        for party, expected in ((world.bank, [listed["id"]]), (world.bank3, [])):
            page = await ok(
                await client.get("/listings", params={"status": "awarded"}, headers=party.headers)
            )
            assert [item["id"] for item in page["items"]] == expected, party.name
        open_page = await ok(
            await client.get("/listings", params={"status": "open"}, headers=world.bank3.headers)
        )
        assert open_page["items"] == []

    async def test_awarding_twice_is_409(self, client, world: World, clock, app):
        _, listed, first, second = await market(client, world, clock)
        await award(client, world.sme, listed["id"], first["id"])
        async with Unchanged(app):
            for bid_id in (first["id"], second["id"]):
                response = await client.post(
                    f"/listings/{listed['id']}/award",
                    json={"bid_id": bid_id},
                    headers=world.sme.headers,
                )
                problem = assert_problem(response, 409, "illegal_transition")
                assert "awarded" in problem["detail"]

    async def test_bid_from_another_listing_is_422(self, client, world: World, clock, app):
        _, listed, _, _ = await market(client, world, clock)
        _, other = await listed_receivable(client, world, clock)
        elsewhere = await bid(client, world.bank3, other["id"], "0.0300")
        async with Unchanged(app):
            for bid_id in (elsewhere["id"], str(uuid.uuid4())):
                response = await client.post(
                    f"/listings/{listed['id']}/award",
                    json={"bid_id": bid_id},
                    headers=world.sme.headers,
                )
                assert_problem(response, 422, "bid_not_on_listing")

    @pytest.mark.parametrize(
        ("caller", "status"), [("bank", 403), ("core", 403), ("operator", 403), ("sme2", 404)]
    )
    async def test_others_may_not_award(self, client, world: World, clock, app, caller, status):
        _, listed, first, _ = await market(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/award",
                json={"bid_id": first["id"]},
                headers=getattr(world, caller).headers,
            )
            assert_problem(response, status, "not_found" if status == 404 else "forbidden")

    @pytest.mark.parametrize("late", [0, 1], ids=["at-closes_at", "one-second-after"])
    async def test_at_or_after_closes_at_is_409(self, client, world: World, clock, app, late):
        _, listed, first, _ = await market(client, world, clock)
        clock.advance(3600 + late)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/award",
                json={"bid_id": first["id"]},
                headers=world.sme.headers,
            )
            assert_problem(response, 409, "auction_closed")

    async def test_one_second_before_closes_at_is_accepted(self, client, world: World, clock):
        _, listed, first, _ = await market(client, world, clock)
        clock.advance(3600 - 1)
        assert (await award(client, world.sme, listed["id"], first["id"]))[
            "status"
        ] == "awaiting_funding"

    async def test_withdrawn_bid_is_409(self, client, world: World, clock, app):
        _, listed, first, _ = await market(client, world, clock)
        await ok(await client.post(f"/bids/{first['id']}/withdraw", headers=world.bank.headers))
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/award",
                json={"bid_id": first["id"]},
                headers=world.sme.headers,
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "withdrawn" in problem["detail"]

    async def test_missing_bid_id_is_422(self, client, world: World, clock, app):
        _, listed, _, _ = await market(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/award", json={}, headers=world.sme.headers
            )
            assert bad_fields(response) == {"bid_id"}


# ------------------------------------------------------------------ POST /listings/{id}/cancel


class TestCancelListing:
    async def test_cancel_closes_the_auction_and_frees_the_receivable(
        self, client, world: World, clock, app
    ):
        receivable, listed, first, second = await market(client, world, clock)
        cancelled = await ok(
            await client.post(f"/listings/{listed['id']}/cancel", headers=world.sme.headers)
        )
        assert (cancelled["id"], cancelled["status"], cancelled["bid_count"]) == (
            listed["id"],
            "cancelled",
            0,
        )
        assert (await read_bid(client, world.bank, first["id"]))["status"] == "lost"
        assert (await read_bid(client, world.bank2, second["id"]))["status"] == "lost"
        assert (await read_receivable(client, world.sme, receivable["id"]))["status"] == "confirmed"
        assert ("receivable", "listed", "confirmed") in await audit_trail(app, receivable["id"])
        again = await open_listing(client, world.sme, receivable["id"], clock)
        assert again["id"] != listed["id"] and again["status"] == "open"
        assert (await read_receivable(client, world.sme, receivable["id"]))["status"] == "listed"
        assert (await bid(client, world.bank, again["id"], "0.0400"))["status"] == "active"

    async def test_twice_is_409(self, client, world: World, clock, app):
        _, listed, _, _ = await market(client, world, clock)
        await ok(await client.post(f"/listings/{listed['id']}/cancel", headers=world.sme.headers))
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/cancel", headers=world.sme.headers
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "cancelled" in problem["detail"]

    async def test_awarded_listing_cannot_be_cancelled(self, client, world: World, clock, app):
        _, listed, first, _ = await market(client, world, clock)
        await award(client, world.sme, listed["id"], first["id"])
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/cancel", headers=world.sme.headers
            )
            problem = assert_problem(response, 409, "illegal_transition")
        assert "awarded" in problem["detail"]

    @pytest.mark.parametrize("late", [0, 1], ids=["at-closes_at", "one-second-after"])
    async def test_at_or_after_closes_at_is_409_and_the_close_still_awards(
        self, client, world: World, clock, app, late
    ):
        # The seller sees the bids; after closes_at the auto-award is owed to the best one.
        receivable, listed, first, _ = await market(client, world, clock)
        advance_clock(app, world, seconds=3600 + late)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/cancel", headers=world.sme.headers
            )
            problem = assert_problem(response, 409, "auction_closed")
        assert "closed at" in problem["detail"]
        assert (await tick(client, world))["auctions_closed"] == 1
        assert (await read_listing(client, world.sme, listed["id"]))["status"] == "awarded"
        assert (await read_bid(client, world.bank, first["id"]))["status"] == "won"
        assert (await read_receivable(client, world.sme, receivable["id"]))["status"] == "awarded"

    async def test_one_second_before_closes_at_cancels(self, client, world: World, clock, app):
        _, listed, _, _ = await market(client, world, clock)
        advance_clock(app, world, seconds=3600 - 1)
        cancelled = await ok(
            await client.post(f"/listings/{listed['id']}/cancel", headers=world.sme.headers)
        )
        assert cancelled["status"] == "cancelled"

    @pytest.mark.parametrize(
        ("caller", "status"), [("bank", 403), ("core", 403), ("regulator", 403), ("sme2", 404)]
    )
    async def test_others_may_not_cancel(self, client, world: World, clock, app, caller, status):
        _, listed, _, _ = await market(client, world, clock)
        async with Unchanged(app):
            response = await client.post(
                f"/listings/{listed['id']}/cancel", headers=getattr(world, caller).headers
            )
            assert_problem(response, status, "not_found" if status == 404 else "forbidden")
