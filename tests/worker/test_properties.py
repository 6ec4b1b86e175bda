"""Random interleavings of calls, clock moves and ticks (Hypothesis stateful testing)
keep every invariant, checked after every step:

- states move only along the transition tables: every audit row is a rule of its
  object's table, made by a role that rule admits, each row starting where the object's
  previous row ended, and every object's state is its last row's;
- a deal's receivable mirrors the deal, an open listing's receivable is listed, an
  awarded listing has exactly one winning bid and its deal;
- the ledger verifies (conservation, cached counters, state ↔ ledger) and no escrow
  balance is ever negative (nor, between calls, anything but zero);
- no answer is a 5xx or a 401, and after a tick nothing due is left.

Each example starts from the same freshly built world (the database is reset to it),
on an event loop of the test's own (Hypothesis drives the steps synchronously), on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from receivables.app import create_app
from receivables.auctions.lifecycle import BID_TRANSITIONS, LISTING_TRANSITIONS
from receivables.auctions.models import Bid, Listing
from receivables.deals.lifecycle import DEAL_TRANSITIONS, DealStatus
from receivables.deals.models import Deal
from receivables.events.models import AuditRecord
from receivables.kit.clock import SimulatedClock
from receivables.ledger.models import Account, AccountKind, JournalEntry
from receivables.ledger.verify import verify
from receivables.models import metadata
from receivables.receivables.lifecycle import RECEIVABLE_TRANSITIONS
from receivables.receivables.models import Receivable
from receivables.receivables.service import EVENT_SUFFIX
from tests.conftest import CLOCK_START, make_settings
from tests.fixtures.flows import advance_clock, receivable_body
from tests.fixtures.world import World, build_world

EXAMPLES = 25
STEPS = 15
HOUR, DAY = 3600, 24 * 3600
ALLOWED = {200, 201, 403, 404, 409, 422}
"""Refusals are fine (the walk tries invalid moves on purpose); 5xx and 401 never are."""

# event type → table action, per object type (creation events map to None)
ACTIONS: dict[str, dict[str, Any]] = {
    "receivable": {"submitted": None, **{suffix: action for action, suffix in EVENT_SUFFIX.items()}},
    "listing": {"opened": None, "awarded": "award", "cancelled": "cancel", "expired": "expire"},
    "bid": {"placed": None, "revised": "revise", "withdrawn": "withdraw", "won": "win", "lost": "lose"},
    "deal": {"created": None, "funded": "fund", "repaid": "repay", "settled": "settled",
             "cancelled": "expire_funding", "overdue": "mark_overdue", "defaulted": "mark_defaulted"},
}
TABLES = {"receivable": RECEIVABLE_TRANSITIONS, "listing": LISTING_TRANSITIONS,
          "bid": BID_TRANSITIONS, "deal": DEAL_TRANSITIONS}
MODELS = {"receivable": Receivable, "listing": Listing, "bid": Bid, "deal": Deal}
INITIAL = {"receivable": "submitted", "listing": "open", "bid": "active", "deal": "awaiting_funding"}
MIRROR = {
    DealStatus.awaiting_funding: "awarded", DealStatus.disbursed: "financed",
    DealStatus.overdue: "overdue", DealStatus.defaulted: "defaulted", DealStatus.settled: "settled",
}


def _rule_for(object_type: str, row: AuditRecord):
    suffix = row.action.split(".", 1)[1]
    action = ACTIONS[object_type][suffix]
    if object_type == "deal" and action == "repay" and row.to_state == DealStatus.settled:
        action = "repay_in_full"
    table = TABLES[object_type]
    return next(
        (r for (state, a), r in table.items() if state == row.from_state and a == action), None
    )


def check_audit_along_tables(rows: list[AuditRecord], current: dict[tuple[str, uuid.UUID], str]) -> None:
    by_object: dict[tuple[str, uuid.UUID], list[AuditRecord]] = defaultdict(list)
    for row in rows:
        if row.object_type in TABLES:
            by_object[(row.object_type, row.object_id)].append(row)
    assert set(by_object) == set(current), "every object has audit rows, every audited object exists"
    for (object_type, object_id), history in by_object.items():
        first, *rest = history
        assert ACTIONS[object_type][first.action.split(".", 1)[1]] is None, first.action
        assert (first.from_state, first.to_state) == (None, INITIAL[object_type]), first.action
        state = first.to_state
        for row in rest:
            where = f"{object_type} {object_id}: {row.action} {row.from_state}->{row.to_state}"
            if row.action == "deal.settled":  # the companion of the repayment that settled it
                assert state == row.to_state == DealStatus.settled, where
                continue
            assert row.from_state == state, where
            found = _rule_for(object_type, row)
            assert found is not None and found.target == row.to_state, where
            assert row.actor_role in found.roles, f"{where} by {row.actor_role}"
            state = row.to_state
        assert current[(object_type, object_id)] == state, f"{object_type} {object_id}"


class Market:
    """One app for the whole test, on the test's own event loop; `reset` puts the
    database back to the freshly built world (faster than building it per example)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def start(self) -> None:
        self.app = create_app(make_settings(self.url), clock=SimulatedClock(CLOCK_START))
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")
        self.world: World = await build_world(self.app, self.http)
        async with self.app.state.engine.connect() as connection:
            self.rows = [
                (table, [dict(row) for row in (await connection.execute(select(table))).mappings()])
                for table in metadata.sorted_tables
            ]

    async def reset(self) -> World:
        """Every table back to the rows it had once the world was built; identity columns
        renumber themselves in the same order. A fresh clock and fresh copies of the
        parties (their tokens were minted at CLOCK_START)."""
        async with self.app.state.engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):  # a few rows each: faster than TRUNCATE
                await connection.execute(table.delete())
            for table, rows in self.rows:
                identity = [c.name for c in table.columns if c.identity is not None]
                if rows:
                    await connection.execute(
                        table.insert(), [{k: v for k, v in row.items() if k not in identity} for row in rows]
                    )
        self.app.state.clock = SimulatedClock(CLOCK_START)
        return copy.deepcopy(self.world)

    async def stop(self) -> None:
        await self.http.aclose()
        await self.lifespan.__aexit__(None, None, None)


