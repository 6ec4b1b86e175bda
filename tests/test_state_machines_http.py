"""Goal: over HTTP, every lifecycle refuses what its transition table refuses, in the
API's order (404 → 403 → 409), and a refused call changes nothing at all.

Method: for each lifecycle, real objects are driven through the API into every state
reachable without the worker (receivable: submitted … cancelled; listing: open,
awarded, cancelled; bid: active, withdrawn, won, lost; deal: awaiting_funding,
disbursed, settled). In each state every HTTP action the table does not allow there is
attempted by the proper role (→ 409 `illegal_transition` naming the state, or
`auction_closed` for a bid on a listing that is no longer open), and every allowed one
by each wrong party (→ 403, or 404 where the caller cannot see the object). After each
refusal the object read back over HTTP, the whole database (so the counts of
`audit_record` and `journal_entry` rows too) and `/ledger/verify` are unchanged.
Which actions are allowed comes from the tables themselves. Each test builds its
states once and loops over the actions, to stay fast on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from receivables.auctions.lifecycle import (
    BID_TRANSITIONS,
    LISTING_TRANSITIONS,
    BidAction,
    BidStatus,
    ListingAction,
    ListingStatus,
)
from receivables.deals.lifecycle import DEAL_TRANSITIONS, DealAction, DealStatus
from receivables.receivables.lifecycle import (
    RECEIVABLE_TRANSITIONS,
    ReceivableAction,
    ReceivableStatus,
)
from tests.auctions.support import (
    Snapshot,
    assert_problem,
    audit_and_journal_counts,
    changed_tables,
    db_snapshot,
    ledger_balanced,
    ok,
)
from tests.fixtures.flows import advance_clock, confirm_receivable, submit_receivable
from tests.fixtures.market import (
    award,
    awarded_deal,
    bid,
    closes_in,
    fund,
    funded_deal,
    listed_receivable,
    repay,
)
from tests.fixtures.world import Party, World

Call = Callable[[Party], Awaitable[httpx.Response]]


# ------------------------------------------------------------------ the refusal check


class Referee:
    """Runs refused calls and proves each one left everything as it was."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, world: World):
        self.app, self.client, self.world = app, client, world
        self.snapshot: Snapshot | None = None
        self.refusals = 0

    async def _state(self) -> Snapshot:
        if self.snapshot is None:
            self.snapshot = await db_snapshot(self.app)
        return self.snapshot

    async def refuses(
        self,
        label: str,
        call: Call,
        party: Party,
        status: int,
        code: str,
        *,
        reread: tuple[Party, str] | None = None,
        names: str | None = None,
    ) -> None:
        before = await self._state()
        counts = await audit_and_journal_counts(self.app)
        seen_before = await self._get(reread)
        response = await call(party)
        assert response.status_code == status, (
            f"{label} by {party.name}: want {status} {code}, "
            f"got {response.status_code} {response.text}"
        )
        problem = assert_problem(response, status, code)
        if names is not None:
            assert names in problem["detail"], (
                f"{label}: detail {problem['detail']!r} omits {names}"
            )
        after = await db_snapshot(self.app)
        assert changed_tables(before, after) == [], f"{label} by {party.name} wrote to the database"
        assert await audit_and_journal_counts(self.app) == counts
        assert await self._get(reread) == seen_before, f"{label} by {party.name} changed the object"
        self.snapshot = after
        self.refusals += 1

    async def _get(self, reread: tuple[Party, str] | None) -> Any:
        if reread is None:
            return None
        party, path = reread
        return await ok(await self.client.get(path, headers=party.headers))

    def forget(self) -> None:
        """Something was meant to change (a successful call, a worker pass): the next
        refusal takes a fresh snapshot."""
        self.snapshot = None

    async def ledger_still_balanced(self) -> None:
        await ledger_balanced(self.client, self.world.regulator)


def forbidden_or_hidden(status: int) -> str:
    return {403: "forbidden", 404: "not_found"}[status]


# ------------------------------------------------------------------ receivables


