"""SQL statements per request: a fixed budget per endpoint, and lists that are not N+1.

Every statement the app's engine sends is counted (SQLAlchemy's `before_cursor_execute`
on `app.state.engine.sync_engine`: reads, writes, savepoints, SQLite's BEGIN IMMEDIATE,
the audit chain's sealing at commit; not the driver's own BEGIN/COMMIT) for one
representative call of each main endpoint, on both databases. A call above its budget
fails and prints the statements it sent, so a new query is a decision, never an accident
(issue 8). Lists are counted with 2 and with 50 items: their count must not grow with the
number of items (no N+1), whoever asks.

A change that adds a statement on purpose raises the budget here and says why;
docs/performance.md says what each statement of a bid is for. `SHOW_STATEMENTS=1` prints
every endpoint's statements.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.fixtures.flows import confirm_receivable, receivable_body, submit_receivable
from tests.fixtures.market import award, bid, ok, open_listing, repay
from tests.fixtures.world import Party, World, add_party

BUDGETS: dict[str, dict[str, int]] = {
    # endpoint: statements on PostgreSQL / on SQLite. SQLite adds its BEGIN IMMEDIATE, one
    # INSERT per audit row (no multi-row RETURNING there) and seals the audit chain in
    # three statements, where PostgreSQL's trigger seals it inside the COMMIT (migration 0002).
    "POST /receivables": {"postgres": 5, "sqlite": 10},
    "POST /receivables/{id}/confirm": {"postgres": 4, "sqlite": 9},
    "POST /listings": {"postgres": 5, "sqlite": 10},
    "POST /listings/{id}/bids": {"postgres": 5, "sqlite": 10},
    "PATCH /bids/{id}": {"postgres": 3, "sqlite": 10},
    "POST /listings/{id}/award": {"postgres": 11, "sqlite": 16},
    "POST /deals/{id}/fund": {"postgres": 9, "sqlite": 15},
    "POST /deals/{id}/repay": {"postgres": 9, "sqlite": 15},
    "GET /receivables": {"postgres": 2, "sqlite": 3},
    "GET /listings?status=open": {"postgres": 2, "sqlite": 3},
    "GET /listings": {"postgres": 2, "sqlite": 3},
    "GET /listings/{id}/bids": {"postgres": 3, "sqlite": 4},
    "GET /deals": {"postgres": 2, "sqlite": 3},
    "GET /events": {"postgres": 2, "sqlite": 3},
    "GET /organizations": {"postgres": 2, "sqlite": 3},
}
LIST_ITEMS = 50


class Statements:
    """Records what the app's engine sends while `counting()` is open."""

    def __init__(self, app: FastAPI) -> None:
        self.sent: list[str] | None = None
        self.engine = app.state.engine.sync_engine
        event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement: str, *_args: Any) -> None:
        if self.sent is not None:
            self.sent.append(" ".join(statement.split())[:160])

    @contextlib.contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.sent = []
        try:
            yield self.sent
        finally:
            self.sent = None

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


@pytest.fixture
def statements(app) -> Iterator[Statements]:
    counter = Statements(app)
    yield counter
    counter.close()


class Budget:
    """Calls endpoints, keeps each one's statements, and checks them against BUDGETS."""

    def __init__(self, statements: Statements, backend: str) -> None:
        self.statements, self.backend = statements, backend
        self.sent: dict[str, list[str]] = {}

    async def call(self, endpoint: str, request, expect: int) -> dict[str, Any]:
        with self.statements.counting() as sent:
            response = await request
        assert response.status_code == expect, f"{endpoint}: {response.status_code} {response.text}"
        self.sent[endpoint] = list(sent)
        return response.json()

    def check(self) -> None:
        if os.environ.get("SHOW_STATEMENTS"):
            for endpoint, sent in self.sent.items():
                print(f"\n== {self.backend} {endpoint}: {len(sent)}\n    " + "\n    ".join(sent))
        over = {e: s for e, s in self.sent.items() if len(s) > BUDGETS[e][self.backend]}
        assert not over, f"over the statement budget on {self.backend}:\n" + "\n".join(
            f"{e}: {len(s)} statements, budget {BUDGETS[e][self.backend]}:\n    " + "\n    ".join(s)
            for e, s in over.items()
        )


def _post(client: httpx.AsyncClient, path: str, party: Party, body: dict[str, Any]):
    return client.post(path, json=body, headers=party.headers)