class Marketplace(RuleBasedStateMachine):
    """One walk (example). `market` and `loop` are set by the test, per backend."""

    market: Market
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.app, self.http = self.market.app, self.market.http
        self.world = self.run(self.market.reset())
        self.clock = self.app.state.clock
        self.parties = {p.organization_id: p for p in self.world.parties}
        self.ticked = False
        self.states: dict[tuple[str, uuid.UUID], str] = {}
        self.order: dict[uuid.UUID, int] = {}

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    # ---------------------------------------------------------------- helpers

    async def call(self, method: str, path: str, party, json: Any = None) -> httpx.Response:
        """The request; a refused write must leave every state, audit row and ledger entry
        as it was."""
        before = await self._marks() if method != "GET" else None
        response = await self.http.request(method, path, json=json, headers=party.headers)
        assert response.status_code in ALLOWED, f"{method} {path}: {response.status_code} {response.text}"
        if before is not None and response.status_code >= 400:
            assert await self._marks() == before, f"refused {method} {path} changed something"
        return response

    async def _marks(self) -> tuple:
        async with self.app.state.sessionmaker() as session:
            audit = (await session.execute(select(func.count()).select_from(AuditRecord))).scalar_one()
            entries = (await session.execute(select(func.count()).select_from(JournalEntry))).scalar_one()
            states = [sorted((str(i), st_) for i, st_ in (await session.execute(select(m.id, m.status))).all())
                      for m in MODELS.values()]
        return audit, entries, states

    def _has(self, kind: str, *states: str) -> bool:
        return any(k == kind and s in states for (k, _), s in self.states.items())

    async def _refresh(self) -> None:
        """Every object's state, and its creation order (its first audit row's place in
        the chain): ids are random, so picks go by that order, which keeps a replayed
        walk the same walk."""
        async with self.app.state.sessionmaker() as session:
            self.states = {
                (kind, object_id): status
                for kind, model in MODELS.items()
                for object_id, status in (await session.execute(select(model.id, model.status))).all()
            }
            first = select(AuditRecord.object_id, func.min(AuditRecord.chain_index)).group_by(AuditRecord.object_id)
            self.order = dict((await session.execute(first)).all())

    def pick(self, data, kind: str, wanted: set[str], wild: bool) -> uuid.UUID | None:
        """An object of `kind`: usually one in a state the action applies to; with `wild`
        any of them (mostly refusals, which must change nothing)."""
        pool = sorted(
            (object_id for (k, object_id), s in self.states.items()
             if k == kind and (wild or s in wanted)), key=self.order.__getitem__,
        )
        return data.draw(st.sampled_from(pool)) if pool else None

    async def row(self, model, object_id: uuid.UUID):
        async with self.app.state.sessionmaker() as session:
            return await session.get(model, object_id)

    # ---------------------------------------------------------------- a productive start

    @initialize(
        auction=st.booleans(), auto_award=st.booleans(), closes_in=st.sampled_from([HOUR, 30 * HOUR]),
        bids=st.lists(st.tuples(st.sampled_from(["bank", "bank2", "bank3"]),
                                st.sampled_from(["0.0400", "0.0450"])), max_size=3),
        financed=st.booleans(), recourse=st.booleans(), due_in_days=st.sampled_from([3, 10, 40]),
    )
    def seed(self, auction, auto_award, closes_in, bids, financed, recourse, due_in_days):
        """Start some walks mid-life: an open auction with bids, a funded deal, or both,
        built through the same API calls a user makes."""
        self.run(self._seed(auction, auto_award, closes_in, bids, financed, recourse, due_in_days))

    async def _seed(self, auction, auto_award, closes_in, bids, financed, recourse, due_in_days) -> None:
        w = self.world

        async def confirmed() -> str:
            body = receivable_body(self.http, w.core, due_in_days=due_in_days)
            receivable = (await self.call("POST", "/receivables", w.sme, body)).json()
            await self.call("POST", f"/receivables/{receivable['id']}/confirm", w.core, {})
            return receivable["id"]

        async def listing(receivable_id: str, **extra) -> str:
            closes_at = (self.clock.now() + dt.timedelta(seconds=closes_in)).isoformat()
            body = {"receivable_id": receivable_id, "max_discount_rate": "0.0800", "closes_at": closes_at}
            return (await self.call("POST", "/listings", w.sme, {**body, **extra})).json()["id"]

        if auction:
            listing_id = await listing(await confirmed(), auto_award=auto_award)
            for bank, rate in bids:
                await self.call("POST", f"/listings/{listing_id}/bids", getattr(w, bank), {"discount_rate": rate})
        if financed:
            listing_id = await listing(await confirmed(), recourse=recourse)
            placed = (await self.call("POST", f"/listings/{listing_id}/bids", w.bank,
                                      {"discount_rate": "0.0450"})).json()
            deal = (await self.call("POST", f"/listings/{listing_id}/award", w.sme,
                                    {"bid_id": placed["id"]})).json()
            await self.call("POST", f"/deals/{deal['id']}/fund", w.bank,
                            {"amount": deal["funding_amount"], "payment_reference": "SEED"})
        await self._refresh()

    # ---------------------------------------------------------------- receivables

    @rule(seller=st.sampled_from(["sme", "sme2"]), debtor=st.sampled_from(["core", "core2"]),
          face_value=st.sampled_from(["1000.00", "250000.00"]), due_in_days=st.sampled_from([3, 10, 40]))
    def submit(self, seller, debtor, face_value, due_in_days):
        w = self.world
        body = receivable_body(self.http, getattr(w, debtor), face_value=face_value, due_in_days=due_in_days)
        self.run(self.call("POST", "/receivables", getattr(w, seller), body))

    @precondition(lambda self: self._has("receivable", "submitted", "disputed", "confirmed"))
    @rule(data=st.data(), wild=st.booleans(), move=st.sampled_from(["confirm", "dispute", "amend", "cancel"]))
    def answer_or_amend(self, data, wild, move):
        wanted = {"confirm": {"submitted"}, "dispute": {"submitted"}, "amend": {"disputed"},
                  "cancel": {"submitted", "disputed", "confirmed"}}[move]
        receivable_id = self.pick(data, "receivable", wanted, wild)
        if receivable_id is None:
            return
        receivable = self.run(self.row(Receivable, receivable_id))
        debtor, seller = self.parties[receivable.debtor_id], self.parties[receivable.seller_id]
        path = f"/receivables/{receivable_id}"
        request = {
            "confirm": ("POST", f"{path}/confirm", debtor, {}),
            "dispute": ("POST", f"{path}/dispute", debtor, {"reason": "wrong amount"}),
            "amend": ("PATCH", path, seller, {"description": "corrected"}),
            "cancel": ("POST", f"{path}/cancel", seller, None),
        }[move]
        self.run(self.call(*request))

    # ---------------------------------------------------------------- auctions

    @precondition(lambda self: self._has("receivable", "confirmed"))
    @rule(data=st.data(), wild=st.booleans(), closes_in=st.sampled_from([HOUR, 30 * HOUR]),
          auto_award=st.booleans(), recourse=st.booleans(), ratio=st.sampled_from(["1.00", "0.80"]))
    def open_listing(self, data, wild, closes_in, auto_award, recourse, ratio):
        receivable_id = self.pick(data, "receivable", {"confirmed"}, wild)
        if receivable_id is None:
            return
        receivable = self.run(self.row(Receivable, receivable_id))
        body = {
            "receivable_id": str(receivable_id), "max_discount_rate": "0.0800",
            "closes_at": (self.clock.now() + dt.timedelta(seconds=closes_in)).isoformat(),
            "auto_award": auto_award, "recourse": recourse, "advance_ratio": ratio,
        }
        self.run(self.call("POST", "/listings", self.parties[receivable.seller_id], body))

    @precondition(lambda self: self._has("listing", "open"))
    @rule(data=st.data(), wild=st.booleans(), bank=st.sampled_from(["bank", "bank2", "bank3"]),
          rate=st.sampled_from(["0.0400", "0.0450", "0.0900"]))
    def place_bid(self, data, wild, bank, rate):
        listing_id = self.pick(data, "listing", {"open"}, wild)
        if listing_id is not None:
            self.run(self.call("POST", f"/listings/{listing_id}/bids", getattr(self.world, bank),
                               {"discount_rate": rate}))

    @precondition(lambda self: self._has("bid", "active"))
    @rule(data=st.data(), wild=st.booleans(), withdraw=st.booleans(),
          rate=st.sampled_from(["0.0400", "0.0450"]))
    def revise_or_withdraw_bid(self, data, wild, withdraw, rate):
        bid_id = self.pick(data, "bid", {"active"}, wild)
        if bid_id is None:
            return
        bank = self.parties[self.run(self.row(Bid, bid_id)).bank_id]
        if withdraw:
            self.run(self.call("POST", f"/bids/{bid_id}/withdraw", bank))
        else:
            self.run(self.call("PATCH", f"/bids/{bid_id}", bank, {"discount_rate": rate}))

    @precondition(lambda self: self._has("listing", "open"))
    @rule(data=st.data(), wild=st.booleans(), cancel=st.booleans())
    def award_or_cancel(self, data, wild, cancel):
        listing_id = self.pick(data, "listing", {"open"}, wild)
        if listing_id is None:
            return
        seller = self.parties[self.run(self.row(Listing, listing_id)).seller_id]
        if cancel:
            self.run(self.call("POST", f"/listings/{listing_id}/cancel", seller))
            return
        pool = self.run(self._bids_on(listing_id)) if not wild else []
        bid_id = data.draw(st.sampled_from(pool)) if pool else self.pick(data, "bid", {"active"}, True)
        if bid_id is not None:
            self.run(self.call("POST", f"/listings/{listing_id}/award", seller, {"bid_id": str(bid_id)}))

    async def _bids_on(self, listing_id: uuid.UUID) -> list[uuid.UUID]:
        async with self.app.state.sessionmaker() as session:
            stmt = (select(Bid.id).where(Bid.listing_id == listing_id, Bid.status == "active")
                    .order_by(Bid.rate_sequence))
            return list((await session.execute(stmt)).scalars())

    # ---------------------------------------------------------------- deals

    @precondition(lambda self: self._has("deal", "awaiting_funding"))
    @rule(data=st.data(), wild=st.booleans())
    def fund(self, data, wild):
        deal_id = self.pick(data, "deal", {"awaiting_funding"}, wild)
        if deal_id is None:
            return
        bank = self.parties[self.run(self.row(Deal, deal_id)).bank_id]
        shown = self.run(self.call("GET", f"/deals/{deal_id}", bank)).json()
        amount = shown["funding_amount"] if not wild else data.draw(st.sampled_from([shown["funding_amount"], "1.00"]))
        self.run(self.call("POST", f"/deals/{deal_id}/fund", bank, {"amount": amount, "payment_reference": "W"}))

    @precondition(lambda self: self._has("deal", "disbursed", "overdue", "defaulted"))
    @rule(data=st.data(), wild=st.booleans(), share=st.sampled_from([3, 1]),
          by_seller=st.sampled_from([False, False, True]))
    def repay(self, data, wild, share, by_seller):
        deal_id = self.pick(data, "deal", {"disbursed", "overdue", "defaulted"}, wild)
        if deal_id is None:
            return
        deal = self.run(self.row(Deal, deal_id))
        payer = self.parties[deal.sme_id if by_seller else deal.debtor_id]
        owed_minor = deal.face_value_minor - deal.repaid_minor
        amount_minor = max(owed_minor // share, 1) + (1 if wild else 0)
        body = {"amount": f"{amount_minor // 100}.{amount_minor % 100:02d}", "payment_reference": "R"}
        self.run(self.call("POST", f"/deals/{deal_id}/repay", payer, body))

    # ---------------------------------------------------------------- time

    @rule(seconds=st.sampled_from([60, HOUR, 6 * HOUR, 26 * HOUR, 5 * DAY, 31 * DAY]))
    def advance(self, seconds):
        advance_clock(self.app, self.world, seconds=seconds)

    @rule()
    def tick(self):
        body = self.run(self.call("POST", "/admin/tick", self.world.operator)).json()
        assert body["failed"] == [], body
        self.ticked = True

    @rule(seconds=st.sampled_from([HOUR, 26 * HOUR, 5 * DAY, 31 * DAY]))
    def advance_then_tick(self, seconds):
        """Time passing with the worker running: deadlines are applied as they fall."""
        self.advance(seconds)
        self.tick()

    # ---------------------------------------------------------------- invariants

    @invariant()
    def everything_holds(self):
        self.run(self._check())

    async def _check(self) -> None:
        async with self.app.state.sessionmaker() as session:
            objects = {kind: list((await session.execute(select(model))).scalars())
                       for kind, model in MODELS.items()}
            self.states = {(k, o.id): o.status for k, rows in objects.items() for o in rows}
            audit = list((await session.execute(select(AuditRecord).order_by(AuditRecord.chain_index))).scalars())
            self.order = {}
            for row in audit:
                self.order.setdefault(row.object_id, row.chain_index)
            check_audit_along_tables(audit, self.states)
            self._check_mirrors(objects)

            report = await verify(session)
            assert report.balanced and report.mismatches == [], report.mismatches
            escrows = await session.execute(
                select(Account.credits_posted_minor - Account.debits_posted_minor)
                .where(Account.kind == AccountKind.escrow)
            )
            assert all(balance == 0 for balance in escrows.scalars())
            if self.ticked:
                self._nothing_due(objects)
                self.ticked = False

    def _check_mirrors(self, objects: dict[str, list]) -> None:
        receivables = {r.id: r for r in objects["receivable"]}
        bids = {b.id: b for b in objects["bid"]}
        deals_by_listing = {d.listing_id: d for d in objects["deal"]}
        live = [d for d in objects["deal"] if d.status != DealStatus.cancelled]
        assert len({d.receivable_id for d in live}) == len(live), "one live deal per receivable"
        for deal in live:
            assert receivables[deal.receivable_id].status == MIRROR[DealStatus(deal.status)], deal.id
        open_receivables = [l.receivable_id for l in objects["listing"] if l.status == "open"]
        assert len(set(open_receivables)) == len(open_receivables), "one open listing per receivable"
        for receivable_id in open_receivables:
            assert receivables[receivable_id].status == "listed"
        for listing in objects["listing"]:
            won = [b for b in objects["bid"] if b.listing_id == listing.id and b.status == "won"]
            if listing.status == "awarded":
                assert [b.id for b in won] == [listing.awarded_bid_id]
                assert deals_by_listing[listing.id].bid_id == listing.awarded_bid_id
            else:
                assert won == [] and listing.id not in deals_by_listing
                if listing.status != "open":
                    assert not [b for b in objects["bid"] if b.listing_id == listing.id and b.status == "active"]
        assert all(bids[d.bid_id].status == "won" for d in objects["deal"])

    def _nothing_due(self, objects: dict[str, list]) -> None:
        now, today = self.clock.now(), self.clock.today()
        grace = self.app.state.settings.grace_days
        assert not [r for r in objects["receivable"]
                    if r.status == "submitted" and r.confirmation_deadline_at <= now]
        assert not [l for l in objects["listing"] if l.status == "open" and l.closes_at <= now]
        for deal in objects["deal"]:
            assert not (deal.status == "awaiting_funding" and deal.funding_deadline_at <= now)
            assert not (deal.status == "disbursed" and deal.due_date < today)
            assert not (deal.status == "overdue" and deal.due_date + dt.timedelta(days=grace) < today)


def test_random_interleavings_keep_every_invariant(database_url: str):
    loop = asyncio.new_event_loop()
    market = Market(database_url)
    try:
        loop.run_until_complete(market.start())
        walk = type("MarketplaceWalk", (Marketplace,), {"market": market, "loop": loop})
        run_state_machine_as_test(walk, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ))
    finally:
        loop.run_until_complete(market.stop())
        loop.close()
