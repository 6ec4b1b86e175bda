"""Every deadline of DESIGN.md "Time and deadlines", moved by the simulated clock and
applied by `POST /admin/tick` over HTTP: the states, amounts and audit rows (actor
`system`) it produces, and that nothing else changed. Each deadline is also refused at
request time, before any worker has run. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from receivables.auctions import service as auctions_service
from receivables.deals import repository as deals_repository
from receivables.kit.clock import SystemClock
from tests.conftest import make_settings
from tests.fixtures.flows import advance_clock, confirm_receivable, submit_receivable
from tests.fixtures.market import (
    award,
    awarded_deal,
    balance,
    bid,
    fund,
    funded_deal,
    listed_receivable,
    open_listing,
    repay,
)
from tests.fixtures.world import World
from tests.worker.support import (
    assert_system_row,
    audit_rows,
    changes,
    counts,
    deadline_part,
    feed_actions,
    get,
    last_audit,
    ok,
    problem,
    recipients,
    state,
    tick,
)

HOUR = 3600
DAY = 24 * HOUR


def closes_at(listing: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(listing["closes_at"])


async def advance_to(app, world: World, instant: dt.datetime, *, plus_seconds: float = 0) -> None:
    seconds = (instant - app.state.clock.now()).total_seconds() + plus_seconds
    assert seconds >= 0
    advance_clock(app, world, seconds=seconds)


class TestTickEndpoint:
    async def test_answers_404_without_the_simulated_clock(self, database_url: str):
        from receivables.app import create_app

        application = create_app(make_settings(database_url, simulated_clock=False), clock=SystemClock())
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                    response = await http.post("/admin/tick", headers=headers)
                    problem(response, 404, "not_found")

    async def test_operator_only_and_idle_when_nothing_is_due(self, client, world: World):
        assert (await client.post("/admin/tick")).status_code == 401
        for party in (world.sme, world.bank, world.core, world.regulator):
            response = await client.post("/admin/tick", headers=party.headers)
            assert response.status_code == 403, party.name
        assert await tick(client, world) == counts()


class TestConfirmationWindow:
    async def test_lapsed_receivable_expires_and_frees_its_invoice(self, app, client, world: World):
        lapsing = await submit_receivable(client, world.sme, world.core, invoice_number="INV-LAPSE-1")
        advance_clock(app, world, seconds=DAY)
        fresh = await submit_receivable(client, world.sme, world.core)
        deadline = dt.datetime.fromisoformat(lapsing["confirmation_deadline_at"])
        await advance_to(app, world, deadline, plus_seconds=-1)
        assert await tick(client, world) == counts()

        advance_clock(app, world, seconds=1)  # exactly at the deadline: the window is closed
        late = await client.post(f"/receivables/{lapsing['id']}/confirm", json={}, headers=world.core.headers)
        problem(late, 409, "confirmation_window_closed")
        assert (await get(client, world.sme, f"/receivables/{lapsing['id']}"))["status"] == "submitted"

        before = await state(app)
        assert await tick(client, world) == counts(receivables_expired=1)
        assert changes(before, await state(app)) == {
            ("receivable", lapsing["id"]): ("submitted", "expired")
        }
        row = await last_audit(app, lapsing["id"])
        assert_system_row(row, "receivable.expired", "submitted", "expired")
        assert row.data == {"confirmation_deadline_at": deadline.isoformat()}
        assert await recipients(app, row) == {world.sme.organization_id, world.core.organization_id}
        for party in (world.sme, world.core):
            assert (await feed_actions(client, party, lapsing["id"]))[-1] == "receivable.expired"
        assert await feed_actions(client, world.bank, lapsing["id"]) == []
        assert (await get(client, world.sme, f"/receivables/{fresh['id']}"))["status"] == "submitted"

        again = await submit_receivable(client, world.sme, world.core, invoice_number="inv lapse 1")
        assert again["status"] == "submitted"
        assert await tick(client, world) == counts()


class TestAuctionClose:
    async def test_auto_award_picks_the_lowest_rate(self, app, client, world: World, clock):
        receivable, listing = await listed_receivable(client, world, clock, face_value="1000.00", due_in_days=20)
        high = await bid(client, world.bank, listing["id"], "0.0650")
        low = await bid(client, world.bank2, listing["id"], "0.0600")
        middle = await bid(client, world.bank3, listing["id"], "0.0620")
        await advance_to(app, world, closes_at(listing), plus_seconds=-1)
        assert await tick(client, world) == counts()
        advance_clock(app, world, seconds=1)

        before = await state(app)
        assert await tick(client, world) == counts(auctions_closed=1)
        after = await state(app)
        deals = (await get(client, world.bank2, "/deals"))["items"]
        assert len(deals) == 1
        deal = deals[0]
        assert changes(before, after) == {
            ("listing", listing["id"]): ("open", "awarded"),
            ("bid", low["id"]): ("active", "won"),
            ("bid", high["id"]): ("active", "lost"),
            ("bid", middle["id"]): ("active", "lost"),
            ("receivable", receivable["id"]): ("listed", "awarded"),
            ("deal", deal["id"]): (None, "awaiting_funding"),
        }
        closed = await get(client, world.sme, f"/listings/{listing['id']}")
        assert (closed["status"], closed["awarded_bid_id"], closed["bid_count"]) == ("awarded", low["id"], 0)
        # 1,000.00 at 6 % for the 20 days from the close to the due date:
        assert (deal["bank_id"], deal["discount_rate"], deal["principal"]) == (
            str(world.bank2.organization_id), "0.0600", "1000.00"
        )
        assert (deal["discount_amount"], deal["funding_amount"]) == ("3.33", "996.67")
        deadline = dt.datetime.fromisoformat(deal["funding_deadline"])
        assert deadline == clock.now() + dt.timedelta(hours=24)

        assert_system_row(await last_audit(app, listing["id"]), "listing.awarded", "open", "awarded")
        assert_system_row(await last_audit(app, low["id"]), "bid.won", "active", "won")
        for lost in (high, middle):
            assert_system_row(await last_audit(app, lost["id"]), "bid.lost", "active", "lost")
        assert_system_row(await last_audit(app, receivable["id"]), "receivable.awarded", "listed", "awarded")
        assert_system_row(await last_audit(app, deal["id"]), "deal.created", None, "awaiting_funding")
        assert await feed_actions(client, world.bank3, middle["id"]) == ["bid.placed", "bid.lost"]
        assert await feed_actions(client, world.bank3, low["id"]) == []
        assert await feed_actions(client, world.sme, listing["id"]) == ["listing.opened", "listing.awarded"]

        funded = await fund(client, world.bank2, deal)
        assert (funded["status"], funded["advance_amount"]) == ("disbursed", "996.67")
        assert await balance(client, world.sme) == "996.67"
        assert await tick(client, world) == counts()

    async def test_after_close_nothing_is_accepted_even_before_any_tick(self, app, client, world: World, clock):
        _, listing = await listed_receivable(client, world, clock, auto_award=False)
        placed = await bid(client, world.bank, listing["id"], "0.0500")
        await advance_to(app, world, closes_at(listing), plus_seconds=1)
        before = await state(app)
        late_bid = await client.post(
            f"/listings/{listing['id']}/bids", json={"discount_rate": "0.0400"}, headers=world.bank2.headers
        )
        problem(late_bid, 409, "auction_closed")
        revise = await client.patch(
            f"/bids/{placed['id']}", json={"discount_rate": "0.0400"}, headers=world.bank.headers
        )
        problem(revise, 409, "auction_closed")
        withdraw = await client.post(f"/bids/{placed['id']}/withdraw", headers=world.bank.headers)
        problem(withdraw, 409, "auction_closed")
        late_award = await client.post(
            f"/listings/{listing['id']}/award", json={"bid_id": placed["id"]}, headers=world.sme.headers
        )
        problem(late_award, 409, "auction_closed")
        assert changes(before, await state(app)) == {}
        assert (await get(client, world.sme, f"/listings/{listing['id']}"))["status"] == "open"

    async def test_a_bid_at_the_last_second_counts(self, app, client, world: World, clock):
        _, listing = await listed_receivable(client, world, clock)
        await bid(client, world.bank, listing["id"], "0.0500")
        await advance_to(app, world, closes_at(listing), plus_seconds=-1)
        last = await bid(client, world.bank2, listing["id"], "0.0490")
        advance_clock(app, world, seconds=1)
        assert await tick(client, world) == counts(auctions_closed=1)
        assert (await get(client, world.bank2, f"/bids/{last['id']}"))["status"] == "won"

    async def test_equal_rates_go_to_the_earliest(self, app, client, world: World, clock):
        _, listing = await listed_receivable(client, world, clock)
        first = await bid(client, world.bank, listing["id"], "0.0400")
        second = await bid(client, world.bank2, listing["id"], "0.0400")
        await advance_to(app, world, closes_at(listing))
        assert await tick(client, world) == counts(auctions_closed=1)
        assert (await get(client, world.bank, f"/bids/{first['id']}"))["status"] == "won"
        assert (await get(client, world.bank2, f"/bids/{second['id']}"))["status"] == "lost"

    async def test_a_revision_takes_a_new_time(self, app, client, world: World, clock):
        """Price-time priority: re-stating the same rate, or lowering to a tied rate, puts
        the bid behind every bid whose current rate was set before."""
        _, restated_listing = await listed_receivable(client, world, clock)
        restated = await bid(client, world.bank, restated_listing["id"], "0.0400")
        steady = await bid(client, world.bank2, restated_listing["id"], "0.0400")
        advance_clock(app, world, seconds=60)
        await ok(await client.patch(
            f"/bids/{restated['id']}", json={"discount_rate": "0.0400"}, headers=world.bank.headers
        ))
        _, lowered_listing = await listed_receivable(client, world, clock)
        lowered = await bid(client, world.bank3, lowered_listing["id"], "0.0700")
        tied = await bid(client, world.bank, lowered_listing["id"], "0.0450")
        await ok(await client.patch(
            f"/bids/{lowered['id']}", json={"discount_rate": "0.0450"}, headers=world.bank3.headers
        ))
        await advance_to(app, world, max(closes_at(restated_listing), closes_at(lowered_listing)))
        assert await tick(client, world) == counts(auctions_closed=2)
        assert (await get(client, world.bank2, f"/bids/{steady['id']}"))["status"] == "won"
        assert (await get(client, world.bank, f"/bids/{restated['id']}"))["status"] == "lost"
        assert (await get(client, world.bank, f"/bids/{tied['id']}"))["status"] == "won"
        assert (await get(client, world.bank3, f"/bids/{lowered['id']}"))["status"] == "lost"

    async def test_a_suspended_banks_bid_cannot_win(self, app, client, world: World, clock):
        _, listing = await listed_receivable(client, world, clock)
        cheapest = await bid(client, world.bank3, listing["id"], "0.0300")
        next_best = await bid(client, world.bank, listing["id"], "0.0400")
        await ok(await client.post(
            f"/organizations/{world.bank3.organization_id}/suspend", headers=world.operator.headers
        ))
        await advance_to(app, world, closes_at(listing))
        assert await tick(client, world) == counts(auctions_closed=1)
        assert (await get(client, world.bank, f"/bids/{next_best['id']}"))["status"] == "won"
        assert (await get(client, world.operator, f"/bids/{cheapest['id']}"))["status"] == "lost"

    async def test_no_bids_expires_and_the_receivable_may_be_listed_again(self, app, client, world: World, clock):
        receivable, listing = await listed_receivable(client, world, clock)
        withdrawn = await bid(client, world.bank, listing["id"], "0.0400")
        await ok(await client.post(f"/bids/{withdrawn['id']}/withdraw", headers=world.bank.headers))
        await advance_to(app, world, closes_at(listing))
        before = await state(app)
        assert await tick(client, world) == counts(auctions_closed=1)
        assert changes(before, await state(app)) == {
            ("listing", listing["id"]): ("open", "expired"),
            ("receivable", receivable["id"]): ("listed", "confirmed"),
        }
        row = await last_audit(app, listing["id"])
        assert_system_row(row, "listing.expired", "open", "expired")
        assert await recipients(app, row) == {world.sme.organization_id, world.bank.organization_id}
        assert_system_row(await last_audit(app, receivable["id"]), "receivable.delisted", "listed", "confirmed")
        again = await open_listing(client, world.sme, receivable["id"], clock)
        assert again["status"] == "open"

    async def test_without_auto_award_it_expires_and_every_bid_loses(self, app, client, world: World, clock):
        receivable, listing = await listed_receivable(client, world, clock, auto_award=False)
        bids = [await bid(client, bank, listing["id"], rate)
                for bank, rate in ((world.bank, "0.0400"), (world.bank2, "0.0500"))]
        await advance_to(app, world, closes_at(listing))
        before = await state(app)
        assert await tick(client, world) == counts(auctions_closed=1)
        expected = {
            ("listing", listing["id"]): ("open", "expired"),
            ("receivable", receivable["id"]): ("listed", "confirmed"),
        }
        expected.update({("bid", b["id"]): ("active", "lost") for b in bids})
        assert changes(before, await state(app)) == expected
        for b in bids:
            assert_system_row(await last_audit(app, b["id"]), "bid.lost", "active", "lost")
        assert (await get(client, world.bank, "/deals"))["items"] == []
        assert await feed_actions(client, world.bank2, listing["id"]) == ["listing.opened", "listing.expired"]


class TestFundingDeadline:
    async def test_a_missed_funding_cancels_the_deal(self, app, client, world: World, clock):
        deal = await awarded_deal(client, world, clock)
        deadline = dt.datetime.fromisoformat(deal["funding_deadline"])
        await advance_to(app, world, deadline, plus_seconds=-1)
        assert await tick(client, world) == counts()
        advance_clock(app, world, seconds=1)
        late = await client.post(
            f"/deals/{deal['id']}/fund",
            json={"amount": deal["funding_amount"], "payment_reference": "LATE"},
            headers=world.bank.headers,
        )
        problem(late, 409, "funding_deadline_passed")

        before = await state(app)
        assert await tick(client, world) == counts(deals_cancelled=1)
        assert changes(before, await state(app)) == {
            ("deal", deal["id"]): ("awaiting_funding", "cancelled"),
            ("receivable", deal["receivable_id"]): ("awarded", "confirmed"),
        }
        row = await last_audit(app, deal["id"])
        assert_system_row(row, "deal.cancelled", "awaiting_funding", "cancelled")
        assert row.data["bank_id"] == str(world.bank.organization_id)
        assert await recipients(app, row) == {
            world.sme.organization_id, world.bank.organization_id, world.core.organization_id
        }
        assert_system_row(await last_audit(app, deal["receivable_id"]), "receivable.unawarded",
                          "awarded", "confirmed")
        assert (await get(client, world.bank, f"/deals/{deal['id']}"))["status"] == "cancelled"
        listing = await get(client, world.sme, f"/listings/{deal['listing_id']}")
        assert listing["status"] == "awarded"  # the auction's history stands

        async with app.state.sessionmaker() as session:
            assert await deals_repository.missed_fundings(session, world.bank.organization_id) == 1
            assert await deals_repository.missed_fundings(session, world.bank2.organization_id) == 0

        relisted = await open_listing(client, world.sme, deal["receivable_id"], clock)
        winner = await bid(client, world.bank2, relisted["id"], "0.0450")
        second = await award(client, world.sme, relisted["id"], winner["id"])
        funded = await fund(client, world.bank2, second)
        assert (funded["status"], funded["receivable_id"]) == ("disbursed", deal["receivable_id"])
        assert await tick(client, world) == counts()
        async with app.state.sessionmaker() as session:
            assert await deals_repository.missed_fundings(session, world.bank.organization_id) == 1
            assert await deals_repository.missed_fundings(session, world.bank2.organization_id) == 0


class TestOverdueAndDefault:
    async def test_overdue_then_defaulted_then_a_late_repayment_settles(self, app, client, world: World, clock):
        deal = await funded_deal(client, world, clock, face_value="1000.00", rate="0.0600", due_in_days=20)
        receivable_id = deal["receivable_id"]
        due = dt.date.fromisoformat(deal["due_date"])
        advance_clock(app, world, seconds=20 * DAY)
        assert app.state.clock.today() == due
        assert await tick(client, world) == counts()  # on the due date it is not late yet

        advance_clock(app, world, seconds=DAY)
        before = await state(app)
        assert await tick(client, world) == counts(deals_overdue=1)
        assert changes(before, await state(app)) == {
            ("deal", deal["id"]): ("disbursed", "overdue"),
            ("receivable", receivable_id): ("financed", "overdue"),
        }
        row = await last_audit(app, deal["id"])
        assert_system_row(row, "deal.overdue", "disbursed", "overdue")
        assert row.data == {"due_date": due.isoformat(), "amount_due": "1000.00"}
        assert_system_row(await last_audit(app, receivable_id), "receivable.overdue", "financed", "overdue")
        assert (await feed_actions(client, world.core, deal["id"]))[-1] == "deal.overdue"

        partial = await repay(client, world.core, deal["id"], "400.00")
        assert (partial["status"], partial["amount_due"]) == ("overdue", "600.00")
        advance_clock(app, world, seconds=29 * DAY)  # due + 30: the last day of grace
        assert await tick(client, world) == counts()

        advance_clock(app, world, seconds=DAY)
        before = await state(app)
        assert await tick(client, world) == counts(deals_defaulted=1)
        assert changes(before, await state(app)) == {
            ("deal", deal["id"]): ("overdue", "defaulted"),
            ("receivable", receivable_id): ("overdue", "defaulted"),
        }
        row = await last_audit(app, deal["id"])
        assert_system_row(row, "deal.defaulted", "overdue", "defaulted")
        assert row.data["amount_due"] == "600.00"
        assert_system_row(await last_audit(app, receivable_id), "receivable.defaulted", "overdue", "defaulted")

        settled = await repay(client, world.core, deal["id"], "600.00")
        assert (settled["status"], settled["amount_due"], settled["repaid_amount"]) == ("settled", "0.00", "1000.00")
        assert (await get(client, world.sme, f"/receivables/{receivable_id}"))["status"] == "settled"
        assert await balance(client, world.bank) == "3.33"
        assert await balance(client, world.sme) == "996.67"
        assert await balance(client, world.core) == "-1000.00"
        verify = await get(client, world.regulator, "/ledger/verify")
        assert verify["balanced"] is True, verify
        assert await tick(client, world) == counts()

    async def test_a_long_silence_is_caught_up_in_one_tick(self, app, client, world: World, clock):
        deal = await funded_deal(client, world, clock, due_in_days=20, recourse=True)
        advance_clock(app, world, seconds=60 * DAY)
        assert await tick(client, world) == counts(deals_overdue=1, deals_defaulted=1)
        rows = [(r.action, r.from_state, r.to_state, r.actor_role) for r in await audit_rows(app, deal["id"])]
        assert rows[-2:] == [
            ("deal.overdue", "disbursed", "overdue", "system"),
            ("deal.defaulted", "overdue", "defaulted", "system"),
        ]
        # Under recourse the seller may now pay towards the bank's principal.
        by_seller = await repay(client, world.sme, deal["id"], "100000.00")
        assert (by_seller["status"], by_seller["repaid_amount"]) == ("defaulted", "100000.00")
        settled = await repay(client, world.core, deal["id"], "900000.00")
        assert settled["status"] == "settled"

    async def test_a_deal_repaid_in_time_is_never_late(self, app, client, world: World, clock):
        deal = await funded_deal(client, world, clock, due_in_days=20)
        await repay(client, world.core, deal["id"], "1000000.00")
        advance_clock(app, world, seconds=90 * DAY)
        before = await state(app)
        assert await tick(client, world) == counts()
        assert changes(before, await state(app)) == {}


class TestCrashLosesNothing:
    async def test_a_failed_batch_leaves_everything_due_and_the_next_run_finishes(
        self, app, client, world: World, clock, monkeypatch: pytest.MonkeyPatch
    ):
        listings = [(await listed_receivable(client, world, clock))[1] for _ in range(3)]
        for listing in listings:
            await bid(client, world.bank, listing["id"], "0.0400")
        lapsing = await submit_receivable(client, world.sme, world.core)
        await advance_to(app, world, max(closes_at(listing) for listing in listings))
        advance_clock(app, world, seconds=31 * DAY)
        real_award_bid, calls = auctions_service.award_bid, []

        async def crash_on_second(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("the worker died mid-batch")
            return await real_award_bid(*args, **kwargs)

        monkeypatch.setattr(auctions_service, "award_bid", crash_on_second)
        before = await state(app)
        audit_before = [len(await audit_rows(app, listing["id"])) for listing in listings]
        response = await ok(await client.post("/admin/tick", headers=world.operator.headers))
        assert response["failed"] == ["auctions_closed"]
        assert deadline_part(response["processed"]) == counts(receivables_expired=1)
        assert changes(before, await state(app)) == {("receivable", lapsing["id"]): ("submitted", "expired")}
        assert [len(await audit_rows(app, listing["id"])) for listing in listings] == audit_before

        monkeypatch.setattr(auctions_service, "award_bid", real_award_bid)
        assert await tick(client, world) == counts(auctions_closed=3)
        for listing in listings:
            actions = [r.action for r in await audit_rows(app, listing["id"])]
            assert actions == ["listing.opened", "listing.awarded"]
        assert len((await get(client, world.bank, "/deals"))["items"]) == 3


async def test_a_confirmed_receivable_is_unaffected_by_its_old_window(app, client, world: World):
    """Confirmation stops the clock: a confirmed receivable is never expired later."""
    submitted = await submit_receivable(client, world.sme, world.core)
    await confirm_receivable(client, world.core, submitted["id"])
    advance_clock(app, world, seconds=31 * DAY)
    assert await tick(client, world) == counts()
    assert (await get(client, world.sme, f"/receivables/{submitted['id']}"))["status"] == "confirmed"