async def test_each_write_stays_within_its_statement_budget(
    client: httpx.AsyncClient, world: World, clock, statements: Statements, backend: str
):
    """One receivable's life, each step counted in the steady state (the chain head and
    the parties' ledger accounts exist already, as they do in production)."""
    budget = Budget(statements, backend)
    warm = await submit_receivable(client, world.sme, world.core)
    await confirm_receivable(client, world.core, warm["id"])

    receivable = await budget.call("POST /receivables", _post(
        client, "/receivables", world.sme, receivable_body(client, world.core)), 201)
    await budget.call("POST /receivables/{id}/confirm", _post(
        client, f"/receivables/{receivable['id']}/confirm", world.core, {}), 200)
    listing = await budget.call("POST /listings", _post(client, "/listings", world.sme, {
        "receivable_id": receivable["id"], "max_discount_rate": "0.0800",
        "closes_at": (clock.now() + dt.timedelta(hours=1)).isoformat()}), 201)
    await bid(client, world.bank2, listing["id"], "0.0500")  # not the listing's first bid
    placed = await budget.call("POST /listings/{id}/bids", _post(
        client, f"/listings/{listing['id']}/bids", world.bank, {"discount_rate": "0.0450"}), 201)
    await budget.call("PATCH /bids/{id}", client.patch(
        f"/bids/{placed['id']}", json={"discount_rate": "0.0440"}, headers=world.bank.headers), 200)
    deal = await budget.call("POST /listings/{id}/award", _post(
        client, f"/listings/{listing['id']}/award", world.sme, {"bid_id": placed["id"]}), 201)
    await budget.call("POST /deals/{id}/fund", _post(client, f"/deals/{deal['id']}/fund", world.bank, {
        "amount": deal["funding_amount"], "payment_reference": "WIRE-1"}), 200)
    await repay(client, world.core, deal["id"], "1000.00")  # the repayment accounts exist now
    settled = await budget.call("POST /deals/{id}/repay", _post(
        client, f"/deals/{deal['id']}/repay", world.core,
        {"amount": "999000.00", "payment_reference": "PAY-2"}), 200)
    assert settled["status"] == "settled"
    budget.check()


async def test_lists_are_not_n_plus_one(
    app, client: httpx.AsyncClient, world: World, clock, statements: Statements, backend: str
):
    """Every list counted with 2 items and with 50: the same statements either way (no
    query per item), within its budget."""
    banks = [world.bank] + [
        await add_party(app, client, world.operator, f"Bank {i}", "bank") for i in range(LIST_ITEMS)
    ]
    listings: list[dict[str, Any]] = []
    rivals: list[dict[str, Any]] = []

    async def grow_to(n: int) -> None:
        """n receivables listed by world.sme, each with world.bank's bid; n rival bids on
        the first listing; so every list below holds n items (or more)."""
        while len(listings) < n:
            created = await submit_receivable(client, world.sme, world.core)
            await confirm_receivable(client, world.core, created["id"])
            listings.append(await open_listing(client, world.sme, created["id"], clock))
            await bid(client, world.bank, listings[-1]["id"], "0.0450")
        while len(rivals) < n:
            rivals.append(await bid(client, banks[len(rivals) + 1], listings[0]["id"], "0.0500"))

    counts: dict[str, list[int]] = {}

    async def count_lists(n: int) -> None:
        budget = Budget(statements, backend)
        for endpoint, party, path in [
            ("GET /receivables", world.sme, "/receivables"),
            ("GET /listings?status=open", world.bank2, "/listings?status=open"),
            ("GET /listings", world.sme, "/listings"),
            ("GET /listings/{id}/bids", world.sme, f"/listings/{listings[0]['id']}/bids"),
            ("GET /events", world.sme, "/events"),
            ("GET /organizations", world.operator, "/organizations"),
        ]:
            page = await budget.call(endpoint, client.get(path, headers=party.headers), 200)
            assert len(page["items"]) >= n, (endpoint, len(page["items"]))
            counts.setdefault(endpoint, []).append(len(budget.sent[endpoint]))
        budget.check()

    await grow_to(2)
    await count_lists(2)
    await grow_to(LIST_ITEMS)
    await count_lists(LIST_ITEMS)

    deals = []
    for listing in listings:
        first = await ok(await client.get(f"/listings/{listing['id']}/bids", headers=world.bank.headers))
        deals.append(await award(client, world.sme, listing["id"], first["items"][0]["id"]))
        if len(deals) not in (2, LIST_ITEMS):
            continue
        for party in (world.sme, world.bank, world.core, world.operator):  # the debtor has its own view
            budget = Budget(statements, backend)
            page = await budget.call("GET /deals", client.get("/deals", headers=party.headers), 200)
            assert len(page["items"]) == len(deals)
            counts.setdefault(f"GET /deals as {party.kind}", []).append(len(budget.sent["GET /deals"]))
            budget.check()

    grown = {endpoint: n for endpoint, n in counts.items() if len(set(n)) > 1}
    assert not grown, f"statements grow with the items listed (N+1), at 2 / {LIST_ITEMS} items: {grown}"
