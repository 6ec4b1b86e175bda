"""Goal: the receivables endpoints keep the contract of API.md "Receivables".

Method: drive the real app over HTTP with real tokens (the `world` parties), one class
per endpoint and one test per scenario. Each refused call is checked for its status and
problem `code` and for having changed nothing (the receivable read back is identical).
Audit rows are read straight from the database. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from receivables.auctions.models import Bid, Listing
from receivables.deals.models import Deal
from receivables.events.models import AuditRecord
from receivables.kit.clock import SimulatedClock
from receivables.receivables.models import Receivable
from tests.conftest import CLOCK_START
from tests.fixtures.flows import (
    advance_clock,
    confirm_receivable,
    confirmed_receivable,
    receivable_body,
    submit_receivable,
)
from tests.fixtures.world import Party, World

# ------------------------------------------------------------------ helpers


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def read(client: httpx.AsyncClient, party: Party, receivable_id: str) -> dict[str, Any]:
    response = await client.get(f"/receivables/{receivable_id}", headers=party.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def row(app: FastAPI, receivable_id: str) -> Receivable:
    async with app.state.sessionmaker() as session:
        found = await session.get(Receivable, uuid.UUID(receivable_id))
        assert found is not None
        return found


async def audit_trail(app: FastAPI, receivable_id: str) -> list[tuple[str, str | None, str | None]]:
    async with app.state.sessionmaker() as session:
        stmt = (
            select(AuditRecord)
            .where(AuditRecord.object_id == uuid.UUID(receivable_id))
            .order_by(AuditRecord.sequence)
        )
        rows = (await session.execute(stmt)).scalars().all()
    return [(r.action, r.from_state, r.to_state) for r in rows]


async def count_receivables(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return len((await session.execute(select(Receivable.id))).all())


async def add_bid(app: FastAPI, receivable: dict[str, Any], bank: Party, clock) -> Bid:
    """A listing of the receivable with one bid by `bank`, written directly so these
    tests depend on the auction tables only, not on the auctions API."""
    now = clock.now()
    listing = Listing(
        receivable_id=uuid.UUID(receivable["id"]),
        seller_id=uuid.UUID(receivable["seller_id"]),
        max_discount_rate_ppm=60_000,
        advance_ratio_ppm=1_000_000,
        closes_at=now + dt.timedelta(days=2),
        created_at=now,
        updated_at=now,
    )
    async with app.state.sessionmaker.begin() as session:
        session.add(listing)
        await session.flush()
        bid = Bid(
            listing_id=listing.id,
            bank_id=bank.organization_id,
            discount_rate_ppm=45_000,
            rate_sequence=1,
            rate_set_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(bid)
    return bid


async def add_deal(app: FastAPI, receivable: dict[str, Any], bid: Bid, bank: Party, clock) -> None:
    """A deal financed by `bank` (which placed no bid itself): only the deal links them."""
    now = clock.now()
    deal = Deal(
        listing_id=bid.listing_id,
        bid_id=bid.id,
        receivable_id=uuid.UUID(receivable["id"]),
        sme_id=uuid.UUID(receivable["seller_id"]),
        bank_id=bank.organization_id,
        debtor_id=uuid.UUID(receivable["debtor_id"]),
        currency="CNY",
        face_value_minor=100_000_000,
        principal_minor=100_000_000,
        advance_ratio_ppm=1_000_000,
        discount_rate_ppm=45_000,
        fee_rate_ppm=0,
        due_date=dt.date.fromisoformat(receivable["due_date"]),
        funding_deadline_at=now + dt.timedelta(hours=24),
        created_at=now,
        updated_at=now,
    )
    async with app.state.sessionmaker.begin() as session:
        session.add(deal)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    return body


def bad_fields(response: httpx.Response) -> set[str]:
    body = assert_problem(response, 422, "validation_error")
    return {error["field"] for error in body["errors"]}


# ------------------------------------------------------------------ POST /receivables


class TestSubmit:
    async def test_seller_submits_and_debtor_is_asked(self, client, world: World, clock, app):
        body = receivable_body(client, world.core, face_value="1505500.5", description="Brakes")
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["status"] == "submitted"
        assert created["seller_id"] == str(world.sme.organization_id)
        assert created["debtor_id"] == str(world.core.organization_id)
        assert created["face_value"] == created["submitted_amount"] == "1505500.50"
        assert created["currency"] == "CNY"
        assert created["invoice_number"] == body["invoice_number"]
        assert (created["issue_date"], created["due_date"]) == (
            body["issue_date"],
            body["due_date"],
        )
        assert created["description"] == "Brakes"
        assert created["dispute_reason"] is None and created["confirmed_at"] is None
        assert instant(created["created_at"]) == instant(created["updated_at"]) == CLOCK_START
        assert instant(created["confirmation_deadline_at"]) == CLOCK_START + dt.timedelta(days=30)
        uuid.UUID(created["id"])

    async def test_registry_fields_are_stored(self, client, world: World, app):
        created = await submit_receivable(client, world.sme, world.core)
        stored = await row(app, created["id"])
        assert stored.fingerprint == stored.active_fingerprint
        assert len(stored.fingerprint) == 64
        assert stored.submitted_at == CLOCK_START
        assert stored.face_value_minor == stored.submitted_amount_minor == 100_000_000

    async def test_other_iso_currency_is_accepted(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core, currency="USD")
        assert created["currency"] == "USD"

    async def test_bank_is_403(self, client, world: World, app):
        body = receivable_body(client, world.core)
        response = await client.post("/receivables", json=body, headers=world.bank.headers)
        assert_problem(response, 403, "forbidden")
        assert await count_receivables(app) == 0

    async def test_debtor_cannot_submit_403(self, client, world: World):
        body = receivable_body(client, world.core2)
        response = await client.post("/receivables", json=body, headers=world.core.headers)
        assert_problem(response, 403, "forbidden")

    async def test_anonymous_is_401(self, client, world: World):
        response = await client.post("/receivables", json=receivable_body(client, world.core))
        assert_problem(response, 401, "not_authenticated")

    @pytest.mark.parametrize("face_value", ["-5.00", "0", "0.00", "10.005", "1e6", " 10", 100])
    async def test_bad_face_value_is_422_naming_it(self, client, world: World, app, face_value):
        body = receivable_body(client, world.core, face_value=face_value)
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert bad_fields(response) == {"face_value"}
        assert await count_receivables(app) == 0

    async def test_due_date_before_issue_date_is_422(self, client, world: World, app):
        body = receivable_body(client, world.core, issue_date="2026-06-01", due_date="2026-05-01")
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert bad_fields(response) == {"due_date"}
        assert await count_receivables(app) == 0

    @pytest.mark.parametrize("due_in_days", [0, -1])
    async def test_due_date_not_after_today_is_422(self, client, world: World, app, due_in_days):
        body = receivable_body(client, world.core, due_in_days=due_in_days)
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        problem = assert_problem(response, 422, "due_date_not_after_today")
        assert problem["detail"].startswith("due_date")
        assert await count_receivables(app) == 0

    async def test_unknown_field_status_is_422(self, client, world: World, app):
        body = receivable_body(client, world.core, status="confirmed")
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert bad_fields(response) == {"status"}
        assert await count_receivables(app) == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("currency", "cny"),
            ("currency", "YUAN"),
            ("invoice_number", "--- / ---"),
            ("invoice_number", "x" * 65),
            ("description", "d" * 1001),
            ("debtor_id", "nope"),
        ],
    )
    async def test_malformed_field_is_422_naming_it(self, client, world: World, field, value):
        body = receivable_body(client, world.core, **{field: value})
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert bad_fields(response) == {field}

    @pytest.mark.parametrize(
        "missing", ["debtor_id", "invoice_number", "face_value", "issue_date", "due_date"]
    )
    async def test_missing_required_field_is_422(self, client, world: World, missing):
        body = receivable_body(client, world.core)
        del body[missing]
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert bad_fields(response) == {missing}

    @pytest.mark.parametrize("debtor", ["sme", "sme2", "bank", "regulator"])
    async def test_debtor_that_is_not_a_core_enterprise_is_422(
        self, client, world: World, app, debtor
    ):
        body = receivable_body(client, getattr(world, debtor))
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert_problem(response, 422, "invalid_debtor")
        assert await count_receivables(app) == 0

    async def test_unknown_debtor_is_422(self, client, world: World):
        body = receivable_body(client, world.core, debtor_id=str(uuid.uuid4()))
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert_problem(response, 422, "invalid_debtor")

    async def test_suspended_debtor_is_422(self, client, world: World):
        suspended = await client.post(
            f"/organizations/{world.core2.organization_id}/suspend", headers=world.operator.headers
        )
        assert suspended.status_code == 200
        body = receivable_body(client, world.core2)
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert_problem(response, 422, "invalid_debtor")


class TestRegistry:
    async def test_same_invoice_typed_differently_is_409(self, client, world: World, app):
        first = await submit_receivable(client, world.sme, world.core, invoice_number="inv-001")
        body = receivable_body(client, world.core, invoice_number="INV 001", face_value="5.00")
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        problem = assert_problem(response, 409, "duplicate_receivable")
        assert first["id"] not in response.text
        assert str(world.sme.organization_id) not in response.text
        assert problem["detail"] == problem["title"]
        assert await count_receivables(app) == 1

    async def test_cancelled_invoice_may_be_submitted_again(self, client, world: World, app):
        first = await submit_receivable(client, world.sme, world.core, invoice_number="inv-002")
        cancelled = await client.post(
            f"/receivables/{first['id']}/cancel", headers=world.sme.headers
        )
        assert cancelled.status_code == 200
        assert (await row(app, first["id"])).active_fingerprint is None
        again = await submit_receivable(client, world.sme, world.core, invoice_number="INV_002")
        assert again["id"] != first["id"]
        assert (await row(app, again["id"])).fingerprint == (
            await row(app, first["id"])
        ).fingerprint

    async def test_confirmed_invoice_still_blocks(self, client, world: World):
        await confirmed_receivable(client, world, invoice_number="inv-003")
        body = receivable_body(client, world.core, invoice_number="Inv.003")
        response = await client.post("/receivables", json=body, headers=world.sme.headers)
        assert_problem(response, 409, "duplicate_receivable")

    async def test_same_number_against_another_debtor_is_another_invoice(
        self, client, world: World
    ):
        await submit_receivable(client, world.sme, world.core, invoice_number="inv-004")
        other = await submit_receivable(client, world.sme, world.core2, invoice_number="inv-004")
        assert other["status"] == "submitted"

    async def test_same_number_from_another_seller_is_another_invoice(self, client, world: World):
        await submit_receivable(client, world.sme, world.core, invoice_number="inv-005")
        other = await submit_receivable(client, world.sme2, world.core, invoice_number="inv-005")
        assert other["seller_id"] == str(world.sme2.organization_id)


# ------------------------------------------------------------------ GET


class TestGet:
    @pytest.mark.parametrize("viewer", ["sme", "core", "operator", "regulator"])
    async def test_parties_and_supervisors_see_it(self, client, world: World, viewer):
        created = await submit_receivable(client, world.sme, world.core)
        seen = await read(client, getattr(world, viewer), created["id"])
        assert seen == created

    @pytest.mark.parametrize("viewer", ["sme2", "core2", "bank"])
    async def test_others_get_404(self, client, world: World, viewer):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.get(
            f"/receivables/{created['id']}", headers=getattr(world, viewer).headers
        )
        assert_problem(response, 404, "not_found")

    async def test_bank_that_bid_sees_it_others_do_not(self, client, world: World, app, clock):
        created = await confirmed_receivable(client, world)
        await add_bid(app, created, world.bank, clock)
        assert (await read(client, world.bank, created["id"]))["id"] == created["id"]
        response = await client.get(f"/receivables/{created['id']}", headers=world.bank2.headers)
        assert response.status_code == 404

    async def test_bank_that_financed_it_sees_it(self, client, world: World, app, clock):
        created = await confirmed_receivable(client, world)
        bid = await add_bid(app, created, world.bank, clock)
        await add_deal(app, created, bid, world.bank2, clock)
        assert (await read(client, world.bank2, created["id"]))["id"] == created["id"]
        response = await client.get(f"/receivables/{created['id']}", headers=world.bank3.headers)
        assert response.status_code == 404

    async def test_unknown_id_is_404(self, client, world: World):
        response = await client.get(f"/receivables/{uuid.uuid4()}", headers=world.operator.headers)
        assert_problem(response, 404, "not_found")

    async def test_malformed_id_is_422(self, client, world: World):
        response = await client.get("/receivables/42", headers=world.operator.headers)
        assert bad_fields(response) == {"path.receivable_id"}

    async def test_anonymous_is_401(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.get(f"/receivables/{created['id']}")
        assert_problem(response, 401, "not_authenticated")


class TestList:
    async def test_each_party_lists_only_what_it_may_see(self, client, world: World):
        mine = await submit_receivable(client, world.sme, world.core)
        theirs = await submit_receivable(client, world.sme2, world.core2)

        async def ids(party: Party) -> set[str]:
            response = await client.get("/receivables", headers=party.headers)
            assert response.status_code == 200
            return {item["id"] for item in response.json()["items"]}

        assert await ids(world.sme) == await ids(world.core) == {mine["id"]}
        assert await ids(world.sme2) == await ids(world.core2) == {theirs["id"]}
        assert await ids(world.bank) == set()
        assert await ids(world.regulator) == await ids(world.operator) == {mine["id"], theirs["id"]}

    async def test_filter_by_status(self, client, world: World):
        submitted = await submit_receivable(client, world.sme, world.core)
        confirmed = await confirmed_receivable(client, world)
        for status, expected in (("submitted", submitted), ("confirmed", confirmed)):
            response = await client.get(
                "/receivables", params={"status": status}, headers=world.sme.headers
            )
            assert [item["id"] for item in response.json()["items"]] == [expected["id"]]
        response = await client.get(
            "/receivables", params={"status": "settled"}, headers=world.sme.headers
        )
        assert response.json() == {"items": [], "next_cursor": None}

    async def test_unknown_status_is_422(self, client, world: World):
        response = await client.get(
            "/receivables", params={"status": "paid"}, headers=world.sme.headers
        )
        assert bad_fields(response) == {"query.status"}

    async def test_pages_cover_everything_once(self, client, world: World, clock: SimulatedClock):
        created = []
        for _ in range(5):
            created.append((await submit_receivable(client, world.sme, world.core))["id"])
            clock.advance(1)
        created.append((await submit_receivable(client, world.sme, world.core))["id"])
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (
                await client.get("/receivables", params=params, headers=world.core.headers)
            ).json()
            assert len(page["items"]) <= 2
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == created

    async def test_same_instant_rows_page_without_duplicates(self, client, world: World):
        created = {(await submit_receivable(client, world.sme, world.core))["id"] for _ in range(5)}
        first = (
            await client.get("/receivables", params={"limit": 3}, headers=world.sme.headers)
        ).json()
        second = (
            await client.get(
                "/receivables",
                params={"limit": 3, "cursor": first["next_cursor"]},
                headers=world.sme.headers,
            )
        ).json()
        ids = [item["id"] for item in first["items"] + second["items"]]
        assert len(ids) == len(set(ids)) == 5 and set(ids) == created
        assert second["next_cursor"] is None

    async def test_bad_cursor_is_422(self, client, world: World):
        response = await client.get(
            "/receivables", params={"cursor": "garbage"}, headers=world.sme.headers
        )
        assert_problem(response, 422, "invalid_cursor")


# ------------------------------------------------------------------ confirm


class TestConfirm:
    async def test_debtor_confirms_as_submitted(
        self, client, world: World, app, clock: SimulatedClock
    ):
        created = await submit_receivable(client, world.sme, world.core)
        clock.advance(2 * 3600 + 30)
        confirmed = await confirm_receivable(client, world.core, created["id"])
        assert confirmed["status"] == "confirmed"
        assert confirmed["face_value"] == confirmed["submitted_amount"] == "1000000.00"
        assert confirmed["due_date"] == created["due_date"]
        assert instant(confirmed["confirmed_at"]) == clock.now()
        assert instant(confirmed["updated_at"]) == clock.now()
        assert (await row(app, created["id"])).confirmation_seconds == 7230
        assert await read(client, world.sme, created["id"]) == confirmed

    async def test_confirm_without_a_body(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/confirm", headers=world.core.headers
        )
        assert response.status_code == 200
        assert response.json()["status"] == "confirmed"

    async def test_lower_amount_becomes_the_face_value(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core, face_value="1000.00")
        confirmed = await confirm_receivable(client, world.core, created["id"], amount="999.99")
        assert confirmed["face_value"] == "999.99"
        assert confirmed["submitted_amount"] == "1000.00"

    async def test_higher_amount_is_422_and_changes_nothing(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core, face_value="1000.00")
        response = await client.post(
            f"/receivables/{created['id']}/confirm",
            json={"amount": "1000.01"},
            headers=world.core.headers,
        )
        problem = assert_problem(response, 422, "amount_increase")
        assert problem["detail"].startswith("amount")
        assert await read(client, world.sme, created["id"]) == created

    async def test_debtor_may_move_the_due_date(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        confirmed = await confirm_receivable(
            client, world.core, created["id"], due_date="2026-12-31"
        )
        assert confirmed["due_date"] == "2026-12-31"

    @pytest.mark.parametrize("due_date", ["2026-03-02", "2026-02-15"])
    async def test_due_date_not_after_today_is_422(self, client, world: World, due_date):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/confirm",
            json={"due_date": due_date},
            headers=world.core.headers,
        )
        assert_problem(response, 422, "due_date_not_after_today")
        assert await read(client, world.sme, created["id"]) == created

    @pytest.mark.parametrize(
        ("field", "value"), [("amount", "0"), ("amount", "1.001"), ("face_value", "1.00")]
    )
    async def test_bad_payload_is_422_naming_the_field(self, client, world: World, field, value):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/confirm", json={field: value}, headers=world.core.headers
        )
        assert bad_fields(response) == {field}
        assert await read(client, world.sme, created["id"]) == created

    async def test_seller_confirming_its_own_is_403(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/confirm", headers=world.sme.headers
        )
        assert_problem(response, 403, "forbidden")
        assert await read(client, world.sme, created["id"]) == created

    @pytest.mark.parametrize("caller", ["operator", "regulator"])
    async def test_supervisors_see_but_may_not_confirm(self, client, world: World, caller):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/confirm", headers=getattr(world, caller).headers
        )
        assert_problem(response, 403, "forbidden")

    @pytest.mark.parametrize("caller", ["core2", "bank", "sme2"])
    async def test_who_cannot_see_it_gets_404(self, client, world: World, caller):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/confirm", headers=getattr(world, caller).headers
        )
        assert_problem(response, 404, "not_found")
        assert await read(client, world.sme, created["id"]) == created

    async def test_anonymous_is_401(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(f"/receivables/{created['id']}/confirm")
        assert_problem(response, 401, "not_authenticated")

    async def test_confirming_a_cancelled_one_is_409(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        await client.post(f"/receivables/{created['id']}/cancel", headers=world.sme.headers)
        before = await read(client, world.sme, created["id"])
        response = await client.post(
            f"/receivables/{created['id']}/confirm", headers=world.core.headers
        )
        problem = assert_problem(response, 409, "illegal_transition")
        assert "cancelled" in problem["detail"]
        assert await read(client, world.sme, created["id"]) == before

    async def test_confirming_twice_is_409(self, client, world: World):
        confirmed = await confirmed_receivable(client, world)
        response = await client.post(
            f"/receivables/{confirmed['id']}/confirm",
            json={"amount": "1.00"},
            headers=world.core.headers,
        )
        assert "confirmed" in assert_problem(response, 409, "illegal_transition")["detail"]
        assert await read(client, world.sme, confirmed["id"]) == confirmed

    async def test_after_the_window_is_409(self, client, world: World, app):
        created = await submit_receivable(client, world.sme, world.core)
        advance_clock(app, world, seconds=30 * 86400)
        response = await client.post(
            f"/receivables/{created['id']}/confirm", headers=world.core.headers
        )
        assert_problem(response, 409, "confirmation_window_closed")
        assert (await read(client, world.sme, created["id"]))["status"] == "submitted"

    async def test_state_is_checked_before_payload(self, client, world: World):
        confirmed = await confirmed_receivable(client, world)
        response = await client.post(
            f"/receivables/{confirmed['id']}/confirm",
            json={"amount": "9999999.00"},
            headers=world.core.headers,
        )
        assert_problem(response, 409, "illegal_transition")


# ------------------------------------------------------------------ dispute


class TestDispute:
    async def test_debtor_disputes_with_a_reason(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/dispute",
            json={"reason": "  Goods not delivered "},
            headers=world.core.headers,
        )
        assert response.status_code == 200, response.text
        disputed = response.json()
        assert disputed["status"] == "disputed"
        assert disputed["dispute_reason"] == "Goods not delivered"
        assert disputed["confirmed_at"] is None
        assert await read(client, world.sme, created["id"]) == disputed

    @pytest.mark.parametrize(
        "body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": "r" * 1001}]
    )
    async def test_reason_is_required_and_bounded(self, client, world: World, body):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/dispute", json=body, headers=world.core.headers
        )
        assert bad_fields(response) == {"reason"}
        assert await read(client, world.sme, created["id"]) == created

    async def test_disputing_a_confirmed_one_is_409(self, client, world: World):
        confirmed = await confirmed_receivable(client, world)
        response = await client.post(
            f"/receivables/{confirmed['id']}/dispute",
            json={"reason": "changed my mind"},
            headers=world.core.headers,
        )
        assert "confirmed" in assert_problem(response, 409, "illegal_transition")["detail"]
        assert await read(client, world.sme, confirmed["id"]) == confirmed

    async def test_seller_cannot_dispute_403(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/dispute", json={"reason": "x"}, headers=world.sme.headers
        )
        assert_problem(response, 403, "forbidden")
        assert await read(client, world.sme, created["id"]) == created

    async def test_other_core_enterprise_gets_404(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/dispute",
            json={"reason": "x"},
            headers=world.core2.headers,
        )
        assert_problem(response, 404, "not_found")


# ------------------------------------------------------------------ PATCH (amend)


async def disputed_receivable(client: httpx.AsyncClient, world: World, **kw: Any) -> dict[str, Any]:
    created = await submit_receivable(client, world.sme, world.core, **kw)
    response = await client.post(
        f"/receivables/{created['id']}/dispute",
        json={"reason": "wrong amount"},
        headers=world.core.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


class TestAmend:
    async def test_seller_corrects_and_asks_again(
        self, client, world: World, app, clock: SimulatedClock
    ):
        disputed = await disputed_receivable(client, world, invoice_number="inv-100")
        fingerprint_before = (await row(app, disputed["id"])).fingerprint
        advance_clock(app, world, seconds=86400)
        body = {"face_value": "900.00", "invoice_number": "inv-101", "description": "corrected"}
        response = await client.patch(
            f"/receivables/{disputed['id']}", json=body, headers=world.sme.headers
        )
        assert response.status_code == 200, response.text
        amended = response.json()
        assert amended["status"] == "submitted"
        assert amended["face_value"] == amended["submitted_amount"] == "900.00"
        assert amended["invoice_number"] == "inv-101"
        assert amended["description"] == "corrected"
        assert amended["dispute_reason"] is None
        assert amended["due_date"] == disputed["due_date"]
        assert instant(amended["confirmation_deadline_at"]) == clock.now() + dt.timedelta(days=30)
        stored = await row(app, disputed["id"])
        assert stored.submitted_at == clock.now()
        assert stored.active_fingerprint == stored.fingerprint
        assert stored.fingerprint != fingerprint_before
        confirmed = await confirm_receivable(client, world.core, disputed["id"])
        assert confirmed["face_value"] == "900.00"
        assert (await row(app, disputed["id"])).confirmation_seconds == 0

    async def test_new_invoice_number_frees_the_old_one(self, client, world: World):
        disputed = await disputed_receivable(client, world, invoice_number="inv-110")
        response = await client.patch(
            f"/receivables/{disputed['id']}",
            json={"invoice_number": "inv-111"},
            headers=world.sme.headers,
        )
        assert response.status_code == 200
        again = await submit_receivable(client, world.sme, world.core, invoice_number="INV 110")
        assert again["status"] == "submitted"

    async def test_invoice_number_held_by_another_is_409(self, client, world: World):
        await submit_receivable(client, world.sme, world.core, invoice_number="inv-120")
        disputed = await disputed_receivable(client, world, invoice_number="inv-121")
        response = await client.patch(
            f"/receivables/{disputed['id']}",
            json={"invoice_number": "INV-120"},
            headers=world.sme.headers,
        )
        assert_problem(response, 409, "duplicate_receivable")
        assert await read(client, world.sme, disputed["id"]) == disputed

    async def test_retyping_its_own_invoice_number_is_fine(self, client, world: World):
        disputed = await disputed_receivable(client, world, invoice_number="inv-130")
        response = await client.patch(
            f"/receivables/{disputed['id']}",
            json={"invoice_number": "INV 130"},
            headers=world.sme.headers,
        )
        assert response.status_code == 200, response.text

    async def test_description_null_clears_it(self, client, world: World):
        disputed = await disputed_receivable(client, world, description="old")
        response = await client.patch(
            f"/receivables/{disputed['id']}", json={"description": None}, headers=world.sme.headers
        )
        assert response.status_code == 200
        assert response.json()["description"] is None

    async def test_amending_a_submitted_one_is_409(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.patch(
            f"/receivables/{created['id']}", json={"face_value": "1.00"}, headers=world.sme.headers
        )
        assert "submitted" in assert_problem(response, 409, "illegal_transition")["detail"]
        assert await read(client, world.sme, created["id"]) == created

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "body"),
            ({"face_value": "0"}, "face_value"),
            ({"invoice_number": None}, "invoice_number"),
            ({"status": "submitted"}, "status"),
            ({"issue_date": "2026-05-02", "due_date": "2026-05-01"}, "due_date"),
        ],
    )
    async def test_bad_payload_is_422(self, client, world: World, body, field):
        disputed = await disputed_receivable(client, world)
        response = await client.patch(
            f"/receivables/{disputed['id']}", json=body, headers=world.sme.headers
        )
        assert bad_fields(response) == {field}
        assert await read(client, world.sme, disputed["id"]) == disputed

    async def test_issue_date_past_stored_due_date_is_422(self, client, world: World):
        disputed = await disputed_receivable(client, world, due_in_days=10)
        late = (dt.date.fromisoformat(disputed["due_date"]) + dt.timedelta(days=1)).isoformat()
        response = await client.patch(
            f"/receivables/{disputed['id']}", json={"issue_date": late}, headers=world.sme.headers
        )
        assert_problem(response, 422, "due_date_not_after_issue_date")
        assert await read(client, world.sme, disputed["id"]) == disputed

    async def test_debtor_cannot_amend_403(self, client, world: World):
        disputed = await disputed_receivable(client, world)
        response = await client.patch(
            f"/receivables/{disputed['id']}",
            json={"face_value": "1.00"},
            headers=world.core.headers,
        )
        assert_problem(response, 403, "forbidden")
        assert await read(client, world.sme, disputed["id"]) == disputed

    async def test_other_sme_gets_404(self, client, world: World):
        disputed = await disputed_receivable(client, world)
        response = await client.patch(
            f"/receivables/{disputed['id']}",
            json={"face_value": "1.00"},
            headers=world.sme2.headers,
        )
        assert_problem(response, 404, "not_found")


# ------------------------------------------------------------------ cancel


class TestCancel:
    @pytest.mark.parametrize("state", ["submitted", "disputed", "confirmed"])
    async def test_seller_cancels(self, client, world: World, app, state):
        if state == "submitted":
            target = await submit_receivable(client, world.sme, world.core)
        elif state == "disputed":
            target = await disputed_receivable(client, world)
        else:
            target = await confirmed_receivable(client, world)
        response = await client.post(
            f"/receivables/{target['id']}/cancel", headers=world.sme.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "cancelled"
        assert (await row(app, target["id"])).active_fingerprint is None

    async def test_cancelling_twice_is_409(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        first = await client.post(f"/receivables/{created['id']}/cancel", headers=world.sme.headers)
        second = await client.post(
            f"/receivables/{created['id']}/cancel", headers=world.sme.headers
        )
        assert first.status_code == 200
        assert "cancelled" in assert_problem(second, 409, "illegal_transition")["detail"]
        assert await read(client, world.sme, created["id"]) == first.json()

    async def test_debtor_cannot_cancel_403(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/cancel", headers=world.core.headers
        )
        assert_problem(response, 403, "forbidden")
        assert await read(client, world.sme, created["id"]) == created

    async def test_bank_that_sees_it_gets_403(self, client, world: World, app, clock):
        confirmed = await confirmed_receivable(client, world)
        await add_bid(app, confirmed, world.bank, clock)
        response = await client.post(
            f"/receivables/{confirmed['id']}/cancel", headers=world.bank.headers
        )
        assert_problem(response, 403, "forbidden")
        assert await read(client, world.sme, confirmed["id"]) == confirmed

    async def test_bank_that_cannot_see_it_gets_404(self, client, world: World):
        created = await submit_receivable(client, world.sme, world.core)
        response = await client.post(
            f"/receivables/{created['id']}/cancel", headers=world.bank.headers
        )
        assert_problem(response, 404, "not_found")

    async def test_unknown_id_is_404(self, client, world: World):
        response = await client.post(
            f"/receivables/{uuid.uuid4()}/cancel", headers=world.sme.headers
        )
        assert_problem(response, 404, "not_found")


# ------------------------------------------------------------------ audit


class TestAudit:
    async def test_every_transition_writes_one_row(self, client, world: World, app):
        disputed = await disputed_receivable(client, world)
        rid = disputed["id"]
        amended = await client.patch(
            f"/receivables/{rid}", json={"face_value": "5.00"}, headers=world.sme.headers
        )
        assert amended.status_code == 200
        await confirm_receivable(client, world.core, rid)
        assert (
            await client.post(f"/receivables/{rid}/cancel", headers=world.sme.headers)
        ).status_code == 200
        assert await audit_trail(app, rid) == [
            ("receivable.submitted", None, "submitted"),
            ("receivable.disputed", "submitted", "disputed"),
            ("receivable.amended", "disputed", "submitted"),
            ("receivable.confirmed", "submitted", "confirmed"),
            ("receivable.cancelled", "confirmed", "cancelled"),
        ]

    async def test_rows_name_the_actor(self, client, world: World, app):
        created = await submit_receivable(client, world.sme, world.core)
        await confirm_receivable(client, world.core, created["id"])
        async with app.state.sessionmaker() as session:
            stmt = select(AuditRecord).where(AuditRecord.object_id == uuid.UUID(created["id"]))
            rows = (await session.execute(stmt.order_by(AuditRecord.sequence))).scalars().all()
        assert [(r.actor_role, r.actor_organization_id, r.actor_user_id) for r in rows] == [
            ("sme", world.sme.organization_id, world.sme.user_id),
            ("core", world.core.organization_id, world.core.user_id),
        ]
        assert rows[1].object_type == "receivable"
        assert rows[1].data["face_value_minor"] == 100_000_000

    async def test_refused_calls_write_nothing(self, client, world: World, app):
        created = await submit_receivable(client, world.sme, world.core, face_value="10.00")
        refused = [
            await client.post(
                f"/receivables/{created['id']}/confirm",
                json={"amount": "11.00"},
                headers=world.core.headers,
            ),
            await client.post(f"/receivables/{created['id']}/confirm", headers=world.sme.headers),
            await client.patch(
                f"/receivables/{created['id']}",
                json={"face_value": "1.00"},
                headers=world.sme.headers,
            ),
            await client.post(f"/receivables/{created['id']}/cancel", headers=world.bank.headers),
        ]
        assert [r.status_code for r in refused] == [422, 403, 409, 404]
        assert await audit_trail(app, created["id"]) == [("receivable.submitted", None, "submitted")]
