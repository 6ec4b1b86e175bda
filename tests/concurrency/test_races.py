"""Races that would double money or lose a bid (issue 4; RELIABILITY 11-14): many
requests at once through the real app. On PostgreSQL they run truly in parallel (a pool
of connections, row locks and unique indexes); on SQLite writers queue. Either way:
one winner, no lost bids, no overpayment, no 500."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from receivables.auctions.models import Bid
from receivables.deals.models import Deal
from receivables.ledger.models import JournalEntry
from tests.fixtures.flows import receivable_body
from tests.fixtures.market import award, bid, fund, funded_deal, listed_receivable, ok
from tests.fixtures.world import World, add_party


async def _count(app, model, *where) -> int:
    async with app.state.sessionmaker() as session:
        stmt = select(func.count()).select_from(model)
        for condition in where:
            stmt = stmt.where(condition)
        return (await session.execute(stmt)).scalar_one()


async def _banks(app, client, world: World, n: int):
    return [await add_party(app, client, world.operator, f"Bank {i}", "bank") for i in range(n)]


async def test_fifty_banks_bid_at_once_and_every_bid_counts(app, client, world: World, clock):
    banks = await _banks(app, client, world, 50)
    _, listing = await listed_receivable(client, world, clock)
    answers = await asyncio.gather(*(
        client.post(f"/listings/{listing['id']}/bids", json={"discount_rate": f"0.0{400 + i}"}, headers=b.headers)
        for i, b in enumerate(banks)
    ))
    assert [a.status_code for a in answers] == [201] * 50
    assert await _count(app, Bid, Bid.listing_id == uuid.UUID(listing["id"])) == 50
    seen = await ok(await client.get(f"/listings/{listing['id']}", headers=world.sme.headers))
    assert seen["bid_count"] == 50


async def test_twenty_awards_at_once_make_one_deal(app, client, world: World, clock):
    banks = await _banks(app, client, world, 20)
    _, listing = await listed_receivable(client, world, clock)
    bids = [await bid(client, b, listing["id"], "0.0500") for b in banks]
    answers = await asyncio.gather(*(
        client.post(f"/listings/{listing['id']}/award", json={"bid_id": b["id"]}, headers=world.sme.headers)
        for b in bids
    ))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 19
    assert await _count(app, Deal, Deal.listing_id == uuid.UUID(listing["id"])) == 1
    assert await _count(app, Bid, Bid.listing_id == uuid.UUID(listing["id"]), Bid.status == "won") == 1


async def test_ten_fundings_at_once_move_money_once(app, client, world: World, clock):
    _, listing = await listed_receivable(client, world, clock)
    winning = await bid(client, world.bank, listing["id"], "0.0450")
    deal = await award(client, world.sme, listing["id"], winning["id"])
    body = {"amount": deal["funding_amount"], "payment_reference": "W"}
    answers = await asyncio.gather(*(
        client.post(f"/deals/{deal['id']}/fund", json=body, headers=world.bank.headers) for _ in range(10)
    ))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 9
    assert await _count(app, JournalEntry, JournalEntry.deal_id == uuid.UUID(deal["id"])) == 1


async def test_ten_identical_submissions_make_one_receivable(app, client, world: World):
    body = receivable_body(client, world.core)
    answers = await asyncio.gather(*(client.post("/receivables", json=body, headers=world.sme.headers) for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 9
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"duplicate_receivable"}


async def test_parallel_partial_repayments_never_overpay(app, client, world: World, clock):
    deal = await funded_deal(client, world, clock, face_value="1000.00", rate="0.0600", due_in_days=20)
    answers = await asyncio.gather(*(
        client.post(f"/deals/{deal['id']}/repay", json={"amount": "300.00", "payment_reference": f"P{i}"},
                    headers=world.core.headers)
        for i in range(5)
    ))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 422, 422]
    final = await ok(await client.get(f"/deals/{deal['id']}", headers=world.core.headers))
    assert (final["repaid_amount"], final["amount_due"]) == ("900.00", "100.00")
    verify = await ok(await client.get("/ledger/verify", headers=world.operator.headers))
    assert verify["balanced"] is True