@dataclass
class ReceivableCall:
    action: ReceivableAction
    proper: str
    """The world party the table's role maps to: the debtor or the seller."""
    call: Callable[[httpx.AsyncClient, dict[str, Any], Any], Call]


def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> Call:
    async def call(party: Party) -> httpx.Response:
        return await client.post(path, json=body, headers=party.headers)

    return call


def _patch(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Call:
    async def call(party: Party) -> httpx.Response:
        return await client.patch(path, json=body, headers=party.headers)

    return call


RECEIVABLE_CALLS = [
    ReceivableCall(
        ReceivableAction.confirm,
        "core",
        lambda c, r, clock: _post(c, f"/receivables/{r['id']}/confirm"),
    ),
    ReceivableCall(
        ReceivableAction.dispute,
        "core",
        lambda c, r, clock: _post(c, f"/receivables/{r['id']}/dispute", {"reason": "wrong amount"}),
    ),
    ReceivableCall(
        ReceivableAction.amend,
        "sme",
        lambda c, r, clock: _patch(c, f"/receivables/{r['id']}", {"description": "corrected"}),
    ),
    ReceivableCall(
        ReceivableAction.cancel,
        "sme",
        lambda c, r, clock: _post(c, f"/receivables/{r['id']}/cancel"),
    ),
    ReceivableCall(
        ReceivableAction.list,
        "sme",
        lambda c, r, clock: _post(
            c,
            "/listings",
            {
                "receivable_id": r["id"],
                "max_discount_rate": "0.0800",
                "closes_at": closes_in(clock),
            },
        ),
    ),
]

# Who else tries each allowed receivable action, and what they must get: parties that
# cannot see the receivable get 404 (never leak it), visible wrong parties 403; listing
# is gated to SMEs before visibility, so any other role gets 403 there.
RECEIVABLE_WRONG_PARTIES: dict[ReceivableAction, dict[str, int]] = {
    ReceivableAction.confirm: {
        "sme": 403,
        "operator": 403,
        "regulator": 403,
        "core2": 404,
        "sme2": 404,
        "bank": 404,
    },
    ReceivableAction.dispute: {
        "sme": 403,
        "operator": 403,
        "regulator": 403,
        "core2": 404,
        "sme2": 404,
        "bank": 404,
    },
    ReceivableAction.amend: {
        "core": 403,
        "operator": 403,
        "regulator": 403,
        "core2": 404,
        "sme2": 404,
        "bank": 404,
    },
    ReceivableAction.cancel: {
        "core": 403,
        "operator": 403,
        "regulator": 403,
        "core2": 404,
        "sme2": 404,
        "bank": 404,
    },
    ReceivableAction.list: {
        "core": 403,
        "bank": 403,
        "operator": 403,
        "regulator": 403,
        "core2": 403,
        "sme2": 404,
    },
}


async def receivables_in_every_state(
    client, world: World, clock
) -> dict[ReceivableStatus, dict[str, Any]]:
    S = ReceivableStatus
    built: dict[ReceivableStatus, dict[str, Any]] = {}
    built[S.submitted] = await submit_receivable(client, world.sme, world.core)
    confirmed = await submit_receivable(client, world.sme, world.core)
    built[S.confirmed] = await confirm_receivable(client, world.core, confirmed["id"])
    disputed = await submit_receivable(client, world.sme, world.core)
    built[S.disputed] = await ok(
        await client.post(
            f"/receivables/{disputed['id']}/dispute",
            json={"reason": "short delivery"},
            headers=world.core.headers,
        )
    )
    cancelled = await submit_receivable(client, world.sme, world.core)
    built[S.cancelled] = await ok(
        await client.post(f"/receivables/{cancelled['id']}/cancel", headers=world.sme.headers)
    )
    built[S.listed], _ = await listed_receivable(client, world, clock)
    awarded = await awarded_deal(client, world, clock)
    built[S.awarded] = {"id": awarded["receivable_id"]}
    financed = await funded_deal(client, world, clock)
    built[S.financed] = {"id": financed["receivable_id"]}
    settled = await funded_deal(client, world, clock)
    await repay(client, world.core, settled["id"], settled["face_value"])
    built[S.settled] = {"id": settled["receivable_id"]}
    for state, receivable in built.items():
        seen = await ok(
            await client.get(f"/receivables/{receivable['id']}", headers=world.sme.headers)
        )
        assert seen["status"] == state, (state, seen["status"])
    return built


class TestReceivableOverHttp:
    async def test_actions_the_table_refuses_are_409_and_change_nothing(
        self, app, client, world: World, clock
    ):
        built = await receivables_in_every_state(client, world, clock)
        assert set(built) == {
            ReceivableStatus.submitted,
            ReceivableStatus.confirmed,
            ReceivableStatus.disputed,
            ReceivableStatus.listed,
            ReceivableStatus.awarded,
            ReceivableStatus.financed,
            ReceivableStatus.settled,
            ReceivableStatus.cancelled,
        }
        referee = Referee(app, client, world)
        for state, receivable in built.items():
            for spec in RECEIVABLE_CALLS:
                if (state, spec.action) in RECEIVABLE_TRANSITIONS:
                    continue
                await referee.refuses(
                    f"{spec.action} while {state}",
                    spec.call(client, receivable, clock),
                    getattr(world, spec.proper),
                    409,
                    "illegal_transition",
                    reread=(world.sme, f"/receivables/{receivable['id']}"),
                    names=str(state),
                )
        # 8 states x 5 actions, less the 7 allowed pairs
        assert referee.refusals == 8 * 5 - 7
        await referee.ledger_still_balanced()

    async def test_allowed_actions_by_the_wrong_party_are_403_or_404(
        self, app, client, world: World, clock
    ):
        S = ReceivableStatus
        built = {
            S.submitted: await submit_receivable(client, world.sme, world.core),
            S.confirmed: await confirm_receivable(
                client, world.core, (await submit_receivable(client, world.sme, world.core))["id"]
            ),
        }
        disputed = await submit_receivable(client, world.sme, world.core)
        built[S.disputed] = await ok(
            await client.post(
                f"/receivables/{disputed['id']}/dispute",
                json={"reason": "x"},
                headers=world.core.headers,
            )
        )
        referee = Referee(app, client, world)
        expected = 0
        for state, receivable in built.items():
            for spec in RECEIVABLE_CALLS:
                if (state, spec.action) not in RECEIVABLE_TRANSITIONS:
                    continue
                expected += len(RECEIVABLE_WRONG_PARTIES[spec.action])
                for who, status in RECEIVABLE_WRONG_PARTIES[spec.action].items():
                    await referee.refuses(
                        f"{spec.action} while {state}",
                        spec.call(client, receivable, clock),
                        getattr(world, who),
                        status,
                        forbidden_or_hidden(status),
                        reread=(world.sme, f"/receivables/{receivable['id']}"),
                    )
        # confirm, dispute, cancel while submitted; amend, cancel while disputed;
        # cancel, list while confirmed
        assert expected == 7 * 6 and referee.refusals == expected
        await referee.ledger_still_balanced()


# ------------------------------------------------------------------ listings


class TestListingOverHttp:
    async def test_closed_listings_refuse_award_cancel_and_bids(
        self, app, client, world: World, clock
    ):
        _, awarded = await listed_receivable(client, world, clock)
        winner = await bid(client, world.bank, awarded["id"], "0.0400")
        loser = await bid(client, world.bank2, awarded["id"], "0.0500")
        await award(client, world.sme, awarded["id"], winner["id"])
        _, cancelled = await listed_receivable(client, world, clock)
        cancelled_bid = await bid(client, world.bank, cancelled["id"], "0.0400")
        await ok(
            await client.post(f"/listings/{cancelled['id']}/cancel", headers=world.sme.headers)
        )
        built = {
            ListingStatus.awarded: (awarded, [winner, loser]),
            ListingStatus.cancelled: (cancelled, [cancelled_bid]),
        }
        referee = Referee(app, client, world)
        for state, (listing, bids) in built.items():
            seen = await ok(
                await client.get(f"/listings/{listing['id']}", headers=world.sme.headers)
            )
            assert seen["status"] == state
            reread = (world.sme, f"/listings/{listing['id']}")
            for action, call in (
                (
                    ListingAction.award,
                    _post(client, f"/listings/{listing['id']}/award", {"bid_id": bids[-1]["id"]}),
                ),
                (ListingAction.cancel, _post(client, f"/listings/{listing['id']}/cancel")),
            ):
                assert (state, action) not in LISTING_TRANSITIONS
                await referee.refuses(
                    f"{action} while {state}",
                    call,
                    world.sme,
                    409,
                    "illegal_transition",
                    reread=reread,
                    names=str(state),
                )
            await referee.refuses(
                f"bid while {state}",
                _post(client, f"/listings/{listing['id']}/bids", {"discount_rate": "0.0300"}),
                world.bank,
                409,
                "auction_closed",
                reread=reread,
            )
        assert referee.refusals == 6
        await referee.ledger_still_balanced()

    async def test_open_listing_refuses_the_wrong_parties(self, app, client, world: World, clock):
        _, listing = await listed_receivable(client, world, clock)
        first = await bid(client, world.bank, listing["id"], "0.0400")
        assert (ListingStatus.open, ListingAction.award) in LISTING_TRANSITIONS
        assert (ListingStatus.open, ListingAction.cancel) in LISTING_TRANSITIONS
        wrong = {
            "bank": 403,
            "bank2": 403,
            "core": 403,
            "operator": 403,
            "regulator": 403,
            "sme2": 404,
        }
        referee = Referee(app, client, world)
        reread = (world.sme, f"/listings/{listing['id']}")
        for label, call in (
            ("award", _post(client, f"/listings/{listing['id']}/award", {"bid_id": first["id"]})),
            ("cancel", _post(client, f"/listings/{listing['id']}/cancel")),
        ):
            for who, status in wrong.items():
                await referee.refuses(
                    label,
                    call,
                    getattr(world, who),
                    status,
                    forbidden_or_hidden(status),
                    reread=reread,
                )
        assert referee.refusals == 2 * len(wrong)
        seen = await ok(await client.get(f"/listings/{listing['id']}", headers=world.sme.headers))
        assert (seen["status"], seen["bid_count"]) == ("open", 1)


# ------------------------------------------------------------------ bids


class TestBidOverHttp:
    async def test_bids_out_of_play_refuse_revise_withdraw_and_award(
        self, app, client, world: World, clock
    ):
        # withdrawn, on a listing still open
        _, open_listing = await listed_receivable(client, world, clock)
        withdrawn = await bid(client, world.bank, open_listing["id"], "0.0400")
        await ok(await client.post(f"/bids/{withdrawn['id']}/withdraw", headers=world.bank.headers))
        # won and lost, on an awarded listing
        _, awarded = await listed_receivable(client, world, clock)
        won = await bid(client, world.bank, awarded["id"], "0.0400")
        lost = await bid(client, world.bank2, awarded["id"], "0.0500")
        await award(client, world.sme, awarded["id"], won["id"])
        # lost, on a cancelled listing
        _, cancelled = await listed_receivable(client, world, clock)
        lost_on_cancel = await bid(client, world.bank3, cancelled["id"], "0.0400")
        await ok(
            await client.post(f"/listings/{cancelled['id']}/cancel", headers=world.sme.headers)
        )

        cases = [
            # bid, its bank, expected status, its listing, listing status
            (withdrawn, world.bank, BidStatus.withdrawn, open_listing, ListingStatus.open),
            (won, world.bank, BidStatus.won, awarded, ListingStatus.awarded),
            (lost, world.bank2, BidStatus.lost, awarded, ListingStatus.awarded),
            (lost_on_cancel, world.bank3, BidStatus.lost, cancelled, ListingStatus.cancelled),
        ]
        referee = Referee(app, client, world)
        for the_bid, bank, state, listing, listing_state in cases:
            seen = await ok(await client.get(f"/bids/{the_bid['id']}", headers=bank.headers))
            assert seen["status"] == state, (state, seen["status"])
            if state == BidStatus.won:
                listed = await ok(
                    await client.get(f"/listings/{listing['id']}", headers=world.sme.headers)
                )
                assert listed["awarded_bid_id"] == the_bid["id"]
            reread = (bank, f"/bids/{the_bid['id']}")
            for action in (BidAction.revise, BidAction.withdraw):
                assert (state, action) not in BID_TRANSITIONS
            if listing_state == ListingStatus.open:
                # the auction is open: the bid's own table refuses (409 naming its state)
                revise_want = withdraw_want = ("illegal_transition", str(state))
                award_want = ("illegal_transition", str(state))
            else:
                # the auction is over: no bid moves any more (auction_closed); the listing's
                # table refuses another award, naming the listing's state
                revise_want = withdraw_want = ("auction_closed", None)
                award_want = ("illegal_transition", str(listing_state))
            await referee.refuses(
                f"revise {state}",
                _patch(client, f"/bids/{the_bid['id']}", {"discount_rate": "0.0300"}),
                bank,
                409,
                revise_want[0],
                reread=reread,
                names=revise_want[1],
            )
            await referee.refuses(
                f"withdraw {state}",
                _post(client, f"/bids/{the_bid['id']}/withdraw"),
                bank,
                409,
                withdraw_want[0],
                reread=reread,
                names=withdraw_want[1],
            )
            await referee.refuses(
                f"award {state}",
                _post(client, f"/listings/{listing['id']}/award", {"bid_id": the_bid["id"]}),
                world.sme,
                409,
                award_want[0],
                reread=reread,
                names=award_want[1],
            )
        assert referee.refusals == 3 * len(cases)
        await referee.ledger_still_balanced()

    async def test_active_bid_refuses_the_wrong_parties(self, app, client, world: World, clock):
        _, listing = await listed_receivable(client, world, clock)
        active = await bid(client, world.bank, listing["id"], "0.0400")
        await bid(client, world.bank2, listing["id"], "0.0500")
        for action in (BidAction.revise, BidAction.withdraw, BidAction.win):
            assert (BidStatus.active, action) in BID_TRANSITIONS
        plan = [
            (
                "revise",
                _patch(client, f"/bids/{active['id']}", {"discount_rate": "0.0100"}),
                {
                    "bank2": 404,
                    "bank3": 404,
                    "sme": 403,
                    "core": 403,
                    "operator": 403,
                    "regulator": 403,
                    "sme2": 403,
                },
            ),
            (
                "withdraw",
                _post(client, f"/bids/{active['id']}/withdraw"),
                {
                    "bank2": 404,
                    "bank3": 404,
                    "sme": 403,
                    "core": 403,
                    "operator": 403,
                    "regulator": 403,
                    "sme2": 403,
                },
            ),
            (
                "win",
                _post(client, f"/listings/{listing['id']}/award", {"bid_id": active["id"]}),
                {
                    "bank": 403,
                    "bank2": 403,
                    "core": 403,
                    "operator": 403,
                    "regulator": 403,
                    "sme2": 404,
                },
            ),
        ]
        referee = Referee(app, client, world)
        reread = (world.bank, f"/bids/{active['id']}")
        for label, call, wrong in plan:
            for who, status in wrong.items():
                await referee.refuses(
                    label,
                    call,
                    getattr(world, who),
                    status,
                    forbidden_or_hidden(status),
                    reread=reread,
                )
        assert referee.refusals == sum(len(w) for _, _, w in plan)
        seen = await ok(await client.get(f"/bids/{active['id']}", headers=world.bank.headers))
        assert (seen["status"], seen["discount_rate"]) == ("active", "0.0400")


# ------------------------------------------------------------------ deals


class TestDealOverHttp:
    async def test_actions_the_table_refuses_are_409_and_change_nothing(
        self, app, client, world: World, clock
    ):
        awaiting = await awarded_deal(client, world, clock)
        disbursed = await funded_deal(client, world, clock)
        settled = await funded_deal(client, world, clock, face_value="1000.00")
        await repay(client, world.core, settled["id"], "1000.00")
        built = {
            DealStatus.awaiting_funding: awaiting,
            DealStatus.disbursed: disbursed,
            DealStatus.settled: settled,
        }
        referee = Referee(app, client, world)
        await referee.ledger_still_balanced()
        for state, deal in built.items():
            seen = await ok(await client.get(f"/deals/{deal['id']}", headers=world.bank.headers))
            assert seen["status"] == state
            reread = (world.bank, f"/deals/{deal['id']}")
            calls = [
                (
                    DealAction.fund,
                    world.bank,
                    _post(
                        client,
                        f"/deals/{deal['id']}/fund",
                        {"amount": seen["funding_amount"], "payment_reference": "WIRE-X"},
                    ),
                ),
                # "1.00" is a partial payment everywhere here, so the table's `repay` row decides
                (
                    DealAction.repay,
                    world.core,
                    _post(
                        client,
                        f"/deals/{deal['id']}/repay",
                        {"amount": "1.00", "payment_reference": "PAY-X"},
                    ),
                ),
            ]
            for action, party, call in calls:
                if (state, action) in DEAL_TRANSITIONS:
                    continue
                await referee.refuses(
                    f"{action} while {state}",
                    call,
                    party,
                    409,
                    "illegal_transition",
                    reread=reread,
                    names=str(state),
                )
        # fund is refused twice (disbursed, settled), repay twice (awaiting_funding, settled)
        assert referee.refusals == 4
        await referee.ledger_still_balanced()

    async def test_allowed_actions_by_the_wrong_party_are_403_or_404(
        self, app, client, world: World, clock
    ):
        awaiting = await awarded_deal(client, world, clock)
        disbursed = await funded_deal(client, world, clock)
        assert (DealStatus.awaiting_funding, DealAction.fund) in DEAL_TRANSITIONS
        assert (DealStatus.disbursed, DealAction.repay) in DEAL_TRANSITIONS
        plan = [
            (
                awaiting,
                "fund",
                {"amount": awaiting["funding_amount"], "payment_reference": "W"},
                {
                    "bank2": 404,
                    "bank3": 404,
                    "sme": 403,
                    "core": 403,
                    "operator": 403,
                    "regulator": 403,
                    "sme2": 403,
                },
            ),
            (
                disbursed,
                "repay",
                {"amount": "1.00", "payment_reference": "P"},
                # the seller may pay only under recourse once defaulted: 403 here
                {
                    "sme": 403,
                    "bank": 403,
                    "operator": 403,
                    "regulator": 403,
                    "core2": 404,
                    "sme2": 404,
                },
            ),
        ]
        referee = Referee(app, client, world)
        for deal, verb, body, wrong in plan:
            call = _post(client, f"/deals/{deal['id']}/{verb}", body)
            reread = (world.operator, f"/deals/{deal['id']}")
            for who, status in wrong.items():
                await referee.refuses(
                    f"{verb} {deal['status']}",
                    call,
                    getattr(world, who),
                    status,
                    forbidden_or_hidden(status),
                    reread=reread,
                )
        assert referee.refusals == sum(len(w) for *_, w in plan)
        await referee.ledger_still_balanced()
        # and the right parties still can: nothing was left half-done
        funded = await fund(client, world.bank, awaiting)
        assert funded["status"] == "disbursed"
        repaid = await repay(client, world.core, disbursed["id"], "1.00")
        assert (repaid["status"], repaid["repaid_amount"]) == ("disbursed", "1.00")
        await referee.ledger_still_balanced()


# ------------------------------------------------------------------ states the deadlines reach


async def tick(client: httpx.AsyncClient, world: World) -> dict[str, int]:
    """One pass of the worker at the simulated clock's time (POST /admin/tick)."""
    report = await ok(await client.post("/admin/tick", headers=world.operator.headers))
    assert report["failed"] == [], report
    return report["processed"]


def receivable_refusals(state: ReceivableStatus, *, skip: tuple[ReceivableAction, ...] = ()):
    for spec in RECEIVABLE_CALLS:
        if spec.action in skip:
            continue
        assert (state, spec.action) not in RECEIVABLE_TRANSITIONS
        yield spec


class TestStatesTheDeadlinesReach:
    """Expired receivable and listing, lost bid at close, cancelled, overdue and defaulted
    deals: reached through the worker (POST /admin/tick), then refused like the others."""

    async def test_refusals_after_each_deadline(self, app, client, world: World, clock):
        referee = Referee(app, client, world)
        lapsing = await submit_receivable(client, world.sme, world.core)
        _, closing = await listed_receivable(client, world, clock, auto_award=False)
        lost_at_close = await bid(client, world.bank2, closing["id"], "0.0500")
        unfunded = await awarded_deal(client, world, clock)
        late = await funded_deal(client, world, clock, due_in_days=3)
        recourse = await funded_deal(client, world, clock, due_in_days=3, recourse=True)
        seller_pays = _post(
            client, f"/deals/{recourse['id']}/repay", {"amount": "1.00", "payment_reference": "R"}
        )
        # under recourse the seller holds a repay rule, but only once defaulted: 409 before
        await referee.refuses(
            "seller repays while disbursed",
            seller_pays,
            world.sme,
            409,
            "illegal_transition",
            reread=(world.bank, f"/deals/{recourse['id']}"),
            names="disbursed",
        )

        # two days on: the auction closed without an award, the funding deadline passed
        advance_clock(app, world, seconds=2 * 86400)
        processed = await tick(client, world)
        referee.forget()
        assert (processed["auctions_closed"], processed["deals_cancelled"]) == (1, 1)
        listing_seen = await ok(
            await client.get(f"/listings/{closing['id']}", headers=world.sme.headers)
        )
        assert listing_seen["status"] == ListingStatus.expired
        reread = (world.sme, f"/listings/{closing['id']}")
        for action, call in (
            (
                ListingAction.award,
                _post(client, f"/listings/{closing['id']}/award", {"bid_id": lost_at_close["id"]}),
            ),
            (ListingAction.cancel, _post(client, f"/listings/{closing['id']}/cancel")),
        ):
            assert (ListingStatus.expired, action) not in LISTING_TRANSITIONS
            await referee.refuses(
                f"{action} while expired",
                call,
                world.sme,
                409,
                "illegal_transition",
                reread=reread,
                names="expired",
            )
        bid_path = f"/bids/{lost_at_close['id']}"
        assert (await ok(await client.get(bid_path, headers=world.bank2.headers)))["status"] == (
            BidStatus.lost
        )
        for label, call in (
            ("bid", _post(client, f"/listings/{closing['id']}/bids", {"discount_rate": "0.04"})),
            ("revise", _patch(client, bid_path, {"discount_rate": "0.0400"})),
            ("withdraw", _post(client, f"{bid_path}/withdraw")),
        ):
            await referee.refuses(
                f"{label} after close",
                call,
                world.bank2,
                409,
                "auction_closed",
                reread=(world.bank2, bid_path),
            )
        deal_path = f"/deals/{unfunded['id']}"
        assert (await ok(await client.get(deal_path, headers=world.bank.headers)))["status"] == (
            DealStatus.cancelled
        )
        for action, party, call in (
            (
                DealAction.fund,
                world.bank,
                _post(
                    client,
                    f"{deal_path}/fund",
                    {"amount": unfunded["funding_amount"], "payment_reference": "W"},
                ),
            ),
            (
                DealAction.repay,
                world.core,
                _post(
                    client,
                    f"{deal_path}/repay",
                    {"amount": "1.00", "payment_reference": "P"},
                ),
            ),
        ):
            assert (DealStatus.cancelled, action) not in DEAL_TRANSITIONS
            await referee.refuses(
                f"{action} while cancelled",
                call,
                party,
                409,
                "illegal_transition",
                reread=(world.bank, deal_path),
                names="cancelled",
            )
        await referee.ledger_still_balanced()

        # past the due date: overdue, the deal and its receivable
        advance_clock(app, world, seconds=2 * 86400)
        assert (await tick(client, world))["deals_overdue"] == 2
        referee.forget()
        await referee.refuses(
            "seller repays while overdue",
            seller_pays,
            world.sme,
            409,
            "illegal_transition",
            reread=(world.bank, f"/deals/{recourse['id']}"),
            names="overdue",
        )
        await self._refuse_on_late_deal(referee, client, world, late, DealStatus.overdue)

        # past the grace period and the confirmation window: defaulted, expired
        advance_clock(app, world, seconds=31 * 86400)
        processed = await tick(client, world)
        referee.forget()
        assert (processed["deals_defaulted"], processed["receivables_expired"]) == (2, 1)
        await self._refuse_on_late_deal(referee, client, world, late, DealStatus.defaulted)
        # the seller pays only under recourse: this listing had none
        await referee.refuses(
            "seller repays without recourse",
            _post(
                client, f"/deals/{late['id']}/repay", {"amount": "1.00", "payment_reference": "P"}
            ),
            world.sme,
            403,
            "forbidden",
            reread=(world.bank, f"/deals/{late['id']}"),
        )
        # ... and under recourse, once defaulted, the seller may pay towards the bank's P
        paid = await ok(await seller_pays(world.sme))
        referee.forget()
        assert (paid["status"], paid["repaid_amount"]) == ("defaulted", "1.00")
        await referee.ledger_still_balanced()
        seen = await ok(
            await client.get(f"/receivables/{lapsing['id']}", headers=world.sme.headers)
        )
        assert seen["status"] == ReceivableStatus.expired
        for spec in receivable_refusals(ReceivableStatus.expired):
            await referee.refuses(
                f"{spec.action} while expired",
                spec.call(client, lapsing, clock),
                getattr(world, spec.proper),
                409,
                "illegal_transition",
                reread=(world.sme, f"/receivables/{lapsing['id']}"),
                names="expired",
            )
        await referee.ledger_still_balanced()

    async def _refuse_on_late_deal(self, referee, client, world: World, deal, state) -> None:
        deal_path = f"/deals/{deal['id']}"
        assert (await ok(await client.get(deal_path, headers=world.bank.headers)))[
            "status"
        ] == state
        await referee.refuses(
            f"fund while {state}",
            _post(
                client,
                f"{deal_path}/fund",
                {"amount": deal["funding_amount"], "payment_reference": "W"},
            ),
            world.bank,
            409,
            "illegal_transition",
            reread=(world.bank, deal_path),
            names=str(state),
        )
        receivable = {"id": deal["receivable_id"]}
        seen = await ok(
            await client.get(f"/receivables/{receivable['id']}", headers=world.sme.headers)
        )
        assert seen["status"] == state
        # listing is left out: its due date has passed, see test_list_past_due_is_409
        for spec in receivable_refusals(ReceivableStatus(state), skip=(ReceivableAction.list,)):
            await referee.refuses(
                f"{spec.action} while {state}",
                spec.call(client, receivable, referee.app.state.clock),
                getattr(world, spec.proper),
                409,
                "illegal_transition",
                reread=(world.sme, f"/receivables/{receivable['id']}"),
                names=str(state),
            )
        await referee.ledger_still_balanced()

    async def test_list_past_due_is_409(self, app, client, world: World, clock):
        late = await funded_deal(client, world, clock, due_in_days=3)
        advance_clock(app, world, seconds=4 * 86400)
        assert (await tick(client, world))["deals_overdue"] == 1
        referee = Referee(app, client, world)
        spec = next(s for s in RECEIVABLE_CALLS if s.action == ReceivableAction.list)
        await referee.refuses(
            "list while overdue",
            spec.call(client, {"id": late["receivable_id"]}, clock),
            world.sme,
            409,
            "illegal_transition",
            names="overdue",
        )
