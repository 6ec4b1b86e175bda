"""A receivable's whole life over HTTP with the money model's exact amounts: submit,
confirm, list, bid, award, fund, repay (partially and in full), settle — and where every
fen went. The worked rows are DESIGN.md's published examples plus cases where half-up
rounding to the fen decides the answer. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from receivables.kit.clock import SimulatedClock
from tests.conftest import make_settings
from tests.fixtures.market import (
    award,
    balance,
    bid,
    fund,
    funded_deal,
    listed_receivable,
    ok,
    repay,
)
from tests.fixtures.world import World

WORKED_ROWS = [
    # face value, rate, days, discount: DESIGN.md's three published rows
    ("1505500.00", "0.0180", 22, "1656.05"),
    ("3000000.00", "0.0390", 118, "38350.00"),
    ("1000.00", "0.0600", 20, "3.33"),
    # half-up decides: 10000 fen × 1.8 % × 1/360 = 0.5 fen → 0.01
    ("100.00", "0.0180", 1, "0.01"),
    # 0.49999 fen rounds down: 9999 fen × 1.8 % / 360 = 0.49995
    ("99.99", "0.0180", 1, "0.00"),
]


def _minus(a: str, b: str) -> str:
    return f"{(int(a.replace('.', '')) - int(b.replace('.', ''))) / 100:.2f}"


class TestWholeLife:
    @pytest.mark.parametrize(("face_value", "rate", "days", "discount"), WORKED_ROWS)
    async def test_worked_example_to_settlement(
        self, client: httpx.AsyncClient, world: World, clock: SimulatedClock,
        face_value: str, rate: str, days: int, discount: str,
    ):
        receivable, listing = await listed_receivable(
            client, world, clock, face_value=face_value, due_in_days=days
        )
        losing = await bid(client, world.bank2, listing["id"], "0.0700")
        winning = await bid(client, world.bank, listing["id"], rate)
        deal = await award(client, world.sme, listing["id"], winning["id"])
        funding = _minus(face_value, discount)
        assert deal["status"] == "awaiting_funding"
        assert (deal["principal"], deal["discount_amount"], deal["funding_amount"]) == (
            face_value, discount, funding
        )
        assert deal["value_date"] == clock.today().isoformat()
        lost = await ok(await client.get(f"/bids/{losing['id']}", headers=world.bank2.headers))
        assert lost["status"] == "lost"

        deal = await fund(client, world.bank, deal)
        assert (deal["status"], deal["advance_amount"], deal["escrow_balance"]) == ("disbursed", funding, "0.00")
        # The answer computes the balance; GET reads the escrow account from the database.
        stored = await ok(await client.get(f"/deals/{deal['id']}", headers=world.bank.headers))
        assert stored["escrow_balance"] == deal["escrow_balance"]
        assert await balance(client, world.sme) == funding
        assert await balance(client, world.bank) == "-" + funding

        deal = await repay(client, world.core, deal["id"], face_value)
        assert (deal["status"], deal["amount_due"], deal["repaid_amount"]) == ("settled", "0.00", face_value)
        assert await balance(client, world.bank) == discount
        assert await balance(client, world.core) == "-" + face_value
        settled = await ok(await client.get(f"/receivables/{receivable['id']}", headers=world.sme.headers))
        assert settled["status"] == "settled"
        verify = await ok(await client.get("/ledger/verify", headers=world.regulator.headers))
        assert verify["balanced"] is True


@pytest.fixture
async def fee_client(database_url: str, clock: SimulatedClock):
    """An app charging a 0.1 % platform fee."""
    from receivables.app import create_app

    application = create_app(make_settings(database_url, platform_fee_rate="0.001"), clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


class TestPartialAdvanceFeeAndWaterfall:
    async def test_principal_first_then_holdback(self, fee_client, clock: SimulatedClock):
        from tests.fixtures.world import build_world

        app, client = fee_client
        world = await build_world(app, client)
        deal = await funded_deal(
            client, world, clock, face_value="1000000.00", due_in_days=90, rate="0.0450",
            advance_ratio="0.80",
        )
        # P = 800,000.00; D = 800,000 × 4.5 % × 90/360 = 9,000.00; fee = 800.00
        assert (deal["principal"], deal["discount_amount"], deal["fee_amount"]) == (
            "800000.00", "9000.00", "800.00"
        )
        assert (deal["funding_amount"], deal["advance_amount"]) == ("791000.00", "790200.00")
        first = await repay(client, world.core, deal["id"], "500000.00")
        assert (first["status"], first["amount_due"]) == ("disbursed", "500000.00")
        assert await balance(client, world.bank) == "-291000.00"
        assert await balance(client, world.sme) == "790200.00"
        second = await repay(client, world.core, deal["id"], "500000.00")
        assert second["status"] == "settled"
        assert await balance(client, world.bank) == "9000.00"
        assert await balance(client, world.sme) == "990200.00"
        ledger = await ok(await client.get(f"/deals/{deal['id']}/ledger", headers=world.sme.headers))
        assert [entry["kind"] for entry in ledger["items"]] == ["funding", "repayment", "repayment"]
        for entry in ledger["items"]:
            assert sum(int(p["amount"].replace(".", "")) for p in entry["postings"]) > 0


class TestFundingRules:
    async def test_amount_follows_the_value_date(self, client, world: World, clock: SimulatedClock):
        _, listing = await listed_receivable(client, world, clock, face_value="3000000.00", due_in_days=118)
        winning = await bid(client, world.bank, listing["id"], "0.0390")
        deal = await award(client, world.sme, listing["id"], winning["id"])
        clock.advance(24 * 3600 - 60)  # next day, still inside the 24 h funding window
        stale = await client.post(
            f"/deals/{deal['id']}/fund",
            json={"amount": deal["funding_amount"], "payment_reference": "W"},
            headers=world.bank.headers,
        )
        assert stale.status_code == 422
        assert stale.json()["code"] == "funding_amount_mismatch"
        today = await ok(await client.get(f"/deals/{deal['id']}", headers=world.bank.headers))
        assert today["value_date"] == (clock.today()).isoformat()
        assert today["discount_amount"] == "38025.00"  # 117 days
        funded = await fund(client, world.bank, today)
        assert funded["funding_amount"] == "2961975.00"

    async def test_only_the_winner_funds(self, client, world: World, clock: SimulatedClock):
        _, listing = await listed_receivable(client, world, clock)
        await bid(client, world.bank2, listing["id"], "0.0500")
        winning = await bid(client, world.bank, listing["id"], "0.0400")
        deal = await award(client, world.sme, listing["id"], winning["id"])
        body = {"amount": deal["funding_amount"], "payment_reference": "W"}
        rival = await client.post(f"/deals/{deal['id']}/fund", json=body, headers=world.bank2.headers)
        debtor = await client.post(f"/deals/{deal['id']}/fund", json=body, headers=world.core.headers)
        assert (rival.status_code, debtor.status_code) == (404, 403)
        again = await fund(client, world.bank, deal)
        twice = await client.post(f"/deals/{deal['id']}/fund", json=body, headers=world.bank.headers)
        assert again["status"] == "disbursed"
        assert (twice.status_code, twice.json()["code"]) == (409, "illegal_transition")
        assert "disbursed" in twice.json()["detail"]


class TestRepaymentRules:
    async def test_overpayment_refused_and_nothing_changes(self, client, world: World, clock):
        deal = await funded_deal(client, world, clock, face_value="1000.00", rate="0.0600", due_in_days=20)
        await repay(client, world.core, deal["id"], "400.00")
        over = await client.post(
            f"/deals/{deal['id']}/repay", json={"amount": "600.01", "payment_reference": "X"},
            headers=world.core.headers,
        )
        assert (over.status_code, over.json()["code"]) == (422, "overpayment")
        after = await ok(await client.get(f"/deals/{deal['id']}", headers=world.core.headers))
        assert (after["repaid_amount"], after["amount_due"]) == ("400.00", "600.00")

    async def test_debtor_view_hides_the_price(self, client, world: World, clock):
        deal = await funded_deal(client, world, clock)
        seen = await ok(await client.get(f"/deals/{deal['id']}", headers=world.core.headers))
        for hidden in ("principal", "discount_rate", "discount_amount", "fee_amount", "advance_amount"):
            assert hidden not in seen
        assert seen["amount_due"] == "1000000.00"
        ledger = await client.get(f"/deals/{deal['id']}/ledger", headers=world.core.headers)
        assert ledger.status_code == 403

    async def test_seller_cannot_repay_without_recourse(self, client, world: World, clock):
        deal = await funded_deal(client, world, clock)
        response = await client.post(
            f"/deals/{deal['id']}/repay", json={"amount": "1.00", "payment_reference": "X"},
            headers=world.sme.headers,
        )
        assert response.status_code == 403

    async def test_deal_visibility(self, client, world: World, clock):
        deal = await funded_deal(client, world, clock)
        for party, expected in [
            (world.sme, 200), (world.bank, 200), (world.core, 200), (world.regulator, 200),
            (world.operator, 200), (world.bank2, 404), (world.sme2, 404), (world.core2, 404),
        ]:
            response = await client.get(f"/deals/{deal['id']}", headers=party.headers)
            assert response.status_code == expected, party.name
        listed = await ok(await client.get("/deals", headers=world.bank2.headers))
        assert listed["items"] == []
